//! What the DNS, beacon and scan detectors must never judge: multicast, broadcast and
//! link-local traffic, service-discovery ports and local names (mDNS, LLMNR, SSDP, NetBIOS) —
//! the false positives the seed system's users complained about; and the text measures the DNS
//! detectors use.

use std::net::IpAddr;

/// Ports of local discovery and time protocols: mDNS, LLMNR, SSDP, NetBIOS, NTP, DHCP.
fn is_chatter_port(port: u16) -> bool {
    matches!(port, 5353 | 5355 | 1900 | 137 | 138 | 123 | 67 | 68)
}

/// Multicast, broadcast, link-local or unspecified.
pub fn is_local_chatter_addr(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => {
            v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.octets()[3] == 255
        }
        IpAddr::V6(v6) => {
            v6.is_multicast() || v6.is_unspecified() || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// A flow that is local chatter: to such an address, or between discovery ports.
pub fn is_chatter(dst: IpAddr, src_port: u16, dst_port: u16) -> bool {
    is_local_chatter_addr(dst) || is_chatter_port(dst_port) || is_chatter_port(src_port)
}

/// Names that live on the local link or in reverse zones.
pub fn is_local_name(name: &str) -> bool {
    let n = name.trim_end_matches('.').as_bytes();
    let ends = |suffix: &str| {
        n.len() >= suffix.len()
            && n[n.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
    };
    ends(".local") || ends(".arpa") || ends(".localdomain") || ends(".lan") || !n.contains(&b'.')
}

/// Second-level labels under which country-code registries sell names (`example.co.uk`).
const SLD: [&str; 8] = ["co", "com", "net", "org", "gov", "ac", "edu", "or"];

/// The registered domain of a name (`a.b.example.com` → `example.com`, `x.example.co.uk` →
/// `example.co.uk`), and the labels below it. `None` for a name of fewer than two labels.
pub fn split_registered(name: &str) -> Option<(&str, &str)> {
    let n = name.trim_end_matches('.');
    let mut labels = n.rsplitn(4, '.');
    let (tld, sld) = (labels.next()?, labels.next()?);
    let registered_len = match labels.next() {
        Some(third) if tld.len() == 2 && SLD.contains(&sld) => {
            third.len() + sld.len() + tld.len() + 2
        }
        _ => sld.len() + tld.len() + 1,
    };
    let (sub, reg) = n.split_at(n.len() - registered_len);
    Some((reg, sub.trim_end_matches('.')))
}

/// Shannon entropy of `s` in bits per character (0 for empty text).
pub fn entropy(s: &str) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = f64::from(*c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Whether a registered label looks machine-made: high entropy and either few vowels (random
/// letters have about one in five, words twice that) or letters mixed with many digits.
pub fn looks_generated(label: &str, min_entropy: f64) -> bool {
    if label.len() < 8 || entropy(label) < min_entropy {
        return false;
    }
    let letters = label.bytes().filter(u8::is_ascii_alphabetic).count().max(1);
    let vowels = label
        .bytes()
        .filter(|b| {
            matches!(
                b.to_ascii_lowercase(),
                b'a' | b'e' | b'i' | b'o' | b'u' | b'y'
            )
        })
        .count();
    let digits = label.bytes().filter(u8::is_ascii_digit).count();
    (vowels as f64) / (letters as f64) < 0.3 || digits * 5 >= label.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatter_and_local_names() {
        for a in [
            "224.0.0.251",
            "ff02::fb",
            "169.254.3.4",
            "fe80::1",
            "255.255.255.255",
            "10.0.0.255",
        ] {
            assert!(is_local_chatter_addr(a.parse().unwrap()), "{a}");
        }
        assert!(!is_local_chatter_addr("10.0.0.5".parse().unwrap()));
        assert!(is_chatter("10.0.0.5".parse().unwrap(), 40000, 5353));
        for n in ["printer.local", "4.3.2.1.in-addr.arpa.", "wpad", "nas.lan"] {
            assert!(is_local_name(n), "{n}");
        }
        assert!(!is_local_name("www.example.com"));
    }

    #[test]
    fn registered_domains_and_entropy() {
        assert_eq!(
            split_registered("a.b.example.com"),
            Some(("example.com", "a.b"))
        );
        assert_eq!(split_registered("example.com"), Some(("example.com", "")));
        assert_eq!(
            split_registered("x.example.co.uk"),
            Some(("example.co.uk", "x"))
        );
        assert_eq!(split_registered("localhost"), None);
        assert!(entropy("aaaaaaaa") < 0.01);
        assert!((entropy("abcd") - 2.0).abs() < 1e-9);
        assert!(entropy("x7kq2m9vz4pl8rt3wy6b") > 4.0);
        assert!(looks_generated("xkqmvzplrtwb", 3.0));
        assert!(looks_generated("k3j9x2m8q7", 3.0));
        assert!(!looks_generated("marketingteam", 3.0));
        assert!(!looks_generated("wikipedia", 3.0));
    }
}
