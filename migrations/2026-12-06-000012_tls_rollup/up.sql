-- TLS sessions counted per hour and per day for each value of the attributes get_tls_stats
-- reports, kept by a statement trigger as sessions are written (COPY included). The most
-- frequent values over a window are sums of these counts; distinct clients, servers,
-- fingerprints and certificates are the number of values with sessions in it; sessions are
-- the sum over the transports. Whole days are read from the daily table, other whole hours
-- from the hourly one, the partial hours at a window's edges from the rows.

-- The attributes of one session that are counted, one row each (missing ones left out).
CREATE FUNCTION netmonitor_tls_values(s tls_sessions) RETURNS TABLE (kind text, value text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT v.kind, v.value
      FROM (VALUES ('transport', s.transport), ('version', s.version), ('ja3', s.ja3),
                   ('ja3s', s.ja3s), ('ja4', s.ja4), ('sni', s.sni),
                   ('client', host(s.src_ip)), ('server', host(s.dest_ip)),
                   ('certificate', s.cert_fingerprint)) v(kind, value)
     WHERE v.value IS NOT NULL
$$;

CREATE TABLE tls_rollup (
    bucket   TIMESTAMPTZ NOT NULL,
    sensor   TEXT        NOT NULL,
    kind     TEXT        NOT NULL,
    value    TEXT        NOT NULL,
    sessions BIGINT      NOT NULL,
    PRIMARY KEY (bucket, sensor, kind, value)
);
CREATE TABLE tls_rollup_daily (LIKE tls_rollup INCLUDING ALL);

CREATE FUNCTION netmonitor_tls_rollup_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tier record;
BEGIN
    FOR tier IN SELECT * FROM (VALUES ('tls_rollup', 'hour'), ('tls_rollup_daily', 'day')) v(tbl, unit) LOOP
        EXECUTE format('INSERT INTO %1$I
        SELECT date_trunc(%2$L, n.ts, ''UTC''), n.sensor, v.kind, v.value, count(*)
          FROM new_rows n, netmonitor_tls_values(n) v GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (bucket, sensor, kind, value)
        DO UPDATE SET sessions = %1$I.sessions + EXCLUDED.sessions', tier.tbl, tier.unit);
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER tls_sessions_rollup AFTER INSERT ON tls_sessions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION netmonitor_tls_rollup_insert();

-- The sessions already stored.
INSERT INTO tls_rollup
SELECT date_trunc('hour', t.ts, 'UTC'), t.sensor, v.kind, v.value, count(*)
  FROM tls_sessions t, netmonitor_tls_values(t) v GROUP BY 1, 2, 3, 4;
INSERT INTO tls_rollup_daily
SELECT date_trunc('day', bucket, 'UTC'), sensor, kind, value, sum(sessions)
  FROM tls_rollup GROUP BY 1, 2, 3, 4;
