-- Quotas and rate limits (warden_policy::LimitRow): configuration in the
-- policy snapshot, enforced by the data plane.
--
-- The holder is the org itself (no holder column set) or exactly one team,
-- key, end user or agent of it; each holder FK pins the org. A limit on one
-- server references the org's grant of it, so deleting the grant (or the
-- server) deletes the limit, like scope entries; `server_id` NULL means all
-- servers (a composite FK with a NULL column is not checked).
CREATE TABLE limits (
    id {{ID}},
    org_id BIGINT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    team_id BIGINT,
    key_id BIGINT,
    end_user_id BIGINT,
    agent_id BIGINT,
    server_id BIGINT,
    tool TEXT,
    rate_requests BIGINT,
    -- 'minute' or 'hour'.
    rate_per TEXT,
    rate_burst BIGINT,
    concurrency BIGINT,
    created_at_ms BIGINT NOT NULL,
    CHECK ((CASE WHEN team_id IS NULL THEN 0 ELSE 1 END)
         + (CASE WHEN key_id IS NULL THEN 0 ELSE 1 END)
         + (CASE WHEN end_user_id IS NULL THEN 0 ELSE 1 END)
         + (CASE WHEN agent_id IS NULL THEN 0 ELSE 1 END) <= 1),
    CHECK (tool IS NULL OR server_id IS NOT NULL),
    CHECK ((rate_requests IS NULL AND rate_per IS NULL AND rate_burst IS NULL)
        OR (rate_requests >= 1 AND rate_per IN ('minute', 'hour') AND rate_burst >= 1)),
    CHECK (concurrency IS NULL OR concurrency >= 1),
    CHECK (rate_requests IS NOT NULL OR concurrency IS NOT NULL),
    FOREIGN KEY (team_id, org_id) REFERENCES teams (id, org_id) ON DELETE CASCADE,
    FOREIGN KEY (key_id, org_id) REFERENCES keys (id, org_id) ON DELETE CASCADE,
    FOREIGN KEY (end_user_id, org_id) REFERENCES end_users (id, org_id) ON DELETE CASCADE,
    FOREIGN KEY (agent_id, org_id) REFERENCES agents (id, org_id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, server_id) REFERENCES org_grants (org_id, server_id) ON DELETE CASCADE
);
CREATE INDEX limits_org ON limits (org_id);
CREATE INDEX limits_team ON limits (team_id);
CREATE INDEX limits_key ON limits (key_id);
CREATE INDEX limits_end_user ON limits (end_user_id);
CREATE INDEX limits_agent ON limits (agent_id);
CREATE INDEX limits_grant ON limits (org_id, server_id);
