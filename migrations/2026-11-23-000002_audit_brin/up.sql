-- The MCP audit trail is append-only and gains a row with every request. Three B-trees (key,
-- time, token) cost PostgreSQL more than the row itself at tens of thousands of requests per
-- second; a BRIN index on the time column answers "what happened in this window" (the audit
-- question, token filters included) for a few pages that are nearly free to maintain. The id
-- stays unique through its sequence, now handed out in blocks.
ALTER TABLE api_token_usage DROP CONSTRAINT api_token_usage_pkey;
DROP INDEX api_token_usage_ts_idx;
DROP INDEX api_token_usage_token_idx;
CREATE INDEX api_token_usage_ts_brin ON api_token_usage USING brin (ts);
ALTER SEQUENCE api_token_usage_id_seq CACHE 1000;
