//! A small DER reader and the few X.509 fields Redfish's `Certificate`
//! resource shows: serial number, signature algorithm, issuer and subject,
//! validity, the subject public key info, key usage and alternative names.
//! Signatures are not checked here (rustls does that for client certificates,
//! and a server certificate is checked against its private key).

use std::net::{Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerError(pub &'static str);

impl std::fmt::Display for DerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed certificate: {}", self.0)
    }
}

impl std::error::Error for DerError {}

/// Reads DER elements one after the other.
pub struct Der<'a> {
    data: &'a [u8],
}

/// One element: its tag, its contents and its whole encoding.
pub struct Element<'a> {
    pub tag: u8,
    pub contents: &'a [u8],
    pub encoded: &'a [u8],
}

pub const SEQUENCE: u8 = 0x30;
pub const SET: u8 = 0x31;
pub const INTEGER: u8 = 0x02;
pub const BIT_STRING: u8 = 0x03;
pub const OCTET_STRING: u8 = 0x04;
pub const OID: u8 = 0x06;
pub const BOOLEAN: u8 = 0x01;

impl<'a> Der<'a> {
    pub fn new(data: &'a [u8]) -> Der<'a> {
        Der { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn peek_tag(&self) -> Option<u8> {
        self.data.first().copied()
    }

    pub fn element(&mut self) -> Result<Element<'a>, DerError> {
        let data = self.data;
        let (&tag, rest) = data.split_first().ok_or(DerError("truncated"))?;
        if tag & 0x1f == 0x1f {
            return Err(DerError("multi-byte tag"));
        }
        let (&first, rest) = rest.split_first().ok_or(DerError("truncated"))?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return Err(DerError("bad length"));
            }
            let (bytes, rest) = rest.split_at(n);
            let len = bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, rest)
        };
        if rest.len() < len {
            return Err(DerError("truncated"));
        }
        let header = data.len() - rest.len();
        let (contents, after) = rest.split_at(len);
        self.data = after;
        Ok(Element {
            tag,
            contents,
            encoded: &data[..header + len],
        })
    }

    /// The next element, which must carry `tag`.
    pub fn expect(&mut self, tag: u8) -> Result<Element<'a>, DerError> {
        let e = self.element()?;
        if e.tag == tag {
            Ok(e)
        } else {
            Err(DerError("unexpected element"))
        }
    }

    /// The next element if it carries `tag`.
    pub fn optional(&mut self, tag: u8) -> Result<Option<Element<'a>>, DerError> {
        if self.peek_tag() == Some(tag) {
            self.element().map(Some)
        } else {
            Ok(None)
        }
    }
}

/// Dotted form of an OBJECT IDENTIFIER's contents.
pub fn oid_string(contents: &[u8]) -> String {
    let mut parts: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for b in contents {
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if parts.is_empty() {
                let first = (value / 40).min(2);
                parts.push(first);
                parts.push(value - first * 40);
            } else {
                parts.push(value);
            }
            value = 0;
        }
    }
    parts.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
}

/// The text of a directory string (UTF8String, PrintableString, IA5String,
/// TeletexString read as Latin-1, BMPString).
fn directory_string(e: &Element<'_>) -> Option<String> {
    match e.tag {
        0x0c | 0x13 | 0x16 => std::str::from_utf8(e.contents).ok().map(str::to_owned),
        0x14 => Some(e.contents.iter().map(|b| char::from(*b)).collect()),
        0x1e => {
            let units: Vec<u16> = e
                .contents
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// A distinguished name: its attributes in the certificate's order, by short name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Name {
    pub attributes: Vec<(String, String)>,
}

fn attribute_name(oid: &str) -> String {
    match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "1.2.840.113549.1.9.1" => "emailAddress",
        "0.9.2342.19200300.100.1.25" => "DC",
        other => other,
    }
    .to_owned()
}

impl Name {
    fn parse(contents: &[u8]) -> Result<Name, DerError> {
        let mut name = Name::default();
        let mut rdns = Der::new(contents);
        while !rdns.is_empty() {
            let set = rdns.expect(SET)?;
            let mut atvs = Der::new(set.contents);
            while !atvs.is_empty() {
                let atv = atvs.expect(SEQUENCE)?;
                let mut r = Der::new(atv.contents);
                let oid = oid_string(r.expect(OID)?.contents);
                let value = r.element()?;
                if let Some(text) = directory_string(&value) {
                    name.attributes.push((attribute_name(&oid), text));
                }
            }
        }
        Ok(name)
    }

    /// The first value of an attribute (`CN`, `O`...).
    pub fn get(&self, short: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == short)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of an attribute.
    pub fn all(&self, short: &str) -> Vec<&str> {
        self.attributes
            .iter()
            .filter(|(k, _)| k == short)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// `CN=..., O=...` in the certificate's order.
    pub fn display(&self) -> String {
        self.attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) as Unix time.
fn time(e: &Element<'_>) -> Result<i64, DerError> {
    let text = std::str::from_utf8(e.contents).map_err(|_| DerError("bad time"))?;
    let digits = text.strip_suffix('Z').ok_or(DerError("time not in UTC"))?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DerError("bad time"));
    }
    let (year, rest) = match (e.tag, digits.len()) {
        (0x17, 12) => {
            let yy: i64 = digits[..2].parse().map_err(|_| DerError("bad time"))?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &digits[2..])
        }
        (0x18, 14) => (
            digits[..4].parse().map_err(|_| DerError("bad time"))?,
            &digits[4..],
        ),
        _ => return Err(DerError("bad time")),
    };
    let n = |i: usize| rest[i..i + 2].parse::<u32>().unwrap_or(99);
    crate::time::unix_from_civil(year, n(0), n(2), n(4), n(6), n(8)).ok_or(DerError("bad time"))
}

const KEY_USAGE_BITS: [&str; 9] = [
    "DigitalSignature",
    "NonRepudiation",
    "KeyEncipherment",
    "DataEncipherment",
    "KeyAgreement",
    "KeyCertSign",
    "CRLSigning",
    "EncipherOnly",
    "DecipherOnly",
];

/// Extended key usages by OID, in Redfish's `KeyUsage` words.
const EXTENDED_KEY_USAGES: [(&str, &str); 6] = [
    ("1.3.6.1.5.5.7.3.1", "ServerAuthentication"),
    ("1.3.6.1.5.5.7.3.2", "ClientAuthentication"),
    ("1.3.6.1.5.5.7.3.3", "CodeSigning"),
    ("1.3.6.1.5.5.7.3.4", "EmailProtection"),
    ("1.3.6.1.5.5.7.3.8", "Timestamping"),
    ("1.3.6.1.5.5.7.3.9", "OCSPSigning"),
];

fn extended_key_usage(oid: &str) -> Option<&'static str> {
    EXTENDED_KEY_USAGES
        .iter()
        .find(|(o, _)| *o == oid)
        .map(|(_, name)| *name)
}

/// Where a usage comes in Redfish's `KeyUsage` enumeration, so that the list
/// does not depend on the order of the certificate's extensions.
fn usage_rank(usage: &str) -> usize {
    KEY_USAGE_BITS
        .iter()
        .copied()
        .chain(EXTENDED_KEY_USAGES.iter().map(|(_, name)| *name))
        .position(|u| u == usage)
        .unwrap_or(usize::MAX)
}

/// What bmcd shows of an X.509 certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The serial number's bytes (big-endian, as encoded).
    pub serial: Vec<u8>,
    /// Dotted OID of the signature algorithm.
    pub signature_algorithm: String,
    pub issuer: Name,
    pub subject: Name,
    pub not_before: i64,
    pub not_after: i64,
    /// The whole SubjectPublicKeyInfo element.
    pub spki: Vec<u8>,
    /// Dotted OID of the public key's algorithm (and its curve, if named).
    pub public_key_algorithm: String,
    /// Key usage and extended key usage, in Redfish's `KeyUsage` words.
    pub key_usage: Vec<&'static str>,
    /// DNS names, IP addresses and e-mail addresses of subjectAltName.
    pub alt_names: Vec<String>,
}

impl CertificateInfo {
    pub fn parse(der: &[u8]) -> Result<CertificateInfo, DerError> {
        let mut outer = Der::new(der);
        let cert = outer.expect(SEQUENCE)?;
        if !outer.is_empty() {
            return Err(DerError("trailing data"));
        }
        let mut c = Der::new(cert.contents);
        let tbs = c.expect(SEQUENCE)?;
        let mut t = Der::new(tbs.contents);
        t.optional(0xa0)?; // version
        let serial = t.expect(INTEGER)?.contents.to_vec();
        let alg = t.expect(SEQUENCE)?;
        let signature_algorithm = oid_string(Der::new(alg.contents).expect(OID)?.contents);
        let issuer = Name::parse(t.expect(SEQUENCE)?.contents)?;
        let validity = t.expect(SEQUENCE)?;
        let mut v = Der::new(validity.contents);
        let not_before = time(&v.element()?)?;
        let not_after = time(&v.element()?)?;
        let subject = Name::parse(t.expect(SEQUENCE)?.contents)?;
        let spki = t.expect(SEQUENCE)?;
        let mut s = Der::new(spki.contents);
        let key_alg = s.expect(SEQUENCE)?;
        let mut k = Der::new(key_alg.contents);
        let mut public_key_algorithm = oid_string(k.expect(OID)?.contents);
        if let Some(curve) = k.optional(OID)? {
            public_key_algorithm = format!("{public_key_algorithm} {}", oid_string(curve.contents));
        }
        s.expect(BIT_STRING)?;
        t.optional(0x81)?;
        t.optional(0x82)?;
        let mut info = CertificateInfo {
            serial,
            signature_algorithm,
            issuer,
            subject,
            not_before,
            not_after,
            spki: spki.encoded.to_vec(),
            public_key_algorithm,
            key_usage: Vec::new(),
            alt_names: Vec::new(),
        };
        if let Some(ext) = t.optional(0xa3)? {
            let list = Der::new(ext.contents).expect(SEQUENCE)?;
            let mut exts = Der::new(list.contents);
            while !exts.is_empty() {
                let one = exts.expect(SEQUENCE)?;
                let mut e = Der::new(one.contents);
                let oid = oid_string(e.expect(OID)?.contents);
                e.optional(BOOLEAN)?;
                let value = e.expect(OCTET_STRING)?.contents;
                info.extension(&oid, value)?;
            }
        }
        info.key_usage.sort_by_key(|u| usage_rank(u));
        info.key_usage.dedup();
        // The signature algorithm and value follow; their shape is rustls's concern.
        c.expect(SEQUENCE)?;
        c.expect(BIT_STRING)?;
        Ok(info)
    }

    fn extension(&mut self, oid: &str, value: &[u8]) -> Result<(), DerError> {
        match oid {
            "2.5.29.15" => {
                let bits = Der::new(value).expect(BIT_STRING)?.contents;
                let bytes = bits.get(1..).unwrap_or(&[]);
                for (i, name) in KEY_USAGE_BITS.iter().enumerate() {
                    if bytes.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0) {
                        self.key_usage.push(name);
                    }
                }
            }
            "2.5.29.37" => {
                let list = Der::new(value).expect(SEQUENCE)?;
                let mut r = Der::new(list.contents);
                while !r.is_empty() {
                    if let Some(u) = extended_key_usage(&oid_string(r.expect(OID)?.contents)) {
                        self.key_usage.push(u);
                    }
                }
            }
            "2.5.29.17" => {
                let list = Der::new(value).expect(SEQUENCE)?;
                let mut r = Der::new(list.contents);
                while !r.is_empty() {
                    let g = r.element()?;
                    let name = match (g.tag, g.contents.len()) {
                        (0x81 | 0x82, _) => std::str::from_utf8(g.contents).ok().map(str::to_owned),
                        (0x87, 4) => <[u8; 4]>::try_from(g.contents)
                            .ok()
                            .map(|a| Ipv4Addr::from(a).to_string()),
                        (0x87, 16) => <[u8; 16]>::try_from(g.contents)
                            .ok()
                            .map(|a| Ipv6Addr::from(a).to_string()),
                        _ => None,
                    };
                    self.alt_names.extend(name);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// `AA:BB:...`: how Redfish services usually print serial numbers and fingerprints.
pub fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lengths_and_refuses_truncation() {
        let mut d = Der::new(&[0x04, 0x02, 0xaa, 0xbb, 0x05, 0x00]);
        let e = d.expect(OCTET_STRING).expect("octets");
        assert_eq!(e.contents, &[0xaa, 0xbb]);
        assert_eq!(e.encoded.len(), 4);
        assert_eq!(d.element().expect("null").tag, 0x05);
        assert!(d.is_empty());
        assert!(Der::new(&[0x04, 0x05, 0x00]).element().is_err());
        assert!(Der::new(&[0x04, 0x80]).element().is_err());
        let mut long = vec![0x04, 0x81, 200];
        long.extend([0u8; 200]);
        assert_eq!(Der::new(&long).element().expect("long").contents.len(), 200);
    }

    #[test]
    fn oids_print_dotted() {
        assert_eq!(
            oid_string(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]),
            "1.2.840.10045.4.3.2"
        );
        assert_eq!(oid_string(&[0x55, 0x04, 0x03]), "2.5.4.3");
    }

    #[test]
    fn times_are_utc_seconds() {
        let utc = Element {
            tag: 0x17,
            contents: b"261123042411Z",
            encoded: &[],
        };
        assert_eq!(time(&utc), Ok(1_795_407_851));
        let generalized = Element {
            tag: 0x18,
            contents: b"99991231235959Z",
            encoded: &[],
        };
        assert_eq!(time(&generalized), Ok(253_402_300_799));
        let local = Element {
            tag: 0x17,
            contents: b"261123042411",
            encoded: &[],
        };
        assert!(time(&local).is_err());
    }

    #[test]
    fn the_self_signed_certificate_reads_back() {
        let (pem, _) =
            super::super::x509::self_signed(&["bmc.example".into(), "192.0.2.7".into()]).expect("made");
        let der = rustls_pki_types::pem::PemObject::from_pem_slice(pem.as_bytes())
            .map(|c: rustls_pki_types::CertificateDer<'static>| c.to_vec())
            .expect("pem");
        let info = CertificateInfo::parse(&der).expect("parses");
        assert_eq!(info.subject.get("CN"), Some("Redfin BMC"));
        assert_eq!(info.issuer, info.subject);
        assert_eq!(info.signature_algorithm, "1.2.840.10045.4.3.2");
        assert_eq!(info.public_key_algorithm, "1.2.840.10045.2.1 1.2.840.10045.3.1.7");
        assert_eq!(info.not_after, 253_402_300_799);
        assert!(info.not_before < crate::time::now_unix());
        assert_eq!(
            info.alt_names,
            vec!["bmc.example".to_owned(), "192.0.2.7".to_owned()]
        );
        assert_eq!(info.serial.len(), 16);
        assert!(CertificateInfo::parse(&der[..der.len() - 1]).is_err());
    }
}
