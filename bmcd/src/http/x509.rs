//! The self-signed certificate bmcd makes on its first start: an ECDSA P-256
//! key from ring and a minimal X.509 v3 certificate (subject and issuer
//! `CN=Redfin BMC`, the host's names and addresses as subjectAltName, valid
//! from a day ago with no well-defined end). Written in DER by hand: the
//! certificate has one fixed shape, and this replaced the `rcgen` crate
//! (docs/performance.md).

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
    let atv = sequence(&[COMMON_NAME, &tlv(0x0c, cn.as_bytes())]);
    sequence(&[&tlv(0x31, &atv)])
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

fn pem(label: &str, der: &[u8]) -> String {
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
    let subject = name("Redfin BMC");
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
}
