-- The scope an org gives people seen for the first time (end users created
-- just in time when they sign in with an identity provider): *inherit*
-- (the default) or grants, like an end user's own scope. It is a template,
-- not an engine row: the policy snapshot never reads it, and it is copied
-- into the new end user's scope in the transaction that creates them.
--
-- Its entries reference the org's grants and toolsets exactly as
-- scope_servers / scope_toolsets do, so they cascade the same way: an org
-- that loses a grant (or the server) or a toolset loses the entry, and the
-- default can only narrow, never name what the org cannot use.
ALTER TABLE orgs ADD COLUMN new_user_scope_inherit BIGINT NOT NULL DEFAULT 1 CHECK (new_user_scope_inherit IN (0, 1));

CREATE TABLE org_new_user_servers (
    org_id BIGINT NOT NULL,
    server_id BIGINT NOT NULL,
    -- JSON `ToolFilter`.
    filter TEXT NOT NULL,
    PRIMARY KEY (org_id, server_id),
    FOREIGN KEY (org_id, server_id) REFERENCES org_grants (org_id, server_id) ON DELETE CASCADE
);

CREATE TABLE org_new_user_toolsets (
    org_id BIGINT NOT NULL,
    toolset_id BIGINT NOT NULL,
    PRIMARY KEY (org_id, toolset_id),
    FOREIGN KEY (toolset_id, org_id) REFERENCES toolsets (id, org_id) ON DELETE CASCADE
);
CREATE INDEX org_new_user_toolsets_toolset ON org_new_user_toolsets (toolset_id);
