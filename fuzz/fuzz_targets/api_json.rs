//! A JSON body for `POST /v1/messages` or `POST /v1/messages/raw`.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        postwerk_api::compose::fuzz_requests(data);
    });
}
