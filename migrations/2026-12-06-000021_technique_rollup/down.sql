-- Without the ATT&CK rollups.
CREATE OR REPLACE FUNCTION netmonitor_roll_all(new_hi timestamptz) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    span int;
BEGIN
    FOREACH span IN ARRAY ARRAY[24, 168] LOOP
        PERFORM netmonitor_roll('talker', 'talker_rollup', 'talker_rolling', 'sensor, ip',
            ARRAY['bytes_sent', 'bytes_received', 'flows_as_client', 'flows_as_server'], span, new_hi);
        PERFORM netmonitor_roll('tls', 'tls_rollup', 'tls_rolling', 'sensor, kind, value',
            ARRAY['sessions'], span, new_hi);
        PERFORM netmonitor_roll('alert', 'alert_rollup', 'alert_rolling',
            'sensor, threat_type, src_ip, suppressed', ARRAY['alerts', 'open'], span, new_hi);
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION netmonitor_alert_rollup_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtext('rolling:alert'));
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
    by_span AS (
        INSERT INTO alert_rolling
        SELECT r.span_hours, h.sensor, h.threat_type, h.src_ip, h.suppressed, sum(h.alerts)::int8,
               sum(h.open)::int8
          FROM hourly h JOIN rolling_spans r
            ON r.rollup = 'alert' AND h.bucket >= r.lo AND h.bucket < r.hi
         GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (span_hours, sensor, threat_type, src_ip, suppressed) DO UPDATE SET
            alerts = alert_rolling.alerts + EXCLUDED.alerts,
            open = alert_rolling.open + EXCLUDED.open),
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

DELETE FROM rolling_spans WHERE rollup = 'alert_pair';
DROP TABLE alert_techniques_daily;
DROP TABLE alert_techniques;
DROP TABLE alert_pair_rolling;
