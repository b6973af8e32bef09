//! Kerberos message facts and the names RFC 4120/3961 give to their numbers; shared by the
//! decoder, the detectors and the EVE writer so that "is this etype weak" has one answer.

use serde::{Deserialize, Serialize};

/// Kerberos message types (RFC 4120 APPLICATION tags).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KrbMsgType {
    /// AS-REQ (10)
    AsReq,
    /// AS-REP (11)
    AsRep,
    /// TGS-REQ (12)
    TgsReq,
    /// TGS-REP (13)
    TgsRep,
    /// AP-REQ (14)
    ApReq,
    /// AP-REP (15)
    ApRep,
    /// KRB-ERROR (30)
    Error,
}

impl KrbMsgType {
    /// The type for an APPLICATION tag number.
    pub fn from_app_tag(tag: u32) -> Option<Self> {
        Some(match tag {
            10 => KrbMsgType::AsReq,
            11 => KrbMsgType::AsRep,
            12 => KrbMsgType::TgsReq,
            13 => KrbMsgType::TgsRep,
            14 => KrbMsgType::ApReq,
            15 => KrbMsgType::ApRep,
            30 => KrbMsgType::Error,
            _ => return None,
        })
    }

    /// Suricata's name (`KRB_AS_REQ`, …).
    pub fn name(self) -> &'static str {
        match self {
            KrbMsgType::AsReq => "KRB_AS_REQ",
            KrbMsgType::AsRep => "KRB_AS_REP",
            KrbMsgType::TgsReq => "KRB_TGS_REQ",
            KrbMsgType::TgsRep => "KRB_TGS_REP",
            KrbMsgType::ApReq => "KRB_AP_REQ",
            KrbMsgType::ApRep => "KRB_AP_REP",
            KrbMsgType::Error => "KRB_ERROR",
        }
    }
}

/// The decoded facts of one Kerberos message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KrbMessage {
    /// Message type.
    pub msg_type: KrbMsgType,
    /// Client principal name components joined by `/` (req-body cname or reply cname).
    pub cname: Option<String>,
    /// Realm: req-body realm for requests, crealm for replies, crealm (else realm) for errors.
    pub realm: Option<String>,
    /// Service principal joined by `/`: req-body sname, the ticket's sname for replies.
    pub sname: Option<String>,
    /// Etype of a reply's enc-part.
    pub encryption: Option<i32>,
    /// Etype of the ticket's enc-part (replies; AP-REQ).
    pub ticket_encryption: Option<i32>,
    /// Etypes the client asked for, in its order (requests).
    pub requested_etypes: Vec<i32>,
    /// PA-DATA types present (requests and replies; e-data hints for errors).
    pub padata_types: Vec<i32>,
    /// KDC options bit string as a big-endian u32 (requests).
    pub kdc_options: Option<u32>,
    /// Error code (KRB-ERROR).
    pub error_code: Option<i32>,
    /// Which request a KRB-ERROR answered, when the flow showed it.
    pub failed_request: Option<KrbMsgType>,
    /// The KDC's e-text, when present.
    pub e_text: Option<String>,
}

impl KrbMessage {
    /// An empty message of the given type, for decoders to fill in.
    pub fn new(msg_type: KrbMsgType) -> Self {
        KrbMessage {
            msg_type,
            cname: None,
            realm: None,
            sname: None,
            encryption: None,
            ticket_encryption: None,
            requested_etypes: Vec::new(),
            padata_types: Vec::new(),
            kdc_options: None,
            error_code: None,
            failed_request: None,
            e_text: None,
        }
    }

    /// True when this message's reply or ticket encryption is weak.
    pub fn uses_weak_encryption(&self) -> bool {
        self.encryption.is_some_and(is_weak_etype)
            || self.ticket_encryption.is_some_and(is_weak_etype)
    }
}

/// The name of an encryption type as Suricata prints it (`aes256-cts-hmac-sha1-96`, `rc4-hmac`).
pub fn etype_name(etype: i32) -> String {
    match etype {
        1 => "des-cbc-crc".into(),
        2 => "des-cbc-md4".into(),
        3 => "des-cbc-md5".into(),
        5 => "des3-cbc-md5".into(),
        7 => "des3-cbc-sha1".into(),
        16 => "des3-cbc-sha1-kd".into(),
        17 => "aes128-cts-hmac-sha1-96".into(),
        18 => "aes256-cts-hmac-sha1-96".into(),
        19 => "aes128-cts-hmac-sha256-128".into(),
        20 => "aes256-cts-hmac-sha384-192".into(),
        23 => "rc4-hmac".into(),
        24 => "rc4-hmac-exp".into(),
        25 => "camellia128-cts-cmac".into(),
        26 => "camellia256-cts-cmac".into(),
        -128 => "rc4-hmac-old".into(),
        -135 => "rc4-hmac-old-exp".into(),
        other => format!("unknown-{other}"),
    }
}

/// Whether an etype is weak: anything but AES and Camellia (Suricata's rule).
pub fn is_weak_etype(etype: i32) -> bool {
    !matches!(etype, 17 | 18 | 19 | 20 | 25 | 26)
}

/// The RFC 4120 name of a KRB-ERROR code.
pub fn error_code_name(code: i32) -> String {
    let name = match code {
        0 => "KDC_ERR_NONE",
        1 => "KDC_ERR_NAME_EXP",
        2 => "KDC_ERR_SERVICE_EXP",
        3 => "KDC_ERR_BAD_PVNO",
        4 => "KDC_ERR_C_OLD_MAST_KVNO",
        5 => "KDC_ERR_S_OLD_MAST_KVNO",
        6 => "KDC_ERR_C_PRINCIPAL_UNKNOWN",
        7 => "KDC_ERR_S_PRINCIPAL_UNKNOWN",
        8 => "KDC_ERR_PRINCIPAL_NOT_UNIQUE",
        9 => "KDC_ERR_NULL_KEY",
        10 => "KDC_ERR_CANNOT_POSTDATE",
        11 => "KDC_ERR_NEVER_VALID",
        12 => "KDC_ERR_POLICY",
        13 => "KDC_ERR_BADOPTION",
        14 => "KDC_ERR_ETYPE_NOSUPP",
        15 => "KDC_ERR_SUMTYPE_NOSUPP",
        16 => "KDC_ERR_PADATA_TYPE_NOSUPP",
        17 => "KDC_ERR_TRTYPE_NOSUPP",
        18 => "KDC_ERR_CLIENT_REVOKED",
        19 => "KDC_ERR_SERVICE_REVOKED",
        20 => "KDC_ERR_TGT_REVOKED",
        21 => "KDC_ERR_CLIENT_NOTYET",
        22 => "KDC_ERR_SERVICE_NOTYET",
        23 => "KDC_ERR_KEY_EXPIRED",
        24 => "KDC_ERR_PREAUTH_FAILED",
        25 => "KDC_ERR_PREAUTH_REQUIRED",
        26 => "KDC_ERR_SERVER_NOMATCH",
        27 => "KDC_ERR_MUST_USE_USER2USER",
        28 => "KDC_ERR_PATH_NOT_ACCEPTED",
        29 => "KDC_ERR_SVC_UNAVAILABLE",
        31 => "KRB_AP_ERR_BAD_INTEGRITY",
        32 => "KRB_AP_ERR_TKT_EXPIRED",
        33 => "KRB_AP_ERR_TKT_NYV",
        34 => "KRB_AP_ERR_REPEAT",
        35 => "KRB_AP_ERR_NOT_US",
        36 => "KRB_AP_ERR_BADMATCH",
        37 => "KRB_AP_ERR_SKEW",
        38 => "KRB_AP_ERR_BADADDR",
        39 => "KRB_AP_ERR_BADVERSION",
        40 => "KRB_AP_ERR_MSG_TYPE",
        41 => "KRB_AP_ERR_MODIFIED",
        42 => "KRB_AP_ERR_BADORDER",
        44 => "KRB_AP_ERR_BADKEYVER",
        45 => "KRB_AP_ERR_NOKEY",
        46 => "KRB_AP_ERR_MUT_FAIL",
        47 => "KRB_AP_ERR_BADDIRECTION",
        48 => "KRB_AP_ERR_METHOD",
        49 => "KRB_AP_ERR_BADSEQ",
        50 => "KRB_AP_ERR_INAPP_CKSUM",
        51 => "KRB_AP_PATH_NOT_ACCEPTED",
        52 => "KRB_ERR_RESPONSE_TOO_BIG",
        60 => "KRB_ERR_GENERIC",
        61 => "KRB_ERR_FIELD_TOOLONG",
        62 => "KDC_ERROR_CLIENT_NOT_TRUSTED",
        63 => "KDC_ERROR_KDC_NOT_TRUSTED",
        64 => "KDC_ERROR_INVALID_SIG",
        65 => "KDC_ERR_KEY_TOO_WEAK",
        66 => "KDC_ERR_CERTIFICATE_MISMATCH",
        67 => "KRB_AP_ERR_NO_TGT",
        68 => "KDC_ERR_WRONG_REALM",
        69 => "KRB_AP_ERR_USER_TO_USER_REQUIRED",
        70 => "KDC_ERR_CANT_VERIFY_CERTIFICATE",
        71 => "KDC_ERR_INVALID_CERTIFICATE",
        72 => "KDC_ERR_REVOKED_CERTIFICATE",
        73 => "KDC_ERR_REVOCATION_STATUS_UNKNOWN",
        74 => "KDC_ERR_REVOCATION_STATUS_UNAVAILABLE",
        75 => "KDC_ERR_CLIENT_NAME_MISMATCH",
        76 => "KDC_ERR_KDC_NAME_MISMATCH",
        _ => return format!("UNKNOWN_{code}"),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_suricata() {
        assert_eq!(etype_name(23), "rc4-hmac");
        assert_eq!(etype_name(18), "aes256-cts-hmac-sha1-96");
        assert!(is_weak_etype(23) && is_weak_etype(3) && !is_weak_etype(18));
        assert_eq!(error_code_name(25), "KDC_ERR_PREAUTH_REQUIRED");
        assert_eq!(error_code_name(7), "KDC_ERR_S_PRINCIPAL_UNKNOWN");
        assert_eq!(KrbMsgType::from_app_tag(30), Some(KrbMsgType::Error));
    }
}
