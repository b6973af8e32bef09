DROP TABLE IF EXISTS pcap_captures, whitelist, config_parameters, api_token_usage, api_tokens,
    app_events, kerberos_events, ja3_blocklist, certificates, tls_sessions, alerts, flows;
