//! Salted password hashes (PBKDF2-HMAC-SHA256 from `ring`), in a PHC-like string:
//! `$pbkdf2-sha256$i=<iterations>$<salt b64>$<hash b64>`.

use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine;
use ring::pbkdf2;
use ring::rand::{SecureRandom, SystemRandom};

/// Work factor for new hashes. Verification is CPU-bound (tens of ms) and runs on
/// a blocking thread; successful Basic logins are cached by the authority.
pub const ITERATIONS: u32 = 100_000;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;

pub fn hash(password: &str, rng: &SystemRandom) -> Result<String, ring::error::Unspecified> {
    hash_with(password, rng, ITERATIONS)
}

fn hash_with(
    password: &str,
    rng: &SystemRandom,
    iterations: u32,
) -> Result<String, ring::error::Unspecified> {
    let mut salt = [0u8; SALT_LEN];
    rng.fill(&mut salt)?;
    let n = NonZeroU32::new(iterations).ok_or(ring::error::Unspecified)?;
    let mut out = [0u8; HASH_LEN];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        n,
        &salt,
        password.as_bytes(),
        &mut out,
    );
    Ok(format!(
        "$pbkdf2-sha256$i={iterations}${}${}",
        B64.encode(salt),
        B64.encode(out)
    ))
}

/// Checks `password` against a stored hash in constant time. A malformed hash
/// never verifies.
pub fn verify(password: &str, stored: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some(""), Some("pbkdf2-sha256"), Some(iter), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let Some(iterations) = iter
        .strip_prefix("i=")
        .and_then(|i| i.parse::<u32>().ok())
        .and_then(NonZeroU32::new)
    else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (B64.decode(salt), B64.decode(hash)) else {
        return false;
    };
    pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        password.as_bytes(),
        &hash,
    )
    .is_ok()
}

/// A random password of `len` characters from an unambiguous alphabet.
pub fn generate(rng: &SystemRandom, len: usize) -> Result<String, ring::error::Unspecified> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut bytes = vec![0u8; len];
    rng.fill(&mut bytes)?;
    // 256 % 57 != 0 gives a slight bias; at 20 characters the password still
    // carries over 110 bits of entropy.
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_only_the_right_password() {
        let rng = SystemRandom::new();
        let h = hash_with("correct horse", &rng, 1000).expect("hash");
        assert!(h.starts_with("$pbkdf2-sha256$i=1000$"));
        assert!(verify("correct horse", &h));
        assert!(!verify("correct horsf", &h));
        assert!(!h.contains("correct"));
    }

    #[test]
    fn same_password_gets_different_salts() {
        let rng = SystemRandom::new();
        let a = hash_with("pw", &rng, 1000).expect("hash");
        let b = hash_with("pw", &rng, 1000).expect("hash");
        assert_ne!(a, b);
    }

    #[test]
    fn malformed_hashes_never_verify() {
        for bad in [
            "",
            "$",
            "plain",
            "$pbkdf2-sha256$i=0$AA$AA",
            "$pbkdf2-sha256$i=x$AA$AA",
            "$md5$i=1$AA$AA",
        ] {
            assert!(!verify("", bad), "{bad}");
        }
    }

    #[test]
    fn generated_passwords_are_random_and_long() {
        let rng = SystemRandom::new();
        let a = generate(&rng, 20).expect("gen");
        let b = generate(&rng, 20).expect("gen");
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
    }
}
