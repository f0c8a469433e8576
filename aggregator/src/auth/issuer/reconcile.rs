//! The issuer's pass: for every InferenceCluster in the fleet directory,
//! make sure its Secret exists and is current, then report the token's
//! location and generation in `status.signals.ingestToken`.
//!
//! Several replicas may run this at once. They converge because the API
//! server arbitrates every write: a create fails with AlreadyExists when
//! another replica was first (the existing token is adopted, never
//! overwritten), and an update carries the resourceVersion it was decided
//! on, so a replica that decided on an old version gets Conflict, re-reads
//! and decides again (one rotation, not two).

use std::collections::HashMap;

use anyhow::{Context as _, anyhow};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::json;

use super::issued::IssuedTokens;
use super::secret::{self, Plan, RotationPolicy};
use crate::directory::watch::inference_clusters;
use crate::directory::{ClusterEntry, Directory};

/// Field manager of the issuer's writes (Secrets and `status.signals.ingestToken`).
/// Not the status writer's `signal-aggregator`: each manager owns only its own fields.
pub const TOKEN_FIELD_MANAGER: &str = "signal-aggregator-tokens";

/// Conflicts in a row after which a cluster waits for the next pass.
const MAX_ATTEMPTS: usize = 4;
/// A status write not yet seen on the XR is repeated after this long (it may
/// have been lost, or the status reset).
const STATUS_RESEND_SECS: u64 = 60;

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IssueReport {
    /// Secrets this replica created.
    pub created: u32,
    /// Creates that found a Secret another replica had just made (adopted).
    pub adopted: u32,
    pub rotated: u32,
    /// Previous tokens removed after their overlap.
    pub expired: u32,
    /// Updates refused with Conflict (re-read and re-decided).
    pub conflicts: u32,
    pub status_written: u32,
    pub failed: u32,
}

#[derive(Debug, Clone, PartialEq)]
struct AppliedStatus {
    uid: String,
    status: apis::IngestTokenStatus,
    at: u64,
}

pub struct TokenIssuer {
    secrets: Api<Secret>,
    clusters: Api<DynamicObject>,
    namespace: String,
    directory: Directory,
    issued: IssuedTokens,
    policy: RotationPolicy,
    applied: HashMap<String, AppliedStatus>,
}

fn write_params() -> PostParams {
    PostParams {
        field_manager: Some(TOKEN_FIELD_MANAGER.to_string()),
        ..PostParams::default()
    }
}

fn api_status(error: &kube::Error) -> Option<&kube::core::Status> {
    match error {
        kube::Error::Api(status) => Some(status),
        _ => None,
    }
}

/// `status.signals.ingestToken` as last observed on the XR.
fn reported(cluster: &ClusterEntry) -> Option<&apis::IngestTokenStatus> {
    cluster.observed_status.as_ref()?.ingest_token.as_ref()
}

fn reported_generation(cluster: &ClusterEntry) -> Option<i64> {
    reported(cluster).map(|t| t.generation)
}

impl TokenIssuer {
    pub fn new(
        client: kube::Client,
        namespace: String,
        directory: Directory,
        issued: IssuedTokens,
        policy: RotationPolicy,
    ) -> Self {
        TokenIssuer {
            secrets: Api::namespaced(client.clone(), &namespace),
            clusters: Api::all_with(client, &inference_clusters()),
            namespace,
            directory,
            issued,
            policy,
            applied: HashMap::new(),
        }
    }

    pub fn policy(&self) -> RotationPolicy {
        self.policy
    }

    pub fn issued(&self) -> &IssuedTokens {
        &self.issued
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// One pass over every InferenceCluster in the directory as of `now`
    /// (unix seconds).
    pub async fn reconcile_once(&mut self, now: u64) -> IssueReport {
        let mut report = IssueReport::default();
        let clusters = self.directory.clusters();
        self.applied
            .retain(|name, _| clusters.iter().any(|c| &c.name == name));
        for cluster in &clusters {
            if let Err(error) = self.reconcile_cluster(cluster, now, &mut report).await {
                tracing::warn!(
                    cluster = %cluster.name,
                    error = format!("{error:#}"),
                    "cannot issue this cluster's ingest token; retrying on the next pass"
                );
                report.failed += 1;
            }
        }
        report
    }

    async fn reconcile_cluster(
        &mut self,
        cluster: &ClusterEntry,
        now: u64,
        report: &mut IssueReport,
    ) -> anyhow::Result<()> {
        secret::check_cluster_name(&cluster.name).map_err(|e| anyhow!("{e}"))?;
        let Some(uid) = cluster.uid.as_deref() else {
            // The API server always sends one; without it no owner reference.
            return Err(anyhow!("the InferenceCluster has no metadata.uid"));
        };
        let secret = self.ensure_secret(cluster, uid, now, report).await?;
        self.issued.upsert(secret.clone());
        self.report_status(cluster, uid, &secret, now, report).await
    }

    /// The cluster's Secret as it is on the server after any needed write.
    async fn ensure_secret(
        &self,
        cluster: &ClusterEntry,
        uid: &str,
        now: u64,
        report: &mut IssueReport,
    ) -> anyhow::Result<Secret> {
        let name = secret::secret_name(&cluster.name);
        let mut current = self.issued.secret(&name).map(|s| (*s).clone());
        for _ in 0..MAX_ATTEMPTS {
            let Some(existing) = current.take() else {
                let token = secret::new_token().map_err(|e| anyhow!("{e}"))?;
                let generation = reported_generation(cluster).map_or(1, |g| g + 1);
                let fresh = secret::new_secret(
                    &cluster.name,
                    uid,
                    &self.namespace,
                    &token,
                    generation,
                    now,
                );
                match self.secrets.create(&write_params(), &fresh).await {
                    Ok(created) => {
                        tracing::info!(cluster = %cluster.name, secret = %name, namespace = %self.namespace, generation, "issued an ingest token");
                        report.created += 1;
                        return Ok(created);
                    }
                    Err(error) if api_status(&error).is_some_and(|s| s.is_already_exists()) => {
                        // Another replica (or an earlier life of this one) was first.
                        report.adopted += 1;
                        current = self.read(&name).await?;
                        continue;
                    }
                    Err(error) => return Err(error).context(format!("creating Secret {name}")),
                }
            };
            let plan = secret::plan(&existing, now, &self.policy);
            let next = match plan {
                Plan::Keep => return Ok(existing),
                Plan::Rotate(_) => {
                    let token = secret::new_token().map_err(|e| anyhow!("{e}"))?;
                    secret::rotated(&existing, &token, now, &self.policy)
                }
                Plan::DropPrevious => secret::without_previous(&existing),
            };
            // Carries `existing`'s resourceVersion: refused if anyone wrote since.
            match self.secrets.replace(&name, &write_params(), &next).await {
                Ok(written) => {
                    let generation = secret::TokenState::of(&written).generation;
                    if let Plan::Rotate(reason) = plan {
                        tracing::info!(cluster = %cluster.name, secret = %name, generation, ?reason, "rotated the ingest token; the previous one stays accepted for the overlap");
                        report.rotated += 1;
                    } else {
                        tracing::info!(cluster = %cluster.name, secret = %name, generation, "dropped the previous ingest token: its overlap is over");
                        report.expired += 1;
                    }
                    return Ok(written);
                }
                Err(error) if api_status(&error).is_some_and(|s| s.is_conflict()) => {
                    report.conflicts += 1;
                    current = self.read(&name).await?;
                }
                Err(error) if api_status(&error).is_some_and(|s| s.is_not_found()) => {
                    current = None;
                }
                Err(error) => return Err(error).context(format!("updating Secret {name}")),
            }
        }
        Err(anyhow!(
            "Secret {name} kept changing under this replica ({MAX_ATTEMPTS} attempts)"
        ))
    }

    async fn read(&self, name: &str) -> anyhow::Result<Option<Secret>> {
        self.secrets
            .get_opt(name)
            .await
            .with_context(|| format!("reading Secret {name}"))
    }

    /// Applies `status.signals.ingestToken` when the XR does not show it yet.
    async fn report_status(
        &mut self,
        cluster: &ClusterEntry,
        uid: &str,
        secret: &Secret,
        now: u64,
        report: &mut IssueReport,
    ) -> anyhow::Result<()> {
        let Some(desired) = secret::token_status(secret) else {
            return Ok(());
        };
        let observed = reported(cluster);
        if observed == Some(&desired) {
            return Ok(());
        }
        if observed.is_some_and(|o| o.generation > desired.generation) {
            // This replica's view of the Secret is behind the XR's: the
            // replica that rotated reports it; never roll the agent back.
            return Ok(());
        }
        let recently_sent = self.applied.get(&cluster.name).is_some_and(|a| {
            a.uid == uid && a.status == desired && now.saturating_sub(a.at) < STATUS_RESEND_SECS
        });
        if recently_sent {
            return Ok(());
        }
        let body = json!({
            "apiVersion": apis::API_VERSION,
            "kind": apis::INFERENCE_CLUSTER_KIND,
            "metadata": { "name": cluster.name },
            "status": { "signals": { "ingestToken": desired } },
        });
        let params = PatchParams::apply(TOKEN_FIELD_MANAGER).force();
        self.clusters
            .patch_status(&cluster.name, &params, &Patch::Apply(&body))
            .await
            .with_context(|| format!("applying InferenceCluster {} status", cluster.name))?;
        report.status_written += 1;
        self.applied.insert(
            cluster.name.clone(),
            AppliedStatus {
                uid: uid.to_string(),
                status: desired,
                at: now,
            },
        );
        Ok(())
    }
}
