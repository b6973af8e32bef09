//! Kerberos 5 message decoding (RFC 4120 section 5, ASN.1 DER) into the shared
//! [`KrbMessage`] facts.
//!
//! The decoder is deliberately lenient: a field that is absent, of an unexpected type, or cut
//! off by the end of the input is left as `None` (or empty) and decoding goes on with the next
//! field. Only an input whose message type cannot be established is an error. Values that run
//! past the end of the input (a datagram truncated by the capture, the first IP fragment of a
//! large reply) are read as far as the bytes go, so the fields in front of the cut survive.

use netmonitor_common::der::{self, tag, DerError, Tlv, CLASS_APPLICATION, CLASS_CONTEXT};
use netmonitor_common::krb::{KrbMessage, KrbMsgType};

/// Most components kept from one PrincipalName; hostile input could list thousands.
pub const MAX_NAME_COMPONENTS: usize = 16;
/// Most characters kept from one principal name or e-text.
pub const MAX_NAME_CHARS: usize = 1024;
/// Most etypes kept from a request's etype list.
pub const MAX_ETYPES: usize = 64;
/// Most PA-DATA types kept from one padata list or e-data.
pub const MAX_PADATA: usize = 64;
/// Most bytes searched for a Kerberos token inside a GSS-API / SPNEGO blob.
pub const MAX_GSS_SCAN: usize = 64 * 1024;

/// APPLICATION tag of a Ticket (RFC 4120 5.3).
const APP_TICKET: u32 = 1;

/// The DER encoding of the Kerberos V5 GSS-API mechanism OID 1.2.840.113554.1.2.2 (RFC 1964).
const GSS_KRB5_OID: [u8; 11] = [
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02,
];
/// The same OID as Microsoft mis-encoded it (1.2.840.48018.1.2.2), still seen in SPNEGO.
const GSS_MS_KRB5_OID: [u8; 11] = [
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02,
];

/// Why a byte string could not be decoded as a Kerberos message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KrbError {
    /// Not even the outer tag and length were present.
    #[error("truncated Kerberos message: the outer tag and length are incomplete")]
    Truncated,
    /// The outer TLV is not one of the Kerberos message APPLICATION tags.
    #[error("not a Kerberos message (identifier octet {0:#04x})")]
    NotKerberos(u8),
    /// The outer TLV is a Kerberos tag but what it holds is not a Kerberos message.
    #[error("malformed Kerberos message: {0}")]
    Malformed(&'static str),
}

/// Whether an identifier octet is the constructed APPLICATION tag of a Kerberos message
/// (AS-REQ 10 … AP-REP 15, KRB-ERROR 30).
pub fn is_krb_app_tag(id: u8) -> bool {
    matches!(id, 0x6a..=0x6f | 0x7e)
}

pub(crate) use netmonitor_common::der::read_header;

/// Reads one TLV; a value that runs past the input is cut at the input's end (and then
/// nothing follows it).
fn read_lenient(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    match der::read_tlv(input) {
        Ok(found) => Some(found),
        Err(DerError::Incomplete) => {
            let h = read_header(input).ok()?;
            let value = input.get(h.header_len..)?;
            Some((
                Tlv {
                    class: h.class,
                    constructed: h.constructed,
                    tag: h.tag,
                    value,
                    raw: input,
                },
                &[],
            ))
        }
        Err(_) => None,
    }
}

/// Iterates the TLVs nested in a value, leniently (see [`read_lenient`]).
struct Children<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Children<'a> {
    type Item = Tlv<'a>;

    fn next(&mut self) -> Option<Tlv<'a>> {
        let (tlv, rest) = read_lenient(self.rest)?;
        self.rest = rest;
        Some(tlv)
    }
}

fn children<'a>(t: &Tlv<'a>) -> Children<'a> {
    Children { rest: t.value }
}

/// The single TLV inside an explicit `[n]` field of a SEQUENCE.
fn field<'a>(seq: &Tlv<'a>, n: u32) -> Option<Tlv<'a>> {
    let wrapper = children(seq).find(|c| c.class == CLASS_CONTEXT && c.tag == n)?;
    read_lenient(wrapper.value).map(|(inner, _)| inner)
}

/// A SEQUENCE (lenient on the constructed bit, never on the tag).
fn as_sequence<'a>(t: Option<Tlv<'a>>) -> Option<Tlv<'a>> {
    t.filter(|t| t.is_universal(tag::SEQUENCE))
}

/// An INTEGER that fits an `i32` (Kerberos Int32/UInt32 fields, etypes, error codes).
fn int32(t: Option<Tlv<'_>>) -> Option<i32> {
    let t = t.filter(|t| t.is_universal(tag::INTEGER))?;
    i32::try_from(t.as_i64()?).ok()
}

/// A KerberosString (GeneralString in practice; any string type is accepted).
fn kerb_string(t: Option<Tlv<'_>>) -> Option<String> {
    let t = t.filter(|t| {
        t.class == der::CLASS_UNIVERSAL
            && matches!(
                t.tag,
                tag::GENERAL_STRING
                    | tag::UTF8_STRING
                    | tag::IA5_STRING
                    | tag::PRINTABLE_STRING
                    | tag::T61_STRING
                    | tag::OCTET_STRING
                    | tag::BMP_STRING
                    | tag::UNIVERSAL_STRING
            )
    })?;
    Some(t.as_string().chars().take(MAX_NAME_CHARS).collect())
}

/// PrincipalName ::= SEQUENCE { name-type [0] Int32, name-string [1] SEQUENCE OF KerberosString },
/// rendered as its components joined by `/`; `None` when it has no components.
fn principal(t: Option<Tlv<'_>>) -> Option<String> {
    let names = as_sequence(field(&as_sequence(t)?, 1))?;
    let parts: Vec<String> = children(&names)
        .take(MAX_NAME_COMPONENTS)
        .filter_map(|c| kerb_string(Some(c)))
        .collect();
    if parts.is_empty() {
        return None;
    }
    let mut joined = parts.join("/");
    if joined.len() > MAX_NAME_CHARS {
        joined = joined.chars().take(MAX_NAME_CHARS).collect();
    }
    Some(joined)
}

/// EncryptedData ::= SEQUENCE { etype [0] Int32, kvno [1] UInt32 OPTIONAL, cipher [2] OCTET STRING }.
fn enc_etype(t: Option<Tlv<'_>>) -> Option<i32> {
    int32(field(&as_sequence(t)?, 0))
}

/// What a Ticket (`[APPLICATION 1] SEQUENCE { tkt-vno [0], realm [1], sname [2], enc-part [3] }`)
/// says in clear.
#[derive(Default)]
struct TicketFacts {
    realm: Option<String>,
    sname: Option<String>,
    etype: Option<i32>,
}

fn ticket(t: Option<Tlv<'_>>) -> TicketFacts {
    let Some(seq) = t
        .filter(|t| t.class == CLASS_APPLICATION && t.tag == APP_TICKET)
        .and_then(|t| as_sequence(read_lenient(t.value).map(|(s, _)| s)))
    else {
        return TicketFacts::default();
    };
    TicketFacts {
        realm: kerb_string(field(&seq, 1)),
        sname: principal(field(&seq, 2)),
        etype: enc_etype(field(&seq, 3)),
    }
}

/// The padata-type of every PA-DATA (`SEQUENCE { padata-type [1] Int32, padata-value [2] }`)
/// in a SEQUENCE OF PA-DATA.
fn padata_types(t: Option<Tlv<'_>>) -> Vec<i32> {
    let Some(list) = as_sequence(t) else {
        return Vec::new();
    };
    children(&list)
        .filter(|c| c.is_universal(tag::SEQUENCE))
        .filter_map(|pa| int32(field(&pa, 1)))
        .take(MAX_PADATA)
        .collect()
}

/// The type hints carried by a KRB-ERROR's e-data: METHOD-DATA (SEQUENCE OF PA-DATA, type at
/// `[1]`), TYPED-DATA (SEQUENCE OF SEQUENCE { data-type [0], data-value [1] }) or Microsoft's
/// single KERB-ERROR-DATA (SEQUENCE { data-type [1], data-value [2] }).
fn e_data_types(e_data: Option<Tlv<'_>>) -> Vec<i32> {
    // RFC 4120 wraps the DER in an OCTET STRING; some senders put the SEQUENCE there directly.
    let outer = match e_data {
        Some(t) if t.is_universal(tag::OCTET_STRING) => read_lenient(t.value).map(|(t, _)| t),
        other => other,
    };
    let Some(outer) = as_sequence(outer) else {
        return Vec::new();
    };
    let element_type = |el: &Tlv<'_>| int32(field(el, 1)).or_else(|| int32(field(el, 0)));
    if children(&outer).any(|c| c.class == CLASS_CONTEXT) {
        return element_type(&outer).into_iter().collect();
    }
    children(&outer)
        .filter(|c| c.is_universal(tag::SEQUENCE))
        .filter_map(|el| element_type(&el))
        .take(MAX_PADATA)
        .collect()
}

/// KDCOptions (a BIT STRING, bit 0 first) as a big-endian u32: bit n is `0x8000_0000 >> n`.
fn kdc_options(t: Option<Tlv<'_>>) -> Option<u32> {
    let t = t.filter(|t| t.is_universal(tag::BIT_STRING))?;
    let bits = t.value.get(1..)?;
    let mut out = [0u8; 4];
    for (dst, src) in out.iter_mut().zip(bits) {
        *dst = *src;
    }
    Some(u32::from_be_bytes(out))
}

/// KDC-REQ ::= SEQUENCE { pvno [1], msg-type [2], padata [3] OPTIONAL, req-body [4] KDC-REQ-BODY }
fn fill_kdc_req(seq: &Tlv<'_>, msg: &mut KrbMessage) {
    msg.padata_types = padata_types(field(seq, 3));
    let Some(body) = as_sequence(field(seq, 4)) else {
        return;
    };
    msg.kdc_options = kdc_options(field(&body, 0));
    msg.cname = principal(field(&body, 1));
    msg.realm = kerb_string(field(&body, 2));
    msg.sname = principal(field(&body, 3));
    if let Some(list) = as_sequence(field(&body, 8)) {
        msg.requested_etypes = children(&list)
            .filter_map(|c| int32(Some(c)))
            .take(MAX_ETYPES)
            .collect();
    }
}

/// KDC-REP ::= SEQUENCE { pvno [0], msg-type [1], padata [2] OPTIONAL, crealm [3], cname [4],
/// ticket [5], enc-part [6] }
fn fill_kdc_rep(seq: &Tlv<'_>, msg: &mut KrbMessage) {
    msg.padata_types = padata_types(field(seq, 2));
    msg.realm = kerb_string(field(seq, 3));
    msg.cname = principal(field(seq, 4));
    let t = ticket(field(seq, 5));
    msg.sname = t.sname;
    msg.ticket_encryption = t.etype;
    msg.encryption = enc_etype(field(seq, 6));
}

/// AP-REQ ::= SEQUENCE { pvno [0], msg-type [1], ap-options [2], ticket [3], authenticator [4] }
fn fill_ap_req(seq: &Tlv<'_>, msg: &mut KrbMessage) {
    let t = ticket(field(seq, 3));
    msg.realm = t.realm;
    msg.sname = t.sname;
    msg.ticket_encryption = t.etype;
}

/// AP-REP ::= SEQUENCE { pvno [0], msg-type [1], enc-part [2] }
fn fill_ap_rep(seq: &Tlv<'_>, msg: &mut KrbMessage) {
    msg.encryption = enc_etype(field(seq, 2));
}

/// KRB-ERROR ::= SEQUENCE { pvno [0], msg-type [1], ctime [2], cusec [3], stime [4], susec [5],
/// error-code [6], crealm [7], cname [8], realm [9], sname [10], e-text [11], e-data [12] }
fn fill_error(seq: &Tlv<'_>, msg: &mut KrbMessage) {
    msg.error_code = int32(field(seq, 6));
    msg.realm = kerb_string(field(seq, 7)).or_else(|| kerb_string(field(seq, 9)));
    msg.cname = principal(field(seq, 8));
    msg.sname = principal(field(seq, 10));
    msg.e_text = kerb_string(field(seq, 11));
    msg.padata_types = e_data_types(field(seq, 12));
}

/// Decodes one Kerberos message (a UDP payload, or one TCP record without its 4-byte record
/// mark). Fields the message lacks, or that are malformed, stay `None`/empty.
pub fn parse_message(data: &[u8]) -> Result<KrbMessage, KrbError> {
    let first = *data.first().ok_or(KrbError::Truncated)?;
    let header = read_header(data).map_err(|e| match e {
        DerError::Incomplete => KrbError::Truncated,
        _ => KrbError::Malformed("bad outer length"),
    })?;
    if !is_krb_app_tag(first) || header.class != CLASS_APPLICATION {
        return Err(KrbError::NotKerberos(first));
    }
    let msg_type = KrbMsgType::from_app_tag(header.tag).ok_or(KrbError::NotKerberos(first))?;
    let (outer, _) = read_lenient(data).ok_or(KrbError::Truncated)?;
    let seq = match read_lenient(outer.value) {
        Some((t, _)) if t.is_universal(tag::SEQUENCE) && t.constructed => t,
        Some(_) => return Err(KrbError::Malformed("message body is not a SEQUENCE")),
        None => return Err(KrbError::Malformed("message body is missing")),
    };
    // The msg-type field repeats the APPLICATION tag ([2] in KDC-REQ, [1] elsewhere); when it
    // is present and disagrees, the bytes are not a Kerberos message that happens to parse.
    let type_field = match msg_type {
        KrbMsgType::AsReq | KrbMsgType::TgsReq => 2,
        _ => 1,
    };
    if let Some(declared) = int32(field(&seq, type_field)) {
        if u32::try_from(declared).ok() != Some(header.tag) {
            return Err(KrbError::Malformed(
                "msg-type disagrees with the APPLICATION tag",
            ));
        }
    }
    let mut msg = KrbMessage::new(msg_type);
    match msg_type {
        KrbMsgType::AsReq | KrbMsgType::TgsReq => fill_kdc_req(&seq, &mut msg),
        KrbMsgType::AsRep | KrbMsgType::TgsRep => fill_kdc_rep(&seq, &mut msg),
        KrbMsgType::ApReq => fill_ap_req(&seq, &mut msg),
        KrbMsgType::ApRep => fill_ap_rep(&seq, &mut msg),
        KrbMsgType::Error => fill_error(&seq, &mut msg),
    }
    Ok(msg)
}

/// Finds and decodes the Kerberos token inside a GSS-API / SPNEGO blob (as carried by SMB
/// Session Setup, HTTP Negotiate, LDAP SASL): the Kerberos mechanism OID followed by a
/// two-byte token id (RFC 1964 / RFC 4121) and the message. Searches at most
/// [`MAX_GSS_SCAN`] bytes; `None` when no decodable token is there.
pub fn find_krb_in_gss(data: &[u8]) -> Option<KrbMessage> {
    let hay = data.get(..data.len().min(MAX_GSS_SCAN))?;
    let mut start = 0usize;
    while let Some(rest) = hay.get(start..) {
        let found = rest
            .windows(GSS_KRB5_OID.len())
            .position(|w| w == GSS_KRB5_OID || w == GSS_MS_KRB5_OID)?;
        let after_oid = start.checked_add(found)?.checked_add(GSS_KRB5_OID.len())?;
        let msg_start = after_oid.checked_add(2)?;
        let token_id = hay.get(after_oid..msg_start);
        if matches!(token_id, Some([0x01..=0x03, 0x00])) {
            if let Some(msg) = hay.get(msg_start..).and_then(|m| parse_message(m).ok()) {
                return Some(msg);
            }
        }
        start = after_oid;
    }
    None
}

/// Cheap check: does this UDP payload look like one Kerberos message (a Kerberos APPLICATION
/// tag whose DER length spans the whole datagram, holding a SEQUENCE)?
pub fn looks_like_krb_udp(data: &[u8]) -> bool {
    let Some(first) = data.first() else {
        return false;
    };
    if !is_krb_app_tag(*first) {
        return false;
    }
    let Ok(h) = read_header(data) else {
        return false;
    };
    h.total_len() == Some(data.len()) && data.get(h.header_len) == Some(&0x30)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{hex, load};
    use netmonitor_common::krb::{error_code_name, etype_name};

    /// The UDP datagrams of a fixture, each decoded.
    fn udp_messages(name: &str) -> Vec<KrbMessage> {
        load(name)
            .into_iter()
            .filter(|s| s.udp)
            .map(|s| parse_message(&s.bytes).expect("fixture datagram decodes"))
            .collect()
    }

    #[test]
    fn error_with_only_code_and_e_data_decodes() {
        let msgs = udp_messages("error-preauth-padata.txt");
        assert_eq!(msgs.len(), 1);
        let m = &msgs[0];
        assert_eq!(m.msg_type, KrbMsgType::Error);
        assert_eq!(
            m.error_code.map(error_code_name).as_deref(),
            Some("KDC_ERR_PREAUTH_REQUIRED")
        );
        assert_eq!(
            m.padata_types,
            vec![2],
            "e-data METHOD-DATA hints PA-ENC-TIMESTAMP"
        );
        assert_eq!(
            (m.cname.as_deref(), m.realm.as_deref(), m.sname.as_deref()),
            (None, None, None)
        );
        assert_eq!(m.e_text, None);
    }

    #[test]
    fn kinit_udp_as_exchange() {
        let msgs = udp_messages("kinit.txt");
        let req = msgs.first().expect("an AS-REQ");
        assert_eq!(req.msg_type, KrbMsgType::AsReq);
        assert_eq!(req.cname.as_deref(), Some("valid_client_principal"));
        assert_eq!(req.realm.as_deref(), Some("VLADG.NET"));
        assert_eq!(req.sname.as_deref(), Some("krbtgt/VLADG.NET"));
        assert!(
            req.requested_etypes.contains(&18),
            "{:?}",
            req.requested_etypes
        );
        assert!(req.kdc_options.is_some());
        let rep = msgs.get(1).expect("an AS-REP");
        assert_eq!(rep.msg_type, KrbMsgType::AsRep);
        assert_eq!(rep.cname.as_deref(), Some("valid_client_principal"));
        assert_eq!(rep.realm.as_deref(), Some("VLADG.NET"));
        assert_eq!(rep.sname.as_deref(), Some("krbtgt/VLADG.NET"));
        assert_eq!(
            rep.ticket_encryption.map(etype_name).as_deref(),
            Some("aes256-cts-hmac-sha1-96")
        );
        assert!(rep.encryption.is_some());
        assert!(rep.requested_etypes.is_empty() && rep.kdc_options.is_none());
    }

    #[test]
    fn kinit_names_cover_every_principal_kind() {
        let msgs = udp_messages("kinit.txt");
        let cnames: Vec<&str> = msgs.iter().filter_map(|m| m.cname.as_deref()).collect();
        let snames: Vec<&str> = msgs.iter().filter_map(|m| m.sname.as_deref()).collect();
        for want in [
            "enterprise_principal@AD.VLADG.NET",
            "invalid_client_principal",
            "expired_client_principal",
            "expired_password_client_principal",
            "nokey_client_principal",
            "requires_preauth_client_principal",
            "lockout_policy_client_principal",
            "WELLKNOWN/ANONYMOUS",
            "test_pkinit",
        ] {
            assert!(cnames.contains(&want), "cname {want} missing");
        }
        for want in [
            "kadmin/changepw",
            "valid_service_principal/test.vladg.net",
            "invalid_service_principal/test.vladg.net",
        ] {
            assert!(snames.contains(&want), "sname {want} missing");
        }
    }

    #[test]
    fn kdc_options_are_big_endian_bits() {
        // KDCOptions with forwardable (bit 1), renewable (bit 8) and renew (bit 30).
        let (t, _) = der::read_tlv(&[0x03, 0x05, 0x00, 0x40, 0x80, 0x00, 0x02]).unwrap();
        assert_eq!(kdc_options(Some(t)), Some(0x4080_0002));
        // A short bit string is left-aligned.
        let (t, _) = der::read_tlv(&[0x03, 0x02, 0x07, 0x80]).unwrap();
        assert_eq!(kdc_options(Some(t)), Some(0x8000_0000));
    }

    #[test]
    fn rejects_what_is_not_kerberos() {
        assert_eq!(parse_message(&[]), Err(KrbError::Truncated));
        assert_eq!(parse_message(&[0x6a]), Err(KrbError::Truncated));
        assert_eq!(
            parse_message(&[0x30, 0x03, 0x02, 0x01, 0x05]),
            Err(KrbError::NotKerberos(0x30))
        );
        assert_eq!(
            parse_message(&[0x70, 0x02, 0x30, 0x00]),
            Err(KrbError::NotKerberos(0x70))
        );
        assert!(matches!(
            parse_message(&[0x6a, 0x02, 0x04, 0x00]),
            Err(KrbError::Malformed(_))
        ));
        // msg-type 11 inside an AS-REQ (10) tag.
        let wrong_type = hex("6a0c300aa103020105a20302010b");
        assert!(matches!(
            parse_message(&wrong_type),
            Err(KrbError::Malformed(_))
        ));
    }

    #[test]
    fn truncated_reply_keeps_the_fields_before_the_cut() {
        let segs = load("kinit.txt");
        let rep = segs
            .iter()
            .find(|s| s.udp && s.bytes.first() == Some(&0x6b))
            .expect("an AS-REP datagram");
        let full = parse_message(&rep.bytes).unwrap();
        // Cut inside the reply's enc-part cipher: every fact is still there.
        let cut = parse_message(&rep.bytes[..rep.bytes.len() - 20]).unwrap();
        assert_eq!(cut, full);
        // Cut inside the ticket: names survive, the reply etype does not.
        let cut = parse_message(&rep.bytes[..200]).unwrap();
        assert_eq!(cut.cname, full.cname);
        assert_eq!(cut.sname, full.sname);
        assert_eq!(cut.encryption, None);
    }

    #[test]
    fn looks_like_udp_accepts_real_and_rejects_other() {
        for s in load("kinit.txt").iter().filter(|s| s.udp) {
            assert!(looks_like_krb_udp(&s.bytes), "frame {}", s.frame);
        }
        assert!(looks_like_krb_udp(
            &load("error-preauth-padata.txt")[0].bytes
        ));
        assert!(!looks_like_krb_udp(&[]));
        assert!(
            !looks_like_krb_udp(&hex("6a05300302")),
            "length beyond datagram"
        );
        assert!(!looks_like_krb_udp(&hex("6a020400")), "no SEQUENCE");
        // A DNS query is not Kerberos.
        assert!(!looks_like_krb_udp(&hex("abcd01000001000000000000")));
    }

    #[test]
    fn gss_tokens_in_smb_session_setup() {
        let segs = load("smb.txt");
        let found: Vec<KrbMessage> = segs
            .iter()
            .filter_map(|s| find_krb_in_gss(&s.bytes))
            .collect();
        assert!(found.iter().any(|m| m.msg_type == KrbMsgType::ApReq
            && m.sname.as_deref().is_some_and(|s| s.starts_with("cifs/"))
            && m.ticket_encryption.is_some()
            && m.realm.is_some()));
        assert!(found
            .iter()
            .any(|m| m.msg_type == KrbMsgType::ApRep && m.encryption.is_some()));
        assert!(find_krb_in_gss(&[]).is_none());
        assert!(find_krb_in_gss(&GSS_KRB5_OID).is_none());
    }
}
