//! A traffic synthesizer that writes classic pcap (Ethernet) files for tests and benchmarks.
//!
//! Everything is built from the specifications, not copied from captures: TLS 1.2/1.3
//! ClientHello, ServerHello, Certificate (an X.509 v3 certificate encoded here in DER, with
//! subject, issuer, validity and subjectAltName; its signature bytes are random), Kerberos
//! AS-REQ/AS-REP/TGS-REQ/TGS-REP/KRB-ERROR per RFC 4120 (DER, application tags 10-13 and 30),
//! DNS queries and answers per RFC 1035, port scans, SYN floods and bulk transfers with
//! realistic packet sizes. A seeded xorshift generator makes every file reproducible.
//!
//! [`build`] holds the low-level frame builders the unit tests of the other modules use;
//! [`Synth`] composes conversations; [`write_mix`] writes a whole mix in one call.

pub mod build;
mod der;
mod messages;
mod mix;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests;

pub use messages::{
    dns_answer, dns_query, krb_error, krb_reply, krb_request, tls_client_hello, tls_server_flight,
    x509_certificate, KrbSpec,
};
pub use mix::{write_mix, write_random_mix, Synth, SynthSummary, TcpConn, TrafficMix};

/// xorshift64*: a tiny deterministic generator (no dependency).
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// Seeded generator (a zero seed is replaced).
    pub fn new(seed: u64) -> Self {
        XorShift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// Fills a buffer.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            let r = self.next_u64().to_le_bytes();
            c.copy_from_slice(&r[..c.len()]);
        }
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0; n];
        self.fill(&mut v);
        v
    }
}
