CREATE OR REPLACE FUNCTION netmonitor_tls_rollup_insert() RETURNS trigger LANGUAGE plpgsql AS $$
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
