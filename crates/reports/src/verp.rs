//! VERP return paths (`b+<recipient id>-<tag>@<bounce domain>`): the envelope
//! sender of every delivery names the recipient without containing the address, and
//! the tag (an HMAC under the tenant's VERP key) stops forged bounces.

/// The local part's prefix.
const PREFIX: &str = "b+";

/// The return path for `recipient_id` with its `tag`, at `domain`.
pub fn address(recipient_id: &str, tag: &str, domain: &str) -> String {
    format!("{PREFIX}{recipient_id}-{tag}@{domain}")
}

/// The recipient id and tag of a VERP local part (lower-cased: some servers change
/// the case of local parts); `None` if it is not one.
pub fn parse_local(local: &str) -> Option<(String, String)> {
    let rest = local.get(..PREFIX.len())?;
    if !rest.eq_ignore_ascii_case(PREFIX) {
        return None;
    }
    let (id, tag) = local[PREFIX.len()..].rsplit_once('-')?;
    let well_formed = id.len() > 5
        && id.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("rcpt_"))
        && id[5..].bytes().all(|b| b.is_ascii_alphanumeric())
        && !tag.is_empty()
        && tag.bytes().all(|b| b.is_ascii_hexdigit());
    well_formed.then(|| (id.to_ascii_lowercase(), tag.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let a = address("rcpt_01abc", "0a1b2c3d4e", "bounces.example.com");
        assert_eq!(a, "b+rcpt_01abc-0a1b2c3d4e@bounces.example.com");
        let local = a.split('@').next().unwrap();
        let want = Some(("rcpt_01abc".to_string(), "0a1b2c3d4e".to_string()));
        assert_eq!(parse_local(local), want);
        assert_eq!(parse_local(&local.to_ascii_uppercase()), want);
        for bad in [
            "",
            "b+",
            "b+rcpt_01abc",
            "b+msg_01-0a",
            "b+rcpt_01-xyz",
            "x+rcpt_01-0a",
            "b+rcpt_-0a",
            // A multi-byte character across byte 5 of the id used to panic the
            // inbound MX's RCPT check.
            "b+rcpt\u{e9}01-0a",
            "b+rcp\u{e9}_01-0a",
        ] {
            assert_eq!(parse_local(bad), None, "{bad}");
        }
    }
}
