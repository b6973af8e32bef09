-- Talker and TLS sums over the last 24 hours and the last 7 days, kept rolling: each holds the
-- whole hours [lo, hi) of a span (span - 1 hours, ending at the current hour), so that a window
-- of the last day or week is read as one row per address or value, plus the current hour and
-- the part of an hour at its start, instead of a row per address or value per day.
--
-- The store writer rolls them when the hour turns (netmonitor_roll_talkers / _tls: add the
-- hours that entered, subtract those that left). Sums that arrive late, for hours already
-- inside a span, are added to it as they are written. The roll takes an exclusive advisory
-- lock per rollup, the writers a shared one before they touch the hourly rollup, so that no
-- sum is counted twice or lost between the two.

CREATE TABLE rolling_spans (
    rollup     TEXT        NOT NULL,
    span_hours INT         NOT NULL,
    lo         TIMESTAMPTZ NOT NULL,
    hi         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (rollup, span_hours)
);

CREATE TABLE talker_rolling (
    span_hours      INT    NOT NULL,
    sensor          TEXT   NOT NULL,
    ip              INET   NOT NULL,
    bytes_sent      BIGINT NOT NULL,
    bytes_received  BIGINT NOT NULL,
    flows_as_client BIGINT NOT NULL,
    flows_as_server BIGINT NOT NULL,
    PRIMARY KEY (span_hours, sensor, ip)
);

CREATE TABLE tls_rolling (
    span_hours INT    NOT NULL,
    sensor     TEXT   NOT NULL,
    kind       TEXT   NOT NULL,
    value      TEXT   NOT NULL,
    sessions   BIGINT NOT NULL,
    PRIMARY KEY (span_hours, sensor, kind, value)
);

-- The hours [lo, hi) and the days inside them, for reading a range of the hourly rollup
-- `hourly` (and its daily twin) with `columns`: the whole days from the daily table.
CREATE FUNCTION netmonitor_hours_of(hourly text, columns text, lo timestamptz, hi timestamptz)
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

-- Moves the span of `span` hours of the rollup `name` (whose hourly table is `hourly`, rolling
-- table `rolling`, key columns `keys` and summed columns `sums`) to end at `new_hi`.
CREATE FUNCTION netmonitor_roll(name text, hourly text, rolling text, keys text, sums text[],
                                span int, new_hi timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    new_lo timestamptz := new_hi - make_interval(hours => span - 1);
    b rolling_spans;
    held boolean;
    signed text;
    added text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('rolling:' || name));
    SELECT * INTO b FROM rolling_spans WHERE rollup = name AND span_hours = span;
    held := FOUND;
    IF held AND b.hi = new_hi THEN
        RETURN;
    END IF;
    SELECT string_agg(format('sum(s * %1$I) AS %1$I', c), ', '),
           string_agg(format('%1$I = %2$I.%1$I + EXCLUDED.%1$I', c, rolling), ', ')
      INTO signed, added FROM unnest(sums) c;
    IF NOT held OR new_lo >= b.hi OR new_hi < b.hi THEN
        -- nothing in common with the span held: count it again
        EXECUTE format('DELETE FROM %I WHERE span_hours = %s', rolling, span);
        EXECUTE format('INSERT INTO %1$I SELECT %2$s, %3$s, %4$s FROM (%5$s) x GROUP BY %3$s',
            rolling, span, keys, signed,
            netmonitor_hours_of(hourly, '1 AS s, *', new_lo, new_hi));
    ELSE
        EXECUTE format('INSERT INTO %1$I SELECT %2$s, %3$s, %4$s FROM (%5$s UNION ALL %6$s) x
              GROUP BY %3$s ORDER BY %3$s
            ON CONFLICT (span_hours, %3$s) DO UPDATE SET %7$s',
            rolling, span, keys, signed,
            netmonitor_hours_of(hourly, '1 AS s, *', b.hi, new_hi),
            netmonitor_hours_of(hourly, '-1 AS s, *', b.lo, new_lo), added);
        -- what left the span entirely
        EXECUTE format('DELETE FROM %I WHERE span_hours = %s AND %s', rolling, span,
            (SELECT string_agg(format('%I = 0', c), ' AND ') FROM unnest(sums) c));
    END IF;
    INSERT INTO rolling_spans VALUES (name, span, new_lo, new_hi)
    ON CONFLICT (rollup, span_hours) DO UPDATE SET lo = EXCLUDED.lo, hi = EXCLUDED.hi;
END $$;

-- The spans kept, rolled to end at `new_hi` (the current hour).
CREATE FUNCTION netmonitor_roll_all(new_hi timestamptz) RETURNS void LANGUAGE plpgsql AS $$
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

-- The TLS rollup trigger adds late hours to the spans too.
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

-- Adds hourly talker sums staged in `stage` to the hourly and the daily rollup, in key order,
-- and those of hours inside a rolling span (late ones) to the span.
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
