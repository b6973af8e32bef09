-- Back to a rollup row per client and server address, counted from the stored sessions.
CREATE OR REPLACE FUNCTION netmonitor_tls_rollup_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH hourly AS MATERIALIZED (
        SELECT * FROM (
            SELECT date_trunc('hour', ts, 'UTC') AS bucket, sensor,
                   CASE WHEN GROUPING(transport) = 0 THEN 'transport'
                        WHEN GROUPING(version) = 0 THEN 'version'
                        WHEN GROUPING(ja3) = 0 THEN 'ja3'
                        WHEN GROUPING(ja3s) = 0 THEN 'ja3s'
                        WHEN GROUPING(ja4) = 0 THEN 'ja4'
                        WHEN GROUPING(sni) = 0 THEN 'sni'
                        WHEN GROUPING(src_ip) = 0 THEN 'client'
                        WHEN GROUPING(dest_ip) = 0 THEN 'server'
                        ELSE 'certificate' END AS kind,
                   CASE WHEN GROUPING(transport) = 0 THEN transport::text
                        WHEN GROUPING(version) = 0 THEN version
                        WHEN GROUPING(ja3) = 0 THEN ja3
                        WHEN GROUPING(ja3s) = 0 THEN ja3s
                        WHEN GROUPING(ja4) = 0 THEN ja4
                        WHEN GROUPING(sni) = 0 THEN sni
                        WHEN GROUPING(src_ip) = 0 THEN host(src_ip)
                        WHEN GROUPING(dest_ip) = 0 THEN host(dest_ip)
                        ELSE cert_fingerprint END AS value,
                   count(*) AS sessions
              FROM new_rows
             GROUP BY 1, 2, GROUPING SETS (transport, version, ja3, ja3s, ja4, sni, src_ip, dest_ip,
                                           cert_fingerprint)) g
         WHERE value IS NOT NULL),
    by_hour AS (
        INSERT INTO tls_rollup SELECT * FROM hourly ORDER BY 1, 2, 3, 4
        ON CONFLICT (bucket, sensor, kind, value)
        DO UPDATE SET sessions = tls_rollup.sessions + EXCLUDED.sessions)
    INSERT INTO tls_rollup_daily
    SELECT date_trunc('day', bucket, 'UTC'), sensor, kind, value, sum(sessions)::int8
      FROM hourly GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (bucket, sensor, kind, value)
    DO UPDATE SET sessions = tls_rollup_daily.sessions + EXCLUDED.sessions;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION netmonitor_tls_values(s tls_sessions) RETURNS TABLE (kind text, value text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT v.kind, v.value
      FROM (VALUES ('transport', s.transport::text), ('version', s.version), ('ja3', s.ja3),
                   ('ja3s', s.ja3s), ('ja4', s.ja4), ('sni', s.sni),
                   ('client', host(s.src_ip)), ('server', host(s.dest_ip)),
                   ('certificate', s.cert_fingerprint)) v(kind, value)
     WHERE v.value IS NOT NULL
$$;

INSERT INTO tls_rollup
SELECT date_trunc('hour', ts, 'UTC'), sensor, v.kind, v.value, count(*)
  FROM tls_sessions, LATERAL (VALUES ('client', host(src_ip)), ('server', host(dest_ip))) v(kind, value)
 GROUP BY 1, 2, 3, 4;
INSERT INTO tls_rollup_daily
SELECT date_trunc('day', bucket, 'UTC'), sensor, kind, value, sum(sessions)::int8
  FROM tls_rollup WHERE kind IN ('client', 'server') GROUP BY 1, 2, 3, 4;

DROP TABLE tls_distinct_daily;
DROP TABLE tls_distinct;
DROP FUNCTION netmonitor_address_hash(inet);
DROP EXTENSION hll;
