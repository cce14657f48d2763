//! A plain-text part made from an HTML one, for templates written only in HTML: what a
//! reader of the HTML sees, in reading order. Paragraphs, headings, list items and
//! table rows become lines; links keep their address in brackets after their words;
//! images their alt text; `<head>`, `<style>` and `<script>` are dropped; entities
//! are decoded.

/// Elements that start and end a block of their own.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "li",
    "table",
    "tr",
    "blockquote",
    "section",
    "article",
    "header",
    "footer",
    "hr",
    "pre",
];
/// Elements whose content is not read.
const HIDDEN: &[&str] = &["head", "style", "script", "title"];

/// The text of `html`, lines separated by `\n`, paragraphs by a blank line, ending in a
/// newline (empty for an empty document).
pub fn from_html(html: &str) -> String {
    let mut out = Text::default();
    let mut rest = html;
    let mut hidden: Option<String> = None;
    let mut link: Option<String> = None;
    let mut link_words = String::new();
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            out.words(&decode(rest), hidden.is_some(), &mut link, &mut link_words);
            break;
        };
        out.words(
            &decode(&rest[..lt]),
            hidden.is_some(),
            &mut link,
            &mut link_words,
        );
        rest = &rest[lt..];
        // A `<` that starts no tag is text.
        if !rest[1..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '/' || c == '!') {
            out.words("<", hidden.is_some(), &mut link, &mut link_words);
            rest = &rest[1..];
            continue;
        }
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let end = rest.find('>').map_or(rest.len(), |i| i + 1);
        let tag = Tag::parse(&rest[..end]);
        rest = &rest[end..];
        if let Some(name) = &hidden {
            if tag.closing && tag.name == *name {
                hidden = None;
            }
            continue;
        }
        match tag.name.as_str() {
            n if HIDDEN.contains(&n) && !tag.closing => hidden = Some(tag.name.clone()),
            "br" => out.line_break(),
            "a" if !tag.closing => {
                link = tag.attribute("href");
                link_words.clear();
            }
            "a" => {
                if let Some(href) = link.take() {
                    let words = std::mem::take(&mut link_words);
                    let words = words.split_whitespace().collect::<Vec<_>>().join(" ");
                    out.push(&words);
                    if !href.is_empty() && href != words && !href.starts_with('#') {
                        out.push(&format!(" ({href})"));
                    }
                }
            }
            "img" => {
                if let Some(alt) = tag.attribute("alt").filter(|a| !a.trim().is_empty()) {
                    out.push(alt.trim());
                }
            }
            "li" if !tag.closing => {
                out.line_break();
                out.push("- ");
            }
            "li" => out.line_break(),
            "td" | "th" if tag.closing => out.push(" "),
            n if BLOCKS.contains(&n) => out.paragraph(),
            _ => {}
        }
    }
    out.finish()
}

/// Text being assembled: words with single spaces between them, line and paragraph
/// breaks that do not pile up.
#[derive(Default)]
struct Text {
    out: String,
    /// Breaks owed before the next words (1: a line, 2: a paragraph).
    breaks: usize,
    space: bool,
}

impl Text {
    fn words(
        &mut self,
        text: &str,
        hidden: bool,
        link: &mut Option<String>,
        link_words: &mut String,
    ) {
        if hidden {
            return;
        }
        if link.is_some() {
            link_words.push_str(text);
            return;
        }
        for (i, word) in text.split_whitespace().enumerate() {
            if i > 0 || text.starts_with(char::is_whitespace) {
                self.space = true;
            }
            self.push(word);
        }
        if text.ends_with(char::is_whitespace) {
            self.space = true;
        }
    }

    fn push(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        if !self.out.is_empty() {
            if self.breaks > 0 {
                let trimmed = self.out.trim_end_matches(' ').len();
                self.out.truncate(trimmed);
                self.out
                    .push_str(if self.breaks > 1 { "\n\n" } else { "\n" });
            } else if self.space && !self.out.ends_with([' ', '\n']) && !s.starts_with(' ') {
                self.out.push(' ');
            }
        }
        self.breaks = 0;
        self.space = false;
        self.out.push_str(s);
    }

    fn line_break(&mut self) {
        self.breaks = self.breaks.max(1);
    }

    fn paragraph(&mut self) {
        self.breaks = 2;
    }

    fn finish(self) -> String {
        let mut out = self.out.trim_end().to_string();
        if !out.is_empty() {
            out.push('\n');
        }
        out
    }
}

/// A tag as written: its name (lower case), whether it closes, its attributes' text.
struct Tag<'a> {
    name: String,
    closing: bool,
    attributes: &'a str,
}

impl<'a> Tag<'a> {
    fn parse(raw: &'a str) -> Self {
        let inner = raw.trim_start_matches('<').trim_end_matches('>');
        let inner = inner.trim_end_matches('/');
        let (closing, inner) = match inner.strip_prefix('/') {
            Some(rest) => (true, rest),
            None => (false, inner),
        };
        let end = inner
            .find(|c: char| c.is_whitespace())
            .unwrap_or(inner.len());
        Tag {
            name: inner[..end].to_ascii_lowercase(),
            closing,
            attributes: &inner[end..],
        }
    }

    /// The decoded value of attribute `name`, quoted or not.
    fn attribute(&self, name: &str) -> Option<String> {
        let lower = self.attributes.to_ascii_lowercase();
        let mut from = 0;
        while let Some(at) = lower[from..].find(name) {
            let start = from + at;
            from = start + name.len();
            let before_ok = start == 0 || lower.as_bytes()[start - 1].is_ascii_whitespace();
            let rest = self.attributes[from..].trim_start();
            let (true, Some(value)) = (before_ok, rest.strip_prefix('=')) else {
                continue;
            };
            let value = value.trim_start();
            let raw = match value.chars().next() {
                Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or(""),
                _ => value.split(char::is_whitespace).next().unwrap_or(""),
            };
            return Some(decode(raw));
        }
        None
    }
}

/// `text` with its character references decoded (the common named ones, and every
/// numeric one).
fn decode(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest[..rest.len().min(12)].find(';');
        let decoded = end.and_then(|end| entity(&rest[1..end]).map(|c| (c, end)));
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return char::from_u32(code);
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "copy" => '©',
        "reg" => '®',
        "euro" => '€',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "laquo" => '«',
        "raquo" => '»',
        "bdquo" => '„',
        "ldquo" => '“',
        "rdquo" => '”',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_lines_and_lists() {
        let html = "<html><head><title>T</title><style>p{color:red}</style></head><body>\
            <h1>Welcome,   Anna</h1><p>Line one<br>line two</p>\
            <ul><li>first</li><li>second</li></ul><!-- hidden --><p>End</p></body></html>";
        assert_eq!(
            from_html(html),
            "Welcome, Anna\n\nLine one\nline two\n\n- first\n- second\n\nEnd\n"
        );
    }

    #[test]
    fn links_keep_their_address_and_images_their_alt_text() {
        let html = r#"<p>Read <a href="https://example.com/a?x=1&amp;y=2">the news</a>,
            <a href='https://example.com/'>https://example.com/</a>
            <img src="logo.png" alt="Logo"> <img src=x.png></p>"#;
        assert_eq!(
            from_html(html),
            "Read the news (https://example.com/a?x=1&y=2), https://example.com/ Logo\n"
        );
    }

    #[test]
    fn entities_are_decoded_and_unknown_ones_kept() {
        assert_eq!(
            from_html("<p>Caf&eacute; &amp; Tea &#8364;5 &#x263A; &nbsp;x &bogus;</p>"),
            "Caf&eacute; & Tea €5 ☺ x &bogus;\n"
        );
        assert_eq!(from_html(""), "");
        assert_eq!(from_html("plain < text"), "plain < text\n");
    }

    #[test]
    fn table_cells_are_spaced() {
        assert_eq!(
            from_html("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>"),
            "a b\n\nc\n"
        );
    }
}
