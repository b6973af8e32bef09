DROP INDEX IF EXISTS app_events_http_reversed_idx;
DROP INDEX IF EXISTS app_events_dns_reversed_idx;
DROP INDEX IF EXISTS tls_sessions_sni_reversed_idx;
DROP INDEX IF EXISTS alerts_matched_value_idx;
DROP INDEX IF EXISTS alerts_indicator_idx;
