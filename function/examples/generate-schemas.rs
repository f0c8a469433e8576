//! Writes every generated schema file: the two XRDs (from the `apis` types)
//! and the function's input CRD (from `function_signals::input::Input`).
//!
//! `cargo run -p function-signals --example generate-schemas`

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let files = match apis::xrd::xrd_files().and_then(|mut files| {
        files.push(function_signals::input_crd::input_crd_file()?);
        Ok(files)
    }) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("a type has no structural schema: {e}");
            return ExitCode::FAILURE;
        }
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for file in files {
        let path = root.join(&file.path);
        let current = std::fs::read_to_string(&path).ok();
        if current.as_deref() == Some(file.contents.as_str()) {
            println!("unchanged {}", file.path);
            continue;
        }
        if let Err(e) = std::fs::write(&path, &file.contents) {
            eprintln!("writing {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote     {}", file.path);
    }
    ExitCode::SUCCESS
}
