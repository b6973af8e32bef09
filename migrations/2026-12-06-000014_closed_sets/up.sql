-- Columns whose values come from a closed set become enums: four bytes a row instead of the
-- text, and a value outside the set is refused instead of stored. The writer sends the same
-- labels as before (an enum's binary COPY form is its label), so only the unknown flow states
-- and end reasons it might be handed are mapped, to 'unknown'.
CREATE TYPE flow_state AS ENUM ('new', 'established', 'closed', 'bypassed', 'unknown');
CREATE TYPE flow_end_reason AS ENUM ('timeout', 'forced', 'shutdown', 'tcp_reuse', 'unknown');
CREATE TYPE tls_transport AS ENUM ('tcp', 'quic');
CREATE TYPE krb_msg_type AS ENUM ('KRB_AS_REQ', 'KRB_AS_REP', 'KRB_TGS_REQ', 'KRB_TGS_REP',
                                  'KRB_AP_REQ', 'KRB_AP_REP', 'KRB_ERROR');
CREATE TYPE app_event_type AS ENUM ('dns', 'dhcp', 'http');

ALTER TABLE flows
    ALTER COLUMN state TYPE flow_state USING
        (CASE WHEN state IN ('new', 'established', 'closed', 'bypassed') THEN state ELSE 'unknown' END)::flow_state,
    ALTER COLUMN reason TYPE flow_end_reason USING
        (CASE WHEN reason IN ('timeout', 'forced', 'shutdown', 'tcp_reuse') THEN reason ELSE 'unknown' END)::flow_end_reason;

ALTER TABLE tls_sessions ALTER COLUMN transport TYPE tls_transport USING transport::tls_transport;

ALTER TABLE kerberos_events
    ALTER COLUMN msg_type TYPE krb_msg_type USING msg_type::krb_msg_type,
    ALTER COLUMN failed_request TYPE krb_msg_type USING failed_request::krb_msg_type;

-- Partial indexes name the column in their predicate, so they are made again for the new type.
DROP INDEX app_events_dns_reversed_idx;
DROP INDEX app_events_http_reversed_idx;
ALTER TABLE app_events ALTER COLUMN event_type TYPE app_event_type USING event_type::app_event_type;
CREATE INDEX app_events_dns_reversed_idx ON app_events
    (reverse(lower(eve->'dns'->>'rrname')) text_pattern_ops) WHERE event_type = 'dns';
CREATE INDEX app_events_http_reversed_idx ON app_events
    (reverse(lower(eve->'http'->>'hostname')) text_pattern_ops) WHERE event_type = 'http';

-- The TLS rollup counts the transport as text, like every other attribute.
CREATE OR REPLACE FUNCTION netmonitor_tls_values(s tls_sessions) RETURNS TABLE (kind text, value text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT v.kind, v.value
      FROM (VALUES ('transport', s.transport::text), ('version', s.version), ('ja3', s.ja3),
                   ('ja3s', s.ja3s), ('ja4', s.ja4), ('sni', s.sni),
                   ('client', host(s.src_ip)), ('server', host(s.dest_ip)),
                   ('certificate', s.cert_fingerprint)) v(kind, value)
     WHERE v.value IS NOT NULL
$$;
