//! Identifiers: time-ordered, random, prefixed (`msg_…`, `rcpt_…`, `key_…`).
//!
//! The first 48 bits are the creation time in milliseconds, so ids sort by time and
//! new rows land at the right edge of a B-tree; the remaining 80 bits are random.

use rand::RngCore;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A new identifier `<prefix>_<26 chars>` (Crockford base32 of 48-bit ms time + 80 random bits).
pub fn new_id(prefix: &str) -> String {
    let millis = chrono::Utc::now().timestamp_millis().max(0) as u128;
    let mut random = [0u8; 10];
    rand::thread_rng().fill_bytes(&mut random);
    let mut value = millis << 80;
    for (i, b) in random.iter().enumerate() {
        value |= (*b as u128) << (8 * (9 - i));
    }
    let mut out = String::with_capacity(prefix.len() + 27);
    out.push_str(prefix);
    out.push('_');
    for i in (0..26).rev() {
        out.push(ALPHABET[((value >> (5 * i)) & 31) as usize] as char);
    }
    out
}

/// Random URL-safe secret of `len` characters from the base32 alphabet (5 bits each).
pub fn random_token(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[(*b & 31) as usize] as char)
        .collect()
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_unique_and_time_ordered() {
        let a = new_id("msg");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id("msg");
        assert!(a.starts_with("msg_") && a.len() == 30, "{a}");
        assert_ne!(a, b);
        assert!(a < b, "{a} !< {b}");
    }

    #[test]
    fn tokens_have_requested_length() {
        let t = random_token(32);
        assert_eq!(t.len(), 32);
        assert!(t.bytes().all(|c| ALPHABET.contains(&c)));
    }
    #[test]
    fn constant_time_eq_compares_contents_and_lengths() {
        assert!(constant_time_eq(b"ab", b"ab"));
        assert!(!constant_time_eq(b"ab", b"ac"));
        assert!(!constant_time_eq(b"ab", b"abc"));
    }
}
