//! The template language: [minijinja](https://docs.rs/minijinja) (Jinja2 syntax:
//! `{{ first_name }}`, `{% if … %}`, filters such as `default`), sandboxed: a template
//! reads only the variables it is given, cannot reach files or the network, and runs
//! on a budget of fuel, so a runaway loop ends in an error rather than a stuck sender.
//!
//! Values are HTML-escaped in the HTML part (`{{ name }}` of `<b>` gives `&lt;b&gt;`;
//! `| safe` opts out), never in the subject and text parts. Variables that are not
//! given render empty, as a missing merge field does in other senders.

use minijinja::value::{Serde, Value};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use super::text;

/// Instructions one part may run per render (a loop over ten thousand items fits).
const FUEL: u64 = 2_000_000;
/// Longest rendered part, in bytes.
pub const MAX_OUTPUT: usize = 5 << 20;
/// Longest subject, in characters, once rendered.
pub const MAX_SUBJECT: usize = 998;

/// A part of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The subject line.
    Subject,
    /// The HTML body.
    Html,
    /// The plain-text body.
    Text,
}

impl Part {
    /// The part's name in the API (`subject`, `html`, `text`).
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Html => "html",
            Part::Text => "text",
        }
    }
}

/// A template that does not compile or render: which part, where (1-based line and
/// column, when known), and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} (line {line}, column {column}): {message}", part.as_str())]
pub struct TemplateError {
    /// The part at fault.
    pub part: Part,
    /// Its line, from 1 (0: unknown).
    pub line: usize,
    /// Its column in characters, from 1 (0: unknown).
    pub column: usize,
    /// What is wrong, in minijinja's words.
    pub message: String,
}

impl TemplateError {
    fn of(part: Part, source: &str, e: &minijinja::Error) -> Self {
        let line = e.line().unwrap_or(0);
        let column = e
            .range()
            .and_then(|r| source.get(..r.start))
            .map(|before| before.rsplit('\n').next().unwrap_or("").chars().count() + 1)
            .unwrap_or(0);
        let message = match e.detail() {
            Some(detail) => format!("{}: {detail}", e.kind()),
            None => e.kind().to_string(),
        };
        TemplateError {
            part,
            line,
            column,
            message,
        }
    }

    fn too_long(part: Part, what: &str) -> Self {
        TemplateError {
            part,
            line: 0,
            column: 0,
            message: what.to_string(),
        }
    }
}

/// A template's parts as written: a subject and an HTML or a text part, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Parts {
    /// The subject line.
    pub subject: String,
    /// The HTML body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// The plain-text body; made from the HTML one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// A message rendered for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The subject: one line.
    pub subject: String,
    /// The HTML body, if the template has one.
    pub html: Option<String>,
    /// The plain-text body (written, or made from the HTML).
    pub text: String,
}

/// A template compiled once, rendered for many recipients.
pub struct Compiled {
    env: Environment<'static>,
    parts: Vec<Part>,
}

impl Compiled {
    /// Compiles every part of `parts`; the first that does not compile is the error.
    pub fn new(parts: &Parts) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|name| match name {
            "html" => AutoEscape::Html,
            _ => AutoEscape::None,
        });
        env.set_formatter(format_value);
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_fuel(Some(FUEL));
        let mut present = Vec::new();
        let sources = [
            (Part::Subject, Some(&parts.subject)),
            (Part::Html, parts.html.as_ref()),
            (Part::Text, parts.text.as_ref()),
        ];
        for (part, source) in sources {
            let Some(source) = source else { continue };
            env.add_template_owned(part.as_str(), source.clone())
                .map_err(|e| TemplateError::of(part, source, &e))?;
            present.push(part);
        }
        if !present.contains(&Part::Html) && !present.contains(&Part::Text) {
            return Err(TemplateError::too_long(
                Part::Text,
                "a template needs an html or a text part",
            ));
        }
        Ok(Compiled {
            env,
            parts: present,
        })
    }

    /// Renders every part with `variables` (a JSON object: attributes, the request's
    /// variables and the built-ins); the text part is made from the HTML one when the
    /// template has none.
    pub fn render(&self, variables: &serde_json::Value) -> Result<Rendered, TemplateError> {
        let ctx = Value::from(Serde(variables));
        let mut rendered = Rendered {
            subject: String::new(),
            html: None,
            text: String::new(),
        };
        for &part in &self.parts {
            let template = self
                .env
                .get_template(part.as_str())
                .expect("compiled in new");
            let out = template
                .render(&ctx)
                .map_err(|e| TemplateError::of(part, template.source(), &e))?;
            if out.len() > MAX_OUTPUT {
                return Err(TemplateError::too_long(part, "renders to more than 5 MiB"));
            }
            match part {
                Part::Subject => rendered.subject = one_line(&out),
                Part::Html => rendered.html = Some(out),
                Part::Text => rendered.text = out,
            }
        }
        if rendered.subject.chars().count() > MAX_SUBJECT {
            return Err(TemplateError::too_long(
                Part::Subject,
                "renders to more than 998 characters",
            ));
        }
        if !self.parts.contains(&Part::Text) {
            rendered.text = text::from_html(rendered.html.as_deref().unwrap_or_default());
        }
        Ok(rendered)
    }
}

/// Writes a value into the output: in HTML, escaped as text and attribute values need
/// (`& < > " '`), but leaving `/` as it is (minijinja's own escaping writes `&#x2f;`,
/// which browsers read but which hides a link's address from click tracking and from
/// people reading the source).
fn format_value(
    out: &mut minijinja::Output,
    state: &mut minijinja::State,
    value: &Value,
) -> Result<(), minijinja::Error> {
    let html = matches!(state.auto_escape(), AutoEscape::Html);
    if !html || value.is_safe() || value.is_undefined() || value.is_none() {
        return minijinja::escape_formatter(out, state, value);
    }
    let text = value.to_string();
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    std::fmt::Write::write_str(out, &escaped).map_err(minijinja::Error::from)
}

/// A subject as one line: line breaks (which would end the header) become spaces.
fn one_line(subject: &str) -> String {
    subject
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parts(subject: &str, html: Option<&str>, text: Option<&str>) -> Parts {
        Parts {
            subject: subject.into(),
            html: html.map(String::from),
            text: text.map(String::from),
        }
    }

    #[test]
    fn merge_fields_are_escaped_in_html_only() {
        let t = Compiled::new(&parts(
            "Hello {{ first_name }}",
            Some("<p>Hello {{ first_name }}</p>"),
            Some("Hello {{ first_name }}"),
        ))
        .unwrap();
        let r = t.render(&json!({"first_name": "<Anna & Co>"})).unwrap();
        assert_eq!(r.subject, "Hello <Anna & Co>");
        assert_eq!(r.html.unwrap(), "<p>Hello &lt;Anna &amp; Co&gt;</p>");
        assert_eq!(r.text, "Hello <Anna & Co>");
        let t = Compiled::new(&parts(
            "s",
            Some("<a href=\"{{ url }}\" title='{{ t }}'>{{ n }} {{ s | safe }}</a>"),
            None,
        ))
        .unwrap();
        let r = t
            .render(&json!({"url": "https://e.example/a?b=1&c=2", "t": "it's \"x\"", "n": 42, "s": "<b>"}))
            .unwrap();
        assert_eq!(
            r.html.unwrap(),
            "<a href=\"https://e.example/a?b=1&amp;c=2\" title='it&#39;s &quot;x&quot;'>42 <b></a>"
        );
    }

    #[test]
    fn missing_variables_render_empty_and_defaults_apply() {
        let t = Compiled::new(&parts(
            "Hi {{ first_name | default('there') }}",
            None,
            Some("[{{ nothing }}][{{ nothing.deeper }}]"),
        ))
        .unwrap();
        let r = t.render(&json!({})).unwrap();
        assert_eq!(r.subject, "Hi there");
        assert_eq!(r.text, "[][]");
    }

    #[test]
    fn a_syntax_error_names_its_part_line_and_column() {
        let e = Compiled::new(&parts("ok", Some("<p>fine</p>\n  <p>{{ name }</p>"), None))
            .err()
            .unwrap();
        assert_eq!(e.part, Part::Html);
        assert_eq!(e.line, 2);
        assert!(e.column > 1, "{e}");
        assert!(e.to_string().starts_with("html (line 2, column"), "{e}");
    }

    #[test]
    fn a_render_error_names_its_part() {
        let t = Compiled::new(&parts("{{ 1 / n }}", None, Some("x"))).unwrap();
        let e = t.render(&json!({"n": 0})).unwrap_err();
        assert_eq!(e.part, Part::Subject);
        assert_eq!(e.line, 1);
    }

    #[test]
    fn a_runaway_loop_runs_out_of_fuel() {
        let t = Compiled::new(&parts(
            "s",
            None,
            Some("{% for a in range(10000) %}{% for b in range(10000) %}x{% endfor %}{% endfor %}"),
        ))
        .unwrap();
        let e = t.render(&json!({})).unwrap_err();
        assert_eq!(e.part, Part::Text);
        assert!(e.message.contains("fuel"), "{e}");
    }

    #[test]
    fn a_subject_stays_one_line_and_a_body_is_required() {
        let t = Compiled::new(&parts("A{{ x }}B", None, Some("t"))).unwrap();
        let r = t
            .render(&json!({"x": "\r\nBcc: victim@example.com\r\n"}))
            .unwrap();
        assert_eq!(r.subject, "A Bcc: victim@example.com B");
        assert!(Compiled::new(&parts("s", None, None)).is_err());
    }

    #[test]
    fn the_text_part_is_made_from_the_html_when_absent() {
        let t = Compiled::new(&parts(
            "s",
            Some("<p>Hello {{ n }}</p><p><a href=\"{{ url }}\">Unsubscribe</a></p>"),
            None,
        ))
        .unwrap();
        let r = t
            .render(&json!({"n": "Ola", "url": "https://l.example/u/1"}))
            .unwrap();
        assert_eq!(r.text, "Hello Ola\n\nUnsubscribe (https://l.example/u/1)\n");
    }
}
