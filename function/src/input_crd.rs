//! The CRD of the step input (`package/function/input/`), generated from
//! [`Input`]: a plain apiextensions.k8s.io/v1 CRD that is never installed but
//! lets `crossplane resource validate` check Compositions' step inputs.

use apis::structural::{REGENERATE_COMMAND, UnsupportedSchema, render_yaml, structural_schema_for};
use apis::xrd::GeneratedFile;
use serde_json::{Value, json};

use crate::input::{INPUT_API_VERSION, INPUT_KIND, Input};

pub const INPUT_CRD_PATH: &str = "package/function/input/signals.fn.modelplane.ai_inputs.yaml";

/// The input CRD as it is checked in.
pub fn input_crd_file() -> Result<GeneratedFile, UnsupportedSchema> {
    Ok(GeneratedFile {
        path: INPUT_CRD_PATH.to_string(),
        contents: render_yaml(&header(), &input_crd()?),
    })
}

fn input_crd() -> Result<Value, UnsupportedSchema> {
    let mut schema = structural_schema_for::<Input>()?;
    // These three are the API machinery's, whatever the Rust type does with
    // them: its defaults for apiVersion and kind only spare a step from
    // writing them, and metadata is copied through untouched.
    let properties = schema["properties"]
        .as_object_mut()
        .expect("Input is a struct");
    properties.insert("apiVersion".into(), json!({"type": "string"}));
    properties.insert("kind".into(), json!({"type": "string"}));
    properties.insert("metadata".into(), json!({"type": "object"}));

    let (group, version) = INPUT_API_VERSION
        .split_once('/')
        .expect("an apiVersion is group/version");
    let plural = format!("{}s", INPUT_KIND.to_lowercase());
    Ok(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {
            "group": group,
            "names": {
                "categories": ["crossplane"],
                "kind": INPUT_KIND,
                "listKind": format!("{INPUT_KIND}List"),
                "plural": plural,
                "singular": INPUT_KIND.to_lowercase(),
            },
            "scope": "Namespaced",
            "versions": [{
                "name": version,
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": schema},
            }],
        },
    }))
}

fn header() -> String {
    format!(
        "Generated from function/src/input.rs; do not edit. Regenerate with
  {REGENERATE_COMMAND}
function/tests/package.rs fails when this file is out of date.

The schema of function-signals' step input. Never installed: Crossplane
passes a step's input to the function as-is, and the function validates it
(unknown fields are refused)."
    )
}
