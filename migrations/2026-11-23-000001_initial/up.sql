-- NetMonitor initial schema: time-ordered event tables (indexed for "last N hours"),
-- API tokens (hash only) and their audit trail, and small configuration tables.

CREATE TABLE flows (
    id             BIGSERIAL PRIMARY KEY,
    sensor         TEXT        NOT NULL,
    flow_id        BIGINT      NOT NULL,
    ts             TIMESTAMPTZ NOT NULL,
    start_ts       TIMESTAMPTZ NOT NULL,
    end_ts         TIMESTAMPTZ NOT NULL,
    src_ip         TEXT        NOT NULL,
    src_port       INTEGER     NOT NULL,
    dest_ip        TEXT        NOT NULL,
    dest_port      INTEGER     NOT NULL,
    proto          SMALLINT    NOT NULL,
    app_proto      TEXT,
    pkts_toserver  BIGINT      NOT NULL,
    pkts_toclient  BIGINT      NOT NULL,
    bytes_toserver BIGINT      NOT NULL,
    bytes_toclient BIGINT      NOT NULL,
    state          TEXT        NOT NULL,
    reason         TEXT        NOT NULL,
    tcp_flags      SMALLINT    NOT NULL,
    alerted        BOOLEAN     NOT NULL
);
CREATE INDEX flows_ts_idx ON flows (ts);
CREATE INDEX flows_src_idx ON flows (src_ip, ts);
CREATE INDEX flows_dest_idx ON flows (dest_ip, ts);

CREATE TABLE alerts (
    id            BIGSERIAL PRIMARY KEY,
    sensor        TEXT        NOT NULL,
    flow_id       BIGINT      NOT NULL,
    ts            TIMESTAMPTZ NOT NULL,
    src_ip        TEXT        NOT NULL,
    src_port      INTEGER     NOT NULL,
    dest_ip       TEXT        NOT NULL,
    dest_port     INTEGER     NOT NULL,
    proto         SMALLINT    NOT NULL,
    signature_id  BIGINT      NOT NULL,
    signature     TEXT        NOT NULL,
    category      TEXT        NOT NULL,
    severity      SMALLINT    NOT NULL,
    threat_type   TEXT        NOT NULL,
    mitre         TEXT[]      NOT NULL,
    evidence      JSONB       NOT NULL,
    acknowledged  BOOLEAN     NOT NULL DEFAULT FALSE,
    acknowledged_by TEXT,
    acknowledged_at TIMESTAMPTZ
);
CREATE INDEX alerts_ts_idx ON alerts (ts);
CREATE INDEX alerts_src_idx ON alerts (src_ip, ts);
CREATE INDEX alerts_dest_idx ON alerts (dest_ip, ts);
CREATE INDEX alerts_threat_idx ON alerts (threat_type, ts);

CREATE TABLE tls_sessions (
    id              BIGSERIAL PRIMARY KEY,
    sensor          TEXT        NOT NULL,
    flow_id         BIGINT      NOT NULL,
    ts              TIMESTAMPTZ NOT NULL,
    src_ip          TEXT        NOT NULL,
    src_port        INTEGER     NOT NULL,
    dest_ip         TEXT        NOT NULL,
    dest_port       INTEGER     NOT NULL,
    transport       TEXT        NOT NULL,
    sni             TEXT,
    version         TEXT,
    ja3             TEXT,
    ja3_string      TEXT,
    ja3s            TEXT,
    ja3s_string     TEXT,
    ja4             TEXT,
    alpn            TEXT[]      NOT NULL,
    cipher_selected INTEGER,
    cert_fingerprint TEXT
);
CREATE INDEX tls_sessions_ts_idx ON tls_sessions (ts);
CREATE INDEX tls_sessions_ja3_idx ON tls_sessions (ja3);
CREATE INDEX tls_sessions_sni_idx ON tls_sessions (sni);
CREATE INDEX tls_sessions_src_idx ON tls_sessions (src_ip, ts);

-- Certificates deduplicated by SHA-1 fingerprint; first/last seen kept current.
CREATE TABLE certificates (
    fingerprint  TEXT PRIMARY KEY,
    subject      TEXT        NOT NULL,
    issuer       TEXT        NOT NULL,
    serial       TEXT        NOT NULL,
    not_before   TIMESTAMPTZ NOT NULL,
    not_after    TIMESTAMPTZ NOT NULL,
    sans         TEXT[]      NOT NULL,
    self_signed  BOOLEAN     NOT NULL,
    is_ca        BOOLEAN     NOT NULL,
    key_type     TEXT,
    key_bits     INTEGER,
    first_seen   TIMESTAMPTZ NOT NULL,
    last_seen    TIMESTAMPTZ NOT NULL
);

CREATE TABLE ja3_blocklist (
    ja3         TEXT PRIMARY KEY,
    reason      TEXT        NOT NULL,
    source      TEXT        NOT NULL,
    added_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE kerberos_events (
    id                BIGSERIAL PRIMARY KEY,
    sensor            TEXT        NOT NULL,
    flow_id           BIGINT      NOT NULL,
    ts                TIMESTAMPTZ NOT NULL,
    src_ip            TEXT        NOT NULL,
    src_port          INTEGER     NOT NULL,
    dest_ip           TEXT        NOT NULL,
    dest_port         INTEGER     NOT NULL,
    proto             SMALLINT    NOT NULL,
    msg_type          TEXT        NOT NULL,
    cname             TEXT,
    realm             TEXT,
    sname             TEXT,
    encryption        INTEGER,
    ticket_encryption INTEGER,
    requested_etypes  INTEGER[]   NOT NULL,
    padata_types      INTEGER[]   NOT NULL,
    error_code        INTEGER,
    failed_request    TEXT,
    weak_encryption   BOOLEAN     NOT NULL
);
CREATE INDEX kerberos_events_ts_idx ON kerberos_events (ts);
CREATE INDEX kerberos_events_src_idx ON kerberos_events (src_ip, ts);
CREATE INDEX kerberos_events_cname_idx ON kerberos_events (cname);

-- Other decoded events (dns, dhcp, …) kept in EVE form.
CREATE TABLE app_events (
    id          BIGSERIAL PRIMARY KEY,
    sensor      TEXT        NOT NULL,
    flow_id     BIGINT      NOT NULL,
    ts          TIMESTAMPTZ NOT NULL,
    event_type  TEXT        NOT NULL,
    src_ip      TEXT        NOT NULL,
    dest_ip     TEXT        NOT NULL,
    eve         JSONB       NOT NULL
);
CREATE INDEX app_events_ts_idx ON app_events (event_type, ts);

CREATE TABLE api_tokens (
    id              BIGSERIAL PRIMARY KEY,
    name            TEXT        NOT NULL,
    token_hash      TEXT        NOT NULL UNIQUE,
    scope           TEXT        NOT NULL CHECK (scope IN ('read_only', 'read_write', 'admin')),
    rate_per_minute INTEGER,
    rate_per_hour   INTEGER,
    rate_per_day    INTEGER,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at      TIMESTAMPTZ,
    revoked_at      TIMESTAMPTZ,
    last_used_at    TIMESTAMPTZ
);

CREATE TABLE api_token_usage (
    id           BIGSERIAL PRIMARY KEY,
    ts           TIMESTAMPTZ NOT NULL,
    token_id     BIGINT,
    token_name   TEXT,
    method       TEXT        NOT NULL,
    tool         TEXT,
    status       TEXT        NOT NULL,
    http_status  INTEGER     NOT NULL,
    duration_us  BIGINT      NOT NULL,
    client_addr  TEXT,
    user_agent   TEXT,
    session_id   TEXT,
    error        TEXT
);
CREATE INDEX api_token_usage_ts_idx ON api_token_usage (ts);
CREATE INDEX api_token_usage_token_idx ON api_token_usage (token_id, ts);

CREATE TABLE config_parameters (
    key         TEXT PRIMARY KEY,
    value       JSONB       NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_by  TEXT
);

CREATE TABLE whitelist (
    id          BIGSERIAL PRIMARY KEY,
    ip_cidr     TEXT        NOT NULL,
    description TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE pcap_captures (
    id          BIGSERIAL PRIMARY KEY,
    path        TEXT        NOT NULL UNIQUE,
    flow_id     BIGINT,
    alert_id    BIGINT,
    packets     BIGINT      NOT NULL,
    bytes       BIGINT      NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
