-- A consent link is bound to the person it was issued for
-- (docs/credentials.md, "Who may open a consent link").
--
-- `bound_key_id`: the service key that asserted the end user when the
-- link was issued; the browser that opens the link must present that key
-- (its SHA-256 is compared, in constant time, with the key's
-- `token_digest`) before Warden sends it to the authorization server.
-- NULL: the person was signed in through an identity provider
-- (`bound_provider`, the provider's slug).
-- `attempts`: wrong keys presented; the fifth spends the link.
-- `proven`: 1 once the right key was presented.
-- Deleting the key deletes the consents it bound.
ALTER TABLE credential_consents ADD COLUMN bound_key_id BIGINT REFERENCES keys (id) ON DELETE CASCADE;
ALTER TABLE credential_consents ADD COLUMN bound_provider TEXT;
ALTER TABLE credential_consents ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE credential_consents ADD COLUMN proven BIGINT NOT NULL DEFAULT 0 CHECK (proven IN (0, 1));
