-- Batches count their sessions in a statement trigger again: the sessions above each sensor's
-- watermark are counted first, then the trigger is as the `daily_fold` migration left it.
SELECT netmonitor_rollup_tls(sensor) FROM (SELECT DISTINCT sensor FROM tls_sessions) s;
DELETE FROM rollup_watermarks WHERE rollup = 'tls';
DROP FUNCTION netmonitor_rollup_tls(text);
DROP FUNCTION netmonitor_add_tls(text, text);

-- TLS sessions: hours not folded yet go to the hourly rollup and sketches only.
CREATE FUNCTION netmonitor_tls_rollup_insert() RETURNS trigger LANGUAGE plpgsql AS $$
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
        SELECT date_trunc('day', h.bucket, 'UTC'), h.sensor, h.kind, h.value, sum(h.sessions)::int8
          FROM hourly h JOIN rollup_hours f ON f.rollup = 'tls' AND f.bucket = h.bucket AND f.folded
         GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
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
    hours AS (
        INSERT INTO rollup_hours SELECT DISTINCT 'tls', bucket, false FROM sketches ORDER BY 2
        ON CONFLICT DO NOTHING),
    sketch_hours AS (
        INSERT INTO tls_distinct SELECT * FROM sketches ORDER BY 1, 2
        ON CONFLICT (bucket, sensor) DO UPDATE
        SET clients = hll_union(tls_distinct.clients, EXCLUDED.clients),
            servers = hll_union(tls_distinct.servers, EXCLUDED.servers))
    INSERT INTO tls_distinct_daily
    SELECT date_trunc('day', s.bucket, 'UTC'), s.sensor, hll_union_agg(s.clients),
           hll_union_agg(s.servers)
      FROM sketches s JOIN rollup_hours f ON f.rollup = 'tls' AND f.bucket = s.bucket AND f.folded
     GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (bucket, sensor) DO UPDATE
    SET clients = hll_union(tls_distinct_daily.clients, EXCLUDED.clients),
        servers = hll_union(tls_distinct_daily.servers, EXCLUDED.servers);
    RETURN NULL;
END $$;

CREATE TRIGGER tls_sessions_rollup AFTER INSERT ON tls_sessions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION netmonitor_tls_rollup_insert();
