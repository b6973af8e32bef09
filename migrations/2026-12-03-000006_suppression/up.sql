-- Whitelist entries match on any of address/network, domain and port, in a direction, on one
-- sensor or all; named service providers (CDNs, clouds, backup, streaming) whose traffic is
-- scored lower and, for the kinds they list, suppressed.
ALTER TABLE whitelist
    ALTER COLUMN ip_cidr DROP NOT NULL,
    ADD COLUMN domain    TEXT,
    ADD COLUMN port      INTEGER CHECK (port BETWEEN 0 AND 65535),
    ADD COLUMN direction TEXT NOT NULL DEFAULT 'any'
        CHECK (direction IN ('any', 'source', 'destination')),
    ADD COLUMN sensor    TEXT,
    ADD CONSTRAINT whitelist_matches_something
        CHECK (ip_cidr IS NOT NULL OR domain IS NOT NULL OR port IS NOT NULL);

CREATE TABLE service_providers (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT        NOT NULL UNIQUE,
    category    TEXT        NOT NULL,
    ranges      TEXT[]      NOT NULL DEFAULT '{}',
    domains     TEXT[]      NOT NULL DEFAULT '{}',
    suppress    TEXT[]      NOT NULL DEFAULT '{}',
    description TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
