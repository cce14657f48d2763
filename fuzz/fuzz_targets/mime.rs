//! The MIME composer's inputs (From, To, Subject, bodies, a header, an attachment).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        postwerk_core::mime::render_fields(data);
    });
}
