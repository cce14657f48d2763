// The committed fuzz corpora, for the tests that replay them without afl. Included
// (`include!`) into each crate's replay tests, so that the one definition serves them
// all and no library crate gains file I/O.

/// Every file of the committed fuzz corpus `fuzz/corpus/{target}` (see fuzz/README.md),
/// in name order, with its bytes.
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
