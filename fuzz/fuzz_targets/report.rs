//! A message arriving at the inbound MX: DSN, ARF, failure notice or auto-reply.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = postwerk_reports::parse(data);
        let _ = postwerk_reports::verp_tokens(data);
    });
}
