//! Each format on a sample laid out as its publisher writes it, then damaged and cut short.

use super::*;
use crate::indicator::IndicatorKind as K;

fn values(r: &ParseReport) -> Vec<(K, &str)> {
    r.indicators
        .iter()
        .map(|i| (i.kind, i.value.as_str()))
        .collect()
}

#[test]
fn plain_lists_and_hosts_files() {
    let r = parse(
        FeedFormat::Plain,
        "# my list\n1.2.3.4\n10.0.0.0/8 ; internal\nEvil.Example. # comment\nhttp://x.example/a\n\n; note\n",
    );
    assert_eq!(
        values(&r),
        [
            (K::Ip, "1.2.3.4"),
            (K::Cidr, "10.0.0.0/8"),
            (K::Domain, "evil.example"),
            (K::Url, "http://x.example/a")
        ]
    );
    assert!(r.rejected.is_none());
    let bad = parse(FeedFormat::Plain, "1.2.3.4\nnot an entry!\n");
    assert_eq!(bad.error_count, 1);
    assert_eq!(bad.errors[0].line, 2);

    let h = parse(
        FeedFormat::Hosts,
        "# hosts\n127.0.0.1 localhost\n0.0.0.0 ads.example tracker.example # two\n::1 ip6-localhost\n",
    );
    assert_eq!(
        values(&h),
        [(K::Domain, "ads.example"), (K::Domain, "tracker.example")]
    );
    let html = parse(
        FeedFormat::Hosts,
        "<html>\n<body>Not found</body>\n</html>\n",
    );
    assert!(html.rejected.is_some(), "an HTML page is not a hosts file");
}

#[test]
fn spamhaus_drop_text_and_json() {
    let txt = "; Spamhaus DROP List 2024/06/01 - (c) 2024 The Spamhaus Project SLU\n\
               ; https://www.spamhaus.org/drop/drop.txt\n\
               ; Last-Modified: Sat, 01 Jun 2024 10:00:00 GMT\n\
               1.10.16.0/20 ; SBL256894\n\
               2.56.192.0/22 ; SBL459831\n";
    let r = parse(FeedFormat::SpamhausDrop, txt);
    assert_eq!(
        values(&r),
        [(K::Cidr, "1.10.16.0/20"), (K::Cidr, "2.56.192.0/22")]
    );
    assert_eq!(r.indicators[0].description.as_deref(), Some("SBL256894"));

    let json = "{\"cidr\":\"1.10.16.0/20\",\"sblid\":\"SBL256894\",\"rir\":\"apnic\"}\n\
                {\"cidr\":\"2.56.192.0/22\",\"sblid\":\"SBL459831\",\"rir\":\"ripencc\"}\n\
                {\"type\":\"metadata\",\"timestamp\":1717236000,\"size\":123,\"records\":2,\"copyright\":\"(c) 2024 The Spamhaus Project SLU\",\"terms\":\"https://www.spamhaus.org/drop/terms/\"}\n";
    let r = parse(FeedFormat::SpamhausDropJson, json);
    assert_eq!(r.indicators.len(), 2);
    assert_eq!(r.indicators[1].tags, ["ripencc"]);
    assert!(r.rejected.is_none());
    // Cut short: the metadata line is gone, or the count disagrees.
    let cut = json.lines().take(2).collect::<Vec<_>>().join("\n");
    assert!(parse(FeedFormat::SpamhausDropJson, &cut)
        .rejected
        .unwrap()
        .contains("cut short"));
    let one = format!(
        "{}\n{}",
        json.lines().next().unwrap(),
        json.lines().nth(2).unwrap()
    );
    assert!(parse(FeedFormat::SpamhausDropJson, &one).rejected.is_some());
}

#[test]
fn abuse_ch_csvs() {
    let feodo = "################################################################\n\
# abuse.ch Feodo Tracker Botnet C2 IP Blocklist (CSV)            #\n\
# Last updated: 2024-06-01 10:00:00 UTC                          #\n\
################################################################\n\
#\n\
# \"first_seen_utc\",\"dst_ip\",\"dst_port\",\"c2_status\",\"last_online\",\"malware\"\n\
\"2021-01-17 07:44:46\",\"51.178.161.32\",\"4643\",\"online\",\"2024-05-31\",\"Dridex\"\n\
\"2023-05-19 13:57:19\",\"162.243.103.246\",\"8080\",\"offline\",\"2024-05-30\",\"QakBot\"\n\
# Number of entries: 2\n";
    let r = parse(FeedFormat::FeodoCsv, feodo);
    assert_eq!(
        values(&r),
        [(K::Ip, "51.178.161.32"), (K::Ip, "162.243.103.246")]
    );
    assert_eq!(
        r.indicators[0].description.as_deref(),
        Some("Dridex C2 (port 4643)")
    );
    assert_eq!(r.indicators[0].first_seen, Some(1_610_869_486_000_000));

    let urlhaus = "################################################################\n\
# abuse.ch URLhaus Database Dump (CSV - recent URLs)             #\n\
################################################################\n\
#\n\
# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n\
\"3047386\",\"2024-07-03 12:12:05\",\"http://182.117.30.70:39000/i\",\"online\",\"2024-07-03 12:12:05\",\"malware_download\",\"32-bit,elf,mips,Mozi\",\"https://urlhaus.abuse.ch/url/3047386/\",\"geenensp\"\n";
    let r = parse(FeedFormat::UrlhausCsv, urlhaus);
    assert_eq!(values(&r), [(K::Url, "http://182.117.30.70:39000/i")]);
    assert_eq!(r.indicators[0].tags, ["32-bit", "elf", "mips", "Mozi"]);

    let sslbl = "################################################################\n\
# abuse.ch SSLBL SSL Certificate Blacklist (SHA1 Fingerprints)   #\n\
################################################################\n\
#\n\
# Listingdate,SHA1,Listingreason\n\
2024-05-30 06:55:44,be4d4d1b6fa3d5b2e6e4d0ab1b9b0a7f6c2e9d01,AsyncRAT C&C\n";
    let r = parse(FeedFormat::SslblCsv, sslbl);
    assert_eq!(
        values(&r),
        [(K::CertSha1, "be4d4d1b6fa3d5b2e6e4d0ab1b9b0a7f6c2e9d01")]
    );

    let ja3 = "################################################################\n\
# abuse.ch SSLBL JA3 Fingerprint Blacklist (CSV)                 #\n\
################################################################\n\
#\n\
# ja3_md5,Firstseen,Lastseen,Listingreason\n\
b386946a5a44d1ddcc843bc75336dfce,2017-07-14 18:08:15,2019-07-27 20:42:54,Dridex\n\
8991a387e4cc841740f25d6f5139f92d,2017-07-14 18:08:15,2019-07-27 20:42:54,Adware\n";
    let r = parse(FeedFormat::SslblJa3Csv, ja3);
    assert_eq!(r.indicators.len(), 2);
    assert_eq!(r.indicators[0].description.as_deref(), Some("Dridex"));

    // Truncated mid-row: the broken last row is reported with its line number; the rest stays.
    let cut = &feodo[..feodo.find("162.243").unwrap() + 3];
    let r = parse(FeedFormat::FeodoCsv, cut);
    assert_eq!(r.indicators.len(), 1);
    assert_eq!(r.error_count, 1);
    assert_eq!(r.errors[0].line, 8);
}

#[test]
fn zeek_intel_files() {
    let text = "#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\tmeta.url\n\
198.51.100.7\tIntel::ADDR\tmy-source\tC2 server\t-\n\
203.0.113.0/24\tIntel::SUBNET\tmy-source\t-\t-\n\
evil.example\tIntel::DOMAIN\tmy-source\tphishing\t-\n\
bad.example/dl/payload.exe\tIntel::URL\tmy-source\t-\t-\n\
be4d4d1b6fa3d5b2e6e4d0ab1b9b0a7f6c2e9d01\tIntel::CERT_HASH\tmy-source\t-\t-\n\
e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\tIntel::FILE_HASH\tmy-source\t-\t-\n\
bob@evil.example\tIntel::EMAIL\tmy-source\t-\t-\n\
1.2.3\tIntel::ADDR\tmy-source\t-\t-\n";
    let r = parse(FeedFormat::ZeekIntel, text);
    assert_eq!(
        values(&r),
        [
            (K::Ip, "198.51.100.7"),
            (K::Cidr, "203.0.113.0/24"),
            (K::Domain, "evil.example"),
            (K::Url, "http://bad.example/dl/payload.exe"),
            (K::CertSha1, "be4d4d1b6fa3d5b2e6e4d0ab1b9b0a7f6c2e9d01"),
            (
                K::Sha256,
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            ),
        ]
    );
    assert_eq!(r.unsupported, 1, "EMAIL is counted, not dropped");
    assert_eq!(r.error_count, 1);
    assert_eq!(r.errors[0].line, 9);
    assert_eq!(r.indicators[0].tags, ["my-source"]);
    assert_eq!(r.indicators[0].description.as_deref(), Some("C2 server"));
    assert!(parse(FeedFormat::ZeekIntel, "1.2.3.4\tIntel::ADDR\n")
        .rejected
        .is_some());
}

#[test]
fn stix_bundles_and_patterns() {
    let bundle = r#"{"type":"bundle","id":"bundle--1","objects":[
      {"type":"indicator","spec_version":"2.1","id":"indicator--a","created":"2024-01-01T00:00:00Z","modified":"2024-01-01T00:00:00Z",
       "name":"C2","pattern":"[ipv4-addr:value = '198.51.100.7'] OR [ipv4-addr:value ISSUBSET '203.0.113.0/24']",
       "pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z","confidence":85,"labels":["malicious-activity"]},
      {"type":"indicator","spec_version":"2.1","id":"indicator--b","created":"2024-01-01T00:00:00Z","modified":"2024-01-01T00:00:00Z",
       "pattern":"[domain-name:value = 'evil.example' OR url:value = 'http://evil.example/x']","pattern_type":"stix",
       "valid_from":"2024-01-01T00:00:00Z","valid_until":"2025-01-01T00:00:00Z"},
      {"type":"indicator","spec_version":"2.1","id":"indicator--c","created":"2024-01-01T00:00:00Z","modified":"2024-01-01T00:00:00Z",
       "pattern":"[x509-certificate:hashes.'SHA-1' = 'BE4D4D1B6FA3D5B2E6E4D0AB1B9B0A7F6C2E9D01'] OR [file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']",
       "pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z"},
      {"type":"indicator","spec_version":"2.1","id":"indicator--d","created":"2024-01-01T00:00:00Z","modified":"2024-01-01T00:00:00Z",
       "pattern":"[ipv4-addr:value = '192.0.2.1' AND network-traffic:dst_port = 443]","pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z"},
      {"type":"indicator","spec_version":"2.1","id":"indicator--e","created":"2024-01-01T00:00:00Z","modified":"2024-01-01T00:00:00Z",
       "pattern":"alert tcp any any -> any any","pattern_type":"snort","valid_from":"2024-01-01T00:00:00Z"},
      {"type":"indicator","spec_version":"2.1","id":"indicator--f","created":"2024-01-01T00:00:00Z","modified":"2024-01-01T00:00:00Z",
       "pattern":"[ipv4-addr:value = '192.0.2.9'","pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z"},
      {"type":"indicator","spec_version":"2.1","id":"indicator--g","created":"2024-01-01T00:00:00Z","modified":"2024-02-01T00:00:00Z",
       "pattern":"[ipv4-addr:value = '192.0.2.10']","pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z","revoked":true},
      {"type":"malware","spec_version":"2.1","id":"malware--x","name":"x","is_family":true}
    ]}"#;
    let r = parse(FeedFormat::Stix, bundle);
    assert_eq!(
        values(&r),
        [
            (K::Ip, "198.51.100.7"),
            (K::Cidr, "203.0.113.0/24"),
            (K::Domain, "evil.example"),
            (K::Url, "http://evil.example/x"),
            (K::CertSha1, "be4d4d1b6fa3d5b2e6e4d0ab1b9b0a7f6c2e9d01"),
            (K::Md5, "d41d8cd98f00b204e9800998ecf8427e"),
        ]
    );
    assert_eq!(r.indicators[0].confidence, Some(85));
    assert_eq!(r.indicators[0].tags, ["malicious-activity"]);
    assert_eq!(r.indicators[2].valid_until, Some(1_735_689_600_000_000));
    assert_eq!(r.unsupported, 2, "{:?}", r.unsupported_samples);
    assert!(r.unsupported_samples.iter().any(|s| s.contains("AND")));
    assert!(r.unsupported_samples.iter().any(|s| s.contains("snort")));
    assert_eq!(r.error_count, 1, "{:?}", r.errors);
    assert_eq!(r.revoked.len(), 1);
    assert_eq!(r.records, 7);
    let cut = parse(FeedFormat::Stix, &bundle[..bundle.len() / 2]);
    assert!(cut.rejected.is_some());
    assert!(cut.indicators.is_empty());
}

#[test]
fn stix_pattern_edge_cases() {
    assert_eq!(
        parse_pattern("[ipv6-addr:value ISSUBSET '2001:db8::/32']").unwrap(),
        [(K::Cidr, "2001:db8::/32".to_owned())]
    );
    assert_eq!(
        parse_pattern("[ipv4-addr:value = '198.51.100.0/32']").unwrap(),
        [(K::Ip, "198.51.100.0".to_owned())]
    );
    assert_eq!(
        parse_pattern("([domain-name:value = 'a.example'] OR [domain-name:value = 'b.example'])")
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        parse_pattern("[url:value = 'http://x.example/it\\'s']").unwrap(),
        [(K::Url, "http://x.example/it's".to_owned())]
    );
    assert!(matches!(
        parse_pattern("[ipv4-addr:value = '1.2.3.4'] WITHIN 300 SECONDS"),
        Err(PatternError::Unsupported(_))
    ));
    assert!(matches!(
        parse_pattern("[domain-name:value LIKE '%.example']"),
        Err(PatternError::Unsupported(_))
    ));
    assert!(matches!(
        parse_pattern("[email-addr:value = 'a@b.example']"),
        Err(PatternError::Unsupported(_))
    ));
    assert!(matches!(
        parse_pattern("ipv4-addr:value = '1.2.3.4'"),
        Err(PatternError::Syntax(_))
    ));
    assert!(matches!(parse_pattern("[]"), Err(PatternError::Syntax(_))));
}

#[test]
fn ip2asn_tables() {
    let text = "1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET\n\
                1.0.1.0\t1.0.3.255\t0\tNone\tNot routed\n\
                2001:200::\t2001:200:ffff:ffff:ffff:ffff:ffff:ffff\t2500\tJP\tWIDE-BB WIDE Project\n\
                9.9.9.9\t1.1.1.1\t1\tXX\tbackwards\n";
    let r = parse(FeedFormat::Ip2asn, text);
    assert_eq!(r.asn_ranges.len(), 3);
    assert_eq!(r.asn_ranges[0].asn, 13335);
    assert_eq!(r.asn_ranges[2].description, "WIDE-BB WIDE Project");
    assert_eq!(r.error_count, 1);
}

#[test]
fn hostile_input_never_panics() {
    let mut seed = 7u64;
    for f in FeedFormat::ALL {
        for len in [0usize, 1, 7, 64, 512] {
            let mut bytes = Vec::with_capacity(len);
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let alphabet = b"[]'\"#;,/.:\t\n 0123456789abcdef=ORAND";
                bytes.push(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            let _ = parse(f, &String::from_utf8_lossy(&bytes));
        }
    }
}
