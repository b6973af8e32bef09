DROP TRIGGER IF EXISTS tls_sessions_rollup ON tls_sessions;
DROP FUNCTION IF EXISTS netmonitor_tls_rollup_insert();
DROP TABLE IF EXISTS tls_rollup_daily;
DROP TABLE IF EXISTS tls_rollup;
DROP FUNCTION IF EXISTS netmonitor_tls_values(tls_sessions);
