-- Every batch writes both tiers again: the hours not folded yet are folded first, then the
-- functions are as the migrations before left them.
SELECT netmonitor_fold(r, 'infinity') FROM unnest(ARRAY['alert', 'tls', 'talker']) r;


CREATE OR REPLACE FUNCTION netmonitor_tls_rollup_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtext('rolling:tls'));
    WITH hourly AS MATERIALIZED (
        SELECT * FROM (
            SELECT date_trunc('hour', ts, 'UTC') AS bucket, sensor,
                   CASE WHEN GROUPING(transport) = 0 THEN 'transport'
                        WHEN GROUPING(version) = 0 THEN 'version'
                        WHEN GROUPING(ja3) = 0 THEN 'ja3'
                        WHEN GROUPING(ja3s) = 0 THEN 'ja3s'
                        WHEN GROUPING(ja4) = 0 THEN 'ja4'
                        WHEN GROUPING(sni) = 0 THEN 'sni'
                        ELSE 'certificate' END AS kind,
                   CASE WHEN GROUPING(transport) = 0 THEN transport::text
                        WHEN GROUPING(version) = 0 THEN version
                        WHEN GROUPING(ja3) = 0 THEN ja3
                        WHEN GROUPING(ja3s) = 0 THEN ja3s
                        WHEN GROUPING(ja4) = 0 THEN ja4
                        WHEN GROUPING(sni) = 0 THEN sni
                        ELSE cert_fingerprint END AS value,
                   count(*) AS sessions
              FROM new_rows
             GROUP BY 1, 2, GROUPING SETS (transport, version, ja3, ja3s, ja4, sni, cert_fingerprint)) g
         WHERE value IS NOT NULL),
    by_hour AS (
        INSERT INTO tls_rollup SELECT * FROM hourly ORDER BY 1, 2, 3, 4
        ON CONFLICT (bucket, sensor, kind, value)
        DO UPDATE SET sessions = tls_rollup.sessions + EXCLUDED.sessions),
    by_day AS (
        INSERT INTO tls_rollup_daily
        SELECT date_trunc('day', bucket, 'UTC'), sensor, kind, value, sum(sessions)::int8
          FROM hourly GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (bucket, sensor, kind, value)
        DO UPDATE SET sessions = tls_rollup_daily.sessions + EXCLUDED.sessions),
    by_span AS (
        INSERT INTO tls_rolling
        SELECT r.span_hours, h.sensor, h.kind, h.value, sum(h.sessions)::int8
          FROM hourly h JOIN rolling_spans r
            ON r.rollup = 'tls' AND h.bucket >= r.lo AND h.bucket < r.hi
         GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (span_hours, sensor, kind, value)
        DO UPDATE SET sessions = tls_rolling.sessions + EXCLUDED.sessions),
    sketches AS MATERIALIZED (
        SELECT date_trunc('hour', ts, 'UTC') AS bucket, sensor,
               hll_add_agg(netmonitor_address_hash(src_ip), 14, 5, -1, 1) AS clients,
               hll_add_agg(netmonitor_address_hash(dest_ip), 14, 5, -1, 1) AS servers
          FROM new_rows GROUP BY 1, 2),
    sketch_hours AS (
        INSERT INTO tls_distinct SELECT * FROM sketches ORDER BY 1, 2
        ON CONFLICT (bucket, sensor) DO UPDATE
        SET clients = hll_union(tls_distinct.clients, EXCLUDED.clients),
            servers = hll_union(tls_distinct.servers, EXCLUDED.servers))
    INSERT INTO tls_distinct_daily
    SELECT date_trunc('day', bucket, 'UTC'), sensor, hll_union_agg(clients), hll_union_agg(servers)
      FROM sketches GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (bucket, sensor) DO UPDATE
    SET clients = hll_union(tls_distinct_daily.clients, EXCLUDED.clients),
        servers = hll_union(tls_distinct_daily.servers, EXCLUDED.servers);
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION netmonitor_alert_rollup_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtext('rolling:alert'));
    PERFORM pg_advisory_xact_lock_shared(hashtext('rolling:alert_pair'));
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
    pair_span AS (
        INSERT INTO alert_pair_rolling
        SELECT r.span_hours, h.sensor, h.mitre, h.threat_type, h.src_ip, h.dest_ip, h.severity,
               sum(h.alerts)::int8
          FROM hourly h JOIN rolling_spans r
            ON r.rollup = 'alert_pair' AND h.bucket >= r.lo AND h.bucket < r.hi
         GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7
        ON CONFLICT (span_hours, sensor, mitre, threat_type, src_ip, dest_ip, severity)
        DO UPDATE SET alerts = alert_pair_rolling.alerts + EXCLUDED.alerts),
    techniques AS MATERIALIZED (
        SELECT h.bucket, h.sensor, m.technique, min(h.first_seen) AS first_seen,
               max(h.last_seen) AS last_seen
          FROM hourly h, unnest(h.mitre) m(technique) GROUP BY 1, 2, 3),
    techniques_hour AS (
        INSERT INTO alert_techniques SELECT * FROM techniques ORDER BY 1, 2, 3
        ON CONFLICT (bucket, sensor, technique) DO UPDATE SET
            first_seen = LEAST(alert_techniques.first_seen, EXCLUDED.first_seen),
            last_seen = GREATEST(alert_techniques.last_seen, EXCLUDED.last_seen)),
    techniques_day AS (
        INSERT INTO alert_techniques_daily
        SELECT date_trunc('day', bucket, 'UTC'), sensor, technique, min(first_seen), max(last_seen)
          FROM techniques GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (bucket, sensor, technique) DO UPDATE SET
            first_seen = LEAST(alert_techniques_daily.first_seen, EXCLUDED.first_seen),
            last_seen = GREATEST(alert_techniques_daily.last_seen, EXCLUDED.last_seen)),
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

CREATE OR REPLACE FUNCTION netmonitor_alert_rollup_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tier record;
BEGIN
    FOR tier IN SELECT * FROM (VALUES ('alert_rollup', 'hour'), ('alert_rollup_daily', 'day')) v(tbl, unit) LOOP
        EXECUTE format('UPDATE %1$I r SET open = r.open + d.delta
          FROM (SELECT date_trunc(%2$L, ts, ''UTC'') AS bucket, sensor, threat_type, signature,
                       src_ip, dest_ip, evidence ? ''suppressed_by'' AS suppressed, severity,
                       sum(CASE WHEN n THEN 1 ELSE -1 END) AS delta
                  FROM (SELECT *, true AS n FROM new_rows WHERE NOT acknowledged
                        UNION ALL
                        SELECT *, false FROM old_rows WHERE NOT acknowledged) x
                 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8) d
         WHERE d.delta <> 0 AND r.bucket = d.bucket AND r.sensor = d.sensor
           AND r.threat_type = d.threat_type AND r.signature = d.signature
           AND r.src_ip = d.src_ip AND r.dest_ip = d.dest_ip AND r.suppressed = d.suppressed
           AND r.severity = d.severity', tier.tbl, tier.unit);
    END LOOP;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION netmonitor_alert_counts_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtext('rolling:alert'));
    WITH span_delta AS MATERIALIZED (
        SELECT r.span_hours, x.sensor, x.threat_type, x.src_ip,
               x.evidence ? 'suppressed_by' AS suppressed,
               sum(CASE WHEN n THEN 1 ELSE -1 END) AS open
          FROM (SELECT ts, sensor, threat_type, src_ip, evidence, true AS n
                  FROM new_rows WHERE NOT acknowledged
                UNION ALL
                SELECT ts, sensor, threat_type, src_ip, evidence, false
                  FROM old_rows WHERE NOT acknowledged) x
          JOIN rolling_spans r ON r.rollup = 'alert' AND x.ts >= r.lo AND x.ts < r.hi
         GROUP BY 1, 2, 3, 4, 5 HAVING sum(CASE WHEN n THEN 1 ELSE -1 END) <> 0),
    by_span AS (
        UPDATE alert_rolling a SET open = a.open + d.open FROM span_delta d
         WHERE a.span_hours = d.span_hours AND a.sensor = d.sensor
           AND a.threat_type = d.threat_type AND a.src_ip = d.src_ip
           AND a.suppressed = d.suppressed),
    delta AS MATERIALIZED (
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

CREATE OR REPLACE FUNCTION netmonitor_add_talkers(stage text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtext('rolling:talker'));
    EXECUTE format('INSERT INTO talker_rollup SELECT * FROM %I ORDER BY bucket, sensor, ip
        ON CONFLICT (bucket, sensor, ip) DO UPDATE SET
            bytes_sent = talker_rollup.bytes_sent + EXCLUDED.bytes_sent,
            bytes_received = talker_rollup.bytes_received + EXCLUDED.bytes_received,
            flows_as_client = talker_rollup.flows_as_client + EXCLUDED.flows_as_client,
            flows_as_server = talker_rollup.flows_as_server + EXCLUDED.flows_as_server', stage);
    EXECUTE format('INSERT INTO talker_rollup_daily
        SELECT date_trunc(''day'', bucket, ''UTC''), sensor, ip, sum(bytes_sent),
               sum(bytes_received), sum(flows_as_client), sum(flows_as_server)
          FROM %I GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (bucket, sensor, ip) DO UPDATE SET
            bytes_sent = talker_rollup_daily.bytes_sent + EXCLUDED.bytes_sent,
            bytes_received = talker_rollup_daily.bytes_received + EXCLUDED.bytes_received,
            flows_as_client = talker_rollup_daily.flows_as_client + EXCLUDED.flows_as_client,
            flows_as_server = talker_rollup_daily.flows_as_server + EXCLUDED.flows_as_server', stage);
    EXECUTE format('INSERT INTO talker_rolling
        SELECT r.span_hours, s.sensor, s.ip, sum(s.bytes_sent), sum(s.bytes_received),
               sum(s.flows_as_client), sum(s.flows_as_server)
          FROM %I s JOIN rolling_spans r
            ON r.rollup = ''talker'' AND s.bucket >= r.lo AND s.bucket < r.hi
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (span_hours, sensor, ip) DO UPDATE SET
            bytes_sent = talker_rolling.bytes_sent + EXCLUDED.bytes_sent,
            bytes_received = talker_rolling.bytes_received + EXCLUDED.bytes_received,
            flows_as_client = talker_rolling.flows_as_client + EXCLUDED.flows_as_client,
            flows_as_server = talker_rolling.flows_as_server + EXCLUDED.flows_as_server', stage);
END $$;

CREATE OR REPLACE FUNCTION netmonitor_hours_of(hourly text, columns text, lo timestamptz, hi timestamptz)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    d1 timestamptz := date_trunc('day', lo, 'UTC');
    d2 timestamptz := date_trunc('day', hi, 'UTC');
BEGIN
    IF d1 < lo THEN
        d1 := d1 + interval '1 day';
    END IF;
    IF d1 >= d2 THEN
        RETURN format('SELECT %s FROM %I WHERE bucket >= %L AND bucket < %L', columns, hourly, lo, hi);
    END IF;
    RETURN format('SELECT %1$s FROM %2$I WHERE bucket >= %4$L AND bucket < %5$L
        UNION ALL SELECT %1$s FROM %3$I WHERE bucket >= %5$L AND bucket < %6$L
        UNION ALL SELECT %1$s FROM %2$I WHERE bucket >= %6$L AND bucket < %7$L',
        columns, hourly, hourly || '_daily', lo, d1, d2, hi);
END $$;

DROP FUNCTION netmonitor_fold(text, timestamptz, int);
DROP FUNCTION netmonitor_fold_table(text, text, text[], timestamptz[]);
DROP VIEW talker_rollup_days, tls_rollup_days, tls_distinct_days, alert_rollup_days,
    alert_counts_days, alert_techniques_days;
DROP TABLE rollup_hours;
