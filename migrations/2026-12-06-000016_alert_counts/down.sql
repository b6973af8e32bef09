CREATE OR REPLACE FUNCTION netmonitor_alert_rollup_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tier record;
BEGIN
    FOR tier IN SELECT * FROM (VALUES ('alert_rollup', 'hour'), ('alert_rollup_daily', 'day')) v(tbl, unit) LOOP
        EXECUTE format('INSERT INTO %1$I
        SELECT date_trunc(%2$L, ts, ''UTC''), sensor, threat_type, signature, src_ip, dest_ip,
               evidence ? ''suppressed_by'', severity, count(*),
               count(*) FILTER (WHERE NOT acknowledged), max(mitre), min(ts), max(ts)
          FROM new_rows GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8
        ON CONFLICT (bucket, sensor, threat_type, signature, src_ip, dest_ip, suppressed, severity)
        DO UPDATE SET
            alerts = %1$I.alerts + EXCLUDED.alerts,
            open = %1$I.open + EXCLUDED.open,
            first_seen = LEAST(%1$I.first_seen, EXCLUDED.first_seen),
            last_seen = GREATEST(%1$I.last_seen, EXCLUDED.last_seen)', tier.tbl, tier.unit);
    END LOOP;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS alerts_counts_update ON alerts;
DROP FUNCTION IF EXISTS netmonitor_alert_counts_update();
DROP TABLE IF EXISTS alert_counts_daily;
DROP TABLE IF EXISTS alert_counts;
