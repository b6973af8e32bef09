-- The roll takes its rollups' locks up front, in the order the writers take them.
CREATE OR REPLACE FUNCTION netmonitor_roll_all(new_hi timestamptz) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    span int;
BEGIN
    -- the order in which a batch's triggers take them (alerts are written before TLS sessions,
    -- flows' sums in a transaction of their own), so that a writer of another process and this
    -- roll never wait for each other in a circle
    PERFORM pg_advisory_xact_lock(hashtext('rolling:' || r))
       FROM unnest(ARRAY['alert', 'alert_pair', 'tls', 'talker']) r;
    FOREACH span IN ARRAY ARRAY[24, 168] LOOP
        PERFORM netmonitor_roll('talker', 'talker_rollup', 'talker_rolling', 'sensor, ip',
            ARRAY['bytes_sent', 'bytes_received', 'flows_as_client', 'flows_as_server'], span, new_hi);
        PERFORM netmonitor_roll('tls', 'tls_rollup', 'tls_rolling', 'sensor, kind, value',
            ARRAY['sessions'], span, new_hi);
        PERFORM netmonitor_roll('alert', 'alert_rollup', 'alert_rolling',
            'sensor, threat_type, src_ip, suppressed', ARRAY['alerts', 'open'], span, new_hi);
        PERFORM netmonitor_roll('alert_pair', 'alert_rollup', 'alert_pair_rolling',
            'sensor, mitre, threat_type, src_ip, dest_ip, severity', ARRAY['alerts'], span, new_hi);
    END LOOP;
END $$;
