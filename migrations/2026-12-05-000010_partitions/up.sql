-- Storage at volume: addresses become `inet`, the append-only event tables become daily range
-- partitions of capture time (retention drops whole days), and two rollups are kept by the
-- database itself as each batch lands, so summaries read thousands of rows, not millions.

-- Creates `<parent>_pYYYYMMDD` for one UTC day unless it exists. Returns false (and creates
-- nothing) when the parent's default partition already holds rows of that day: those rows stay
-- where they are. An advisory lock keeps two writers from racing on one name.
CREATE FUNCTION netmonitor_partition_day(parent text, day date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    part text := parent || '_p' || to_char(day, 'YYYYMMDD');
    lo timestamptz := day::timestamp AT TIME ZONE 'UTC';
    hi timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
    busy boolean;
BEGIN
    IF to_regclass(quote_ident(part)) IS NOT NULL THEN
        RETURN true;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext(part));
    IF to_regclass(quote_ident(part)) IS NOT NULL THEN
        RETURN true;
    END IF;
    IF to_regclass(quote_ident(parent || '_default')) IS NOT NULL THEN
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE ts >= $1 AND ts < $2)',
                       parent || '_default') INTO busy USING lo, hi;
        IF busy THEN
            RETURN false;
        END IF;
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                   part, parent, lo, hi);
    RETURN true;
END $$;

-- Creates the day's partition of every partitioned table in this schema; returns how many of
-- them now have one.
CREATE FUNCTION netmonitor_ensure_day(day date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    parent text;
    made integer := 0;
BEGIN
    FOR parent IN
        SELECT c.relname FROM pg_partitioned_table p
          JOIN pg_class c ON c.oid = p.partrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = current_schema() ORDER BY 1
    LOOP
        IF netmonitor_partition_day(parent, day) THEN
            made := made + 1;
        END IF;
    END LOOP;
    RETURN made;
END $$;

-- Turns one table into a daily-partitioned one with the same columns (address columns as
-- inet), keeping its id sequence and rows. Used only here.
CREATE FUNCTION pg_temp.partition_table(t text, addr text[], keyed boolean) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    old text := t || '_unpartitioned';
    col text;
    idx text;
    con text;
    d date;
BEGIN
    EXECUTE format('ALTER TABLE %I RENAME TO %I', t, old);
    FOR con IN SELECT conname FROM pg_constraint WHERE conrelid = old::regclass AND contype = 'p' LOOP
        EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', old, con);
    END LOOP;
    FOR idx IN SELECT indexname FROM pg_indexes WHERE tablename = old AND schemaname = current_schema() LOOP
        EXECUTE format('DROP INDEX %I', idx);
    END LOOP;
    FOREACH col IN ARRAY addr LOOP
        EXECUTE format('ALTER TABLE %I ALTER COLUMN %I TYPE inet USING %I::inet', old, col, col);
    END LOOP;
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS) PARTITION BY RANGE (ts)', t, old);
    EXECUTE format('ALTER SEQUENCE %I OWNED BY %I.id', t || '_id_seq', t);
    IF keyed THEN
        EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (id, ts)', t);
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', t || '_default', t);
    FOR d IN EXECUTE format('SELECT DISTINCT (ts AT TIME ZONE ''UTC'')::date FROM %I', old) LOOP
        PERFORM netmonitor_partition_day(t, d);
    END LOOP;
    FOR d IN SELECT generate_series(current_date - 1, current_date + 2, interval '1 day')::date LOOP
        PERFORM netmonitor_partition_day(t, d);
    END LOOP;
    EXECUTE format('INSERT INTO %I SELECT * FROM %I', t, old);
    EXECUTE format('DROP TABLE %I', old);
END $$;

SELECT pg_temp.partition_table('flows', ARRAY['src_ip', 'dest_ip'], true);
SELECT pg_temp.partition_table('alerts', ARRAY['src_ip', 'dest_ip'], true);
SELECT pg_temp.partition_table('tls_sessions', ARRAY['src_ip', 'dest_ip'], true);
SELECT pg_temp.partition_table('kerberos_events', ARRAY['src_ip', 'dest_ip'], true);
SELECT pg_temp.partition_table('app_events', ARRAY['src_ip', 'dest_ip'], true);
SELECT pg_temp.partition_table('api_token_usage', ARRAY[]::text[], false);

-- B-trees for "last N hours" and for one address (equality on inet) within a time range.
CREATE INDEX flows_ts_idx ON flows (ts);
CREATE INDEX flows_src_idx ON flows (src_ip, ts);
CREATE INDEX flows_dest_idx ON flows (dest_ip, ts);
CREATE INDEX alerts_ts_idx ON alerts (ts);
CREATE INDEX alerts_src_idx ON alerts (src_ip, ts);
CREATE INDEX alerts_dest_idx ON alerts (dest_ip, ts);
CREATE INDEX alerts_threat_idx ON alerts (threat_type, ts);
CREATE INDEX tls_sessions_ts_idx ON tls_sessions (ts);
CREATE INDEX tls_sessions_ja3_idx ON tls_sessions (ja3);
CREATE INDEX tls_sessions_sni_idx ON tls_sessions (sni);
CREATE INDEX tls_sessions_src_idx ON tls_sessions (src_ip, ts);
CREATE INDEX tls_sessions_dest_idx ON tls_sessions (dest_ip, ts);
CREATE INDEX kerberos_events_ts_idx ON kerberos_events (ts);
CREATE INDEX kerberos_events_src_idx ON kerberos_events (src_ip, ts);
CREATE INDEX kerberos_events_cname_idx ON kerberos_events (cname);
CREATE INDEX app_events_ts_idx ON app_events (event_type, ts);
CREATE INDEX api_token_usage_ts_brin ON api_token_usage USING brin (ts);

-- Alerts per hour, sensor, kind, signature, severity, source, destination and whether the
-- alert stage kept it as suppressed evidence. `open` counts the unacknowledged ones. Whitelists apply per
-- (source, destination), so they filter rollup rows exactly as they filter alerts.
CREATE TABLE alert_rollup (
    bucket       TIMESTAMPTZ NOT NULL,
    sensor       TEXT        NOT NULL,
    threat_type  TEXT        NOT NULL,
    signature    TEXT        NOT NULL,
    src_ip       INET        NOT NULL,
    dest_ip      INET        NOT NULL,
    suppressed   BOOLEAN     NOT NULL,
    severity     SMALLINT    NOT NULL,
    alerts       BIGINT      NOT NULL,
    open         BIGINT      NOT NULL,
    mitre        TEXT[]      NOT NULL,
    first_seen   TIMESTAMPTZ NOT NULL,
    last_seen    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (bucket, sensor, threat_type, signature, src_ip, dest_ip, suppressed, severity)
);
-- Filters of the alert tools: one kind, one address.
CREATE INDEX alert_rollup_threat_idx ON alert_rollup (threat_type, bucket);
CREATE INDEX alert_rollup_src_idx ON alert_rollup (src_ip, bucket);
CREATE INDEX alert_rollup_dest_idx ON alert_rollup (dest_ip, bucket);

-- Bytes and flows per hour, sensor and address (each flow counts for both ends). Flows are
-- many and never change, so the store writer sums them in memory and adds its sums every few
-- seconds, in the transaction of a batch; `rollup_watermarks` says up to which flow id a
-- sensor's flows are counted, so that flows written just before a crash are summed at the
-- next start (`netmonitor_rollup_flows`). Alerts are few and change (acknowledgement), so the
-- database keeps their rollup itself.
CREATE TABLE talker_rollup (
    bucket          TIMESTAMPTZ NOT NULL,
    sensor          TEXT        NOT NULL,
    ip              INET        NOT NULL,
    bytes_sent      BIGINT      NOT NULL,
    bytes_received  BIGINT      NOT NULL,
    flows_as_client BIGINT      NOT NULL,
    flows_as_server BIGINT      NOT NULL,
    PRIMARY KEY (bucket, sensor, ip)
);

-- The same per UTC day, so that a week is read as days, not 168 hours.
CREATE TABLE alert_rollup_daily (LIKE alert_rollup INCLUDING ALL);
CREATE TABLE talker_rollup_daily (LIKE talker_rollup INCLUDING ALL);

CREATE TABLE rollup_watermarks (
    sensor   TEXT   NOT NULL,
    rollup   TEXT   NOT NULL,
    last_id  BIGINT NOT NULL,
    PRIMARY KEY (sensor, rollup)
);

-- Adds hourly talker sums staged in `stage` (a table shaped like talker_rollup) to the hourly
-- and the daily rollup, in key order.
CREATE FUNCTION netmonitor_add_talkers(stage text) RETURNS void
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

-- Adds the flows of `for_sensor` above its watermark to `talker_rollup` and moves the
-- watermark; returns the flows added. Run by the writer at start and after a lost flush.
CREATE FUNCTION netmonitor_rollup_flows(for_sensor text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    mark bigint;
    newest bigint;
    added bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('talker_rollup:' || for_sensor));
    SELECT last_id INTO mark FROM rollup_watermarks
     WHERE sensor = for_sensor AND rollup = 'talker';
    mark := COALESCE(mark, 0);
    SELECT max(id), count(*) INTO newest, added FROM flows WHERE sensor = for_sensor AND id > mark;
    IF newest IS NULL THEN
        RETURN 0;
    END IF;
    CREATE TEMP TABLE talker_recount (LIKE talker_rollup);
    INSERT INTO talker_recount
    SELECT bucket, for_sensor, ip, sum(sent), sum(recv), sum(fc), sum(fs)
      FROM (SELECT date_trunc('hour', ts, 'UTC') AS bucket, src_ip AS ip,
                   bytes_toserver AS sent, bytes_toclient AS recv, 1 AS fc, 0 AS fs
              FROM flows WHERE sensor = for_sensor AND id > mark AND id <= newest
            UNION ALL
            SELECT date_trunc('hour', ts, 'UTC'), dest_ip, bytes_toclient, bytes_toserver, 0, 1
              FROM flows WHERE sensor = for_sensor AND id > mark AND id <= newest) x
     GROUP BY 1, 3;
    PERFORM netmonitor_add_talkers('talker_recount');
    DROP TABLE talker_recount;
    INSERT INTO rollup_watermarks VALUES (for_sensor, 'talker', newest)
    ON CONFLICT (sensor, rollup) DO UPDATE SET last_id = EXCLUDED.last_id;
    RETURN added;
END $$;

-- Rows are inserted in key order so that two writers touching the same keys lock them in the
-- same order.
CREATE FUNCTION netmonitor_alert_rollup_insert() RETURNS trigger LANGUAGE plpgsql AS $$
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

-- Acknowledging (or reopening) moves counts between open and acknowledged; key columns of an
-- alert never change.
CREATE FUNCTION netmonitor_alert_rollup_update() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE TRIGGER alerts_rollup_insert AFTER INSERT ON alerts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION netmonitor_alert_rollup_insert();
CREATE TRIGGER alerts_rollup_update AFTER UPDATE ON alerts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION netmonitor_alert_rollup_update();

-- The rows already stored.
INSERT INTO alert_rollup
SELECT date_trunc('hour', ts, 'UTC'), sensor, threat_type, signature, src_ip, dest_ip,
       evidence ? 'suppressed_by', severity, count(*), count(*) FILTER (WHERE NOT acknowledged),
       max(mitre), min(ts), max(ts)
  FROM alerts GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
INSERT INTO alert_rollup_daily
SELECT date_trunc('day', bucket, 'UTC'), sensor, threat_type, signature, src_ip, dest_ip,
       suppressed, severity, sum(alerts), sum(open), max(mitre), min(first_seen), max(last_seen)
  FROM alert_rollup GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
SELECT netmonitor_rollup_flows(sensor) FROM (SELECT DISTINCT sensor FROM flows) s;
