ALTER TABLE api_token_usage DROP COLUMN arguments;
