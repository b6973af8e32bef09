//! MAC vendors from the IEEE registries. The table ships with the binary (`data/oui.tsv.gz`,
//! built by `data/refresh-oui.py` from the IEEE Registration Authority's MA-L, MA-M and MA-S
//! CSV files as Debian's `ieee-data` package keeps them); a newer file of the same form can be
//! loaded instead (`[devices] oui_file`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};

/// The table built into the binary.
const BUILT_IN: &[u8] = include_bytes!("../../../data/oui.tsv.gz");

/// Assignments by prefix length: 24-bit (MA-L), 28-bit (MA-M), 36-bit (MA-S).
#[derive(Debug, Default)]
pub struct OuiTable {
    by_bits: [(u32, HashMap<u64, Box<str>>); 3],
    /// Where it came from (the file's first comment line).
    pub source: String,
}

impl OuiTable {
    /// The table shipped with the binary.
    pub fn built_in() -> Self {
        Self::from_gzip(BUILT_IN).unwrap_or_default()
    }

    /// Reads a gzip-compressed or plain table (`PREFIX<TAB>Organization` lines, `#` comments).
    pub fn from_gzip(bytes: &[u8]) -> std::io::Result<Self> {
        if bytes.starts_with(&[0x1f, 0x8b]) {
            Self::read(flate2::read::GzDecoder::new(bytes))
        } else {
            Self::read(bytes)
        }
    }

    fn read(r: impl Read) -> std::io::Result<Self> {
        let mut t = OuiTable {
            by_bits: [
                (24, HashMap::new()),
                (28, HashMap::new()),
                (36, HashMap::new()),
            ],
            source: String::new(),
        };
        for line in BufReader::new(r).lines() {
            let line = line?;
            if let Some(c) = line.strip_prefix('#') {
                if t.source.is_empty() {
                    t.source = c.trim().to_owned();
                }
                continue;
            }
            let Some((prefix, org)) = line.split_once('\t') else {
                continue;
            };
            let Ok(v) = u64::from_str_radix(prefix, 16) else {
                continue;
            };
            let bits = prefix.len() as u32 * 4;
            if let Some((_, map)) = t.by_bits.iter_mut().find(|(b, _)| *b == bits) {
                map.insert(v, org.into());
            }
        }
        Ok(t)
    }

    /// Assignments held.
    pub fn len(&self) -> usize {
        self.by_bits.iter().map(|(_, m)| m.len()).sum()
    }

    /// Holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The organization a MAC (`aa:bb:cc:dd:ee:ff`, `-` or no separators) was assigned to; the
    /// longest (most specific) prefix wins. Locally administered addresses (randomised by
    /// phones and laptops) have no vendor.
    pub fn vendor(&self, mac: &str) -> Option<&str> {
        let hex: String = mac.chars().filter(char::is_ascii_hexdigit).collect();
        if hex.len() != 12 {
            return None;
        }
        let v = u64::from_str_radix(&hex, 16).ok()?;
        if (v >> 40) & 0x02 != 0 {
            return None; // locally administered
        }
        self.by_bits
            .iter()
            .rev()
            .find_map(|(bits, map)| map.get(&(v >> (48 - bits))).map(|s| &**s))
    }
}

/// Whether a MAC is locally administered (randomised, or set by hand).
pub fn is_local_mac(mac: &str) -> bool {
    let hex: String = mac
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(2)
        .collect();
    u8::from_str_radix(&hex, 16).is_ok_and(|b| b & 0x02 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_table_names_vendors_by_the_longest_prefix() {
        let t = OuiTable::built_in();
        assert!(t.len() > 30_000, "{} assignments", t.len());
        assert!(t.source.contains("IEEE"), "{}", t.source);
        assert_eq!(t.vendor("00:00:00:12:34:56"), Some("XEROX CORPORATION"));
        // Same answer whatever the separators or case.
        assert_eq!(t.vendor("000000-123456"), t.vendor("00:00:00:12:34:56"));
        assert_eq!(t.vendor("nonsense"), None);
        assert_eq!(t.vendor("02:00:00:12:34:56"), None, "locally administered");
        assert!(is_local_mac("da:a1:19:00:00:01") && !is_local_mac("00:1b:21:00:00:01"));
    }

    #[test]
    fn a_refreshed_table_can_be_read_plain() {
        let t = OuiTable::from_gzip(b"# test\nAABBCC\tAcme\nAABBCCD\tAcme Sub\n").unwrap();
        assert_eq!(t.vendor("a8:bb:cc:00:00:00"), None);
        assert_eq!(
            t.vendor("aa:bb:cc:00:00:00").map(|_| ()),
            None,
            "aa is local"
        );
        let t = OuiTable::from_gzip(b"A8BBCC\tAcme\nA8BBCCD\tAcme Sub\n").unwrap();
        assert_eq!(t.vendor("a8:bb:cc:00:00:00"), Some("Acme"));
        assert_eq!(t.vendor("a8:bb:cc:d0:00:00"), Some("Acme Sub"));
    }
}
