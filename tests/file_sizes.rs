//! Files a reader can hold: no source file under `src/` is longer than 400 lines (the
//! developers' guide, "How the code should read"). A file that grows past it is split along
//! its seams, one concept per file, rather than the limit raised.

mod common;

use common::rust_files;
use std::fs;
use std::path::Path;

/// The most lines a file under `src/` may have.
const MAX_LINES: usize = 400;

#[test]
fn no_source_file_is_longer_than_400_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    // The walk must have found the tree, or the check below would pass on nothing.
    assert!(files.len() > 50, "only {} files found under src/", files.len());
    assert!(files.contains(&root.join("src/lib.rs")));
    let long: Vec<String> = files
        .iter()
        .map(|f| (f, fs::read_to_string(f).unwrap().lines().count()))
        .filter(|&(_, n)| n > MAX_LINES)
        .map(|(f, n)| format!("{} has {n} lines", f.strip_prefix(root).unwrap().display()))
        .collect();
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines (split each along its seams, one concept per file): {}",
        long.join("; ")
    );
}
