-- Who set a server's URL: 1 when an org admin did, so the gateway reaches
-- it only within the platform's egress policy (no loopback, private,
-- link-local, metadata addresses unless the platform allows them); 0 when
-- a platform admin (or the bootstrap file) did.
ALTER TABLE servers ADD COLUMN egress_restricted BIGINT NOT NULL DEFAULT 0
    CHECK (egress_restricted IN (0, 1));

-- Servers an org owns may have been set up by its org admin before this
-- column existed: restrict them. A platform admin rewriting the URL (or the
-- platform's egress allow-list) lifts it.
UPDATE servers SET egress_restricted = 1 WHERE owner_org IS NOT NULL;
