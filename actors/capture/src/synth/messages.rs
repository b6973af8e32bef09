//! Protocol messages built from their specifications: TLS handshakes, X.509 certificates,
//! Kerberos requests, replies and errors, DNS queries and answers.

use super::{der, XorShift};
use netmonitor_common::{time::format_utc, Timestamp};
use std::net::Ipv4Addr;

/// TLS cipher suites offered by synthetic clients (a modern browser-like list).
const CLIENT_SUITES: [u16; 15] = [
    0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c,
    0x009d, 0x002f, 0x0035,
];

fn tls_ext(ty: u16, body: &[u8]) -> Vec<u8> {
    let mut e = ty.to_be_bytes().to_vec();
    e.extend_from_slice(&(body.len() as u16).to_be_bytes());
    e.extend_from_slice(body);
    e
}

fn u16_list(vals: &[u16]) -> Vec<u8> {
    let mut v = ((vals.len() * 2) as u16).to_be_bytes().to_vec();
    for x in vals {
        v.extend_from_slice(&x.to_be_bytes());
    }
    v
}

pub(super) fn handshake(ty: u8, body: &[u8]) -> Vec<u8> {
    let n = body.len();
    let mut h = vec![ty, (n >> 16) as u8, (n >> 8) as u8, n as u8];
    h.extend_from_slice(body);
    h
}

/// TLS records of content type `ct` carrying `data` (split at 16 KiB).
pub(super) fn tls_records(ct: u8, version: u16, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 5);
    for chunk in data.chunks(16_384) {
        out.push(ct);
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

/// A TLS ClientHello record (RFC 8446 §4.1.2) offering TLS 1.3 and 1.2, with SNI `sni`
/// (omitted when empty), ALPN h2/http1.1, X25519 key share and random values from `rng`.
pub fn tls_client_hello(rng: &mut XorShift, sni: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&0x0303u16.to_be_bytes());
    body.extend_from_slice(&rng.bytes(32));
    body.push(32);
    body.extend_from_slice(&rng.bytes(32));
    body.extend_from_slice(&u16_list(&CLIENT_SUITES));
    body.extend_from_slice(&[1, 0]);
    let mut exts = Vec::new();
    if !sni.is_empty() {
        let mut list = vec![0u8];
        list.extend_from_slice(&(sni.len() as u16).to_be_bytes());
        list.extend_from_slice(sni.as_bytes());
        let mut sn = (list.len() as u16).to_be_bytes().to_vec();
        sn.extend_from_slice(&list);
        exts.extend(tls_ext(0, &sn));
    }
    exts.extend(tls_ext(23, &[]));
    exts.extend(tls_ext(0xff01, &[0]));
    exts.extend(tls_ext(10, &u16_list(&[0x001d, 0x0017, 0x0018])));
    exts.extend(tls_ext(11, &[1, 0]));
    exts.extend(tls_ext(35, &[]));
    let alpn = [&[2u8][..], b"h2", &[8], b"http/1.1"].concat();
    let mut alpn_ext = (alpn.len() as u16).to_be_bytes().to_vec();
    alpn_ext.extend_from_slice(&alpn);
    exts.extend(tls_ext(16, &alpn_ext));
    exts.extend(tls_ext(5, &[1, 0, 0, 0, 0]));
    exts.extend(tls_ext(
        13,
        &u16_list(&[
            0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
        ]),
    ));
    exts.extend(tls_ext(18, &[]));
    let mut ks = vec![0x00, 0x1d, 0x00, 0x20];
    ks.extend_from_slice(&rng.bytes(32));
    let mut ks_ext = (ks.len() as u16).to_be_bytes().to_vec();
    ks_ext.extend_from_slice(&ks);
    exts.extend(tls_ext(51, &ks_ext));
    exts.extend(tls_ext(45, &[1, 1]));
    exts.extend(tls_ext(43, &[4, 0x03, 0x04, 0x03, 0x03]));
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    tls_records(22, 0x0301, &handshake(1, &body))
}

/// A TLS 1.2 ServerHello + Certificate + ServerHelloDone flight (one record) with a leaf
/// certificate for `sni` issued by a synthetic CA.
pub fn tls_server_flight(rng: &mut XorShift, sni: &str, now: Timestamp) -> Vec<u8> {
    let mut sh = Vec::new();
    sh.extend_from_slice(&0x0303u16.to_be_bytes());
    sh.extend_from_slice(&rng.bytes(32));
    sh.push(32);
    sh.extend_from_slice(&rng.bytes(32));
    sh.extend_from_slice(&0xc02fu16.to_be_bytes());
    sh.push(0);
    let mut exts = Vec::new();
    exts.extend(tls_ext(0xff01, &[0]));
    exts.extend(tls_ext(23, &[]));
    exts.extend(tls_ext(11, &[1, 0]));
    let alpn = [&[2u8][..], b"h2"].concat();
    let mut alpn_ext = (alpn.len() as u16).to_be_bytes().to_vec();
    alpn_ext.extend_from_slice(&alpn);
    exts.extend(tls_ext(16, &alpn_ext));
    sh.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    sh.extend_from_slice(&exts);
    let cert = x509_certificate(
        rng,
        if sni.is_empty() {
            "server.invalid"
        } else {
            sni
        },
        now,
    );
    let mut chain = Vec::new();
    let n = cert.len();
    chain.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
    chain.extend_from_slice(&cert);
    let n = chain.len();
    let mut cm = vec![(n >> 16) as u8, (n >> 8) as u8, n as u8];
    cm.extend_from_slice(&chain);
    let mut msgs = handshake(2, &sh);
    msgs.extend(handshake(11, &cm));
    msgs.extend(handshake(14, &[]));
    tls_records(22, 0x0303, &msgs)
}

fn utc_time(secs: i64) -> Vec<u8> {
    // format_utc gives YYYY-MM-DDTHH:MM:SS; UTCTime is YYMMDDHHMMSSZ.
    let s = format_utc(secs);
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    let short = format!("{}Z", digits.get(2..).unwrap_or("700101000000"));
    der::tlv(0x17, short.as_bytes())
}

fn generalized_time(secs: i64) -> Vec<u8> {
    let s = format_utc(secs);
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    der::tlv(0x18, format!("{digits}Z").as_bytes())
}

/// An X.509 v3 certificate (DER) for `cn`, valid from 30 days before `now` to a year after,
/// with a DNS subjectAltName; signed by "NetMonitor Synthetic CA" (random signature bytes).
pub fn x509_certificate(rng: &mut XorShift, cn: &str, now: Timestamp) -> Vec<u8> {
    const SHA256_RSA: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
    const RSA: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    let name = |org: &str, cn: &str| {
        der::seq(&[
            der::set(&[der::seq(&[
                der::oid(&[0x55, 0x04, 0x06]),
                der::tlv(0x13, b"US"),
            ])]),
            der::set(&[der::seq(&[
                der::oid(&[0x55, 0x04, 0x0a]),
                der::tlv(0x0c, org.as_bytes()),
            ])]),
            der::set(&[der::seq(&[
                der::oid(&[0x55, 0x04, 0x03]),
                der::tlv(0x0c, cn.as_bytes()),
            ])]),
        ])
    };
    let alg = der::seq(&[der::oid(&SHA256_RSA), der::tlv(0x05, &[])]);
    let mut serial = rng.bytes(16);
    serial[0] &= 0x7F;
    serial[0] |= 0x01;
    let mut modulus = vec![0u8];
    modulus.extend(rng.bytes(256));
    modulus[1] |= 0x80;
    let rsa_key = der::seq(&[der::tlv(0x02, &modulus), der::int(65_537)]);
    let mut bits = vec![0u8];
    bits.extend(rsa_key);
    let spki = der::seq(&[
        der::seq(&[der::oid(&RSA), der::tlv(0x05, &[])]),
        der::tlv(0x03, &bits),
    ]);
    let san = der::seq(&[der::tlv(0x82, cn.as_bytes())]);
    let exts = der::ctx(
        3,
        der::seq(&[
            der::seq(&[der::oid(&[0x55, 0x1d, 0x11]), der::octets(&san)]),
            der::seq(&[der::oid(&[0x55, 0x1d, 0x13]), der::octets(&der::seq(&[]))]),
        ]),
    );
    let secs = now.secs();
    let tbs = der::seq(&[
        der::ctx(0, der::int(2)),
        der::tlv(0x02, &serial),
        alg.clone(),
        name("NetMonitor Test", "NetMonitor Synthetic CA"),
        der::seq(&[utc_time(secs - 30 * 86_400), utc_time(secs + 365 * 86_400)]),
        name("NetMonitor Test", cn),
        spki,
        exts,
    ]);
    let mut sig = vec![0u8];
    sig.extend(rng.bytes(256));
    der::seq(&[tbs, alg, der::tlv(0x03, &sig)])
}

fn principal(name_type: i64, parts: &[&str]) -> Vec<u8> {
    der::seq(&[
        der::ctx(0, der::int(name_type)),
        der::ctx(
            1,
            der::seq(
                &parts
                    .iter()
                    .map(|p| der::general_string(p))
                    .collect::<Vec<_>>(),
            ),
        ),
    ])
}

fn encrypted_data(rng: &mut XorShift, etype: i64, kvno: Option<i64>, len: usize) -> Vec<u8> {
    let mut f = vec![der::ctx(0, der::int(etype))];
    if let Some(k) = kvno {
        f.push(der::ctx(1, der::int(k)));
    }
    f.push(der::ctx(2, der::octets(&rng.bytes(len))));
    der::seq(&f)
}

fn ticket(rng: &mut XorShift, realm: &str, sname: &[&str], etype: i64) -> Vec<u8> {
    der::app(
        1,
        der::seq(&[
            der::ctx(0, der::int(5)),
            der::ctx(1, der::general_string(realm)),
            der::ctx(2, principal(2, sname)),
            der::ctx(3, encrypted_data(rng, etype, Some(2), 900)),
        ]),
    )
}

/// What a synthetic Kerberos message says.
#[derive(Clone, Debug)]
pub struct KrbSpec<'a> {
    /// Realm (`EXAMPLE.TEST`).
    pub realm: &'a str,
    /// Client principal name.
    pub cname: &'a str,
    /// Service principal components (`["krbtgt", "EXAMPLE.TEST"]`).
    pub sname: &'a [&'a str],
    /// Encryption types the client offers (requests).
    pub etypes: &'a [i64],
    /// Ticket encryption type (replies).
    pub ticket_etype: i64,
    /// Reply enc-part encryption type.
    pub reply_etype: i64,
    /// Capture time, for the `till` field.
    pub now: Timestamp,
}

/// An AS-REQ (`tgs == false`) or TGS-REQ (RFC 4120 §5.4.1), DER.
pub fn krb_request(rng: &mut XorShift, k: &KrbSpec<'_>, tgs: bool) -> Vec<u8> {
    let mut body = vec![der::ctx(0, der::tlv(0x03, &[0x00, 0x40, 0x81, 0x00, 0x10]))];
    if !tgs {
        body.push(der::ctx(1, principal(1, &[k.cname])));
    }
    body.push(der::ctx(2, der::general_string(k.realm)));
    body.push(der::ctx(3, principal(2, k.sname)));
    body.push(der::ctx(5, generalized_time(k.now.secs() + 10 * 3600)));
    body.push(der::ctx(7, der::int((rng.next_u64() & 0x7FFF_FFFF) as i64)));
    body.push(der::ctx(
        8,
        der::seq(&k.etypes.iter().map(|&e| der::int(e)).collect::<Vec<_>>()),
    ));
    let padata = if tgs {
        // PA-TGS-REQ carrying an AP-REQ with the TGT.
        let ap_req = der::app(
            14,
            der::seq(&[
                der::ctx(0, der::int(5)),
                der::ctx(1, der::int(14)),
                der::ctx(2, der::tlv(0x03, &[0, 0, 0, 0, 0])),
                der::ctx(3, ticket(rng, k.realm, &["krbtgt", k.realm], 18)),
                der::ctx(4, encrypted_data(rng, 18, None, 120)),
            ]),
        );
        der::seq(&[der::seq(&[
            der::ctx(1, der::int(1)),
            der::ctx(2, der::octets(&ap_req)),
        ])])
    } else {
        // PA-PAC-REQUEST { include-pac TRUE }.
        let pac = der::seq(&[der::ctx(0, der::tlv(0x01, &[0xFF]))]);
        der::seq(&[der::seq(&[
            der::ctx(1, der::int(128)),
            der::ctx(2, der::octets(&pac)),
        ])])
    };
    let (app, msg_type) = if tgs { (12, 12) } else { (10, 10) };
    der::app(
        app,
        der::seq(&[
            der::ctx(1, der::int(5)),
            der::ctx(2, der::int(msg_type)),
            der::ctx(3, padata),
            der::ctx(4, der::seq(&body)),
        ]),
    )
}

/// An AS-REP (`tgs == false`) or TGS-REP (RFC 4120 §5.4.2), DER.
pub fn krb_reply(rng: &mut XorShift, k: &KrbSpec<'_>, tgs: bool) -> Vec<u8> {
    let (app, msg_type) = if tgs { (13, 13) } else { (11, 11) };
    der::app(
        app,
        der::seq(&[
            der::ctx(0, der::int(5)),
            der::ctx(1, der::int(msg_type)),
            der::ctx(3, der::general_string(k.realm)),
            der::ctx(4, principal(1, &[k.cname])),
            der::ctx(5, ticket(rng, k.realm, k.sname, k.ticket_etype)),
            der::ctx(6, encrypted_data(rng, k.reply_etype, Some(1), 200)),
        ]),
    )
}

/// A KRB-ERROR (RFC 4120 §5.9.1) with `error_code`, DER.
pub fn krb_error(k: &KrbSpec<'_>, error_code: i64) -> Vec<u8> {
    der::app(
        30,
        der::seq(&[
            der::ctx(0, der::int(5)),
            der::ctx(1, der::int(30)),
            der::ctx(4, generalized_time(k.now.secs())),
            der::ctx(5, der::int(0)),
            der::ctx(6, der::int(error_code)),
            der::ctx(9, der::general_string(k.realm)),
            der::ctx(10, principal(2, k.sname)),
        ]),
    )
}

/// A DNS query (RFC 1035) for `name` of type `qtype`.
pub fn dns_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        m.push(label.len().min(63) as u8);
        m.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m
}

/// The answer to [`dns_query`] with one A record (compressed name pointer).
pub fn dns_answer(query: &[u8], addr: Ipv4Addr) -> Vec<u8> {
    let mut m = query.to_vec();
    if m.len() >= 12 {
        m[2] = 0x81;
        m[3] = 0x80;
        m[7] = 1;
    }
    m.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0x0E, 0x10, 0, 4]);
    m.extend_from_slice(&addr.octets());
    m
}
