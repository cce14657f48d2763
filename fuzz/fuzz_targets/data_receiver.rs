//! The DATA receiver and the BDAT check, fed at once and in two pieces.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        postwerk_smtpd::data::fuzz_receivers(data);
    });
}
