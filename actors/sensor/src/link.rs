//! Link-layer frames that carry no IP but say who is on the segment, for the device
//! inventory: ARP (which MAC holds which address), LLDP (IEEE 802.1AB) and CDP (Cisco) —
//! a neighbour's MAC, system name, management address and capabilities. All become internal
//! events: never EVE, never the database.

use netmonitor_common::{ArpRecord, EventKind, Neighbor};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const LLDP: u16 = 0x88cc;
const ARP: u16 = 0x0806;
/// Cisco's OUI and CDP's protocol id in a SNAP header.
const CDP_SNAP: [u8; 8] = [0xaa, 0xaa, 0x03, 0x00, 0x00, 0x0c, 0x20, 0x00];

fn mac(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn text(b: &[u8]) -> Option<String> {
    let s: String = String::from_utf8_lossy(b)
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    let s = s.trim().to_owned();
    (!s.is_empty() && s.len() <= 255).then_some(s)
}

/// What a link frame says: the event, and the addresses for its header (source, target).
pub fn parse(linktype: u32, frame: &[u8]) -> Option<(EventKind, IpAddr, IpAddr)> {
    if linktype != netmonitor_capture::decode::linktype::ETHERNET {
        return None;
    }
    let src = frame.get(6..12)?;
    let mut at = 12;
    let ethertype = loop {
        let t = u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]);
        match t {
            0x8100 | 0x88a8 | 0x9100 if at < 12 + 4 * 4 => at += 4,
            _ => break t,
        }
    };
    let body = frame.get(at + 2..)?;
    let none = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    match ethertype {
        ARP => {
            let (rec, sender, target) = ArpRecord::parse(body)?;
            Some((EventKind::Arp(rec), sender.into(), target.into()))
        }
        LLDP => {
            let n = lldp(mac(src), body)?;
            let ip = n.management_ip.unwrap_or(none);
            Some((EventKind::Neighbor(n), ip, none))
        }
        // an 802.3 length, then LLC/SNAP
        len if len < 0x0600 && body.starts_with(&CDP_SNAP) => {
            let n = cdp(mac(src), body.get(CDP_SNAP.len()..)?)?;
            let ip = n.management_ip.unwrap_or(none);
            Some((EventKind::Neighbor(n), ip, none))
        }
        _ => None,
    }
}

/// LLDPDU TLVs: 7-bit type, 9-bit length.
fn lldp(mac: String, mut b: &[u8]) -> Option<Neighbor> {
    let mut n = Neighbor {
        protocol: "lldp".into(),
        mac,
        ..Neighbor::default()
    };
    while b.len() >= 2 {
        let head = u16::from_be_bytes([b[0], b[1]]);
        let (t, len) = (head >> 9, usize::from(head & 0x1ff));
        let v = b.get(2..2 + len)?;
        match t {
            0 => break,
            5 => n.name = text(v),
            6 => n.description = text(v),
            7 if v.len() >= 4 => {
                let enabled = u16::from_be_bytes([v[2], v[3]]);
                n.capabilities = capabilities(enabled, &LLDP_CAPS);
            }
            8 if v.len() >= 2 => n.management_ip = n.management_ip.or(address(v[1], v.get(2..)?)),
            _ => {}
        }
        b = &b[2 + len..];
    }
    (n.name.is_some() || n.management_ip.is_some()).then_some(n)
}

/// An address given as (IANA family, bytes): 1 IPv4, 2 IPv6.
fn address(family: u8, v: &[u8]) -> Option<IpAddr> {
    match family {
        1 => Some(IpAddr::V4(Ipv4Addr::new(
            *v.first()?,
            *v.get(1)?,
            *v.get(2)?,
            *v.get(3)?,
        ))),
        2 => {
            let b: [u8; 16] = v.get(..16)?.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

/// LLDP system capability bits (IEEE 802.1AB, 8.5.8).
const LLDP_CAPS: [(u16, &str); 8] = [
    (0x0002, "repeater"),
    (0x0004, "bridge"),
    (0x0008, "wlan-ap"),
    (0x0010, "router"),
    (0x0020, "telephone"),
    (0x0040, "docsis"),
    (0x0080, "station"),
    (0x0100, "c-vlan"),
];
/// CDP capability bits.
const CDP_CAPS: [(u16, &str); 7] = [
    (0x0001, "router"),
    (0x0002, "bridge"),
    (0x0004, "bridge"),
    (0x0008, "bridge"),
    (0x0010, "station"),
    (0x0040, "repeater"),
    (0x0080, "telephone"),
];

fn capabilities(bits: u16, table: &[(u16, &str)]) -> Vec<String> {
    let mut v: Vec<String> = table
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| (*n).to_owned())
        .collect();
    v.dedup();
    v
}

/// CDP (after version, TTL, checksum): TLVs of 16-bit type and 16-bit length (header included).
fn cdp(mac: String, b: &[u8]) -> Option<Neighbor> {
    let mut n = Neighbor {
        protocol: "cdp".into(),
        mac,
        ..Neighbor::default()
    };
    let mut b = b.get(4..)?;
    while b.len() >= 4 {
        let t = u16::from_be_bytes([b[0], b[1]]);
        let len = usize::from(u16::from_be_bytes([b[2], b[3]]));
        if len < 4 {
            break;
        }
        let v = b.get(4..len)?;
        match t {
            0x0001 => n.name = text(v),
            0x0005 => n.description = text(v),
            0x0006 => n.platform = text(v),
            0x0004 if v.len() >= 4 => {
                let bits = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
                n.capabilities = capabilities(bits as u16, &CDP_CAPS);
            }
            // Addresses: count, then (proto type, proto len, proto, addr len, addr); IPv4 is
            // NLPID 0xcc.
            0x0002 if v.len() >= 13 && v[4] == 1 && v[5] == 1 && v[6] == 0xcc => {
                n.management_ip = address(1, v.get(9..13)?);
            }
            _ => {}
        }
        b = &b[len..];
    }
    (n.name.is_some() || n.management_ip.is_some()).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(src: [u8; 6], ethertype: u16, body: &[u8]) -> Vec<u8> {
        let mut f = vec![0x01, 0x80, 0xc2, 0, 0, 0x0e];
        f.extend(src);
        f.extend(ethertype.to_be_bytes());
        f.extend(body);
        f
    }

    fn tlv(t: u16, v: &[u8]) -> Vec<u8> {
        let mut out = ((t << 9) | v.len() as u16).to_be_bytes().to_vec();
        out.extend(v);
        out
    }

    #[test]
    fn lldp_names_a_switch_with_its_management_address_and_capabilities() {
        let mut body = tlv(1, &[4, 0, 0x1b, 0x21, 1, 2, 3]);
        body.extend(tlv(2, b"\x05ge-0/0/1"));
        body.extend(tlv(3, &[0, 120]));
        body.extend(tlv(5, b"core-sw1.corp.example"));
        body.extend(tlv(6, b"Juniper EX4300"));
        body.extend(tlv(7, &[0, 0x14, 0, 0x14]));
        body.extend(tlv(8, &[5, 1, 10, 0, 0, 2, 2, 0, 0, 0, 1, 0]));
        body.extend(tlv(0, &[]));
        let f = eth([0x00, 0x1b, 0x21, 1, 2, 3], LLDP, &body);
        let (kind, src, _) = parse(1, &f).unwrap();
        let EventKind::Neighbor(n) = kind else {
            panic!("{kind:?}")
        };
        assert_eq!(n.mac, "00:1b:21:01:02:03");
        assert_eq!(n.name.as_deref(), Some("core-sw1.corp.example"));
        assert_eq!(n.management_ip, Some("10.0.0.2".parse().unwrap()));
        assert_eq!(src.to_string(), "10.0.0.2");
        assert_eq!(n.capabilities, ["bridge", "router"]);
        for cut in 0..f.len() {
            let _ = parse(1, &f[..cut]);
        }
    }

    #[test]
    fn cdp_names_a_phone() {
        let mut tlvs = Vec::new();
        let mut put = |t: u16, v: &[u8]| {
            tlvs.extend(t.to_be_bytes());
            tlvs.extend(((v.len() + 4) as u16).to_be_bytes());
            tlvs.extend(v);
        };
        put(1, b"SEP001122334455");
        put(2, &[0, 0, 0, 1, 1, 1, 0xcc, 0, 4, 10, 0, 0, 50]);
        put(4, &[0, 0, 0, 0x90]);
        put(6, b"Cisco IP Phone 8845");
        let mut body = CDP_SNAP.to_vec();
        body.extend([2, 180, 0, 0]);
        body.extend(tlvs);
        let len = body.len() as u16;
        let mut f = vec![
            0x01, 0x00, 0x0c, 0xcc, 0xcc, 0xcc, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55,
        ];
        f.extend(len.to_be_bytes());
        f.extend(body);
        let (kind, src, _) = parse(1, &f).unwrap();
        let EventKind::Neighbor(n) = kind else {
            panic!("{kind:?}")
        };
        assert_eq!(
            (n.protocol.as_str(), n.mac.as_str()),
            ("cdp", "00:11:22:33:44:55")
        );
        assert_eq!(n.name.as_deref(), Some("SEP001122334455"));
        assert_eq!(n.platform.as_deref(), Some("Cisco IP Phone 8845"));
        assert_eq!(src.to_string(), "10.0.0.50");
        assert_eq!(n.capabilities, ["station", "telephone"]);
    }

    #[test]
    fn arp_behind_a_vlan_tag() {
        let mut body = vec![
            0, 1, 8, 0, 6, 4, 0, 1, 0, 0x1b, 0x21, 9, 9, 9, 192, 168, 7, 7,
        ];
        body.extend([0; 6]);
        body.extend([192, 168, 7, 1]);
        let mut tagged = vec![0, 5];
        tagged.extend(ARP.to_be_bytes());
        tagged.extend(&body);
        let f = eth([0, 0x1b, 0x21, 9, 9, 9], 0x8100, &tagged);
        let (kind, src, dst) = parse(1, &f).unwrap();
        assert!(matches!(kind, EventKind::Arp(_)));
        assert_eq!(
            (src.to_string(), dst.to_string()),
            ("192.168.7.7".into(), "192.168.7.1".into())
        );
    }
}
