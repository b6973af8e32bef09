-- Each rollup's lock taken as it is rolled.
CREATE OR REPLACE FUNCTION netmonitor_roll_all(new_hi timestamptz) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    span int;
BEGIN
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
