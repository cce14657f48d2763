//! A configuration file's text.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Ok(text) = std::str::from_utf8(data) {
            let _ = postwerk_core::config::Config::from_toml(text, []);
        }
    });
}
