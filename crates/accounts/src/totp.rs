//! Time-based one-time passwords (RFC 6238 over RFC 4226): HMAC-SHA1, 30-second steps,
//! 6 digits, one step of clock drift either way, each step usable once. The secret and
//! the recovery codes' hashes live sealed under the tenant key in the user's record.

use postwerk_core::id::random_token;
use ring::{digest, hmac, rand::SecureRandom as _};
use serde::{Deserialize, Serialize};

/// Seconds per step.
pub const STEP: i64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Recovery codes made at enrolment.
pub const RECOVERY_CODES: usize = 10;

/// A user's second factor (stored sealed).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SecondFactor {
    /// The shared secret (20 random bytes).
    pub secret: Vec<u8>,
    /// Confirmed with a first code: required at sign-in from then on.
    pub confirmed: bool,
    /// SHA-256 (hex) of each unused recovery code.
    pub recovery: Vec<String>,
    /// The last step a code was accepted for (codes of it or earlier are refused).
    pub last_step: i64,
}

impl SecondFactor {
    /// A new, unconfirmed factor with a random secret.
    pub fn generate() -> Self {
        let mut secret = vec![0u8; 20];
        ring::rand::SystemRandom::new()
            .fill(&mut secret)
            .expect("the system's random number generator works");
        SecondFactor {
            secret,
            confirmed: false,
            recovery: Vec::new(),
            last_step: 0,
        }
    }

    /// The secret in base32 (RFC 4648, no padding), as authenticator apps take it.
    pub fn secret_base32(&self) -> String {
        base32(&self.secret)
    }

    /// The `otpauth://` URI for an authenticator app (and its QR code).
    pub fn uri(&self, account: &str) -> String {
        let label: String = url::form_urlencoded::byte_serialize(account.as_bytes()).collect();
        format!(
            "otpauth://totp/Postwerk:{label}?secret={}&issuer=Postwerk&algorithm=SHA1&digits={DIGITS}&period={STEP}",
            self.secret_base32()
        )
    }

    /// Checks `code` at unix time `now_s`; a match consumes its step.
    pub fn accept_code(&mut self, code: &str, now_s: i64) -> bool {
        let code = code.trim();
        if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        let current = now_s.div_euclid(STEP);
        for step in [current - 1, current, current + 1] {
            if step > self.last_step && code_at(&self.secret, step) == code {
                self.last_step = step;
                return true;
            }
        }
        false
    }

    /// Makes new recovery codes; returns them (shown once).
    pub fn new_recovery_codes(&mut self) -> Vec<String> {
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| random_token(10)).collect();
        self.recovery = codes.iter().map(|c| recovery_hash(c)).collect();
        codes
    }

    /// Checks a recovery code; a match is used up.
    pub fn accept_recovery_code(&mut self, code: &str) -> bool {
        let hash = recovery_hash(code.trim());
        let before = self.recovery.len();
        self.recovery.retain(|h| *h != hash);
        self.recovery.len() < before
    }
}

fn recovery_hash(code: &str) -> String {
    postwerk_core::hex::encode(digest::digest(&digest::SHA256, code.as_bytes()).as_ref())
}

/// The code of `step` (RFC 4226 dynamic truncation).
fn code_at(secret: &[u8], step: i64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = hmac::sign(&key, &step.to_be_bytes());
    let mac = mac.as_ref();
    let offset = usize::from(mac[19] & 0x0f);
    let binary = u32::from_be_bytes([
        mac[offset],
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]) & 0x7fff_ffff;
    format!(
        "{:0width$}",
        binary % 10u32.pow(DIGITS),
        width = DIGITS as usize
    )
}

/// Base32 without padding (RFC 4648 §6).
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 (the last 6 of the 8-digit codes).
    #[test]
    fn matches_the_rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(code_at(secret, time / STEP), code, "t={time}");
        }
        assert_eq!(
            base32(b"12345678901234567890"),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
        assert_eq!(base32(b"f"), "MY");
    }

    #[test]
    fn a_code_is_accepted_once_within_one_step_of_drift() {
        let mut f = SecondFactor::generate();
        let now = 1_700_000_000;
        let code = code_at(&f.secret, now / STEP - 1);
        assert!(f.accept_code(&code, now), "one step late is fine");
        assert!(!f.accept_code(&code, now), "but only once");
        let old = code_at(&f.secret, now / STEP - 3);
        assert!(!f.accept_code(&old, now), "too old");
        assert!(!f.accept_code("12345", now) && !f.accept_code("abcdef", now));
        assert!(
            f.uri("a b@example.org")
                .starts_with("otpauth://totp/Postwerk:a+b%40example.org?secret=")
        );
    }

    #[test]
    fn recovery_codes_work_once() {
        let mut f = SecondFactor::generate();
        let codes = f.new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert!(f.accept_recovery_code(&codes[3]));
        assert!(!f.accept_recovery_code(&codes[3]));
        assert!(!f.accept_recovery_code("not-a-code"));
        assert_eq!(f.recovery.len(), RECOVERY_CODES - 1);
    }
}
