//! Diesel table definitions matching `migrations/`.
//!
//! The enum columns (`flows.state`, `flows.reason`, `tls_sessions.transport`,
//! `kerberos_events.msg_type` and `failed_request`, `app_events.event_type`) are declared as
//! `Text`: an enum's value travels as its label, and only `COPY` writes them.
#![allow(missing_docs)]

diesel::table! {
    flows (id) {
        id -> Int8,
        sensor -> Text,
        flow_id -> Int8,
        ts -> Timestamptz,
        start_ts -> Timestamptz,
        end_ts -> Timestamptz,
        src_ip -> diesel::pg::sql_types::Inet,
        src_port -> Int4,
        dest_ip -> diesel::pg::sql_types::Inet,
        dest_port -> Int4,
        proto -> Int2,
        app_proto -> Nullable<Text>,
        pkts_toserver -> Int8,
        pkts_toclient -> Int8,
        bytes_toserver -> Int8,
        bytes_toclient -> Int8,
        state -> Text,
        reason -> Text,
        tcp_flags -> Int2,
        alerted -> Bool,
    }
}

diesel::table! {
    alerts (id) {
        id -> Int8,
        sensor -> Text,
        flow_id -> Int8,
        ts -> Timestamptz,
        src_ip -> diesel::pg::sql_types::Inet,
        src_port -> Int4,
        dest_ip -> diesel::pg::sql_types::Inet,
        dest_port -> Int4,
        proto -> Int2,
        signature_id -> Int8,
        signature -> Text,
        category -> Text,
        severity -> Int2,
        threat_type -> Text,
        mitre -> Array<Text>,
        evidence -> Jsonb,
        acknowledged -> Bool,
        acknowledged_by -> Nullable<Text>,
        acknowledged_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    tls_sessions (id) {
        id -> Int8,
        sensor -> Text,
        flow_id -> Int8,
        ts -> Timestamptz,
        src_ip -> diesel::pg::sql_types::Inet,
        src_port -> Int4,
        dest_ip -> diesel::pg::sql_types::Inet,
        dest_port -> Int4,
        transport -> Text,
        sni -> Nullable<Text>,
        version -> Nullable<Text>,
        ja3 -> Nullable<Text>,
        ja3_string -> Nullable<Text>,
        ja3s -> Nullable<Text>,
        ja3s_string -> Nullable<Text>,
        ja4 -> Nullable<Text>,
        alpn -> Array<Text>,
        cipher_selected -> Nullable<Int4>,
        cert_fingerprint -> Nullable<Text>,
    }
}

diesel::table! {
    certificates (fingerprint) {
        fingerprint -> Text,
        subject -> Text,
        issuer -> Text,
        serial -> Text,
        not_before -> Timestamptz,
        not_after -> Timestamptz,
        sans -> Array<Text>,
        self_signed -> Bool,
        is_ca -> Bool,
        key_type -> Nullable<Text>,
        key_bits -> Nullable<Int4>,
        first_seen -> Timestamptz,
        last_seen -> Timestamptz,
    }
}

// The writer's per-session staging table for certificate upserts (`rows.rs`).
diesel::table! {
    certificates_stage (fingerprint) {
        fingerprint -> Text,
        subject -> Text,
        issuer -> Text,
        serial -> Text,
        not_before -> Timestamptz,
        not_after -> Timestamptz,
        sans -> Array<Text>,
        self_signed -> Bool,
        is_ca -> Bool,
        key_type -> Nullable<Text>,
        key_bits -> Nullable<Int4>,
        first_seen -> Timestamptz,
        last_seen -> Timestamptz,
    }
}

diesel::table! {
    /// Per-session staging table of the talker rollup (see `rollup.rs`).
    talker_stage (bucket, sensor, ip) {
        bucket -> Timestamptz,
        sensor -> Text,
        ip -> diesel::pg::sql_types::Inet,
        bytes_sent -> Int8,
        bytes_received -> Int8,
        flows_as_client -> Int8,
        flows_as_server -> Int8,
    }
}

diesel::table! {
    /// Per-session staging table of the TLS rollup's counts (see `tls_sums.rs`).
    tls_stage (bucket, sensor, kind, value) {
        bucket -> Timestamptz,
        sensor -> Text,
        kind -> Text,
        value -> Text,
        sessions -> Int8,
    }
}

diesel::table! {
    /// Per-session staging table of the addresses for the TLS sketches (see `tls_sums.rs`).
    tls_address_stage (bucket, sensor, client, ip) {
        bucket -> Timestamptz,
        sensor -> Text,
        client -> Bool,
        ip -> diesel::pg::sql_types::Inet,
    }
}

diesel::table! {
    ja3_blocklist (ja3) {
        ja3 -> Text,
        reason -> Text,
        source -> Text,
        added_at -> Timestamptz,
    }
}

diesel::table! {
    kerberos_events (id) {
        id -> Int8,
        sensor -> Text,
        flow_id -> Int8,
        ts -> Timestamptz,
        src_ip -> diesel::pg::sql_types::Inet,
        src_port -> Int4,
        dest_ip -> diesel::pg::sql_types::Inet,
        dest_port -> Int4,
        proto -> Int2,
        msg_type -> Text,
        cname -> Nullable<Text>,
        realm -> Nullable<Text>,
        sname -> Nullable<Text>,
        encryption -> Nullable<Int4>,
        ticket_encryption -> Nullable<Int4>,
        requested_etypes -> Array<Int4>,
        padata_types -> Array<Int4>,
        error_code -> Nullable<Int4>,
        failed_request -> Nullable<Text>,
        weak_encryption -> Bool,
    }
}

diesel::table! {
    app_events (id) {
        id -> Int8,
        sensor -> Text,
        flow_id -> Int8,
        ts -> Timestamptz,
        event_type -> Text,
        src_ip -> diesel::pg::sql_types::Inet,
        dest_ip -> diesel::pg::sql_types::Inet,
        eve -> Jsonb,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Int8,
        name -> Text,
        token_hash -> Text,
        scope -> Text,
        rate_per_minute -> Nullable<Int4>,
        rate_per_hour -> Nullable<Int4>,
        rate_per_day -> Nullable<Int4>,
        created_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
        last_used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    api_token_usage (id) {
        id -> Int8,
        ts -> Timestamptz,
        token_id -> Nullable<Int8>,
        token_name -> Nullable<Text>,
        method -> Text,
        tool -> Nullable<Text>,
        status -> Text,
        http_status -> Int4,
        duration_us -> Int8,
        client_addr -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        session_id -> Nullable<Text>,
        error -> Nullable<Text>,
        arguments -> Nullable<Text>,
    }
}

diesel::table! {
    config_parameters (key) {
        key -> Text,
        value -> Jsonb,
        updated_at -> Timestamptz,
        updated_by -> Nullable<Text>,
    }
}

diesel::table! {
    whitelist (id) {
        id -> Int8,
        ip_cidr -> Nullable<Text>,
        description -> Nullable<Text>,
        created_at -> Timestamptz,
        domain -> Nullable<Text>,
        port -> Nullable<Int4>,
        direction -> Text,
        sensor -> Nullable<Text>,
    }
}

diesel::table! {
    service_providers (id) {
        id -> Int8,
        name -> Text,
        category -> Text,
        ranges -> Array<Text>,
        domains -> Array<Text>,
        suppress -> Array<Text>,
        description -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    devices (id) {
        id -> Text,
        mac -> Nullable<Text>,
        vendor -> Nullable<Text>,
        ips -> Array<Text>,
        hostnames -> Array<Text>,
        first_seen -> Timestamptz,
        last_seen -> Timestamptz,
        bytes_out -> Int8,
        bytes_in -> Int8,
        doc -> Jsonb,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    device_templates (id) {
        id -> Text,
        doc -> Jsonb,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    pcap_captures (id) {
        id -> Int8,
        path -> Text,
        flow_id -> Nullable<Int8>,
        alert_id -> Nullable<Int8>,
        packets -> Int8,
        bytes -> Int8,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    sensor_commands (id) {
        id -> Int8,
        ts -> Timestamptz,
        sensor -> Text,
        command -> Text,
        args -> Jsonb,
        requested_by -> Text,
        token_id -> Nullable<Int8>,
        status -> Text,
        result -> Jsonb,
        duration_ms -> Int4,
    }
}

diesel::table! {
    threat_feeds (name) {
        name -> Text,
        source -> Text,
        format -> Text,
        refresh_secs -> Int4,
        confidence -> Int2,
        enabled -> Bool,
        origin -> Text,
        auth -> Jsonb,
        etag -> Nullable<Text>,
        last_modified -> Nullable<Text>,
        cursor -> Nullable<Text>,
        last_attempt -> Nullable<Timestamptz>,
        last_success -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        error_lines -> Jsonb,
        indicators -> Int4,
        unsupported -> Int4,
        updated_by -> Nullable<Text>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    indicators (feed, kind, value) {
        feed -> Text,
        kind -> Text,
        value -> Text,
        confidence -> Int2,
        first_seen -> Timestamptz,
        last_seen -> Timestamptz,
        valid_until -> Nullable<Timestamptz>,
        description -> Nullable<Text>,
        tags -> Array<Text>,
    }
}

diesel::table! {
    /// Per-transaction staging table (`CREATE TEMP TABLE ... ON COMMIT DROP`) a feed's
    /// indicators are copied into before the upsert.
    indicators_stage (feed, kind, value) {
        feed -> Text,
        kind -> Text,
        value -> Text,
        confidence -> Int2,
        first_seen -> Timestamptz,
        last_seen -> Timestamptz,
        valid_until -> Nullable<Timestamptz>,
        description -> Nullable<Text>,
        tags -> Array<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use diesel::pg::sql_types::Inet;
    asn_ranges (feed, range_start) {
        feed -> Text,
        range_start -> Inet,
        range_end -> Inet,
        asn -> Int8,
        country -> Text,
        description -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    flows,
    alerts,
    tls_sessions,
    certificates,
    ja3_blocklist,
    kerberos_events,
    app_events,
    api_tokens,
    api_token_usage,
    config_parameters,
    whitelist,
    pcap_captures,
    threat_feeds,
    indicators,
    asn_ranges,
    service_providers,
    devices,
    device_templates,
);
