use super::*;

fn entry(kind: IndicatorKind, value: &str) -> Entry<'_> {
    Entry {
        kind,
        value,
        confidence: 80,
        valid_until: None,
        description: Some("test"),
    }
}

fn ips(m: &Matcher, a: &str) -> Vec<String> {
    let mut out = Vec::new();
    m.ip(a.parse().unwrap(), 0, &mut out);
    out.into_iter().map(|h| h.indicator.to_string()).collect()
}

#[test]
fn longest_prefix_wins_over_nested_and_adjacent_blocks() {
    let mut b = MatcherBuilder::new();
    for c in [
        "10.0.0.0/8",
        "10.1.0.0/16",
        "10.1.2.0/24",
        "10.1.2.128/25",
        "192.168.0.0/24",
        "0.0.0.0/0",
        "255.255.255.255/32",
    ] {
        b.add("f", &entry(IndicatorKind::Cidr, c));
    }
    b.add("f", &entry(IndicatorKind::Ip, "10.1.2.3"));
    let m = b.build();
    assert_eq!(ips(&m, "10.1.2.3"), ["10.1.2.3", "10.1.2.0/24"]);
    assert_eq!(ips(&m, "10.1.2.200"), ["10.1.2.128/25"]);
    assert_eq!(ips(&m, "10.1.3.1"), ["10.1.0.0/16"]);
    assert_eq!(ips(&m, "10.2.0.0"), ["10.0.0.0/8"]);
    assert_eq!(ips(&m, "10.255.255.255"), ["10.0.0.0/8"]);
    // Adjacent to a listed block: only the default route covers it.
    assert_eq!(ips(&m, "192.168.1.0"), ["0.0.0.0/0"]);
    assert_eq!(ips(&m, "11.0.0.0"), ["0.0.0.0/0"]);
    assert_eq!(ips(&m, "255.255.255.255"), ["255.255.255.255/32"]);
    assert_eq!(ips(&m, "0.0.0.0"), ["0.0.0.0/0"]);
}

#[test]
fn ranges_agree_with_a_brute_force_scan() {
    // Random nested blocks; every probe compared with the longest listed prefix found by hand.
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut blocks = Vec::new();
    let mut b = MatcherBuilder::new();
    for _ in 0..400 {
        let len = 8 + (next() % 25) as u8;
        let a = (next() as u32 & 0x0FFF_FFFF) & (u32::MAX << (32 - len));
        let text = format!("{}/{len}", std::net::Ipv4Addr::from(a));
        b.add("f", &entry(IndicatorKind::Cidr, &text));
        blocks.push((a, len, text));
    }
    let m = b.build();
    for _ in 0..20_000 {
        let probe = next() as u32 & 0x0FFF_FFFF;
        let want = blocks
            .iter()
            .filter(|(a, len, _)| probe & (u32::MAX << (32 - len)) == *a)
            .max_by_key(|(_, len, _)| *len)
            .map(|(_, _, t)| t.clone());
        let got = ips(&m, &std::net::Ipv4Addr::from(probe).to_string());
        assert_eq!(got.first().cloned(), want, "probe {probe:#x}");
    }
}

#[test]
fn ipv6_and_mapped_addresses() {
    let mut b = MatcherBuilder::new();
    b.add("f", &entry(IndicatorKind::Cidr, "2001:db8::/32"));
    b.add("f", &entry(IndicatorKind::Ip, "2001:db8::1"));
    b.add("f", &entry(IndicatorKind::Ip, "198.51.100.7"));
    let m = b.build();
    assert_eq!(ips(&m, "2001:db8::1"), ["2001:db8::1", "2001:db8::/32"]);
    assert_eq!(ips(&m, "2001:db8:ffff::1"), ["2001:db8::/32"]);
    assert!(ips(&m, "2001:db9::1").is_empty());
    assert_eq!(ips(&m, "::ffff:198.51.100.7"), ["198.51.100.7"]);
}

#[test]
fn parent_domains_match_at_label_boundaries_only() {
    let mut b = MatcherBuilder::new();
    b.add("f", &entry(IndicatorKind::Domain, "evil.example"));
    let m = b.build();
    let hit = |n: &str| {
        let mut out = Vec::new();
        m.domain(n, 0, &mut out);
        out.into_iter()
            .map(|h| h.indicator.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(hit("evil.example"), ["evil.example"]);
    assert_eq!(hit("a.b.evil.example"), ["evil.example"]);
    assert!(hit("notevil.example").is_empty());
    assert!(hit("evil.example.com").is_empty());
    assert!(hit("example").is_empty());
    let mut buf = String::new();
    assert_eq!(lower_name("A.Evil.EXAMPLE.", &mut buf), "a.evil.example");
}

#[test]
fn several_feeds_chain_and_expired_hits_are_skipped() {
    let mut b = MatcherBuilder::new();
    b.add(
        "one",
        &entry(IndicatorKind::Ja3, "e7d705a3286e19ea42f587b344ee6865"),
    );
    let mut e = entry(IndicatorKind::Ja3, "e7d705a3286e19ea42f587b344ee6865");
    e.valid_until = Some(1_000);
    e.description = Some("expires");
    b.add("two", &e);
    let m = b.build();
    let at = |now| {
        let mut out = Vec::new();
        m.digest(
            IndicatorKind::Ja3,
            "e7d705a3286e19ea42f587b344ee6865",
            now,
            &mut out,
        );
        out.into_iter()
            .map(|h| h.feed.to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(at(999), ["two", "one"]);
    assert_eq!(at(1_000), ["one"]);
    let mut out = Vec::new();
    m.digest(
        IndicatorKind::Ja3s,
        "e7d705a3286e19ea42f587b344ee6865",
        0,
        &mut out,
    );
    assert!(out.is_empty(), "a JA3 indicator is not a JA3S one");
    assert_eq!(m.len(), 2);
    assert_eq!(m.counts(), &[(IndicatorKind::Ja3, 2)]);
}
