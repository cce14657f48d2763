//! Link rewriting at composition. Only messages composed from the API's JSON are
//! rewritten (raw MIME and SMTP submissions are sent as they are).

use postwerk_services::streams::Stream;
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use postwerk_core::config::Config;
use postwerk_core::mime::RECIPIENT_PLACEHOLDER;
use postwerk_store::vault::MasterKey;
use regex::Regex;

use super::TargetOf;

/// Which links are rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clicks {
    /// None.
    None,
    /// `href`s of the HTML part.
    Html,
    /// URLs in the text part.
    Text,
    /// Both.
    All,
}

impl Clicks {
    /// `html`, `text`, `all` or `none`.
    pub fn parse(s: &str) -> Option<Clicks> {
        Some(match s {
            "none" => Clicks::None,
            "html" => Clicks::Html,
            "text" => Clicks::Text,
            "all" => Clicks::All,
            _ => return None,
        })
    }
}

/// What one message tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Track {
    /// Add the open pixel to the HTML part.
    pub opens: bool,
    /// Rewrite links.
    pub clicks: Clicks,
}

impl Track {
    /// The stream's defaults (its settings, else `[tracking] open_streams`,
    /// `click_streams`) with the message's own choices on top.
    pub fn resolve(
        config: &Config,
        stream: &Stream,
        opens: Option<bool>,
        clicks: Option<Clicks>,
    ) -> Track {
        let t = &config.tracking;
        let listed = |streams: &[String]| streams.contains(&stream.name);
        let own = &stream.settings;
        Track {
            opens: opens
                .or(own.track_opens)
                .unwrap_or_else(|| listed(&t.open_streams)),
            clicks: clicks
                .or_else(|| own.track_clicks.as_deref().and_then(Clicks::parse))
                .unwrap_or(if listed(&t.click_streams) {
                    Clicks::Html
                } else {
                    Clicks::None
                }),
        }
    }
}

/// Rewrites bodies for tracking.
pub struct Linker<'a> {
    base: String,
    master: &'a MasterKey,
    config: &'a Config,
}

impl<'a> Linker<'a> {
    /// A linker for this installation.
    pub fn new(config: &'a Config, master: &'a MasterKey) -> Self {
        Linker {
            base: config.links_base_url(),
            master,
            config,
        }
    }

    /// What a message of `stream` tracks, with the message's own choices.
    pub fn track(&self, stream: &Stream, opens: Option<bool>, clicks: Option<Clicks>) -> Track {
        Track::resolve(self.config, stream, opens, clicks)
    }

    /// The HTML body of message `message_id` with tracked links and, if asked, the
    /// pixel.
    pub fn html(&self, html: &str, track: Track, message_id: &str) -> String {
        let mut out = if matches!(track.clicks, Clicks::Html | Clicks::All) {
            href_re()
                .replace_all(html, |c: &regex::Captures<'_>| {
                    let url = c[3].replace("&amp;", "&");
                    if self.own_page(&url) {
                        return c[0].to_string();
                    }
                    format!(
                        "{}{}{}{}",
                        &c[1],
                        &c[2],
                        self.click_url(&url, message_id),
                        &c[4]
                    )
                })
                .into_owned()
        } else {
            html.to_string()
        };
        if track.opens {
            let pixel = format!(
                "<img src=\"{}/t/o/{RECIPIENT_PLACEHOLDER}\" width=\"1\" height=\"1\" alt=\"\" \
                 style=\"display:block;width:1px;height:1px;border:0\">",
                self.base
            );
            match find_ci(&out, "</body>") {
                Some(at) => out.insert_str(at, &pixel),
                None => out.push_str(&pixel),
            }
        }
        out
    }

    /// The text body of message `message_id` with tracked URLs (only with `clicks`
    /// `text` or `all`).
    pub fn text(&self, text: &str, track: Track, message_id: &str) -> String {
        if !matches!(track.clicks, Clicks::Text | Clicks::All) {
            return text.to_string();
        }
        url_re()
            .replace_all(text, |c: &regex::Captures<'_>| {
                if self.own_page(&c[0]) {
                    return c[0].to_string();
                }
                self.click_url(&c[0], message_id)
            })
            .into_owned()
    }

    /// Whether `url` is one of Postwerk's own pages for the recipient (the preference
    /// centre and unsubscribe, `/u/…`): those are not tracked, so following one records
    /// no click and a link scanner reaches only the page itself.
    fn own_page(&self, url: &str) -> bool {
        url.strip_prefix(self.base.as_str())
            .is_some_and(|path| path.starts_with("/u/"))
    }

    fn click_url(&self, url: &str, message_id: &str) -> String {
        format!(
            "{}/t/c/{RECIPIENT_PLACEHOLDER}/{}/{}",
            self.base,
            super::target_tag(self.master, message_id, url),
            URL_SAFE_NO_PAD.encode(url)
        )
    }
}

/// `<a … href="http(s)://…"`: 1 = up to `href=`, 2 = quote, 3 = URL, 4 = quote.
fn href_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r#"(?i)(<a\b[^>]*?\bhref\s*=\s*)(["'])(https?://[^"'\s<>]+)(["'])"#)
            .expect("valid regex")
    })
}

/// A bare http(s) URL in text, without trailing punctuation.
fn url_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r#"https?://[^\s<>"']*[^\s<>"'.,;:!?)\]]"#).expect("valid regex"))
}

fn find_ci(hay: &str, needle: &str) -> Option<usize> {
    hay.to_ascii_lowercase().rfind(needle)
}

/// The target of a click URL's last two segments (`<tag>/<base64url>`) and what it
/// was sent in, if authentic.
pub fn target(master: &MasterKey, tag: &str, encoded: &str) -> Option<(String, TargetOf)> {
    let url = String::from_utf8(URL_SAFE_NO_PAD.decode(encoded).ok()?).ok()?;
    let allowed = url.starts_with("https://") || url.starts_with("http://");
    let of = super::verify_target(master, &url, tag).filter(|_| allowed)?;
    Some((url, of))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master() -> MasterKey {
        MasterKey::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap()
    }

    #[test]
    fn rewrites_links_and_adds_the_pixel() {
        let m = master();
        let mut config = Config::default();
        config.tracking.base_url = Some("https://links.example".into());
        let l = Linker::new(&config, &m);
        let msg = postwerk_core::id::new_id("msg");
        let all = Track {
            opens: true,
            clicks: Clicks::All,
        };
        let html = l.html(
            "<html><body><a class=x HREF='https://shop.example/a?b=1&amp;c=2'>A</a> \
             <a href=\"mailto:x@example.com\">m</a> <a href=\"#top\">t</a></BODY></html>",
            all,
            &msg,
        );
        assert!(!html.contains("shop.example"), "{html}");
        assert!(html.contains("href=\"mailto:x@example.com\"") && html.contains("href=\"#top\""));
        let pixel = format!("<img src=\"https://links.example/t/o/{RECIPIENT_PLACEHOLDER}\"");
        assert!(
            html.contains(&pixel) && html.find(&pixel) < html.find("</BODY>"),
            "{html}"
        );
        let start = html.find("https://links.example/t/c/").unwrap();
        let link = &html[start..html[start..].find('\'').unwrap() + start];
        let parts: Vec<&str> = link.rsplitn(3, '/').collect();
        assert_eq!(
            target(&m, parts[1], parts[0]),
            Some((
                "https://shop.example/a?b=1&c=2".to_string(),
                TargetOf::Message(msg.clone())
            ))
        );
        assert_eq!(
            target(&m, parts[1], "aHR0cHM6Ly9ldmlsLmV4YW1wbGUv"),
            None,
            "forged target"
        );

        let text = l.text(
            "See https://shop.example/x. Or http://a.example/(b)",
            all,
            &msg,
        );
        assert_eq!(text.matches("/t/c/").count(), 2, "{text}");
        assert!(text.contains("/t/c/") && text.contains(". Or "), "{text}");
        let none = Track {
            opens: false,
            clicks: Clicks::None,
        };
        assert_eq!(
            l.html("<a href=\"https://a.example\">a</a>", none, &msg),
            "<a href=\"https://a.example\">a</a>"
        );
    }

    #[test]
    fn links_to_the_preference_centre_are_not_tracked() {
        let m = master();
        let mut config = Config::default();
        config.tracking.base_url = Some("https://links.example".into());
        let l = Linker::new(&config, &m);
        let all = Track {
            opens: false,
            clicks: Clicks::All,
        };
        let own = "<a href=\"https://links.example/u/rcpt_1.ab\">Unsubscribe</a>";
        assert_eq!(l.html(own, all, "msg_1"), own);
        let text = "Unsubscribe: https://links.example/u/rcpt_1.ab or https://links.example/x";
        let tracked = l.text(text, all, "msg_1");
        assert!(
            tracked.starts_with(
                "Unsubscribe: https://links.example/u/rcpt_1.ab or https://links.example/t/c/"
            ),
            "{tracked}"
        );
    }

    #[test]
    fn stream_defaults_and_overrides() {
        let config = Config::default();
        let broadcast = Stream::initial("broadcast");
        let transactional = Stream::initial("transactional");
        let b = Track::resolve(&config, &broadcast, None, None);
        assert_eq!(
            b,
            Track {
                opens: true,
                clicks: Clicks::Html
            }
        );
        let t = Track::resolve(&config, &transactional, None, None);
        assert_eq!(
            t,
            Track {
                opens: false,
                clicks: Clicks::None
            }
        );
        let forced = Track::resolve(&config, &transactional, Some(true), Some(Clicks::Text));
        assert_eq!(
            forced,
            Track {
                opens: true,
                clicks: Clicks::Text
            }
        );
        // A stream's own settings come before the configuration's lists.
        let mut quiet = Stream::initial("broadcast");
        quiet.settings.track_opens = Some(false);
        quiet.settings.track_clicks = Some("all".into());
        assert_eq!(
            Track::resolve(&config, &quiet, None, None),
            Track {
                opens: false,
                clicks: Clicks::All
            }
        );
    }
}
