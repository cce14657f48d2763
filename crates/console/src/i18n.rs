//! The console's words in English and German: one catalogue per language
//! (`i18n/en.txt`, `i18n/de.txt`, lines of `key = text`), compiled into the binary.
//! The language is the user's own choice (the `pw_lang` cookie, set on the account
//! page) or else the browser's `Accept-Language`.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::http::HeaderMap;

/// A language the console speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English (the default).
    En,
    /// German.
    De,
}

/// The cookie that holds the user's own choice of language.
pub const LANG_COOKIE: &str = "pw_lang";

impl Lang {
    /// The language's tag (`en`, `de`), as in `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
        }
    }

    /// The language a tag names, if the console speaks it.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.split(['-', '_']).next()?.trim();
        if primary.eq_ignore_ascii_case("en") {
            Some(Lang::En)
        } else if primary.eq_ignore_ascii_case("de") {
            Some(Lang::De)
        } else {
            None
        }
    }

    /// The request's language: the `pw_lang` cookie, else the most preferred language
    /// of `Accept-Language` that the console speaks, else English.
    pub fn of(headers: &HeaderMap) -> Lang {
        if let Some(lang) = crate::page::cookie(headers, LANG_COOKIE).and_then(Lang::from_tag) {
            return lang;
        }
        let accept = headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        postwerk_core::language::preferred(accept, Lang::from_tag).unwrap_or(Lang::En)
    }

    /// The language's catalogue.
    pub fn words(self) -> &'static Catalogue {
        match self {
            Lang::En => &EN,
            Lang::De => &DE,
        }
    }
}

/// One language's words by key.
pub struct Catalogue(HashMap<&'static str, &'static str>);

static EN: LazyLock<Catalogue> = LazyLock::new(|| Catalogue::parse(include_str!("../i18n/en.txt")));
static DE: LazyLock<Catalogue> = LazyLock::new(|| Catalogue::parse(include_str!("../i18n/de.txt")));

impl Catalogue {
    /// Parses `key = text` lines (blank lines and `#` comments skipped).
    fn parse(source: &'static str) -> Catalogue {
        Catalogue(
            source
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .filter_map(|l| l.split_once(" = "))
                .map(|(k, v)| (k.trim(), v.trim()))
                .collect(),
        )
    }

    /// The text for `key` (the key itself if the catalogue lacks it; a test makes
    /// sure none is missing).
    pub fn get<'a>(&self, key: &'a str) -> &'a str
    where
        'static: 'a,
    {
        self.0.get(key).copied().unwrap_or(key)
    }

    /// The text for `key` with `{}` replaced by `arg`.
    pub fn with(&self, key: &str, arg: &dyn std::fmt::Display) -> String {
        self.0
            .get(key)
            .copied()
            .unwrap_or(key)
            .replacen("{}", &arg.to_string(), 1)
    }

    /// Every key.
    pub fn keys(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_language_comes_from_the_cookie_then_accept_language() {
        assert_eq!(Lang::of(&headers(&[])), Lang::En);
        assert_eq!(
            Lang::of(&headers(&[("accept-language", "de-DE,de;q=0.9,en;q=0.8")])),
            Lang::De
        );
        assert_eq!(
            Lang::of(&headers(&[(
                "accept-language",
                "fr-FR, en;q=0.5, de;q=0.7"
            )])),
            Lang::De
        );
        assert_eq!(
            Lang::of(&headers(&[("accept-language", "de;q=0, en")])),
            Lang::En
        );
        assert_eq!(
            Lang::of(&headers(&[
                ("accept-language", "de"),
                ("cookie", "pw_lang=en")
            ])),
            Lang::En
        );
    }

    #[test]
    fn both_catalogues_have_the_same_keys_and_every_key_used_exists() {
        let en: BTreeSet<_> = EN.keys().collect();
        let de: BTreeSet<_> = DE.keys().collect();
        assert_eq!(
            en.difference(&de).collect::<Vec<_>>(),
            Vec::<&&str>::new(),
            "missing in de"
        );
        assert_eq!(
            de.difference(&en).collect::<Vec<_>>(),
            Vec::<&&str>::new(),
            "missing in en"
        );
        // Every string literal shaped like a key whose prefix the catalogue uses
        // (`"messages.search"`, not `"error.html"`) in the templates and the code.
        let prefixes: BTreeSet<&str> = en.iter().filter_map(|k| k.split('.').next()).collect();
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/");
        let mut used = BTreeSet::new();
        for dir in ["templates", "src"] {
            for entry in std::fs::read_dir(format!("{root}{dir}")).unwrap() {
                let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
                for literal in text.split('"').skip(1).step_by(2) {
                    let Some((prefix, rest)) = literal.split_once('.') else {
                        continue;
                    };
                    let shaped = !rest.is_empty()
                        && literal
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b"._-".contains(&b));
                    let file = ["html", "txt", "css", "js", "md"].contains(&rest);
                    if shaped && !file && prefixes.contains(prefix) {
                        used.insert(literal.to_string());
                    }
                }
            }
        }
        assert!(used.len() > 50, "the scan found the keys: {}", used.len());
        let missing: Vec<_> = used.iter().filter(|k| !en.contains(k.as_str())).collect();
        assert!(
            missing.is_empty(),
            "keys used but not in the catalogues: {missing:?}"
        );
    }
}
