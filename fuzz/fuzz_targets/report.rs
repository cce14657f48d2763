//! A message arriving at the inbound MX: DSN, ARF, failure notice or auto-reply.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = postwerk_mta::report::parse(data);
        let _ = postwerk_mta::report::verp_tokens(data);
    });
}
