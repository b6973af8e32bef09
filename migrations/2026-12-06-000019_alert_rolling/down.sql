-- Without the rolling alert counts.
-- The spans kept, rolled to end at `new_hi` (the current hour).
CREATE OR REPLACE FUNCTION netmonitor_roll_all(new_hi timestamptz) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    span int;
BEGIN
    FOREACH span IN ARRAY ARRAY[24, 168] LOOP
        PERFORM netmonitor_roll('talker', 'talker_rollup', 'talker_rolling', 'sensor, ip',
            ARRAY['bytes_sent', 'bytes_received', 'flows_as_client', 'flows_as_server'], span, new_hi);
        PERFORM netmonitor_roll('tls', 'tls_rollup', 'tls_rolling', 'sensor, kind, value',
            ARRAY['sessions'], span, new_hi);
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION netmonitor_alert_rollup_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH hourly AS MATERIALIZED (
        SELECT date_trunc('hour', ts, 'UTC') AS bucket, sensor, threat_type, signature, src_ip,
               dest_ip, evidence ? 'suppressed_by' AS suppressed, severity, count(*) AS alerts,
               count(*) FILTER (WHERE NOT acknowledged) AS open, max(mitre) AS mitre,
               min(ts) AS first_seen, max(ts) AS last_seen
          FROM new_rows GROUP BY 1, 2, 3, 4, 5, 6, 7, 8),
    by_hour AS (
        INSERT INTO alert_rollup SELECT * FROM hourly ORDER BY 1, 2, 3, 4, 5, 6, 7, 8
        ON CONFLICT (bucket, sensor, threat_type, signature, src_ip, dest_ip, suppressed, severity)
        DO UPDATE SET
            alerts = alert_rollup.alerts + EXCLUDED.alerts,
            open = alert_rollup.open + EXCLUDED.open,
            first_seen = LEAST(alert_rollup.first_seen, EXCLUDED.first_seen),
            last_seen = GREATEST(alert_rollup.last_seen, EXCLUDED.last_seen)),
    by_day AS (
        INSERT INTO alert_rollup_daily
        SELECT date_trunc('day', bucket, 'UTC'), sensor, threat_type, signature, src_ip, dest_ip,
               suppressed, severity, sum(alerts)::int8, sum(open)::int8, max(mitre),
               min(first_seen), max(last_seen)
          FROM hourly GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8
        ON CONFLICT (bucket, sensor, threat_type, signature, src_ip, dest_ip, suppressed, severity)
        DO UPDATE SET
            alerts = alert_rollup_daily.alerts + EXCLUDED.alerts,
            open = alert_rollup_daily.open + EXCLUDED.open,
            first_seen = LEAST(alert_rollup_daily.first_seen, EXCLUDED.first_seen),
            last_seen = GREATEST(alert_rollup_daily.last_seen, EXCLUDED.last_seen)),
    counts AS MATERIALIZED (
        SELECT bucket, sensor, threat_type, severity, suppressed, sum(alerts)::int8 AS alerts,
               sum(open)::int8 AS open
          FROM hourly GROUP BY 1, 2, 3, 4, 5),
    counts_hour AS (
        INSERT INTO alert_counts SELECT * FROM counts ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (bucket, sensor, threat_type, severity, suppressed) DO UPDATE SET
            alerts = alert_counts.alerts + EXCLUDED.alerts,
            open = alert_counts.open + EXCLUDED.open)
    INSERT INTO alert_counts_daily
    SELECT date_trunc('day', bucket, 'UTC'), sensor, threat_type, severity, suppressed,
           sum(alerts)::int8, sum(open)::int8
      FROM counts GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (bucket, sensor, threat_type, severity, suppressed) DO UPDATE SET
        alerts = alert_counts_daily.alerts + EXCLUDED.alerts,
        open = alert_counts_daily.open + EXCLUDED.open;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION netmonitor_alert_counts_update() RETURNS trigger LANGUAGE plpgsql AS $$
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

DELETE FROM rolling_spans WHERE rollup = 'alert';
DROP TABLE alert_rolling;
