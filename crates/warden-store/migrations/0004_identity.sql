-- Identity providers (OAuth 2.1 / OpenID Connect authorization servers)
-- whose access tokens the gateway accepts: platform configuration.
--
-- `config` is the JSON of warden_identity::ProviderConfig (claims, group
-- -> team and client -> agent mappings by slug, required scopes, the org
-- binding). Slug and issuer are columns too, each unique: a token's `iss`
-- picks exactly one provider.
--
-- People who sign in through a provider act through its sign-in keys
-- (rows of `keys` whose token_digest is `idp:<provider>:<org>:<team|->`,
-- never a hex SHA-256) and as end users of their org, both created just in
-- time by the gateway in one policy write.
CREATE TABLE identity_providers (
    id {{ID}},
    slug TEXT NOT NULL UNIQUE,
    issuer TEXT NOT NULL UNIQUE,
    enabled BIGINT NOT NULL CHECK (enabled IN (0, 1)),
    config TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
