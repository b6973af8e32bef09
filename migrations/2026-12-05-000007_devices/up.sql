-- The device inventory: one row per device (keyed by MAC where known, else by address), the
-- columns tools filter and sort on typed, the whole record in `doc`. Written in batches by the
-- device actor and read back at start, so devices survive restarts.
CREATE TABLE devices (
    id          TEXT        PRIMARY KEY,
    mac         TEXT,
    vendor      TEXT,
    ips         TEXT[]      NOT NULL DEFAULT '{}',
    hostnames   TEXT[]      NOT NULL DEFAULT '{}',
    first_seen  TIMESTAMPTZ NOT NULL,
    last_seen   TIMESTAMPTZ NOT NULL,
    bytes_out   BIGINT      NOT NULL DEFAULT 0,
    bytes_in    BIGINT      NOT NULL DEFAULT 0,
    doc         JSONB       NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX devices_last_seen ON devices (last_seen DESC);
CREATE INDEX devices_ips ON devices USING GIN (ips);
CREATE INDEX devices_mac ON devices (mac);

-- Custom device templates (the built-in ones ship with the binary).
CREATE TABLE device_templates (
    id          TEXT        PRIMARY KEY,
    doc         JSONB       NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
