//! Every example under `examples/` renders exactly to its `expected.yaml`.
//! Regenerate after an intended change with
//! `UPDATE_GOLDEN=1 cargo test -p function-signals --test examples`.

use std::path::{Path, PathBuf};

use function_signals::render_cmd::{RenderArgs, RenderOptions, build_request, render_output};
use function_signals::{Config, run_function};

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// Example directories: those holding an `xr.yaml`.
fn example_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .expect("examples/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.join("xr.yaml").is_file())
        .collect();
    dirs.sort();
    dirs
}

pub fn render_example(dir: &Path) -> String {
    let optional = |name: &str| Some(dir.join(name)).filter(|p| p.exists());
    let args = RenderArgs {
        xr: dir.join("xr.yaml"),
        observed: optional("observed"),
        input: optional("input.yaml"),
    };
    let req = build_request(&args).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    render_output(
        &req,
        &run_function(&req, &Config::default()),
        &RenderOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

#[test]
fn examples_render_to_their_golden_files() {
    let dirs = example_dirs();
    assert!(
        dirs.len() >= 6,
        "expected at least six examples, found {}",
        dirs.len()
    );
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut mismatches = Vec::new();
    for dir in dirs {
        let rendered = render_example(&dir);
        let golden = dir.join("expected.yaml");
        if update {
            std::fs::write(&golden, &rendered).expect("write golden file");
            continue;
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run with UPDATE_GOLDEN=1 to create it",
                golden.display()
            )
        });
        if expected != rendered {
            mismatches.push(dir.display().to_string());
        }
    }
    assert!(
        mismatches.is_empty(),
        "rendered output differs from expected.yaml in: {}\nrerun with UPDATE_GOLDEN=1 and review the diff",
        mismatches.join(", ")
    );
}

#[test]
fn the_composition_snippet_uses_this_function_and_a_valid_input() {
    let text = std::fs::read_to_string(examples_dir().join("composition.yaml")).unwrap();
    let mut steps = 0;
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let composition: serde_json::Value = serde::Deserialize::deserialize(doc).unwrap();
        assert_eq!(composition["kind"], "Composition");
        assert_eq!(composition["spec"]["mode"], "Pipeline");
        for step in composition["spec"]["pipeline"].as_array().unwrap() {
            assert_eq!(step["functionRef"]["name"], "function-signals");
            if !step["input"].is_null() {
                function_signals::input::Input::from_json(step["input"].clone())
                    .expect("the snippet's input parses");
            }
            steps += 1;
        }
    }
    assert_eq!(steps, 2);
}
