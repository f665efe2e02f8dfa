-- An admin can disable an end user (a person who signed in with the org's
-- identity provider, or one a service key acts for): the engine then
-- refuses every request made for them (`end_user_disabled`, check 1) and
-- their live sessions end.
ALTER TABLE end_users ADD COLUMN disabled BIGINT NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1));
