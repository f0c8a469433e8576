//! `function-signals render`: what `crossplane composition render` shows,
//! without a cluster or the Crossplane CLI. The request is assembled the way
//! render assembles it and goes through the same [`run_function`] as gRPC
//! calls; the output adds what Crossplane's reconciler adds around the
//! function's desired state (checked against the real CLI by
//! test/crossplane_cli/test_render.py).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use function_sdk_rust::proto::v1::{
    Ready, RequestMeta, Resource, RunFunctionRequest, RunFunctionResponse, Severity, State,
};
use function_sdk_rust::resource::{json_to_struct, struct_to_json};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::function::{Config, run_function};

/// The annotation Crossplane keys composed resources by.
pub const RESOURCE_NAME_ANNOTATION: &str = "crossplane.io/composition-resource-name";
/// The pipeline step results and errors are attributed to: the step name the
/// shipped Compositions (package/configuration, examples/composition.yaml) use.
const STEP: &str = "signals";

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

/// Renders and prints; returns the process exit code: 0, 1 when the
/// function returns a Fatal result (printed to stderr, nothing on stdout,
/// like `crossplane composition render`), 2 when an input cannot be read.
pub fn run(args: &RenderArgs, options: &RenderOptions, config: &Config) -> i32 {
    let req = match build_request(args) {
        Ok(req) => req,
        Err(message) => {
            eprintln!("function-signals render: {message}");
            return 2;
        }
    };
    let rsp = run_function(&req, config);
    match render_output(&req, &rsp, options) {
        Ok(output) => {
            print!("{output}");
            0
        }
        Err(error) => {
            eprintln!("function-signals render: {error}");
            1
        }
    }
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

/// Options of `function-signals render` beyond its inputs.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RenderOptions {
    /// Also print the function's Normal and Warning results, as
    /// `render.crossplane.io/v1beta1` `Result` documents (like
    /// `crossplane composition render -r`, without Crossplane's own events).
    #[arg(short = 'r', long)]
    pub include_function_results: bool,
}

/// What Crossplane's render engine writes for every condition time, so
/// output is stable (the CLI's ReplaceConditionTimestamps).
const CONDITION_TIME: &str = "2024-01-01T00:00:00Z";
/// The XR label whose value prefixes its composed resources' names.
const COMPOSITE_LABEL: &str = "crossplane.io/composite";
const CLAIM_NAME_LABEL: &str = "crossplane.io/claim-name";
const CLAIM_NAMESPACE_LABEL: &str = "crossplane.io/claim-namespace";
/// Condition types Crossplane owns; a function cannot set them.
const SYSTEM_CONDITIONS: [&str; 5] = ["Ready", "Synced", "Healthy", "UpToDate", "Responsive"];
/// Kubernetes' limit on object names, which generated names respect.
const MAX_NAME_LENGTH: usize = 63;
/// Hex digits of the hash Crossplane appends to generated composed names.
const NAME_HASH_LENGTH: usize = 12;

/// The XR's UID: its own, or the one Crossplane's render engine derives from
/// its identity when it has none (a SHA-1 name-based UUID).
fn xr_uid(xr: &Value) -> String {
    if let Some(uid) = xr["metadata"]["uid"].as_str().filter(|u| !u.is_empty()) {
        return uid.to_string();
    }
    let api_version = xr["apiVersion"].as_str().unwrap_or_default();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let kind = xr["kind"].as_str().unwrap_or_default();
    let namespace = xr["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = xr["metadata"]["name"].as_str().unwrap_or_default();
    // Go's schema.GroupVersionKind.String().
    let identity = format!("{group}/{version}, Kind={kind}\0{namespace}\0{name}");
    uuid::Uuid::new_v5(&uuid::Uuid::nil(), identity.as_bytes()).to_string()
}

/// Crossplane's name for a composed resource it names: the generateName
/// prefix and a hash of the XR's UID and the composition resource name,
/// within Kubernetes' 63 characters.
fn child_name(parent: &str, parent_uid: &str, child: &str) -> String {
    let digest = Sha256::digest(format!("{parent_uid}{child}").as_bytes());
    let suffix: String = digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .chars()
        .take(NAME_HASH_LENGTH)
        .collect();
    let mut parent = parent.to_string();
    if !parent.is_empty() && !parent.ends_with('-') {
        parent.push('-');
    }
    if parent.len() + suffix.len() <= MAX_NAME_LENGTH {
        return parent + &suffix;
    }
    let mut keep = MAX_NAME_LENGTH - NAME_HASH_LENGTH;
    if !parent[..keep].ends_with('-') {
        keep -= 1;
        return format!("{}-{suffix}", &parent[..keep]);
    }
    format!("{}{suffix}", &parent[..keep])
}

fn set_or_remove(object: &mut Value, field: &str, value: &str) {
    if value.is_empty() {
        if let Some(map) = object.as_object_mut() {
            map.remove(field);
        }
    } else {
        object[field] = json!(value);
    }
}

/// Sets a condition the way crossplane-runtime's SetConditions does: an
/// existing condition of the same type is replaced where it is, a new type
/// is appended.
fn set_condition(conditions: &mut Vec<Value>, condition: Value) {
    match conditions
        .iter_mut()
        .find(|c| c["type"] == condition["type"])
    {
        Some(existing) => *existing = condition,
        None => conditions.push(condition),
    }
}

fn condition(typ: &str, status: &str, reason: &str, message: Option<&str>) -> Value {
    let mut c = json!({ "type": typ, "status": status, "reason": reason });
    if let Some(message) = message.filter(|m| !m.is_empty()) {
        c["message"] = json!(message);
    }
    c
}

fn condition_status(status: i32) -> &'static str {
    use function_sdk_rust::proto::v1::Status;
    match Status::try_from(status) {
        Ok(Status::ConditionTrue) => "True",
        Ok(Status::ConditionFalse) => "False",
        _ => "Unknown",
    }
}

/// crossplane-runtime's StableNAndSomeMore with its default of three names.
fn first_names_and_some_more(mut names: Vec<String>) -> String {
    const FIRST: usize = 3;
    names.sort();
    match names.len() {
        n if n > FIRST => format!("{}, and {} more", names[..FIRST].join(", "), n - FIRST),
        n if n == FIRST => format!(
            "{}, and {}",
            names[..FIRST - 1].join(", "),
            names[FIRST - 1]
        ),
        _ => names.join(", "),
    }
}

/// The fatal result that fails the pipeline, as the error Crossplane
/// reports for it.
pub fn fatal_error(rsp: &RunFunctionResponse) -> Option<String> {
    rsp.results
        .iter()
        .find(|r| r.severity == Severity::Fatal as i32)
        .map(|r| {
            format!(
                "pipeline step {STEP:?} returned a fatal result: {}",
                r.message
            )
        })
}

/// What `crossplane composition render` (with the Crossplane core binary as
/// its engine) prints for this step's response, as multi-document YAML: the
/// XR (identity, `spec.crossplane.resourceRefs`, desired status, conditions
/// as Crossplane's reconciler sets them), then the composed resources in
/// composition-resource-name order with the metadata Crossplane adds (name,
/// labels, controller reference), then, with `include_function_results`,
/// one `Result` per Normal or Warning result. A Fatal result fails the
/// render as it fails Crossplane's: `Err` carries the message and nothing is
/// printed.
pub fn render_output(
    req: &RunFunctionRequest,
    rsp: &RunFunctionResponse,
    options: &RenderOptions,
) -> Result<String, String> {
    if let Some(error) = fatal_error(rsp) {
        return Err(error);
    }
    let observed = req.observed.clone().unwrap_or_default();
    let observed_xr = observed
        .composite
        .as_ref()
        .and_then(|c| c.resource.as_ref())
        .map(struct_to_json)
        .unwrap_or_else(|| json!({}));
    let observed_resources: BTreeMap<&String, Value> = observed
        .resources
        .iter()
        .filter_map(|(k, r)| r.resource.as_ref().map(|s| (k, struct_to_json(s))))
        .collect();
    let desired = rsp.desired.clone().unwrap_or_default();
    let desired_xr = desired.composite.as_ref();

    let xr_name = observed_xr["metadata"]["name"].as_str().unwrap_or_default();
    let xr_namespace = observed_xr["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default();
    let uid = xr_uid(&observed_xr);
    // Crossplane labels the XR with its own name unless the label is set.
    let prefix = observed_xr["metadata"]["labels"][COMPOSITE_LABEL]
        .as_str()
        .filter(|p| !p.is_empty())
        .unwrap_or(xr_name)
        .to_string();
    let mut composed_labels = json!({ COMPOSITE_LABEL: prefix });
    let claim = &observed_xr["metadata"]["labels"];
    if let (Some(name), Some(namespace)) = (
        claim[CLAIM_NAME_LABEL].as_str().filter(|v| !v.is_empty()),
        claim[CLAIM_NAMESPACE_LABEL]
            .as_str()
            .filter(|v| !v.is_empty()),
    ) {
        composed_labels[CLAIM_NAME_LABEL] = json!(name);
        composed_labels[CLAIM_NAMESPACE_LABEL] = json!(namespace);
    }
    let owner = json!({
        "apiVersion": observed_xr["apiVersion"],
        "kind": observed_xr["kind"],
        "name": xr_name,
        "uid": uid,
        "controller": true,
        "blockOwnerDeletion": true,
    });

    let mut composed_docs = Vec::new();
    let mut refs = Vec::new();
    let mut unready = Vec::new();
    let composed: BTreeMap<_, _> = desired.resources.iter().collect();
    for (key, resource) in composed {
        let mut cd = resource
            .resource
            .as_ref()
            .map(struct_to_json)
            .unwrap_or_else(|| json!({}));
        if !cd["metadata"].is_object() {
            cd["metadata"] = json!({});
        }
        let meta = &mut cd["metadata"];
        // An existing composed resource keeps its identity.
        if let Some(existing) = observed_resources.get(key) {
            for field in ["namespace", "name", "generateName"] {
                set_or_remove(
                    meta,
                    field,
                    existing["metadata"][field].as_str().unwrap_or_default(),
                );
            }
        }
        let unnamed = meta["name"].as_str().unwrap_or_default().is_empty();
        if unnamed && meta["generateName"].as_str().unwrap_or_default().is_empty() {
            meta["generateName"] = json!(format!("{prefix}-"));
        }
        if !xr_namespace.is_empty() {
            meta["namespace"] = json!(xr_namespace);
        }
        meta["annotations"][RESOURCE_NAME_ANNOTATION] = json!(key);
        merge_object(&mut meta["labels"], &composed_labels);
        let mut owners: Vec<Value> = meta["ownerReferences"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|o| o["uid"] != owner["uid"])
            .collect();
        owners.push(owner.clone());
        meta["ownerReferences"] = Value::Array(owners);
        if unnamed {
            let generate_name = meta["generateName"].as_str().unwrap_or_default();
            meta["name"] = json!(child_name(generate_name, &uid, key));
        }

        let mut reference = json!({ "apiVersion": cd["apiVersion"], "kind": cd["kind"], "name": cd["metadata"]["name"] });
        // A namespaced XR composes only into its own namespace, which its
        // references leave out.
        if xr_namespace.is_empty()
            && let Some(namespace) = cd["metadata"]["namespace"]
                .as_str()
                .filter(|n| !n.is_empty())
        {
            reference["namespace"] = json!(namespace);
        }
        refs.push(reference);
        if resource.ready != Ready::True as i32 {
            unready.push(key.to_string());
        }
        composed_docs.push(cd);
    }
    // Crossplane orders references by their concatenated fields.
    let ref_key = |r: &Value| {
        ["apiVersion", "kind", "name", "namespace"]
            .iter()
            .map(|f| r[*f].as_str().unwrap_or_default())
            .collect::<String>()
    };
    refs.sort_by_key(ref_key);

    let mut xr = json!({
        "apiVersion": observed_xr["apiVersion"],
        "kind": observed_xr["kind"],
        "metadata": {},
        "spec": { "crossplane": { "resourceRefs": refs } },
    });
    for field in ["name", "namespace"] {
        if let Some(value) = observed_xr["metadata"].get(field) {
            xr["metadata"][field] = value.clone();
        }
    }
    let mut status = desired_xr
        .and_then(|d| d.resource.as_ref())
        .map(struct_to_json)
        .and_then(|d| d.get("status").cloned())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));

    // The reconciler's order: the watch circuit, the function's conditions,
    // then Synced and Ready, on top of the conditions the XR already has.
    let mut conditions = observed_xr["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    set_condition(
        &mut conditions,
        condition("Responsive", "True", "WatchCircuitClosed", None),
    );
    for c in &rsp.conditions {
        if SYSTEM_CONDITIONS.contains(&c.r#type.as_str()) {
            continue;
        }
        set_condition(
            &mut conditions,
            condition(
                &c.r#type,
                condition_status(c.status),
                &c.reason,
                c.message.as_deref(),
            ),
        );
    }
    set_condition(
        &mut conditions,
        condition("Synced", "True", "ReconcileSuccess", None),
    );
    let ready = match desired_xr.map(|d| Ready::try_from(d.ready)) {
        Some(Ok(Ready::True)) => condition("Ready", "True", "Available", None),
        Some(Ok(Ready::False)) => condition("Ready", "False", "Creating", None),
        _ if unready.is_empty() => condition("Ready", "True", "Available", None),
        _ => condition(
            "Ready",
            "False",
            "Creating",
            Some(&format!(
                "Unready resources: {}",
                first_names_and_some_more(unready)
            )),
        ),
    };
    set_condition(&mut conditions, ready);
    for c in &mut conditions {
        c["lastTransitionTime"] = json!(CONDITION_TIME);
    }
    status["conditions"] = Value::Array(conditions);
    xr["status"] = status;

    let mut docs = vec![xr];
    docs.extend(composed_docs);
    if options.include_function_results {
        for result in &rsp.results {
            // Crossplane turns each result into an event on the XR.
            let (severity, message) = match Severity::try_from(result.severity) {
                Ok(Severity::Normal) => (
                    "Normal",
                    format!("Pipeline step {STEP:?}: {}", result.message),
                ),
                Ok(Severity::Warning) => (
                    "Warning",
                    format!("Pipeline step {STEP:?}: {}", result.message),
                ),
                _ => (
                    "Warning",
                    format!(
                        "Pipeline step {STEP:?} returned a result of unknown severity (assuming warning): {}",
                        result.message
                    ),
                ),
            };
            let reason = result
                .reason
                .as_deref()
                .filter(|r| !r.is_empty())
                .unwrap_or("ComposeResources");
            docs.push(json!({
                "apiVersion": "render.crossplane.io/v1beta1",
                "kind": "Result",
                "severity": severity,
                "reason": reason,
                "message": message,
            }));
        }
    }
    // serde_yaml leaves the time plain (YAML 1.2 has no timestamp type), but
    // YAML 1.1 readers such as PyYAML would read it back as a datetime; the
    // Crossplane CLI quotes it, and so does this.
    let plain_time = format!(": {CONDITION_TIME}\n");
    let quoted_time = format!(": '{CONDITION_TIME}'\n");
    Ok(docs
        .iter()
        .map(|doc| {
            let yaml = serde_yaml::to_string(doc).expect("a JSON value always serializes to YAML");
            format!("---\n{}", yaml.replace(&plain_time, &quoted_time))
        })
        .collect())
}

/// Adds `labels`' entries to the object at `target` (creating it).
fn merge_object(target: &mut Value, labels: &Value) {
    if !target.is_object() {
        *target = json!({});
    }
    if let (Some(target), Some(labels)) = (target.as_object_mut(), labels.as_object()) {
        for (k, v) in labels {
            target.insert(k.clone(), v.clone());
        }
    }
}
