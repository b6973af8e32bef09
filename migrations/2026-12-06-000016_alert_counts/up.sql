-- Alerts counted per hour and per day by sensor, kind, severity and whether the alert stage
-- kept them as suppressed evidence, without addresses: a few rows an hour however many sources
-- and targets there are. The count of matching alerts that get_recent_threats reports is read
-- from these when no address enters it (no address filter, and no address-only whitelist entry
-- to apply); alert_rollup, keyed by address pair, answers the rest.
CREATE TABLE alert_counts (
    bucket      TIMESTAMPTZ NOT NULL,
    sensor      TEXT        NOT NULL,
    threat_type TEXT        NOT NULL,
    severity    SMALLINT    NOT NULL,
    suppressed  BOOLEAN     NOT NULL,
    alerts      BIGINT      NOT NULL,
    open        BIGINT      NOT NULL,
    PRIMARY KEY (bucket, sensor, threat_type, severity, suppressed)
);
CREATE TABLE alert_counts_daily (LIKE alert_counts INCLUDING ALL);

-- A batch is grouped once, by hour; the daily rows are added from those hourly sums. Rows are
-- inserted in key order so that two writers lock shared keys in the same order.
CREATE FUNCTION netmonitor_alert_counts_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH hourly AS MATERIALIZED (
        SELECT date_trunc('hour', ts, 'UTC') AS bucket, sensor, threat_type, severity,
               evidence ? 'suppressed_by' AS suppressed, count(*) AS alerts,
               count(*) FILTER (WHERE NOT acknowledged) AS open
          FROM new_rows GROUP BY 1, 2, 3, 4, 5),
    by_hour AS (
        INSERT INTO alert_counts SELECT * FROM hourly ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (bucket, sensor, threat_type, severity, suppressed) DO UPDATE SET
            alerts = alert_counts.alerts + EXCLUDED.alerts,
            open = alert_counts.open + EXCLUDED.open)
    INSERT INTO alert_counts_daily
    SELECT date_trunc('day', bucket, 'UTC'), sensor, threat_type, severity, suppressed,
           sum(alerts)::int8, sum(open)::int8
      FROM hourly GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (bucket, sensor, threat_type, severity, suppressed) DO UPDATE SET
        alerts = alert_counts_daily.alerts + EXCLUDED.alerts,
        open = alert_counts_daily.open + EXCLUDED.open;
    RETURN NULL;
END $$;

-- Acknowledging (or reopening) moves counts between open and acknowledged.
CREATE FUNCTION netmonitor_alert_counts_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH delta AS MATERIALIZED (
        SELECT date_trunc('hour', ts, 'UTC') AS bucket, sensor, threat_type, severity,
               evidence ? 'suppressed_by' AS suppressed,
               sum(CASE WHEN n THEN 1 ELSE -1 END) AS open
          FROM (SELECT ts, sensor, threat_type, severity, evidence, true AS n
                  FROM new_rows WHERE NOT acknowledged
                UNION ALL
                SELECT ts, sensor, threat_type, severity, evidence, false
                  FROM old_rows WHERE NOT acknowledged) x
         GROUP BY 1, 2, 3, 4, 5 HAVING sum(CASE WHEN n THEN 1 ELSE -1 END) <> 0),
    by_hour AS (
        UPDATE alert_counts c SET open = c.open + d.open FROM delta d
         WHERE c.bucket = d.bucket AND c.sensor = d.sensor AND c.threat_type = d.threat_type
           AND c.severity = d.severity AND c.suppressed = d.suppressed)
    UPDATE alert_counts_daily c SET open = c.open + d.open
      FROM (SELECT date_trunc('day', bucket, 'UTC') AS bucket, sensor, threat_type, severity,
                   suppressed, sum(open) AS open
              FROM delta GROUP BY 1, 2, 3, 4, 5) d
     WHERE c.bucket = d.bucket AND c.sensor = d.sensor AND c.threat_type = d.threat_type
       AND c.severity = d.severity AND c.suppressed = d.suppressed;
    RETURN NULL;
END $$;

CREATE TRIGGER alerts_counts_insert AFTER INSERT ON alerts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION netmonitor_alert_counts_insert();
CREATE TRIGGER alerts_counts_update AFTER UPDATE ON alerts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION netmonitor_alert_counts_update();

-- The alerts already stored, from their rollup.
INSERT INTO alert_counts
SELECT bucket, sensor, threat_type, severity, suppressed, sum(alerts), sum(open)
  FROM alert_rollup GROUP BY 1, 2, 3, 4, 5;
INSERT INTO alert_counts_daily
SELECT bucket, sensor, threat_type, severity, suppressed, sum(alerts), sum(open)
  FROM alert_rollup_daily GROUP BY 1, 2, 3, 4, 5;
