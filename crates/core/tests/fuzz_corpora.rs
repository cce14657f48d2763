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

/// Every file of the committed fuzz corpus `fuzz/corpus/{target}` (see fuzz/README.md).
fn fuzz_corpus(target: &str) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{}: corpus too small", dir.display());
    files
        .into_iter()
        .map(|p| {
            let data = std::fs::read(&p).unwrap();
            (p, data)
        })
        .collect()
}
