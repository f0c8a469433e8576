//! RunFunction: read the XR and the step input, render, report. Bad input
//! becomes one Fatal result naming the field; the gRPC call itself never fails.

use std::time::Duration;

use apis::{
    API_VERSION, INFERENCE_CLUSTER_KIND, InferenceCluster, MODEL_SERVICE_KIND, ModelService,
    TracesStatus,
};
use function_sdk_rust::proto::v1::function_runner_service_server::FunctionRunnerService;
use function_sdk_rust::proto::v1::{Ready, Resource, RunFunctionRequest, RunFunctionResponse};
use function_sdk_rust::resource::{json_to_struct, struct_to_json};
use function_sdk_rust::{request, response};
use serde_json::{Value, json};
use tonic::{Request, Response, Status};

use crate::input::{Input, Mode, ProviderConfigKind};
use crate::render::forwarder::{self, ForwarderPlan};
use crate::render::model_service::{
    OBSERVABILITY_POLICY, TRACE_FORWARDING, effective_policy, redact_url, trace_reason,
};
use crate::render::object::{self, ProviderConfig};
use crate::render::status::{AGENT_READY, is_ready, reason, signals_status};
use crate::render::token::{self, TokenDelivery};
use crate::render::{AgentPlan, agent_manifests, enabled_kinds, keys};

/// Settings from the command line.
#[derive(Debug, Clone)]
pub struct Config {
    /// TTL for responses whose input does not set one.
    pub ttl: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ttl: response::DEFAULT_TTL,
        }
    }
}

/// The gRPC service.
#[derive(Debug, Clone, Default)]
pub struct SignalsFunction {
    pub config: Config,
}

#[tonic::async_trait]
impl FunctionRunnerService for SignalsFunction {
    async fn run_function(
        &self,
        request: Request<RunFunctionRequest>,
    ) -> Result<Response<RunFunctionResponse>, Status> {
        let mut span = crate::span::start(&request);
        let rsp = run_function(request.get_ref(), &self.config);
        crate::span::finish(&mut span, &rsp);
        Ok(Response::new(rsp))
    }
}

/// Handles one request. Pure: the same request always yields the same response.
pub fn run_function(req: &RunFunctionRequest, config: &Config) -> RunFunctionResponse {
    let tag = req
        .meta
        .as_ref()
        .map(|m| m.tag.as_str())
        .unwrap_or_default();
    let mut rsp = response::to(req, config.ttl);
    match compose(req, &mut rsp) {
        Ok(()) => rsp,
        Err(message) => {
            tracing::debug!(tag, %message, "fatal");
            // Nothing half-rendered leaves: the earlier steps' state and one Fatal result.
            let mut rsp = response::to(req, config.ttl);
            response::fatal(&mut rsp, message).reason = Some("InvalidInput".to_string());
            rsp
        }
    }
}

fn compose(req: &RunFunctionRequest, rsp: &mut RunFunctionResponse) -> Result<(), String> {
    let input = match &req.input {
        Some(raw) => Input::from_json(struct_to_json(raw))?,
        None => Input::default(),
    };
    if let Some(ttl) = input.ttl {
        set_ttl(rsp, ttl.0);
    }
    let xr = request::observed_composite(req)
        .and_then(|r| r.resource.as_ref())
        .map(struct_to_json)
        .ok_or("the request has no observed composite resource")?;
    let api_version = xr["apiVersion"].as_str().unwrap_or_default();
    let kind = xr["kind"].as_str().unwrap_or_default();
    tracing::debug!(
        tag = req
            .meta
            .as_ref()
            .map(|m| m.tag.as_str())
            .unwrap_or_default(),
        xr_kind = kind,
        xr_name = xr["metadata"]["name"].as_str().unwrap_or_default(),
        "running"
    );
    match (api_version, kind) {
        (API_VERSION, INFERENCE_CLUSTER_KIND) => inference_cluster(req, rsp, &input, &xr),
        (API_VERSION, MODEL_SERVICE_KIND) => model_service(req, rsp, &input, &xr),
        _ => Err(format!(
            "function-signals composes {API_VERSION} {INFERENCE_CLUSTER_KIND} and {MODEL_SERVICE_KIND}, not {api_version:?} {kind:?}"
        )),
    }
}

fn set_ttl(rsp: &mut RunFunctionResponse, ttl: Duration) {
    if let Some(meta) = rsp.meta.as_mut() {
        meta.ttl = Some(pbjson_types::Duration {
            seconds: ttl.as_secs() as i64,
            nanos: ttl.subsec_nanos() as i32,
        });
    }
}

/// Deserializes the XR; an error names the field by its path from the root.
fn parse_xr<T: serde::de::DeserializeOwned>(xr: &Value) -> Result<T, String> {
    serde_path_to_error::deserialize(xr).map_err(|e| format!("{}: {}", e.path(), e.inner()))
}

fn inference_cluster(
    req: &RunFunctionRequest,
    rsp: &mut RunFunctionResponse,
    input: &Input,
    raw: &Value,
) -> Result<(), String> {
    let xr: InferenceCluster = parse_xr(raw)?;
    let Some(signals) = &xr.spec.signals else {
        merge_desired_status(rsp, signals_status(&[]));
        response::condition_false(rsp, AGENT_READY, reason::SIGNALS_DISABLED).message =
            Some("spec.signals is not set, so no signals agent is rendered".to_string());
        return Ok(());
    };
    signals.validate().map_err(|errors| errors.to_string())?;
    let kinds = enabled_kinds(signals);
    merge_desired_status(rsp, signals_status(&kinds));
    if kinds.is_empty() {
        response::condition_false(rsp, AGENT_READY, reason::NO_SIGNAL_KINDS).message = Some(
            "spec.signals.kinds is empty, so there is nothing for an agent to capture".to_string(),
        );
        return Ok(());
    }
    let copied_generation = observed_composed_json(req, keys::TOKEN)
        .as_ref()
        .and_then(token::copied_generation);
    let plan = AgentPlan::new(&xr, signals, input, copied_generation);
    let manifests = agent_manifests(&plan)?;

    let place = match input.mode {
        Mode::SingleCluster => {
            for (key, manifest) in manifests {
                set_desired(req, rsp, &key, manifest);
            }
            format!("namespace {} of this cluster", plan.namespace)
        }
        Mode::MultiCluster => {
            let Some(provider_config) = provider_config(req, raw, input.provider_config_kind)
            else {
                response::condition_false(rsp, AGENT_READY, reason::WAITING_FOR_PROVIDER_CONFIG).message = Some(
                    "waiting for status.providerConfigRef.name, the ProviderConfig of the workload cluster; no agent is rendered until it is set"
                        .to_string(),
                );
                return Ok(());
            };
            let object_namespace = input.object_namespace();
            for (key, manifest) in manifests {
                set_desired(
                    req,
                    rsp,
                    &key,
                    object::wrap(&plan, manifest, &provider_config, object_namespace),
                );
            }
            if plan.token_delivery == TokenDelivery::CopiedToWorkloadCluster {
                set_desired(
                    req,
                    rsp,
                    keys::TOKEN,
                    token::copy_object(&plan, &provider_config, object_namespace),
                );
            }
            format!(
                "namespace {} of the cluster behind {} {}",
                plan.namespace,
                provider_config.kind.as_str(),
                provider_config.name
            )
        }
    };
    warn_about_token_delivery(rsp, &plan, &xr);
    report_agent_readiness(rsp, &plan, &place);
    Ok(())
}

/// Token setups that leave the agent without a token: say what to change.
fn warn_about_token_delivery(
    rsp: &mut RunFunctionResponse,
    plan: &AgentPlan,
    xr: &InferenceCluster,
) {
    let issued = &plan.issued_token;
    let (reason, message) = match plan.token_delivery {
        TokenDelivery::CopiedToWorkloadCluster => {
            let Some(reported) = token::misplaced_issued_secret(xr, issued) else {
                return;
            };
            (
                reason::INGEST_TOKEN_ELSEWHERE,
                format!(
                    "status.signals.ingestToken names Secret {}/{}, but the token is copied from {}/{}: set the step input's tokenNamespace to the aggregator's --token-namespace",
                    reported.namespace, reported.name, issued.namespace, issued.name
                ),
            )
        }
        TokenDelivery::NotDelivered => (
            reason::INGEST_TOKEN_UNREACHABLE,
            format!(
                "the agent runs in namespace {} but its ingest token is issued into Secret {}/{}, which a Pod cannot read across namespaces: set spec.signals.aggregator.tokenSecretRef to a Secret in {} that holds the token, or run the agent in {} (the step input's tokenNamespace)",
                plan.namespace, issued.namespace, issued.name, plan.namespace, issued.namespace,
            ),
        ),
        TokenDelivery::UserSecret | TokenDelivery::IssuedSecret => return,
    };
    response::warning(rsp, message).reason = Some(reason.to_string());
}

fn observed_composed_json(req: &RunFunctionRequest, key: &str) -> Option<Value> {
    request::observed_composed(req, key)
        .and_then(|r| r.resource.as_ref())
        .map(struct_to_json)
}

/// Adds (or replaces) a desired composed resource, ready when its observed
/// counterpart is.
fn set_desired(
    req: &RunFunctionRequest,
    rsp: &mut RunFunctionResponse,
    key: &str,
    manifest: Value,
) {
    let ready = observed_composed_json(req, key).is_some_and(|observed| is_ready(&observed));
    let Value::Object(map) = manifest else {
        unreachable!("renderers build JSON objects");
    };
    rsp.desired.get_or_insert_default().resources.insert(
        key.to_string(),
        Resource {
            resource: Some(json_to_struct(&map)),
            connection_details: Default::default(),
            ready: if ready { Ready::True } else { Ready::False } as i32,
        },
    );
}

fn report_agent_readiness(rsp: &mut RunFunctionResponse, plan: &AgentPlan, place: &str) {
    let mut waiting: Vec<&str> = rsp
        .desired
        .iter()
        .flat_map(|d| d.resources.iter())
        .filter(|(key, r)| key.starts_with("signals-agent-") && r.ready != Ready::True as i32)
        .map(|(key, _)| key.as_str())
        .collect();
    waiting.sort_unstable();
    if waiting.is_empty() {
        response::condition_true(rsp, AGENT_READY, reason::AVAILABLE).message =
            Some(format!("the signals agent runs in {place}"));
    } else {
        let mut message = format!(
            "waiting for {} to become ready in {place}",
            waiting.join(", ")
        );
        if waiting.contains(&keys::TOKEN) {
            message.push_str(&format!(
                "; {} is copied from Secret {}/{} on the control plane, which signal-aggregator issues",
                keys::TOKEN,
                plan.issued_token.namespace,
                plan.issued_token.name
            ));
        }
        response::condition_false(rsp, AGENT_READY, reason::CREATING).message = Some(message);
    }
}

/// The workload cluster's ProviderConfig: from the observed XR's status, or
/// from the desired XR when an earlier pipeline step just resolved it.
fn provider_config(
    req: &RunFunctionRequest,
    observed_xr: &Value,
    default_kind: ProviderConfigKind,
) -> Option<ProviderConfig> {
    let desired_xr = req
        .desired
        .as_ref()
        .and_then(|d| d.composite.as_ref())
        .and_then(|c| c.resource.as_ref())
        .map(struct_to_json);
    [Some(observed_xr), desired_xr.as_ref()]
        .into_iter()
        .flatten()
        .find_map(|xr| {
            let reference = &xr["status"]["providerConfigRef"];
            let name = reference["name"].as_str().filter(|n| !n.is_empty())?;
            let kind = match reference["kind"].as_str() {
                Some("ProviderConfig") => ProviderConfigKind::ProviderConfig,
                Some("ClusterProviderConfig") => ProviderConfigKind::ClusterProviderConfig,
                _ => default_kind,
            };
            Some(ProviderConfig {
                name: name.to_string(),
                kind,
            })
        })
}

fn model_service(
    req: &RunFunctionRequest,
    rsp: &mut RunFunctionResponse,
    input: &Input,
    raw: &Value,
) -> Result<(), String> {
    let service: ModelService = parse_xr(raw)?;
    let spec = service.spec.observability.as_ref();
    if let Some(spec) = spec {
        // apis' messages never quote an endpoint, which may carry credentials.
        spec.validate().map_err(|errors| errors.to_string())?;
    }
    let policy = effective_policy(spec);
    merge_desired_status(rsp, json!({ "observability": { "policy": policy } }));
    response::condition_true(rsp, OBSERVABILITY_POLICY, "Resolved").message =
        Some("the effective policy is in status.observability.policy".to_string());
    let Some(traces) = spec.and_then(|s| s.traces.as_ref()).filter(|t| t.enabled) else {
        return Ok(());
    };
    let name = service.metadata.name.as_deref().unwrap_or_default();
    let namespace = service
        .metadata
        .namespace
        .as_deref()
        .filter(|ns| !ns.is_empty())
        .ok_or(
            "metadata.namespace: a ModelService is namespaced, and its namespace is the tenant",
        )?;
    let plan = ForwarderPlan::new(name, namespace, traces, input);
    for (key, manifest) in forwarder::manifests(&plan) {
        set_desired(req, rsp, &key, manifest);
    }
    let mut waiting: Vec<&str> = forwarder::keys::ALL
        .into_iter()
        .filter(|key| {
            rsp.desired
                .as_ref()
                .and_then(|d| d.resources.get(*key))
                .is_none_or(|r| r.ready != Ready::True as i32)
        })
        .collect();
    waiting.sort_unstable();
    let ready = waiting.is_empty();
    merge_desired_status(
        rsp,
        json!({ "observability": { "traces": TracesStatus {
            address: plan.address(),
            forwarder: plan.name.clone(),
            ready,
            backend: plan.backend.to_string(),
        } } }),
    );
    let target = format!("{} at {}", plan.backend, redact_url(&plan.endpoint));
    if ready {
        response::condition_true(rsp, TRACE_FORWARDING, trace_reason::AVAILABLE).message = Some(
            format!(
                "spans of this service go through trace forwarder {} in namespace {namespace} to {target}",
                plan.name
            ),
        );
    } else {
        response::condition_false(rsp, TRACE_FORWARDING, trace_reason::CREATING).message = Some(
            format!(
                "waiting for {} to become ready in namespace {namespace}; spans for {target} are not flowing yet",
                waiting.join(", ")
            ),
        );
    }
    Ok(())
}

/// Merges `patch` into the desired XR's status, keeping what earlier steps set.
fn merge_desired_status(rsp: &mut RunFunctionResponse, patch: Value) {
    let composite = response::desired_composite(rsp);
    let mut current = composite
        .resource
        .as_ref()
        .map(struct_to_json)
        .unwrap_or_else(|| json!({}));
    merge(&mut current["status"], patch);
    let Value::Object(map) = current else {
        unreachable!("the desired XR is a JSON object");
    };
    composite.resource = Some(json_to_struct(&map));
}

fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                merge(target.entry(key).or_insert(Value::Null), value);
            }
        }
        (target, patch) => *target = patch,
    }
}
