-- TLS sessions are rolled up like flows: the store writer counts each batch's values per hour
-- and the addresses it saw in memory, and adds them every few seconds (`netmonitor_add_tls`),
-- in one transaction with the sensor's watermark (`rollup_watermarks`, rollup 'tls'); sessions
-- above the watermark (written just before a crash, or by hand under a sensor name no running
-- writer uses) are counted by `netmonitor_rollup_tls`. The statement trigger this replaces
-- grouped seven attributes of every batch and upserted the hourly rollup and sketches each
-- time: about a quarter of the cost of writing the sessions.
DROP TRIGGER tls_sessions_rollup ON tls_sessions;
DROP FUNCTION netmonitor_tls_rollup_insert();

-- The trigger has counted every session stored so far.
INSERT INTO rollup_watermarks
SELECT sensor, 'tls', max(id) FROM tls_sessions GROUP BY sensor
ON CONFLICT (sensor, rollup) DO UPDATE SET last_id = EXCLUDED.last_id;

-- Adds the counts staged in `counts` (shaped like tls_rollup) and the addresses staged in
-- `addresses` (bucket, sensor, client, ip: each address once per hour and role) to the hourly
-- rollup and sketches, and to the daily ones for hours already folded, and to the rolling
-- spans; in key order, so that two writers lock the same keys in the same order.
CREATE FUNCTION netmonitor_add_tls(counts text, addresses text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtext('rolling:tls'));
    EXECUTE format('INSERT INTO rollup_hours SELECT DISTINCT ''tls'', bucket, false FROM %I
        ORDER BY 2 ON CONFLICT DO NOTHING', counts);
    EXECUTE format('INSERT INTO tls_rollup SELECT * FROM %I ORDER BY bucket, sensor, kind, value
        ON CONFLICT (bucket, sensor, kind, value)
        DO UPDATE SET sessions = tls_rollup.sessions + EXCLUDED.sessions', counts);
    EXECUTE format('INSERT INTO tls_rollup_daily
        SELECT date_trunc(''day'', s.bucket, ''UTC''), s.sensor, s.kind, s.value,
               sum(s.sessions)::int8
          FROM %I s JOIN rollup_hours f ON f.rollup = ''tls'' AND f.bucket = s.bucket AND f.folded
         GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (bucket, sensor, kind, value)
        DO UPDATE SET sessions = tls_rollup_daily.sessions + EXCLUDED.sessions', counts);
    EXECUTE format('INSERT INTO tls_rolling
        SELECT r.span_hours, s.sensor, s.kind, s.value, sum(s.sessions)::int8
          FROM %I s JOIN rolling_spans r
            ON r.rollup = ''tls'' AND s.bucket >= r.lo AND s.bucket < r.hi
         GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (span_hours, sensor, kind, value)
        DO UPDATE SET sessions = tls_rolling.sessions + EXCLUDED.sessions', counts);
    EXECUTE format('WITH sketches AS MATERIALIZED (
        SELECT bucket, sensor,
               COALESCE(hll_add_agg(netmonitor_address_hash(ip), 14, 5, -1, 1)
                        FILTER (WHERE client), hll_empty(14, 5, -1, 1)) AS clients,
               COALESCE(hll_add_agg(netmonitor_address_hash(ip), 14, 5, -1, 1)
                        FILTER (WHERE NOT client), hll_empty(14, 5, -1, 1)) AS servers
          FROM %I GROUP BY 1, 2),
    by_hour AS (
        INSERT INTO tls_distinct SELECT * FROM sketches ORDER BY 1, 2
        ON CONFLICT (bucket, sensor) DO UPDATE
        SET clients = hll_union(tls_distinct.clients, EXCLUDED.clients),
            servers = hll_union(tls_distinct.servers, EXCLUDED.servers))
    INSERT INTO tls_distinct_daily
    SELECT date_trunc(''day'', s.bucket, ''UTC''), s.sensor, hll_union_agg(s.clients),
           hll_union_agg(s.servers)
      FROM sketches s JOIN rollup_hours f ON f.rollup = ''tls'' AND f.bucket = s.bucket AND f.folded
     GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (bucket, sensor) DO UPDATE
    SET clients = hll_union(tls_distinct_daily.clients, EXCLUDED.clients),
        servers = hll_union(tls_distinct_daily.servers, EXCLUDED.servers)', addresses);
END $$;

-- Counts the sessions of `for_sensor` above its watermark and moves the watermark; returns
-- the sessions counted. Run by the writer at start and after sums had to be dropped.
CREATE FUNCTION netmonitor_rollup_tls(for_sensor text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    mark bigint;
    newest bigint;
    added bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('tls_rollup:' || for_sensor));
    SELECT last_id INTO mark FROM rollup_watermarks WHERE sensor = for_sensor AND rollup = 'tls';
    mark := COALESCE(mark, 0);
    SELECT max(id), count(*) INTO newest, added
      FROM tls_sessions WHERE sensor = for_sensor AND id > mark;
    IF newest IS NULL THEN
        RETURN 0;
    END IF;
    CREATE TEMP TABLE tls_recount (LIKE tls_rollup);
    INSERT INTO tls_recount
    SELECT date_trunc('hour', s.ts, 'UTC'), for_sensor, v.kind, v.value, count(*)
      FROM tls_sessions s, netmonitor_tls_values(s) v
     WHERE s.sensor = for_sensor AND s.id > mark AND s.id <= newest
     GROUP BY 1, 3, 4;
    CREATE TEMP TABLE tls_recount_addresses AS
    SELECT date_trunc('hour', ts, 'UTC') AS bucket, for_sensor AS sensor, true AS client,
           src_ip AS ip
      FROM tls_sessions WHERE sensor = for_sensor AND id > mark AND id <= newest
    UNION
    SELECT date_trunc('hour', ts, 'UTC'), for_sensor, false, dest_ip
      FROM tls_sessions WHERE sensor = for_sensor AND id > mark AND id <= newest;
    PERFORM netmonitor_add_tls('tls_recount', 'tls_recount_addresses');
    DROP TABLE tls_recount, tls_recount_addresses;
    INSERT INTO rollup_watermarks VALUES (for_sensor, 'tls', newest)
    ON CONFLICT (sensor, rollup) DO UPDATE SET last_id = EXCLUDED.last_id;
    RETURN added;
END $$;
