CREATE OR REPLACE FUNCTION netmonitor_tls_values(s tls_sessions) RETURNS TABLE (kind text, value text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT v.kind, v.value
      FROM (VALUES ('transport', s.transport::text), ('version', s.version), ('ja3', s.ja3),
                   ('ja3s', s.ja3s), ('ja4', s.ja4), ('sni', s.sni),
                   ('client', host(s.src_ip)), ('server', host(s.dest_ip)),
                   ('certificate', s.cert_fingerprint)) v(kind, value)
     WHERE v.value IS NOT NULL
$$;
DROP INDEX app_events_dns_reversed_idx;
DROP INDEX app_events_http_reversed_idx;
ALTER TABLE app_events ALTER COLUMN event_type TYPE text;
CREATE INDEX app_events_dns_reversed_idx ON app_events
    (reverse(lower(eve->'dns'->>'rrname')) text_pattern_ops) WHERE event_type = 'dns';
CREATE INDEX app_events_http_reversed_idx ON app_events
    (reverse(lower(eve->'http'->>'hostname')) text_pattern_ops) WHERE event_type = 'http';
ALTER TABLE kerberos_events ALTER COLUMN msg_type TYPE text, ALTER COLUMN failed_request TYPE text;
ALTER TABLE tls_sessions ALTER COLUMN transport TYPE text;
ALTER TABLE flows ALTER COLUMN state TYPE text, ALTER COLUMN reason TYPE text;
DROP TYPE app_event_type, krb_msg_type, tls_transport, flow_end_reason, flow_state;
