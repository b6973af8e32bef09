//! Short strings on the stack for the per-flow work of the device book: a port label, an
//! address. Learning asks about them on every flow end and keeps only the new ones.

use std::fmt::Write;
use std::net::IpAddr;

/// `tcp`, `udp`, `icmp` or the protocol number, as services and ports are written.
pub(crate) fn proto_label(p: u8) -> std::borrow::Cow<'static, str> {
    match p {
        6 => "tcp".into(),
        17 => "udp".into(),
        1 => "icmp".into(),
        58 => "ipv6-icmp".into(),
        132 => "sctp".into(),
        _ => netmonitor_common::proto_name(p).to_ascii_lowercase().into(),
    }
}

/// A string of at most 48 bytes on the stack.
pub(crate) struct Short {
    buf: [u8; 48],
    len: usize,
}

impl Default for Short {
    fn default() -> Self {
        Short {
            buf: [0; 48],
            len: 0,
        }
    }
}

impl Short {
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }

    pub(crate) fn push_byte(&mut self, b: u8) {
        if self.len < self.buf.len() {
            self.buf[self.len] = b;
            self.len += 1;
        }
    }

    /// Decimal digits, without the formatting machinery.
    pub(crate) fn push_u32(&mut self, mut v: u32) {
        let mut digits = [0u8; 10];
        let mut n = 0;
        loop {
            digits[n] = b'0' + (v % 10) as u8;
            n += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        for &d in digits[..n].iter().rev() {
            self.push_byte(d);
        }
    }

    /// An address as `Display` writes it (IPv4 by hand: every flow end has two).
    pub(crate) fn addr(a: IpAddr) -> Self {
        let mut s = Short::default();
        match a {
            IpAddr::V4(v4) => {
                for (i, o) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        s.push_byte(b'.');
                    }
                    s.push_u32(u32::from(o));
                }
            }
            IpAddr::V6(v6) => {
                let _ = write!(s, "{v6}");
            }
        }
        s
    }
}

impl Write for Short {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod short_tests {
    use super::*;

    #[test]
    fn short_strings_match_display() {
        for a in [
            "0.0.0.0",
            "10.1.20.255",
            "255.255.255.255",
            "fe80::1",
            "2001:db8::42:1",
        ] {
            let ip: IpAddr = a.parse().unwrap();
            assert_eq!(Short::addr(ip).as_str(), ip.to_string());
        }
        let mut s = Short::default();
        s.push_u32(0);
        s.push_byte(b'/');
        s.push_u32(65_535);
        assert_eq!(s.as_str(), "0/65535");
    }
}
