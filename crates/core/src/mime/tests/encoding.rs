//! Text body encodings: the `7bit`/quoted-printable choice and the quoted-printable encoder.

use super::*;
use crate::mime::body::{Lines, QP_LINE, qp_literal, write_quoted_printable};

#[test]
fn text_encoding_choice() {
    let long = "word ".repeat(400);
    let line_998 = "a".repeat(998);
    let line_999 = "a".repeat(999);
    let cases: [(&str, &str, bool); 11] = [
        ("plain", "Hello\nWorld\n", false),
        ("line endings", "a\rb\r\nc\nd", false),
        ("998 octets", &line_998, false),
        ("999 octets", &line_999, true),
        ("long line", &long, true),
        ("non-ascii", "Grüße aus Köln — 日本語\n", true),
        ("ascii trailing whitespace", "a  \nb\t\nc ", false),
        ("trailing whitespace", "é  \nb\t\nc ", true),
        ("equals and NUL", "x = y\0z", true),
        ("boundary lookalike", "--=_pwA_fake\nbody", true),
        ("dot and from", ".\nFrom me\n-- \nsig", false),
    ];
    for (name, text, qp) in cases {
        let mut fx = Fixture::new();
        fx.text = Some(text.to_string());
        fx.html = Some("<p>h</p>".into());
        let out = fx.render();
        let e = Entity::parse(&out);
        let part = &e.parts[0];
        let cte = part.header("Content-Transfer-Encoding").unwrap();
        assert_eq!(cte, if qp { "quoted-printable" } else { "7bit" }, "{name}");
        assert_eq!(part.decoded(), crlf(text), "{name}");
        if qp {
            for line in part.body.split(|&b| b == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                assert!(line.len() <= QP_LINE, "{name}: qp line of {}", line.len());
                assert!(!line.ends_with(b" ") && !line.ends_with(b"\t"), "{name}");
                assert!(!line.starts_with(BOUNDARY_MARK), "{name}");
            }
        }
    }
}

#[test]
fn quoted_printable_exact() {
    let x = |n: usize| "x".repeat(n);
    let cases = [
        ("a=b".to_string(), "a=3Db".to_string()),
        ("end ".into(), "end=20".into()),
        ("tab\t\nx".into(), "tab=09\r\nx".into()),
        ("cr\rlf\ncrlf\r\n".into(), "cr\r\nlf\r\ncrlf\r\n".into()),
        ("é".into(), "=C3=A9".into()),
        ("mid space ok".into(), "mid space ok".into()),
        // Exactly 76 characters fit on a line's last segment, otherwise 75 + "=".
        (x(76), x(76)),
        (x(77), format!("{}=\r\nxx", x(75))),
        (
            format!("{}\n{}", x(77), x(3)),
            format!("{}=\r\nxx\r\nxxx", x(75)),
        ),
        // An escape is never split across a soft break.
        (format!("{}é", x(74)), format!("{}=\r\n=C3=A9", x(74))),
        (format!("{} ", x(75)), format!("{}=\r\n=20", x(75))),
    ];
    for (input, want) in cases {
        let mut out = vec![];
        write_quoted_printable(&mut out, &input, input.contains('\r'));
        assert_eq!(String::from_utf8(out).unwrap(), want, "{input:?}");
    }
}

/// Byte-at-a-time reference for the run-copying encoder.
fn qp_reference(text: &str) -> Vec<u8> {
    let mut out = vec![];
    for (line, terminated) in Lines::new(text, true) {
        let mut col = 0;
        for (i, &b) in line.iter().enumerate() {
            let is_last = i + 1 == line.len();
            let literal = qp_literal(b) && !(is_last && (b == b' ' || b == b'\t'));
            let width = if literal { 1 } else { 3 };
            if col + width > if is_last { 76 } else { 75 } {
                out.extend_from_slice(b"=\r\n");
                col = 0;
            }
            if literal {
                out.push(b);
            } else {
                out.extend_from_slice(format!("={b:02X}").as_bytes());
            }
            col += width;
        }
        if terminated {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

#[test]
fn quoted_printable_matches_reference() {
    // (cumulative percentage, piece): rare line breaks so lines often exceed 76.
    const PIECES: [(u32, &str); 9] = [
        (1, "\n"),
        (2, "\r\n"),
        (3, "\r"),
        (7, " "),
        (9, "\t"),
        (11, "="),
        (13, "é"),
        (14, "€"),
        (100, "x"),
    ];
    let mut seed = 0x2545_f491_u32;
    let mut soft_breaks = 0;
    for len in (0..600).step_by(7) {
        let mut text = String::new();
        for _ in 0..len {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let r = (seed >> 16) % 100;
            text.push_str(PIECES.iter().find(|(p, _)| r < *p).unwrap().1);
        }
        let mut out = vec![];
        write_quoted_printable(&mut out, &text, text.contains('\r'));
        assert_eq!(out, qp_reference(&text), "{text:?}");
        soft_breaks += out.windows(3).filter(|w| w == b"=\r\n").count();
        assert_eq!(qp_decode(&out), crlf(&text), "{text:?}");
        for line in out.split(|&b| b == b'\n') {
            assert!(line.strip_suffix(b"\r").unwrap_or(line).len() <= QP_LINE);
        }
    }
    assert!(
        soft_breaks > 100,
        "only {soft_breaks} soft breaks exercised"
    );
}

/// The per-recipient placeholder is never split by a soft line break, at any column,
/// so delivery can replace it byte for byte.
#[test]
fn recipient_placeholder_stays_whole() {
    use crate::mime::RECIPIENT_PLACEHOLDER as P;
    for offset in 0..80 {
        let html = format!(
            "é{}<a href=\"https://l.example/c/{P}/1\">x</a> {} <img src=\"https://l.example/o/{P}.gif\">",
            "y".repeat(offset),
            "z".repeat(offset * 2)
        );
        let mut fx = Fixture::new();
        fx.html = Some(html.clone());
        let out = fx.render();
        let e = Entity::parse(&out);
        let part = e
            .parts
            .iter()
            .find(|p| {
                p.header("Content-Type")
                    .is_some_and(|c| c.starts_with("text/html"))
            })
            .expect("html part");
        assert_eq!(
            part.header("Content-Transfer-Encoding").unwrap(),
            "quoted-printable"
        );
        let whole = part
            .body
            .windows(P.len())
            .filter(|w| *w == P.as_bytes())
            .count();
        assert_eq!(whole, 2, "offset {offset}");
        assert_eq!(part.decoded(), crlf(&html), "offset {offset}");
        for line in part.body.split(|&b| b == b'\n') {
            assert!(
                line.strip_suffix(b"\r").unwrap_or(line).len() <= QP_LINE,
                "offset {offset}"
            );
        }
    }
}
