//! One SMTP command line, as the session hands it to the parser.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = postwerk_smtpd::parser::parse(data);
    });
}
