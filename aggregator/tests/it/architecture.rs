//! The aggregator's layers, as `docs/architecture.md` draws them, checked
//! against the source: which top-level module may use which. A module that
//! needs something from a sibling it may not use means that something
//! belongs lower down, where both can reach it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module and the modules it may use. Lower layers first.
const LAYERS: &[(&str, &[&str])] = &[
    ("signal", &[]),
    ("telemetry", &[]),
    ("clock", &[]),
    ("watch_backoff", &[]),
    ("sketch", &["signal"]),
    ("normalize", &["signal"]),
    ("store", &["signal", "sketch", "telemetry"]),
    (
        "pipeline",
        &[
            "signal",
            "sketch",
            "normalize",
            "store",
            "telemetry",
            "clock",
        ],
    ),
    ("ingest", &["signal", "pipeline", "telemetry"]),
    (
        "forward",
        &[
            "signal",
            "sketch",
            "store",
            "pipeline",
            "directory",
            "telemetry",
            "clock",
        ],
    ),
    ("query", &["signal", "sketch", "store"]),
    ("directory", &["signal", "query", "watch_backoff"]),
    (
        "auth",
        &["signal", "clock", "ingest", "directory", "watch_backoff"],
    ),
    (
        "api",
        &[
            "signal",
            "sketch",
            "store",
            "query",
            "auth",
            "clock",
            "telemetry",
        ],
    ),
    (
        "status",
        &[
            "signal",
            "sketch",
            "store",
            "query",
            "directory",
            "pipeline",
            "clock",
        ],
    ),
    (
        "app",
        &[
            "api",
            "auth",
            "clock",
            "directory",
            "forward",
            "ingest",
            "normalize",
            "pipeline",
            "status",
            "store",
            "telemetry",
        ],
    ),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/store/redis/wal.rs` → `store`).
fn top_module(file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src()).unwrap();
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main" | "bin")).then(|| name.to_string())
}

/// `crate::<module>` references per top-level module (imports and paths alike).
fn uses() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let Some(module) = top_module(&file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        let used = graph.entry(module.clone()).or_default();
        for (at, _) in text.match_indices("crate::") {
            let rest = &text[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != module {
                used.insert(name);
            }
        }
    }
    graph
}

#[test]
fn every_module_uses_only_the_layers_below_it() {
    let allowed: BTreeMap<&str, BTreeSet<&str>> = LAYERS
        .iter()
        .map(|(module, may_use)| (*module, may_use.iter().copied().collect()))
        .collect();
    let mut violations = Vec::new();
    for (module, used) in uses() {
        let Some(may_use) = allowed.get(module.as_str()) else {
            violations.push(format!(
                "{module} is not in LAYERS: add it with what it may use"
            ));
            continue;
        };
        for dependency in used {
            if !may_use.contains(dependency.as_str()) {
                violations.push(format!("{module} uses crate::{dependency}"));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "layering broken (docs/architecture.md):\n  {}",
        violations.join("\n  ")
    );
}

#[test]
fn the_layers_have_no_cycles() {
    // Kahn's algorithm over the declared layers: the source is held to them
    // by the test above, so no cycle here means none in the source.
    let mut remaining: BTreeMap<&str, BTreeSet<&str>> = LAYERS
        .iter()
        .map(|(module, may_use)| (*module, may_use.iter().copied().collect()))
        .collect();
    while let Some(free) = remaining
        .iter()
        .find(|(_, deps)| deps.is_empty())
        .map(|(module, _)| *module)
    {
        remaining.remove(free);
        for deps in remaining.values_mut() {
            deps.remove(free);
        }
    }
    assert!(
        remaining.is_empty(),
        "these modules use each other in a cycle: {:?}",
        remaining.keys().collect::<Vec<_>>()
    );
}

#[test]
fn the_check_sees_a_sideways_import() {
    let graph = uses();
    assert!(
        graph["api"].contains("query"),
        "the scan must find api's use of the read model: {:?}",
        graph["api"]
    );
    assert!(
        !graph["query"].contains("api"),
        "the read model must not know the HTTP layer"
    );
}
