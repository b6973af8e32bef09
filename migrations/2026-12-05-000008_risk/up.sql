-- Risk scoring and correlation, kept by the risk actor so that a restart loses nothing:
-- every scored asset (its kept alerts and modifiers in `doc`), attack chains, the ATT&CK
-- rollup behind get_mitre_mapping, and score history at a fixed packet-time cadence.
CREATE TABLE risk_assets (
    ip          INET        PRIMARY KEY,
    score       REAL        NOT NULL,
    level       TEXT        NOT NULL,
    exposure    SMALLINT    NOT NULL DEFAULT 0,
    last_seen   TIMESTAMPTZ NOT NULL,
    doc         JSONB       NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE attack_chains (
    id          BIGINT      PRIMARY KEY,
    source_ip   INET        NOT NULL,
    first_seen  TIMESTAMPTZ NOT NULL,
    last_seen   TIMESTAMPTZ NOT NULL,
    stages      SMALLINT    NOT NULL,
    score       REAL        NOT NULL,
    doc         JSONB       NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX attack_chains_last_seen ON attack_chains (last_seen DESC);

-- Per ten minutes of packet time and ATT&CK technique.
CREATE TABLE mitre_rollup (
    bucket      TIMESTAMPTZ NOT NULL,
    technique   TEXT        NOT NULL,
    alerts      BIGINT      NOT NULL,
    doc         JSONB       NOT NULL,
    PRIMARY KEY (bucket, technique)
);

CREATE TABLE risk_history (
    ts          TIMESTAMPTZ NOT NULL,
    ip          INET        NOT NULL,
    score       REAL        NOT NULL,
    level       TEXT        NOT NULL
);
-- One row per asset and snapshot time: a late alert rewrites the rows it changes.
CREATE UNIQUE INDEX risk_history_ip_ts ON risk_history (ip, ts);
CREATE INDEX risk_history_ts ON risk_history USING BRIN (ts);
