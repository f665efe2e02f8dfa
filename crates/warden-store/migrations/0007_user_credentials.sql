-- Each person's own credentials upstream (docs/credentials.md).
--
-- A server without a row in server_upstream_auth authenticates upstream
-- with its static secret headers only (`static`). A row makes it
-- `oauth_per_user` (Warden is an OAuth client of the upstream's
-- authorization server; every person consents once) or `token_exchange`
-- (RFC 8693 at the person's identity provider).
CREATE TABLE server_upstream_auth (
    server_id BIGINT PRIMARY KEY REFERENCES servers (id) ON DELETE CASCADE,
    mode TEXT NOT NULL CHECK (mode IN ('oauth_per_user', 'token_exchange')),
    -- JSON of warden_store::UpstreamAuthConfig (no secret in it).
    config TEXT NOT NULL,
    -- The OAuth client secret Warden authenticates with, encrypted like a
    -- secret header (associated data `upstream_auth:<server id>`); NULL for
    -- a public client.
    client_secret TEXT,
    -- JSON of the client Warden registered dynamically (RFC 7591) with the
    -- discovered authorization server; its secret, if any, is encrypted
    -- the same way (associated data `registered_client:<server id>`).
    registered_client TEXT,
    updated_at_ms BIGINT NOT NULL
);

-- One person's tokens for one server. Deleting the end user, the server
-- or the org's grant of the server deletes them (foreign keys below), and
-- the trigger at the end queues their upstream revocation (RFC 7009).
CREATE TABLE user_credentials (
    id {{ID}},
    org_id BIGINT NOT NULL,
    end_user_id BIGINT NOT NULL,
    server_id BIGINT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    -- base64(nonce || ChaCha20-Poly1305 ciphertext); associated data
    -- `user_credential:<end user id>:<server id>:access` / `:refresh`.
    access_token TEXT NOT NULL,
    refresh_token TEXT,
    -- NULL: the authorization server gave no lifetime.
    expires_at_ms BIGINT,
    -- Space-separated granted scopes.
    scopes TEXT NOT NULL,
    token_endpoint TEXT NOT NULL,
    -- NULL: the authorization server advertises no revocation endpoint.
    revocation_endpoint TEXT,
    client_id TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    UNIQUE (end_user_id, server_id),
    FOREIGN KEY (end_user_id, org_id) REFERENCES end_users (id, org_id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, server_id) REFERENCES org_grants (org_id, server_id) ON DELETE CASCADE
);
CREATE INDEX user_credentials_server ON user_credentials (server_id);
CREATE INDEX user_credentials_org ON user_credentials (org_id, server_id);

-- A consent in progress: the single-use link Warden hands the person
-- (stored as the SHA-256 of its token), then, once opened, the OAuth
-- `state` and the PKCE verifier (encrypted, associated data
-- `consent:<id>`) until the authorization server calls back.
CREATE TABLE credential_consents (
    id {{ID}},
    link_digest TEXT NOT NULL UNIQUE,
    state_digest TEXT UNIQUE,
    code_verifier TEXT,
    org_id BIGINT NOT NULL,
    end_user_id BIGINT NOT NULL,
    server_id BIGINT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    expires_at_ms BIGINT NOT NULL,
    FOREIGN KEY (end_user_id, org_id) REFERENCES end_users (id, org_id) ON DELETE CASCADE
);

-- Tokens deleted (by the person, an admin, or a cascade) that still have
-- to be revoked at their authorization server. Still encrypted; a worker
-- posts them to the revocation endpoint and deletes the row.
CREATE TABLE credential_revocations (
    id {{ID}},
    end_user_id BIGINT NOT NULL,
    server_id BIGINT NOT NULL,
    access_token TEXT NOT NULL,
    refresh_token TEXT,
    revocation_endpoint TEXT NOT NULL,
    client_id TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    queued_at_ms BIGINT NOT NULL
);

{{CREDENTIAL_REVOCATION_TRIGGER}}
