//! Writes the generated parts of the docs: `docs/signals.md`'s source →
//! signal tables, from the mapping table normalize runs
//! (`signal_aggregator::normalize::mapping`).
//!
//! `cargo run -p signal-aggregator --example generate-docs`
//!
//! The API examples in `docs/api.md` and `/openapi.json` come from a real
//! run of the aggregator instead; see `aggregator/tests/it/signals/docs.rs`
//! (`UPDATE_API_EXAMPLES=1`).

use std::path::Path;
use std::process::ExitCode;

use signal_aggregator::normalize::mapping;

fn main() -> ExitCode {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/signals.md");
    let current = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("reading {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let Some(rendered) = mapping::render_signals_doc(&current) else {
        eprintln!(
            "{} has no `{}` … `{}` section to fill",
            path.display(),
            mapping::BEGIN_MARK,
            mapping::END_MARK
        );
        return ExitCode::FAILURE;
    };
    if rendered == current {
        println!("unchanged docs/signals.md");
        return ExitCode::SUCCESS;
    }
    if let Err(e) = std::fs::write(&path, rendered) {
        eprintln!("writing {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    println!("wrote     docs/signals.md");
    ExitCode::SUCCESS
}
