//! The checked-in XRDs are exactly what the types generate today, and the
//! Configuration package carries the same bytes.

use std::path::{Path, PathBuf};

use apis::structural::REGENERATE_COMMAND;
use apis::xrd::{PACKAGED_XRD_DIR, XRD_DIR, xrd_files};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn read(relative: &str) -> String {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[test]
fn checked_in_xrds_are_what_the_types_generate() {
    let files = xrd_files().expect("the XR types have structural schemas");
    let names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        names,
        [
            "apis/xrds/inferenceclusters.yaml",
            "apis/xrds/modelservices.yaml"
        ]
    );
    let stale: Vec<&str> = files
        .iter()
        .filter(|file| read(&file.path) != file.contents)
        .map(|file| file.path.as_str())
        .collect();
    assert!(
        stale.is_empty(),
        "out of date: {stale:?}; regenerate with `{REGENERATE_COMMAND}`"
    );
}

#[test]
fn the_configuration_package_carries_the_same_xrds() {
    for file in xrd_files().unwrap() {
        let name = file.path.strip_prefix(&format!("{XRD_DIR}/")).unwrap();
        let packaged = format!("{PACKAGED_XRD_DIR}/{name}");
        assert!(
            read(&packaged) == read(&file.path),
            "{packaged} differs from {}; it must be a symlink to it (or regenerate with `{REGENERATE_COMMAND}`)",
            file.path
        );
    }
}

#[test]
fn generated_xrds_say_they_are_generated_and_how() {
    for file in xrd_files().unwrap() {
        assert!(
            file.contents
                .starts_with("# Generated from the Rust types in apis/src; do not edit."),
            "{}",
            file.path
        );
        assert!(file.contents.contains(REGENERATE_COMMAND));
    }
}
