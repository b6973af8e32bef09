-- The trigger and the talker function without the rolling spans.
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

CREATE OR REPLACE FUNCTION netmonitor_add_talkers(stage text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
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
END $$;

DROP FUNCTION netmonitor_roll_all(timestamptz);
DROP FUNCTION netmonitor_roll(text, text, text, text, text[], int, timestamptz);
DROP FUNCTION netmonitor_hours_of(text, text, timestamptz, timestamptz);
DROP TABLE tls_rolling;
DROP TABLE talker_rolling;
DROP TABLE rolling_spans;
