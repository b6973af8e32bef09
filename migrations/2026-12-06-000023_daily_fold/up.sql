-- The daily tables are filled from the hourly ones by the writer ("folding" the hours before
-- the current one), no longer in every batch: a batch for an hour not folded yet (the current
-- one, or any of a replay until it is folded) writes its hourly rows only, which halves the
-- rows it upserts. `rollup_hours` says, per rollup and hour, whether the hour is in the daily
-- tables yet; rows for an hour already folded (late ones, or acknowledgements) go to both
-- tiers, as before. The `<x>_days` views read whole days: the daily rows plus the hourly rows
-- of hours not folded yet, so a day reads complete at any time. Folding (`netmonitor_fold`)
-- takes the lock the batches share, so nothing is counted twice or lost between the tiers.
-- New hours are inserted in time order, as the rollups' rows are in key order, so that two
-- writers cannot wait for each other's hours in a circle.

CREATE TABLE rollup_hours (
    rollup TEXT        NOT NULL, -- 'talker', 'tls' or 'alert'
    bucket TIMESTAMPTZ NOT NULL,
    folded BOOLEAN     NOT NULL,
    PRIMARY KEY (rollup, bucket)
);
-- the few hours not folded yet, which every read of whole days looks up
CREATE INDEX rollup_hours_unfolded ON rollup_hours (rollup, bucket) WHERE NOT folded;

-- Everything stored so far is in the daily tables already.
INSERT INTO rollup_hours
SELECT 'talker', bucket, true FROM talker_rollup
UNION SELECT 'tls', bucket, true FROM tls_rollup
UNION SELECT 'tls', bucket, true FROM tls_distinct
UNION SELECT 'alert', bucket, true FROM alert_rollup
UNION SELECT 'alert', bucket, true FROM alert_counts
UNION SELECT 'alert', bucket, true FROM alert_techniques;

CREATE VIEW talker_rollup_days AS
    SELECT * FROM talker_rollup_daily
    UNION ALL
    SELECT h.* FROM talker_rollup h
      JOIN rollup_hours f ON f.rollup = 'talker' AND f.bucket = h.bucket AND NOT f.folded;
CREATE VIEW tls_rollup_days AS
    SELECT * FROM tls_rollup_daily
    UNION ALL
    SELECT h.* FROM tls_rollup h
      JOIN rollup_hours f ON f.rollup = 'tls' AND f.bucket = h.bucket AND NOT f.folded;
CREATE VIEW tls_distinct_days AS
    SELECT * FROM tls_distinct_daily
    UNION ALL
    SELECT h.* FROM tls_distinct h
      JOIN rollup_hours f ON f.rollup = 'tls' AND f.bucket = h.bucket AND NOT f.folded;
CREATE VIEW alert_rollup_days AS
    SELECT * FROM alert_rollup_daily
    UNION ALL
    SELECT h.* FROM alert_rollup h
      JOIN rollup_hours f ON f.rollup = 'alert' AND f.bucket = h.bucket AND NOT f.folded;
CREATE VIEW alert_counts_days AS
    SELECT * FROM alert_counts_daily
    UNION ALL
    SELECT h.* FROM alert_counts h
      JOIN rollup_hours f ON f.rollup = 'alert' AND f.bucket = h.bucket AND NOT f.folded;
CREATE VIEW alert_techniques_days AS
    SELECT * FROM alert_techniques_daily
    UNION ALL
    SELECT h.* FROM alert_techniques h
      JOIN rollup_hours f ON f.rollup = 'alert' AND f.bucket = h.bucket AND NOT f.folded;

-- Adds the rows of the hourly table `hourly` in `hours` to its daily twin `<hourly>_daily`:
-- `keys` are its key columns after the bucket, `merges` its other columns as 'column:how', how
-- two values of it combine: 'sum', 'min', 'max' or 'hll' (a union of sketches).
CREATE FUNCTION netmonitor_fold_table(hourly text, keys text, merges text[], hours timestamptz[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    m text;
    col text;
    how text;
    cols text := '';
    aggs text := '';
    sets text[] := '{}';
    groups text := (SELECT string_agg(i::text, ', ')
                      FROM generate_series(1, cardinality(string_to_array(keys, ',')) + 1) i);
BEGIN
    FOREACH m IN ARRAY merges LOOP
        col := split_part(m, ':', 1);
        how := split_part(m, ':', 2);
        IF how NOT IN ('sum', 'min', 'max', 'hll') THEN
            RAISE EXCEPTION 'netmonitor_fold_table: cannot merge % by "%"', col, how;
        END IF;
        cols := cols || format(', %I', col);
        aggs := aggs || format(CASE how WHEN 'sum' THEN ', netmonitor_sum(%I)'
            WHEN 'min' THEN ', min(%I)' WHEN 'max' THEN ', max(%I)'
            ELSE ', hll_union_agg(%I)' END, col);
        sets := sets || format(CASE how WHEN 'sum' THEN '%1$I = d.%1$I + EXCLUDED.%1$I'
            WHEN 'min' THEN '%1$I = LEAST(d.%1$I, EXCLUDED.%1$I)'
            WHEN 'max' THEN '%1$I = GREATEST(d.%1$I, EXCLUDED.%1$I)'
            ELSE '%1$I = hll_union(d.%1$I, EXCLUDED.%1$I)' END, col);
    END LOOP;
    EXECUTE format('INSERT INTO %1$I AS d (bucket, %2$s%3$s)
        SELECT date_trunc(''day'', bucket, ''UTC''), %2$s%4$s FROM %5$I
         WHERE bucket = ANY($1) GROUP BY %6$s ORDER BY %6$s
        ON CONFLICT (bucket, %2$s) DO UPDATE SET %7$s',
        hourly || '_daily', keys, cols, aggs, hourly, groups, array_to_string(sets, ', '))
    USING hours;
END $$;

-- Folds the hours of the rollup `name` ('talker', 'tls', 'alert') before `before` that are not
-- folded yet into its daily tables, the oldest first and at most `max_hours` of them (all when
-- null); returns how many it folded. The writer folds a few at a time between its batches, so
-- that a backlog (after a replay of days of traffic) never holds the writers up for long.
CREATE FUNCTION netmonitor_fold(name text, before timestamptz, max_hours int DEFAULT NULL)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    hours timestamptz[];
BEGIN
    -- the writers' batches hold it shared: none is between its hourly and daily rows now
    PERFORM pg_advisory_xact_lock(hashtext('rolling:' || name));
    WITH due AS (
        SELECT bucket FROM rollup_hours
         WHERE rollup = name AND NOT folded AND bucket < before
         ORDER BY bucket LIMIT max_hours),
    folded AS (
        UPDATE rollup_hours h SET folded = true FROM due
         WHERE h.rollup = name AND h.bucket = due.bucket RETURNING h.bucket)
    SELECT array_agg(bucket) INTO hours FROM folded;
    IF hours IS NULL THEN
        RETURN 0;
    END IF;
    CASE name
    WHEN 'talker' THEN
        PERFORM netmonitor_fold_table('talker_rollup', 'sensor, ip', ARRAY['bytes_sent:sum',
            'bytes_received:sum', 'flows_as_client:sum', 'flows_as_server:sum'], hours);
    WHEN 'tls' THEN
        PERFORM netmonitor_fold_table('tls_rollup', 'sensor, kind, value',
            ARRAY['sessions:sum'], hours);
        PERFORM netmonitor_fold_table('tls_distinct', 'sensor',
            ARRAY['clients:hll', 'servers:hll'], hours);
    WHEN 'alert' THEN
        PERFORM netmonitor_fold_table('alert_rollup',
            'sensor, threat_type, signature, src_ip, dest_ip, suppressed, severity',
            ARRAY['alerts:sum', 'open:sum', 'mitre:max', 'first_seen:min', 'last_seen:max'], hours);
        PERFORM netmonitor_fold_table('alert_counts', 'sensor, threat_type, severity, suppressed',
            ARRAY['alerts:sum', 'open:sum'], hours);
        PERFORM netmonitor_fold_table('alert_techniques', 'sensor, technique',
            ARRAY['first_seen:min', 'last_seen:max'], hours);
    END CASE;
    RETURN cardinality(hours);
END $$;

-- A recount reads whole days through the `_days` views.
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
        columns, hourly, hourly || '_days', lo, d1, d2, hi);
END $$;

-- Talker sums: hours not folded yet go to the hourly rollup only.
CREATE OR REPLACE FUNCTION netmonitor_add_talkers(stage text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtext('rolling:talker'));
    EXECUTE format('INSERT INTO rollup_hours SELECT DISTINCT ''talker'', bucket, false FROM %I
        ORDER BY 2 ON CONFLICT DO NOTHING', stage);
    EXECUTE format('INSERT INTO talker_rollup SELECT * FROM %I ORDER BY bucket, sensor, ip
        ON CONFLICT (bucket, sensor, ip) DO UPDATE SET
            bytes_sent = talker_rollup.bytes_sent + EXCLUDED.bytes_sent,
            bytes_received = talker_rollup.bytes_received + EXCLUDED.bytes_received,
            flows_as_client = talker_rollup.flows_as_client + EXCLUDED.flows_as_client,
            flows_as_server = talker_rollup.flows_as_server + EXCLUDED.flows_as_server', stage);
    EXECUTE format('INSERT INTO talker_rollup_daily
        SELECT date_trunc(''day'', s.bucket, ''UTC''), s.sensor, s.ip, sum(s.bytes_sent),
               sum(s.bytes_received), sum(s.flows_as_client), sum(s.flows_as_server)
          FROM %I s JOIN rollup_hours f
            ON f.rollup = ''talker'' AND f.bucket = s.bucket AND f.folded
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
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

-- TLS sessions: hours not folded yet go to the hourly rollup and sketches only.
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

-- Alerts: hours not folded yet go to the hourly rollups only.
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
    folded AS MATERIALIZED (
        SELECT h.* FROM hourly h
          JOIN rollup_hours f ON f.rollup = 'alert' AND f.bucket = h.bucket AND f.folded),
    hours AS (
        INSERT INTO rollup_hours SELECT DISTINCT 'alert', bucket, false FROM hourly ORDER BY 2
        ON CONFLICT DO NOTHING),
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
          FROM folded GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8
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
    techniques_hour AS (
        INSERT INTO alert_techniques
        SELECT h.bucket, h.sensor, m.technique, min(h.first_seen), max(h.last_seen)
          FROM hourly h, unnest(h.mitre) m(technique) GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (bucket, sensor, technique) DO UPDATE SET
            first_seen = LEAST(alert_techniques.first_seen, EXCLUDED.first_seen),
            last_seen = GREATEST(alert_techniques.last_seen, EXCLUDED.last_seen)),
    techniques_day AS (
        INSERT INTO alert_techniques_daily
        SELECT date_trunc('day', h.bucket, 'UTC'), h.sensor, m.technique, min(h.first_seen),
               max(h.last_seen)
          FROM folded h, unnest(h.mitre) m(technique) GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (bucket, sensor, technique) DO UPDATE SET
            first_seen = LEAST(alert_techniques_daily.first_seen, EXCLUDED.first_seen),
            last_seen = GREATEST(alert_techniques_daily.last_seen, EXCLUDED.last_seen)),
    counts_hour AS (
        INSERT INTO alert_counts
        SELECT bucket, sensor, threat_type, severity, suppressed, sum(alerts)::int8,
               sum(open)::int8
          FROM hourly GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (bucket, sensor, threat_type, severity, suppressed) DO UPDATE SET
            alerts = alert_counts.alerts + EXCLUDED.alerts,
            open = alert_counts.open + EXCLUDED.open)
    INSERT INTO alert_counts_daily
    SELECT date_trunc('day', bucket, 'UTC'), sensor, threat_type, severity, suppressed,
           sum(alerts)::int8, sum(open)::int8
      FROM folded GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (bucket, sensor, threat_type, severity, suppressed) DO UPDATE SET
        alerts = alert_counts_daily.alerts + EXCLUDED.alerts,
        open = alert_counts_daily.open + EXCLUDED.open;
    RETURN NULL;
END $$;

-- Acknowledgements change the open alerts of the daily rollup for folded hours only (the
-- others carry them into it when folded).
CREATE OR REPLACE FUNCTION netmonitor_alert_rollup_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtext('rolling:alert'));
    WITH delta AS MATERIALIZED (
        SELECT date_trunc('hour', ts, 'UTC') AS bucket, sensor, threat_type, signature, src_ip,
               dest_ip, evidence ? 'suppressed_by' AS suppressed, severity,
               sum(CASE WHEN n THEN 1 ELSE -1 END) AS delta
          FROM (SELECT *, true AS n FROM new_rows WHERE NOT acknowledged
                UNION ALL
                SELECT *, false FROM old_rows WHERE NOT acknowledged) x
         GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 HAVING sum(CASE WHEN n THEN 1 ELSE -1 END) <> 0),
    by_hour AS (
        UPDATE alert_rollup r SET open = r.open + d.delta
          FROM (SELECT * FROM delta ORDER BY 1, 2, 3, 4, 5, 6, 7, 8) d
         WHERE r.bucket = d.bucket AND r.sensor = d.sensor AND r.threat_type = d.threat_type
           AND r.signature = d.signature AND r.src_ip = d.src_ip AND r.dest_ip = d.dest_ip
           AND r.suppressed = d.suppressed AND r.severity = d.severity)
    UPDATE alert_rollup_daily r SET open = r.open + d.delta
      FROM (SELECT date_trunc('day', d.bucket, 'UTC') AS bucket, d.sensor, d.threat_type,
                   d.signature, d.src_ip, d.dest_ip, d.suppressed, d.severity, sum(d.delta) AS delta
              FROM delta d
              JOIN rollup_hours f ON f.rollup = 'alert' AND f.bucket = d.bucket AND f.folded
             GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8) d
     WHERE r.bucket = d.bucket AND r.sensor = d.sensor AND r.threat_type = d.threat_type
       AND r.signature = d.signature AND r.src_ip = d.src_ip AND r.dest_ip = d.dest_ip
       AND r.suppressed = d.suppressed AND r.severity = d.severity;
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
      FROM (SELECT date_trunc('day', d.bucket, 'UTC') AS bucket, d.sensor, d.threat_type,
                   d.severity, d.suppressed, sum(d.open) AS open
              FROM delta d
              JOIN rollup_hours f ON f.rollup = 'alert' AND f.bucket = d.bucket AND f.folded
             GROUP BY 1, 2, 3, 4, 5) d
     WHERE c.bucket = d.bucket AND c.sensor = d.sensor AND c.threat_type = d.threat_type
       AND c.severity = d.severity AND c.suppressed = d.suppressed;
    RETURN NULL;
END $$;
