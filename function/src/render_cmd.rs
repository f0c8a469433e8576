//! `function-signals render`: what `crossplane render` would show, without a
//! cluster or the Crossplane CLI. The request is assembled the way render
//! assembles it and goes through the same [`run_function`] as gRPC calls.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use function_sdk_rust::proto::v1::{
    RequestMeta, Resource, RunFunctionRequest, RunFunctionResponse, Severity, State,
};
use function_sdk_rust::resource::{json_to_struct, struct_to_json};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::function::{Config, run_function};

/// The annotation Crossplane keys composed resources by.
pub const RESOURCE_NAME_ANNOTATION: &str = "crossplane.io/composition-resource-name";
/// The step name results are attributed to.
const STEP: &str = "function-signals";

#[derive(Debug, Clone, clap::Args)]
pub struct RenderArgs {
    /// The composite resource (InferenceCluster or ModelService) as YAML.
    pub xr: PathBuf,
    /// Directory of observed composed resources (YAML, several documents per
    /// file allowed), each annotated with crossplane.io/composition-resource-name.
    #[arg(long)]
    pub observed: Option<PathBuf>,
    /// The step's input (apiVersion signals.fn.modelplane.ai/v1beta1, kind Input).
    #[arg(long)]
    pub input: Option<PathBuf>,
}

/// Renders and prints; returns the process exit code.
pub fn run(args: &RenderArgs, config: &Config) -> i32 {
    let req = match build_request(args) {
        Ok(req) => req,
        Err(message) => {
            eprintln!("function-signals render: {message}");
            return 2;
        }
    };
    let rsp = run_function(&req, config);
    print!("{}", render_output(&req, &rsp));
    let fatal = rsp
        .results
        .iter()
        .any(|r| r.severity == Severity::Fatal as i32);
    if fatal { 1 } else { 0 }
}

fn read_yaml_documents(path: &Path) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut docs = Vec::new();
    for document in serde_yaml::Deserializer::from_str(&text) {
        let value = Value::deserialize(document)
            .map_err(|e| format!("cannot parse {}: {e}", path.display()))?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

fn read_one_object(path: &Path) -> Result<Map<String, Value>, String> {
    let mut docs = read_yaml_documents(path)?;
    match (docs.pop(), docs.is_empty()) {
        (Some(Value::Object(map)), true) => Ok(map),
        _ => Err(format!(
            "{} must hold exactly one YAML object",
            path.display()
        )),
    }
}

/// Builds the request `crossplane render` would send: the XR as the observed
/// composite, the input file as the step input, each observed file's
/// resources keyed by their composition-resource-name annotation.
pub fn build_request(args: &RenderArgs) -> Result<RunFunctionRequest, String> {
    let xr = read_one_object(&args.xr)?;
    let input = args.input.as_deref().map(read_one_object).transpose()?;
    let mut observed = BTreeMap::new();
    if let Some(dir) = &args.observed {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| format!("cannot read directory {}: {e}", dir.display()))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .is_some_and(|ext| ext == "yaml" || ext == "yml")
            })
            .collect();
        files.sort();
        for file in files {
            for doc in read_yaml_documents(&file)? {
                let Value::Object(map) = doc else {
                    return Err(format!(
                        "{}: every document must be a YAML object",
                        file.display()
                    ));
                };
                let key = map
                    .get("metadata")
                    .and_then(|m| m.get("annotations"))
                    .and_then(|a| a.get(RESOURCE_NAME_ANNOTATION))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        format!(
                            "{}: a document lacks the {RESOURCE_NAME_ANNOTATION} annotation",
                            file.display()
                        )
                    })?
                    .to_string();
                observed.insert(
                    key,
                    Resource {
                        resource: Some(json_to_struct(&map)),
                        ..Default::default()
                    },
                );
            }
        }
    }
    Ok(RunFunctionRequest {
        meta: Some(RequestMeta {
            tag: "render".to_string(),
            capabilities: vec![],
        }),
        observed: Some(State {
            composite: Some(Resource {
                resource: Some(json_to_struct(&xr)),
                ..Default::default()
            }),
            resources: observed.into_iter().collect(),
        }),
        input: input.map(|i| json_to_struct(&i)),
        ..Default::default()
    })
}

fn condition_status(status: i32) -> &'static str {
    use function_sdk_rust::proto::v1::Status;
    match Status::try_from(status) {
        Ok(Status::ConditionTrue) => "True",
        Ok(Status::ConditionFalse) => "False",
        _ => "Unknown",
    }
}

/// The desired state as multi-document YAML: the XR (identity plus desired
/// status, with the step's conditions as Crossplane would set them), the
/// composed resources in name order, then one `Result` document per result.
pub fn render_output(req: &RunFunctionRequest, rsp: &RunFunctionResponse) -> String {
    let observed_xr = req
        .observed
        .as_ref()
        .and_then(|o| o.composite.as_ref())
        .and_then(|c| c.resource.as_ref())
        .map(struct_to_json)
        .unwrap_or_else(|| json!({}));
    let desired = rsp.desired.clone().unwrap_or_default();
    let desired_xr = desired
        .composite
        .as_ref()
        .and_then(|c| c.resource.as_ref())
        .map(struct_to_json);

    let mut xr = json!({ "apiVersion": observed_xr["apiVersion"], "kind": observed_xr["kind"], "metadata": {} });
    for field in ["name", "namespace"] {
        if let Some(value) = observed_xr["metadata"].get(field) {
            xr["metadata"][field] = value.clone();
        }
    }
    if let Some(status) = desired_xr.as_ref().and_then(|d| d.get("status")) {
        xr["status"] = status.clone();
    }
    if !rsp.conditions.is_empty() {
        let conditions: Vec<Value> = rsp
            .conditions
            .iter()
            .map(|c| {
                let mut condition = json!({ "type": c.r#type, "status": condition_status(c.status), "reason": c.reason });
                if let Some(message) = &c.message {
                    condition["message"] = json!(message);
                }
                condition
            })
            .collect();
        xr["status"]["conditions"] = Value::Array(conditions);
    }

    let mut docs = vec![xr];
    let composed: BTreeMap<_, _> = desired.resources.iter().collect();
    for (key, resource) in composed {
        let mut manifest = resource
            .resource
            .as_ref()
            .map(struct_to_json)
            .unwrap_or_else(|| json!({}));
        manifest["metadata"]["annotations"][RESOURCE_NAME_ANNOTATION] = json!(key);
        docs.push(manifest);
    }
    for result in &rsp.results {
        let severity = Severity::try_from(result.severity).unwrap_or(Severity::Unspecified);
        let mut doc = json!({
            "apiVersion": "render.crossplane.io/v1beta1",
            "kind": "Result",
            "step": STEP,
            "severity": severity.as_str_name(),
            "message": result.message,
        });
        if let Some(reason) = &result.reason {
            doc["reason"] = json!(reason);
        }
        docs.push(doc);
    }
    docs.iter()
        .map(|doc| {
            format!(
                "---\n{}",
                serde_yaml::to_string(doc).expect("a JSON value always serializes to YAML")
            )
        })
        .collect()
}
