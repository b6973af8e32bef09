DROP TABLE IF EXISTS risk_history;
DROP TABLE IF EXISTS mitre_rollup;
DROP TABLE IF EXISTS attack_chains;
DROP TABLE IF EXISTS risk_assets;
