DROP TRIGGER IF EXISTS alerts_counts_update ON alerts;
DROP TRIGGER IF EXISTS alerts_counts_insert ON alerts;
DROP FUNCTION IF EXISTS netmonitor_alert_counts_update();
DROP FUNCTION IF EXISTS netmonitor_alert_counts_insert();
DROP TABLE IF EXISTS alert_counts_daily;
DROP TABLE IF EXISTS alert_counts;
