-- The threat-feed match alerts (signatures 9400001-9400099) by time: the per-feed match
-- counts of get_threat_detections and get_threat_feed_stats read these few alerts instead of
-- every alert of the window.
CREATE INDEX alerts_feed_match_ts_idx ON alerts (ts)
    WHERE signature_id BETWEEN 9400001 AND 9400099;
