-- The audit row records a tool call's arguments (secrets redacted, size-capped by the server).
ALTER TABLE api_token_usage ADD COLUMN arguments TEXT;
