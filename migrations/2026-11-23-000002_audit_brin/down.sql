ALTER SEQUENCE api_token_usage_id_seq CACHE 1;
DROP INDEX api_token_usage_ts_brin;
CREATE INDEX api_token_usage_token_idx ON api_token_usage (token_id, ts);
CREATE INDEX api_token_usage_ts_idx ON api_token_usage (ts);
ALTER TABLE api_token_usage ADD PRIMARY KEY (id);
