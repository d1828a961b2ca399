//! The self-signed certificate bmcd makes on its first start: an ECDSA P-256
//! key from ring and a minimal X.509 v3 certificate (subject and issuer
//! `CN=Redfin BMC`, the host's names and addresses as subjectAltName, valid
//! from a day ago with no well-defined end). Written in DER by hand: the
//! certificate has one fixed shape, and this replaced the `rcgen` crate
//! (docs/performance.md).
//!
//! The same writer makes the PKCS#10 certificate signing requests of
//! `CertificateService.GenerateCSR` (RFC 2986): a new P-256 key, the subject
//! the client asked for, and its alternative names as an extension request.

use std::net::IpAddr;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

/// ecdsa-with-SHA256 (1.2.840.10045.4.3.2).
const ECDSA_WITH_SHA256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
/// id-ecPublicKey (1.2.840.10045.2.1).
const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// prime256v1 (1.2.840.10045.3.1.7).
const PRIME256V1: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// commonName (2.5.4.3).
const COMMON_NAME: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x03];
/// subjectAltName (2.5.29.17).
const SUBJECT_ALT_NAME: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x11];
/// countryName (2.5.4.6).
const COUNTRY: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x06];
/// localityName (2.5.4.7).
const LOCALITY: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x07];
/// stateOrProvinceName (2.5.4.8).
const STATE: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x08];
/// organizationName (2.5.4.10).
const ORGANIZATION: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x0a];
/// organizationalUnitName (2.5.4.11).
const ORGANIZATIONAL_UNIT: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x0b];
/// emailAddress (1.2.840.113549.1.9.1).
const EMAIL_ADDRESS: &[u8] = &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];
/// extensionRequest (1.2.840.113549.1.9.14).
const EXTENSION_REQUEST: &[u8] = &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e];

/// One DER element: tag, length, contents.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

/// A BIT STRING with no unused bits.
fn bit_string(bytes: &[u8]) -> Vec<u8> {
    let mut c = vec![0u8];
    c.extend_from_slice(bytes);
    tlv(0x03, &c)
}

/// `CN=name`.
fn name(cn: &str) -> Vec<u8> {
    distinguished_name(&[(COMMON_NAME, 0x0c, cn)])
}

/// A name of one attribute per RDN: (type, string tag, value).
fn distinguished_name(attributes: &[(&[u8], u8, &str)]) -> Vec<u8> {
    let rdns: Vec<Vec<u8>> = attributes
        .iter()
        .map(|(oid, tag, value)| tlv(0x31, &sequence(&[oid, &tlv(*tag, value.as_bytes())])))
        .collect();
    tlv(0x30, &rdns.concat())
}

/// UTCTime `YYMMDDHHMMSSZ` of a Unix time (years 1950-2049).
fn utc_time(unix: i64) -> Vec<u8> {
    // rfc3339 gives YYYY-MM-DDTHH:MM:SS+00:00.
    let t = crate::time::rfc3339(unix);
    let digits: String = t.chars().take(19).filter(char::is_ascii_digit).collect();
    let text = format!("{}Z", digits.get(2..).unwrap_or("700101000000"));
    tlv(0x17, text.as_bytes())
}

/// The subjectAltName extension: DNS names and IP addresses.
fn subject_alt_names(names: &[String]) -> Vec<u8> {
    let mut general_names = Vec::new();
    for n in names {
        match n.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) => general_names.extend(tlv(0x87, &a.octets())),
            Ok(IpAddr::V6(a)) => general_names.extend(tlv(0x87, &a.octets())),
            Err(_) if !n.is_empty() && n.is_ascii() => general_names.extend(tlv(0x82, n.as_bytes())),
            Err(_) => {}
        }
    }
    let value = tlv(0x04, &tlv(0x30, &general_names));
    sequence(&[SUBJECT_ALT_NAME, &value])
}

pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A new key and a self-signed certificate for `names`, both PEM:
/// (certificate, PKCS#8 private key).
pub fn self_signed(names: &[String]) -> Result<(String, String), String> {
    self_signed_as("Redfin BMC", names)
}

/// The same, with `common_name` as the subject (and issuer) common name.
pub fn self_signed_as(common_name: &str, names: &[String]) -> Result<(String, String), String> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
        .map_err(|_| "cannot make a key".to_owned())?;
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| "cannot read the new key".to_owned())?;

    let mut serial = [0u8; 16];
    rng.fill(&mut serial).map_err(|_| "no randomness".to_owned())?;
    serial[0] &= 0x7f; // positive
    serial[0] |= 0x40; // and without a leading zero byte

    let algorithm = sequence(&[ECDSA_WITH_SHA256]);
    let subject = name(common_name);
    let now = crate::time::now_unix();
    // No well-defined expiration (RFC 5280, 4.1.2.5).
    let validity = sequence(&[&utc_time(now - 86_400), &tlv(0x18, b"99991231235959Z")]);
    let spki = sequence(&[
        &sequence(&[EC_PUBLIC_KEY, PRIME256V1]),
        &bit_string(key.public_key().as_ref()),
    ]);
    let extensions = tlv(0xa3, &sequence(&[&subject_alt_names(names)]));
    let tbs = sequence(&[
        &tlv(0xa0, &tlv(0x02, &[2])), // v3
        &tlv(0x02, &serial),
        &algorithm,
        &subject,
        &validity,
        &subject,
        &spki,
        &extensions,
    ]);
    let signature = key
        .sign(&rng, &tbs)
        .map_err(|_| "cannot sign the certificate".to_owned())?;
    let certificate = sequence(&[&tbs, &algorithm, &bit_string(signature.as_ref())]);
    Ok((
        pem("CERTIFICATE", &certificate),
        pem("PRIVATE KEY", pkcs8.as_ref()),
    ))
}

/// The subject of a certificate signing request (GenerateCSR's parameters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsrSubject {
    pub common_name: String,
    pub alternative_names: Vec<String>,
    pub organization: Option<String>,
    pub organizational_unit: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    /// Two letters (ISO 3166), a PrintableString.
    pub country: Option<String>,
    pub email: Option<String>,
}

/// A new P-256 key and a certificate signing request for it, both PEM:
/// (CSR, PKCS#8 private key).
pub fn csr(subject: &CsrSubject) -> Result<(String, String), String> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
        .map_err(|_| "cannot make a key".to_owned())?;
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| "cannot read the new key".to_owned())?;
    let mut attributes: Vec<(&[u8], u8, &str)> = Vec::new();
    if let Some(c) = &subject.country {
        attributes.push((COUNTRY, 0x13, c));
    }
    if let Some(st) = &subject.state {
        attributes.push((STATE, 0x0c, st));
    }
    if let Some(l) = &subject.city {
        attributes.push((LOCALITY, 0x0c, l));
    }
    if let Some(o) = &subject.organization {
        attributes.push((ORGANIZATION, 0x0c, o));
    }
    if let Some(ou) = &subject.organizational_unit {
        attributes.push((ORGANIZATIONAL_UNIT, 0x0c, ou));
    }
    attributes.push((COMMON_NAME, 0x0c, &subject.common_name));
    if let Some(e) = &subject.email {
        attributes.push((EMAIL_ADDRESS, 0x16, e));
    }
    let spki = sequence(&[
        &sequence(&[EC_PUBLIC_KEY, PRIME256V1]),
        &bit_string(key.public_key().as_ref()),
    ]);
    let mut requested = Vec::new();
    if !subject.alternative_names.is_empty() {
        let extensions = sequence(&[&subject_alt_names(&subject.alternative_names)]);
        requested = sequence(&[EXTENSION_REQUEST, &tlv(0x31, &extensions)]);
    }
    let info = sequence(&[
        &tlv(0x02, &[0]), // v1
        &distinguished_name(&attributes),
        &spki,
        &tlv(0xa0, &requested),
    ]);
    let signature = key
        .sign(&rng, &info)
        .map_err(|_| "cannot sign the request".to_owned())?;
    let request = sequence(&[
        &info,
        &sequence(&[ECDSA_WITH_SHA256]),
        &bit_string(signature.as_ref()),
    ]);
    Ok((
        pem("CERTIFICATE REQUEST", &request),
        pem("PRIVATE KEY", pkcs8.as_ref()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_use_the_long_form_from_128() {
        assert_eq!(tlv(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        let long = tlv(0x04, &[0u8; 200]);
        assert_eq!(&long[..3], &[0x04, 0x81, 200]);
        let longer = tlv(0x04, &vec![0u8; 300]);
        assert_eq!(&longer[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }

    #[test]
    fn times_and_names_are_encoded() {
        assert_eq!(utc_time(0), tlv(0x17, b"700101000000Z"));
        assert_eq!(utc_time(1_795_407_851), tlv(0x17, b"261123042411Z"));
        let san = subject_alt_names(&["localhost".into(), "127.0.0.1".into(), "::1".into()]);
        let localhost = tlv(0x82, b"localhost");
        assert!(san.windows(localhost.len()).any(|w| w == localhost.as_slice()));
        assert!(san.windows(6).any(|w| w == [0x87, 4, 127, 0, 0, 1]));
    }

    #[test]
    fn the_certificate_is_a_signed_p256_certificate() {
        let (cert, key) = self_signed(&["bmc.example".into(), "192.0.2.7".into()]).expect("made");
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let body: String = cert.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = B64.decode(body).expect("base64");
        assert_eq!(der[0], 0x30);
        let dns = tlv(0x82, b"bmc.example");
        assert!(der.windows(dns.len()).any(|w| w == dns.as_slice()));
        assert!(der.windows(6).any(|w| w == [0x87, 4, 192, 0, 2, 7]));
    }

    #[test]
    fn the_request_carries_subject_key_and_names() {
        let subject = CsrSubject {
            common_name: "bmc.example".into(),
            alternative_names: vec!["bmc.example".into(), "192.0.2.7".into()],
            organization: Some("Redfin".into()),
            country: Some("DE".into()),
            ..CsrSubject::default()
        };
        let (csr_pem, key) = csr(&subject).expect("made");
        assert!(csr_pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----\n"));
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let body: String = csr_pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = B64.decode(body).expect("base64");
        let cn = tlv(0x0c, b"bmc.example");
        assert!(der.windows(cn.len()).any(|w| w == cn.as_slice()));
        let country = tlv(0x13, b"DE");
        assert!(der.windows(country.len()).any(|w| w == country.as_slice()));
        assert!(der
            .windows(EXTENSION_REQUEST.len())
            .any(|w| w == EXTENSION_REQUEST));
        // The signature verifies with the request's own key.
        let mut outer = super::super::der::Der::new(&der);
        let req = outer.expect(0x30).expect("request");
        let mut r = super::super::der::Der::new(req.contents);
        let info = r.expect(0x30).expect("info");
        r.expect(0x30).expect("algorithm");
        let sig = r.expect(0x03).expect("signature");
        let mut i = super::super::der::Der::new(info.contents);
        i.expect(0x02).expect("version");
        i.expect(0x30).expect("subject");
        let spki = i.expect(0x30).expect("spki");
        let mut s = super::super::der::Der::new(spki.contents);
        s.expect(0x30).expect("alg");
        let point = s.expect(0x03).expect("key");
        let pk = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_ASN1,
            &point.contents[1..],
        );
        pk.verify(info.encoded, &sig.contents[1..])
            .expect("signature verifies");
    }
}
