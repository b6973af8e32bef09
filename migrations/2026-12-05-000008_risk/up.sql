-- Risk scoring and correlation, kept by the risk actor so that a restart loses nothing:
-- every scored asset (its kept alerts and modifiers in `doc`), attack chains, the ATT&CK
-- rollup behind get_mitre_mapping, and score history at a fixed packet-time cadence. Every row
-- names its sensor: sensors sharing a database each keep and read back their own.
CREATE TABLE risk_assets (
    ip          INET        NOT NULL,
    sensor      TEXT        NOT NULL,
    score       REAL        NOT NULL,
    level       TEXT        NOT NULL,
    exposure    SMALLINT    NOT NULL DEFAULT 0,
    last_seen   TIMESTAMPTZ NOT NULL,
    doc         JSONB       NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (ip, sensor)
);

CREATE TABLE attack_chains (
    id          BIGINT      NOT NULL,
    sensor      TEXT        NOT NULL,
    source_ip   INET        NOT NULL,
    first_seen  TIMESTAMPTZ NOT NULL,
    last_seen   TIMESTAMPTZ NOT NULL,
    stages      SMALLINT    NOT NULL,
    score       REAL        NOT NULL,
    doc         JSONB       NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (id, sensor)
);
CREATE INDEX attack_chains_last_seen ON attack_chains (last_seen DESC);

-- Per ten minutes of packet time, ATT&CK technique and sensor (sensors sharing a database
-- each keep their own rows).
CREATE TABLE mitre_rollup (
    bucket      TIMESTAMPTZ NOT NULL,
    technique   TEXT        NOT NULL,
    sensor      TEXT        NOT NULL,
    alerts      BIGINT      NOT NULL,
    doc         JSONB       NOT NULL,
    PRIMARY KEY (bucket, technique, sensor)
);

CREATE TABLE risk_history (
    ts          TIMESTAMPTZ NOT NULL,
    ip          INET        NOT NULL,
    sensor      TEXT        NOT NULL,
    score       REAL        NOT NULL,
    level       TEXT        NOT NULL
);
-- One row per asset and snapshot time: a late alert rewrites the rows it changes.
CREATE UNIQUE INDEX risk_history_ip_ts ON risk_history (ip, ts, sensor);
CREATE INDEX risk_history_ts ON risk_history USING BRIN (ts);
