DROP INDEX IF EXISTS alerts_feed_match_ts_idx;
