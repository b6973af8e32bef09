-- Sensor commands (send_sensor_command): who asked what, when, and what happened.
CREATE TABLE sensor_commands (
    id           BIGSERIAL PRIMARY KEY,
    ts           TIMESTAMPTZ NOT NULL DEFAULT now(),
    sensor       TEXT        NOT NULL,
    command      TEXT        NOT NULL,
    args         JSONB       NOT NULL,
    requested_by TEXT        NOT NULL,
    token_id     BIGINT,
    status       TEXT        NOT NULL CHECK (status IN ('ok', 'error')),
    result       JSONB       NOT NULL,
    duration_ms  INTEGER     NOT NULL
);
CREATE INDEX sensor_commands_ts_idx ON sensor_commands (ts DESC);
