//! The two XRDs in `apis/xrds/`, generated from the types: the envelope
//! (names, scope, printer columns) is written here, the schema of `spec` and
//! `status` comes from [`InferenceCluster`] and [`ModelService`].

use schemars::JsonSchema;
use serde_json::{Value, json};

use crate::structural::{
    REGENERATE_COMMAND, UnsupportedSchema, render_yaml, structural_schema_for,
};
use crate::{
    GROUP, INFERENCE_CLUSTER_KIND, InferenceCluster, MODEL_SERVICE_KIND, ModelService, VERSION,
};

/// A generated file and where it goes, relative to the repository root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    pub path: String,
    pub contents: String,
}

/// Where the Configuration package carries the same XRDs (symlinks today;
/// whatever they are, they must read the same bytes).
pub const PACKAGED_XRD_DIR: &str = "package/configuration/apis";
pub const XRD_DIR: &str = "apis/xrds";

struct Definition {
    kind: &'static str,
    plural: &'static str,
    short_name: &'static str,
    scope: &'static str,
    /// `spec.<owned>` and `status.<owned>`, for the header.
    owned: &'static str,
    /// Fields of Modelplane's own kind, for the header's examples.
    theirs_in_spec: &'static str,
    theirs_in_status: &'static str,
    /// (name, type, jsonPath)
    printer_columns: &'static [(&'static str, &'static str, &'static str)],
}

const INFERENCE_CLUSTERS: Definition = Definition {
    kind: INFERENCE_CLUSTER_KIND,
    plural: "inferenceclusters",
    short_name: "ic",
    scope: "Cluster",
    owned: "spec.signals, status.signals, and status.providerConfigRef which the function reads",
    theirs_in_spec: "spec.cluster",
    theirs_in_status: "status.gateway",
    printer_columns: &[
        ("SIGNALS", "string", ".status.signals.enabledKinds"),
        ("PRIVACY", "string", ".spec.signals.privacy.scope"),
        ("REPORTING", "boolean", ".status.signals.agentReporting"),
        ("LAST-FLUSH", "date", ".status.signals.lastFlush"),
    ],
};

const MODEL_SERVICES: Definition = Definition {
    kind: MODEL_SERVICE_KIND,
    plural: "modelservices",
    short_name: "ms",
    scope: "Namespaced",
    owned: "spec.observability and status.observability",
    theirs_in_spec: "spec.endpoints",
    theirs_in_status: "status.model",
    printer_columns: &[
        (
            "SCOPE",
            "string",
            ".status.observability.policy.metricsScope",
        ),
        (
            "TRACES",
            "boolean",
            ".status.observability.policy.tracesEnabled",
        ),
        (
            "P99-TTFT",
            "number",
            ".status.observability.metrics.ttftSeconds.p99",
        ),
        ("UPDATED", "date", ".status.observability.metrics.updatedAt"),
    ],
};

/// Both XRDs, as `apis/xrds/<plural>.yaml`.
pub fn xrd_files() -> Result<Vec<GeneratedFile>, UnsupportedSchema> {
    Ok(vec![
        xrd_file::<InferenceCluster>(&INFERENCE_CLUSTERS)?,
        xrd_file::<ModelService>(&MODEL_SERVICES)?,
    ])
}

fn xrd_file<T: JsonSchema>(definition: &Definition) -> Result<GeneratedFile, UnsupportedSchema> {
    let document = xrd_document(definition, xr_schema::<T>()?);
    Ok(GeneratedFile {
        path: format!("{XRD_DIR}/{}.yaml", definition.plural),
        contents: render_yaml(&header(definition), &document),
    })
}

/// The XR type's schema minus what the XRD does not describe: `metadata` is
/// the API server's, and the `{}` defaults serde gives `spec` and `status` are
/// how the Rust types read a partial object, not something the API server
/// should write into every XR.
fn xr_schema<T: JsonSchema>() -> Result<Value, UnsupportedSchema> {
    let mut schema = structural_schema_for::<T>()?;
    let properties = schema["properties"]
        .as_object_mut()
        .expect("an XR type is a struct");
    properties.remove("metadata");
    for part in ["spec", "status"] {
        if let Some(part) = properties.get_mut(part).and_then(Value::as_object_mut) {
            part.remove("default");
        }
    }
    Ok(schema)
}

fn xrd_document(definition: &Definition, schema: Value) -> Value {
    let columns: Vec<Value> = definition
        .printer_columns
        .iter()
        .map(|(name, ty, path)| json!({"name": name, "type": ty, "jsonPath": path}))
        .collect();
    json!({
        "apiVersion": "apiextensions.crossplane.io/v2",
        "kind": "CompositeResourceDefinition",
        "metadata": {"name": format!("{}.{GROUP}", definition.plural)},
        "spec": {
            "group": GROUP,
            "names": {
                "categories": ["crossplane", "modelplane"],
                "kind": definition.kind,
                "plural": definition.plural,
                "shortNames": [definition.short_name],
            },
            "scope": definition.scope,
            "versions": [{
                "name": VERSION,
                "served": true,
                "referenceable": true,
                "additionalPrinterColumns": columns,
                "schema": {"openAPIV3Schema": schema},
            }],
        },
    })
}

fn header(definition: &Definition) -> String {
    let Definition {
        kind,
        owned,
        theirs_in_spec,
        theirs_in_status,
        ..
    } = definition;
    format!(
        "Generated from the Rust types in apis/src; do not edit. Regenerate with
  {REGENERATE_COMMAND}
apis/tests/generated_schemas.rs fails when this file is out of date.

{kind} XRD: the fields modelplane-signals owns:
{owned}.

Extending, not replacing: the rest of Modelplane's {kind} spec and status
(for example {theirs_in_spec}, {theirs_in_status}) belongs to Modelplane's own XRD.
`spec` and `status` therefore carry `x-kubernetes-preserve-unknown-fields: true`.
Crossplane honours it on spec only: its XRD -> CRD conversion (crossplane-runtime
pkg/xcrd, as run by `crossplane resource validate` and by Crossplane core) copies
the flag for spec and drops it for status, so installed on its own this XRD keeps
Modelplane's spec fields (e.g. {theirs_in_spec}) but the API server prunes
Modelplane's status fields (e.g. {theirs_in_status}); they exist only once the owned
subtrees are merged into Modelplane's XRD. The subtrees this project owns are
fully specified (no preserve-unknown-fields inside them), so unknown fields there
are pruned and every known field is validated. To merge into Modelplane's
definition.yaml, copy the owned subtrees under its spec.properties and
status.properties and drop the two preserve flags.

CEL rules (x-kubernetes-validations) cover what a structural schema cannot:
unique list entries, exactly-one-of, conditional requirements. The function
re-checks all of them (apis/src/validation.rs), because `function-signals
render` and older XRD versions never run admission."
    )
}
