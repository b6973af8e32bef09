-- Partitioned tables cannot become plain ones in place; the rollups and helpers go, the
-- partitioned event tables stay (their columns and indexes match what the code reads).
DROP TRIGGER IF EXISTS alerts_rollup_update ON alerts;
DROP TRIGGER IF EXISTS alerts_rollup_insert ON alerts;
DROP FUNCTION IF EXISTS netmonitor_rollup_flows(text);
DROP FUNCTION IF EXISTS netmonitor_add_talkers(text);
DROP TABLE IF EXISTS talker_rollup_daily;
DROP TABLE IF EXISTS alert_rollup_daily;
DROP TABLE IF EXISTS rollup_watermarks;
DROP FUNCTION IF EXISTS netmonitor_alert_rollup_update();
DROP FUNCTION IF EXISTS netmonitor_alert_rollup_insert();
DROP TABLE IF EXISTS talker_rollup;
DROP TABLE IF EXISTS alert_rollup;
DROP FUNCTION IF EXISTS netmonitor_ensure_day(date);
DROP FUNCTION IF EXISTS netmonitor_partition_day(text, date);
