//! DHCPv4 (RFC 2131/2132): message type, client MAC, assigned and requested address, host
//! name, client identifier, vendor class and the parameter request list (the client's DHCP
//! fingerprint), for EVE `dhcp` events and the device inventory.

use netmonitor_common::DhcpRecord;

/// BOOTP fixed header length before the magic cookie.
const BOOTP_HEADER_LEN: usize = 236;
const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];

fn type_name(t: u8) -> &'static str {
    match t {
        1 => "discover",
        2 => "offer",
        3 => "request",
        4 => "decline",
        5 => "ack",
        6 => "nak",
        7 => "release",
        8 => "inform",
        _ => "unknown",
    }
}

/// `aa:bb:cc` form of bytes, as Suricata writes MACs and client ids.
fn hex_colon(b: &[u8]) -> String {
    b.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Option 81's name (RFC 4702): DNS wire format when the E flag is set, else ASCII.
fn client_fqdn(flags: u8, name: &[u8]) -> Option<String> {
    let text = if flags & 0x04 != 0 {
        let mut labels = Vec::new();
        let mut at = 0;
        while let Some(&len) = name.get(at) {
            if len == 0 || len > 63 {
                break;
            }
            let label = name.get(at + 1..at + 1 + usize::from(len))?;
            labels.push(String::from_utf8_lossy(label).into_owned());
            at += 1 + usize::from(len);
        }
        labels.join(".")
    } else {
        String::from_utf8_lossy(name).into_owned()
    };
    let text = text.trim_end_matches('.').trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// Parses one DHCP message.
pub fn parse(msg: &[u8]) -> Option<DhcpRecord> {
    let op = *msg.first()?;
    if !(op == 1 || op == 2) || msg.get(BOOTP_HEADER_LEN..BOOTP_HEADER_LEN + 4)? != MAGIC_COOKIE {
        return None;
    }
    let xid = u32::from_be_bytes(msg.get(4..8)?.try_into().ok()?);
    let yiaddr: [u8; 4] = msg.get(16..20)?.try_into().ok()?;
    let hlen = usize::from(*msg.get(2)?).min(16);
    let chaddr = msg.get(28..28 + hlen)?;
    let mut rec = DhcpRecord {
        kind: if op == 1 { "request" } else { "reply" }.into(),
        id: xid,
        client_mac: hex_colon(chaddr),
        assigned_ip: (yiaddr != [0; 4]).then(|| std::net::Ipv4Addr::from(yiaddr).to_string()),
        ..Default::default()
    };
    let mut at = BOOTP_HEADER_LEN + 4;
    while let Some(&code) = msg.get(at) {
        match code {
            0 => {
                at += 1;
                continue;
            }
            255 => break,
            _ => {}
        }
        let len = usize::from(*msg.get(at + 1)?);
        let val = msg.get(at + 2..at + 2 + len)?;
        match code {
            53 => rec.dhcp_type = type_name(*val.first()?).into(),
            12 => rec.hostname = Some(String::from_utf8_lossy(val).into_owned()),
            50 if val.len() == 4 => {
                rec.requested_ip =
                    Some(std::net::Ipv4Addr::new(val[0], val[1], val[2], val[3]).to_string())
            }
            55 => rec.params = val.to_vec(),
            60 => rec.vendor_class = Some(String::from_utf8_lossy(val).into_owned()),
            61 => rec.client_id = Some(hex_colon(val)),
            81 if val.len() > 3 => rec.fqdn = client_fqdn(val[0], &val[3..]),
            _ => {}
        }
        at += 2 + len;
    }
    if rec.dhcp_type.is_empty() {
        rec.dhcp_type = "bootp".into();
    }
    Some(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_type_mac_and_hostname() {
        let mut m = vec![0u8; BOOTP_HEADER_LEN];
        m[0] = 1;
        m[2] = 6;
        m[4..8].copy_from_slice(&[1, 2, 3, 4]);
        m[28..34].copy_from_slice(&[0xaa, 0xbb, 0xcc, 0, 1, 2]);
        m.extend_from_slice(&MAGIC_COOKIE);
        m.extend_from_slice(&[53, 1, 1, 12, 4, b'h', b'o', b's', b't']);
        m.extend_from_slice(&[55, 4, 1, 3, 6, 15, 50, 4, 10, 0, 0, 7, 61, 2, 1, 0xaa]);
        m.extend_from_slice(&[60, 8, b'M', b'S', b'F', b'T', b' ', b'5', b'.', b'0']);
        m.extend_from_slice(&[81, 16, 0x04, 0, 0, 4, b'h', b'o', b's', b't', 6]);
        m.extend_from_slice(b"corp01");
        m.push(0);
        m.push(255);
        let r = parse(&m).unwrap();
        assert_eq!(r.fingerprint().as_deref(), Some("1,3,6,15"));
        assert_eq!(r.requested_ip.as_deref(), Some("10.0.0.7"));
        assert_eq!(r.vendor_class.as_deref(), Some("MSFT 5.0"));
        assert_eq!(r.client_id.as_deref(), Some("01:aa"));
        assert_eq!(r.fqdn.as_deref(), Some("host.corp01"));
        assert_eq!(
            client_fqdn(0, b"laptop.example.").as_deref(),
            Some("laptop.example")
        );
        assert_eq!(r.dhcp_type, "discover");
        assert_eq!(r.client_mac, "aa:bb:cc:00:01:02");
        assert_eq!(r.hostname.as_deref(), Some("host"));
        assert_eq!(r.id, 0x01020304);
        for n in 0..m.len() {
            let _ = parse(&m[..n]);
        }
        assert!(parse(&m[..BOOTP_HEADER_LEN]).is_none());
    }
}
