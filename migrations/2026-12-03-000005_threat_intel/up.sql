-- Threat intelligence: feeds (configured in the file or managed over MCP), their indicators
-- (kept so that a restart needs no download), and IP-to-ASN ranges loaded like a feed.
CREATE TABLE threat_feeds (
    name          TEXT        PRIMARY KEY,
    source        TEXT        NOT NULL,
    format        TEXT        NOT NULL,
    refresh_secs  INTEGER     NOT NULL CHECK (refresh_secs > 0),
    confidence    SMALLINT    NOT NULL CHECK (confidence BETWEEN 0 AND 100),
    enabled       BOOLEAN     NOT NULL DEFAULT true,
    origin        TEXT        NOT NULL CHECK (origin IN ('config', 'mcp')),
    -- user name and the names of environment variables holding secrets; never a secret
    auth          JSONB       NOT NULL DEFAULT '{}',
    etag          TEXT,
    last_modified TEXT,
    cursor        TEXT,
    last_attempt  TIMESTAMPTZ,
    last_success  TIMESTAMPTZ,
    last_error    TEXT,
    error_lines   JSONB       NOT NULL DEFAULT '[]',
    indicators    INTEGER     NOT NULL DEFAULT 0,
    unsupported   INTEGER     NOT NULL DEFAULT 0,
    updated_by    TEXT,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE indicators (
    feed        TEXT        NOT NULL REFERENCES threat_feeds (name) ON DELETE CASCADE,
    kind        TEXT        NOT NULL,
    value       TEXT        NOT NULL,
    confidence  SMALLINT    NOT NULL,
    first_seen  TIMESTAMPTZ NOT NULL,
    last_seen   TIMESTAMPTZ NOT NULL,
    valid_until TIMESTAMPTZ,
    description TEXT,
    tags        TEXT[]      NOT NULL DEFAULT '{}',
    PRIMARY KEY (feed, kind, value)
);
CREATE INDEX indicators_value_idx ON indicators (value);

CREATE TABLE asn_ranges (
    feed        TEXT   NOT NULL REFERENCES threat_feeds (name) ON DELETE CASCADE,
    range_start INET   NOT NULL,
    range_end   INET   NOT NULL,
    asn         BIGINT NOT NULL,
    country     TEXT   NOT NULL,
    description TEXT   NOT NULL
);
CREATE INDEX asn_ranges_start_idx ON asn_ranges (range_start);
