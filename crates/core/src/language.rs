//! Choosing a page's language from the browser's `Accept-Language` (RFC 9110
//! §12.5.4), for every door that writes pages for people.

/// The most preferred language of an `Accept-Language` value among those `speaks`
/// knows (it maps a tag such as `de-DE` to a language, or to `None`): the highest
/// q-value wins, the first listed among equal ones; `q=0` means "not this", and an
/// item whose q-value is malformed is skipped.
pub fn preferred<L>(accept_language: &str, speaks: impl Fn(&str) -> Option<L>) -> Option<L> {
    let mut best: Option<(u16, L)> = None;
    for item in accept_language.split(',') {
        let mut fields = item.split(';');
        let Some(lang) = fields.next().and_then(|tag| speaks(tag.trim())) else {
            continue;
        };
        let q = fields
            .find_map(|f| f.trim().strip_prefix("q="))
            .map_or(Some(1000), quality);
        if let Some(q) = q
            && q > 0
            && best.as_ref().is_none_or(|(b, _)| q > *b)
        {
            best = Some((q, lang));
        }
    }
    best.map(|(_, lang)| lang)
}

/// A q-value (`0` to `1`, up to three decimals) in thousandths; `None` if malformed.
fn quality(text: &str) -> Option<u16> {
    let q: f32 = text.trim().parse().ok()?;
    (0.0..=1.0)
        .contains(&q)
        .then(|| (q * 1000.0).round() as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Speaks German and Polish, by primary subtag.
    fn speaks(tag: &str) -> Option<&'static str> {
        match tag.split(['-', '_']).next()? {
            "de" => Some("de"),
            "pl" => Some("pl"),
            _ => None,
        }
    }

    #[test]
    fn the_highest_q_value_spoken_wins() {
        let cases = [
            ("", None),
            ("*", None),
            ("fr", None),
            ("de-DE,de;q=0.9,en;q=0.8", Some("de")),
            ("en;q=0.5, pl;q=0.9, de;q=0.7", Some("pl")),
            ("fr, de;q=0.3, pl;q=0.3", Some("de")),
            ("de;q=0, pl;q=0.1", Some("pl")),
            ("de;q=0", None),
            ("de;q=2, pl;q=0.1", Some("pl")),
            ("de;q=x", None),
            (" pl_PL ; q=1.0", Some("pl")),
        ];
        for (header, want) in cases {
            assert_eq!(preferred(header, speaks), want, "{header:?}");
        }
    }
}
