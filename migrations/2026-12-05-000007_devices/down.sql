DROP TABLE IF EXISTS device_templates;
DROP TABLE IF EXISTS devices;
