//! Replays the committed fuzz corpora of the core parsers (`fuzz/corpus/mime` and
//! `fuzz/corpus/config`) through the same entry points as the fuzz targets, so that
//! CI checks them without afl.

use postwerk_core::config::Config;

#[test]
fn mime_corpus_renders_well_formed_messages() {
    for (path, data) in fuzz_corpus("mime") {
        eprintln!("{}", path.display());
        postwerk_core::mime::render_fields(&data);
    }
}

#[test]
fn config_corpus_loads_or_fails_cleanly() {
    for (path, data) in fuzz_corpus("config") {
        eprintln!("{}", path.display());
        if let Ok(text) = std::str::from_utf8(&data) {
            let _ = Config::from_toml(text, []);
        }
    }
}

include!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus.rs"));
