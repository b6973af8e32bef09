-- Indicator lookups (get_threat_context): the alerts that name an indicator, and a domain with
-- its subdomains through reversed names (a suffix match becomes a prefix match a B-tree answers).
-- Partial, so rows without the field cost the writer nothing.
CREATE INDEX alerts_indicator_idx ON alerts ((evidence->>'indicator'), ts)
    WHERE (evidence->>'indicator') IS NOT NULL;
CREATE INDEX alerts_matched_value_idx ON alerts ((evidence->>'matched_value'), ts)
    WHERE (evidence->>'matched_value') IS NOT NULL;
CREATE INDEX tls_sessions_sni_reversed_idx ON tls_sessions (reverse(lower(sni)) text_pattern_ops)
    WHERE sni IS NOT NULL;
CREATE INDEX app_events_dns_reversed_idx ON app_events
    (reverse(lower(eve->'dns'->>'rrname')) text_pattern_ops) WHERE event_type = 'dns';
CREATE INDEX app_events_http_reversed_idx ON app_events
    (reverse(lower(eve->'http'->>'hostname')) text_pattern_ops) WHERE event_type = 'http';
