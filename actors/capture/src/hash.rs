//! A small, fast, non-cryptographic hasher for the flow and fragment tables.
//!
//! It is the multiply-rotate scheme of Firefox/rustc's FxHash: a few cycles per word, good
//! enough spread for 5-tuples. It is *not* DoS-resistant; the tables it serves are bounded
//! (max flows, max fragments) and evict, so a crafted collision flood degrades speed but
//! cannot grow memory.

use std::hash::{BuildHasherDefault, Hasher};

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// FxHash-style hasher (see module docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            if let Some(dst) = w.get_mut(..rest.len()) {
                dst.copy_from_slice(rest);
            }
            self.add(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // hashbrown takes bucket bits from the low end and tag bits from the top: fold the
        // well-mixed high half down.
        self.hash ^ (self.hash >> 29)
    }
}

/// `BuildHasher` for `HashMap<K, V, FxBuildHasher>`.
pub type FxBuildHasher = BuildHasherDefault<FxHasher>;

/// Hashes one value with [`FxHasher`].
pub fn fx_hash<T: std::hash::Hash + ?Sized>(v: &T) -> u64 {
    let mut h = FxHasher::default();
    v.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn distinct_tuples_spread_over_low_bits() {
        // Sequential ports and addresses (typical scan traffic) must not collapse into few
        // buckets: count distinct values of the low 12 bits.
        let mut buckets = HashSet::new();
        for port in 0u16..4096 {
            let mut h = FxHasher::default();
            h.write_u64(0x0a00_0001_0a00_0002);
            h.write_u16(port);
            h.write_u16(443);
            buckets.insert(h.finish() & 0xFFF);
        }
        assert!(
            buckets.len() > 2500,
            "only {} of 4096 buckets used",
            buckets.len()
        );
        assert_ne!(fx_hash(&1u64), fx_hash(&2u64));
        assert_eq!(fx_hash(b"abc".as_slice()), fx_hash(b"abc".as_slice()));
    }
}
