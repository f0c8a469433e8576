//! Writes `status.signals` and `status.observability.metrics` by server-side
//! apply to the `/status` subresource, as field manager
//! [`FIELD_MANAGER`](super::FIELD_MANAGER): the body names only the fields this
//! writer owns, so Crossplane's and the function's status fields are never
//! touched. A write happens only when a value changed beyond the threshold
//! and the object was not written within the minimum interval.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use apis::{ServiceMetrics, SignalsStatus};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};
use tracing::Instrument as _;

use super::FIELD_MANAGER;
use super::change::Threshold;
use super::compute::{self, FleetFigures, Settings};
use super::cost;
use crate::clock::Clock;
use crate::directory::watch::{inference_clusters, model_services};
use crate::directory::{ClusterEntry, Directory, ServiceEntry};
use crate::pipeline::activity::{Activity, ClusterActivity, DroppedOnXr};
use crate::store::SketchStore;

#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    pub settings: Settings,
    pub threshold: Threshold,
    /// At most one write attempt per object per this many seconds.
    pub min_interval_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Target {
    Cluster(String),
    Service { tenant: String, name: String },
}

#[derive(Debug, Clone)]
enum Owned {
    Cluster(SignalsStatus),
    Service(ServiceMetrics),
}

#[derive(Debug, Default)]
struct ObjectState {
    /// What is on the object as far as this writer knows (last write, or the
    /// status observed on the XR before the first one).
    current: Option<Owned>,
    last_attempt: Option<u64>,
    /// `droppedEvents` on the XR when this process first saw it.
    dropped_baseline: Option<u64>,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    pub written: u32,
    pub unchanged: u32,
    pub rate_limited: u32,
    pub failed: u32,
}

pub struct StatusWriter {
    client: kube::Client,
    directory: Directory,
    store: Arc<dyn SketchStore>,
    activity: Activity,
    config: WriterConfig,
    objects: HashMap<Target, ObjectState>,
}

impl StatusWriter {
    pub fn new(
        client: kube::Client,
        directory: Directory,
        store: Arc<dyn SketchStore>,
        activity: Activity,
        config: WriterConfig,
    ) -> Self {
        StatusWriter {
            client,
            directory,
            store,
            activity,
            config,
            objects: HashMap::new(),
        }
    }

    /// Runs passes every `interval` (and soon after a directory change) until
    /// `stopped` resolves.
    pub async fn run(
        mut self,
        clock: Clock,
        interval: Duration,
        stopped: impl std::future::Future<Output = ()>,
    ) {
        let mut changes = self.directory.subscribe();
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                _ = &mut stopped => return,
                _ = ticker.tick() => {}
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
            if !self.directory.is_synced() {
                continue;
            }
            let span = tracing::info_span!(
                "status.pass",
                clusters = self.directory.clusters().len() as i64,
                services = self.directory.services().len() as i64,
                written = tracing::field::Empty,
                unchanged = tracing::field::Empty,
                rate_limited = tracing::field::Empty,
                failed = tracing::field::Empty,
            );
            let report = self.reconcile_once(clock()).instrument(span.clone()).await;
            span.record("written", i64::from(report.written));
            span.record("unchanged", i64::from(report.unchanged));
            span.record("rate_limited", i64::from(report.rate_limited));
            span.record("failed", i64::from(report.failed));
            tracing::debug!(?report, "status pass");
        }
    }

    /// One pass over every XR in the directory as of `now` (unix seconds).
    pub async fn reconcile_once(&mut self, now: u64) -> PassReport {
        let mut report = PassReport::default();
        let clusters = self.directory.clusters();
        let services = self.directory.services();
        let live: std::collections::HashSet<Target> = clusters
            .iter()
            .map(|c| Target::Cluster(c.name.clone()))
            .chain(services.iter().map(|s| Target::Service {
                tenant: s.tenant.clone(),
                name: s.name.clone(),
            }))
            .collect();
        self.objects.retain(|target, _| live.contains(target));

        let counted_from: Vec<DroppedOnXr> = clusters
            .iter()
            .map(|c| DroppedOnXr {
                cluster: c.name.clone(),
                at_first_sight: self.dropped_baseline(c),
                now: observed_dropped(c),
            })
            .collect();
        let mut activity = self.activity.views(&counted_from).await;
        for cluster in &clusters {
            let view = activity.remove(&cluster.name);
            self.reconcile_cluster(cluster, view, now, &mut report)
                .await;
        }
        let mut fleet: Option<FleetFigures> = None;
        for service in &services {
            let target = Target::Service {
                tenant: service.tenant.clone(),
                name: service.name.clone(),
            };
            if self.rate_limited(&target, now) {
                report.rate_limited += 1;
                continue;
            }
            if fleet.is_none() {
                fleet = Some(
                    compute::fleet_figures(
                        self.store.as_ref(),
                        &self.directory,
                        now,
                        &self.config.settings,
                    )
                    .await
                    .unwrap_or_else(|error| {
                        tracing::warn!(%error, "fleet figures unavailable this pass");
                        FleetFigures::default()
                    }),
                );
            }
            let metrics = compute::service_metrics(
                self.store.as_ref(),
                &self.directory,
                service,
                fleet.unwrap_or_default(),
                now,
                &self.config.settings,
            )
            .await;
            match metrics {
                Ok(metrics) => {
                    self.offer(
                        target,
                        Owned::Service(metrics),
                        service_seed(service),
                        now,
                        &mut report,
                    )
                    .await
                }
                Err(error) => {
                    tracing::warn!(tenant = %service.tenant, service = %service.name, %error,
                        "cannot read this service's signals; status not updated");
                    report.failed += 1;
                }
            }
        }
        report
    }

    fn rate_limited(&self, target: &Target, now: u64) -> bool {
        self.objects
            .get(target)
            .and_then(|s| s.last_attempt)
            .is_some_and(|t| now.saturating_sub(t) < self.config.min_interval_secs)
    }

    /// `droppedEvents` on the XR when this process first saw it: the count
    /// this process continues (a restart continues rather than resets).
    fn dropped_baseline(&mut self, cluster: &ClusterEntry) -> u64 {
        *self
            .objects
            .entry(Target::Cluster(cluster.name.clone()))
            .or_default()
            .dropped_baseline
            .get_or_insert_with(|| observed_dropped(cluster))
    }

    async fn reconcile_cluster(
        &mut self,
        cluster: &ClusterEntry,
        activity: Option<ClusterActivity>,
        now: u64,
        report: &mut PassReport,
    ) {
        let target = Target::Cluster(cluster.name.clone());
        if self.rate_limited(&target, now) {
            report.rate_limited += 1;
            return;
        }
        let settings = self.config.settings;
        let cost = match cost::cluster_cost(self.store.as_ref(), cluster, now, &settings).await {
            Ok(cost) => cost,
            Err(error) => {
                tracing::warn!(cluster = %cluster.name, %error,
                    "cannot read this cluster's GPU time; status not updated");
                report.failed += 1;
                return;
            }
        };
        let status = compute::cluster_status(cluster, activity.as_ref(), cost, now, &settings);
        let write_kinds = self.config.settings.write_enabled_kinds;
        let seed = cluster.observed_status.clone().map(|mut observed| {
            if !write_kinds {
                // Another manager's field: not ours to compare.
                observed.enabled_kinds.clear();
            }
            Owned::Cluster(observed)
        });
        self.offer(target, Owned::Cluster(status), seed, now, report)
            .await;
    }

    /// Writes `new` if it differs enough from what the object has.
    async fn offer(
        &mut self,
        target: Target,
        new: Owned,
        observed: Option<Owned>,
        now: u64,
        report: &mut PassReport,
    ) {
        let threshold = self.config.threshold;
        let state = self.objects.entry(target.clone()).or_default();
        let current = state.current.clone().or(observed);
        let changed = match (&current, &new) {
            (Some(Owned::Cluster(old)), Owned::Cluster(new)) => threshold.cluster_changed(old, new),
            (Some(Owned::Service(old)), Owned::Service(new)) => threshold.service_changed(old, new),
            _ => true,
        };
        if !changed {
            state.current = current;
            report.unchanged += 1;
            return;
        }
        state.last_attempt = Some(now);
        let body = apply_body(&target, &new, self.config.settings.write_enabled_kinds);
        match apply(&self.client, &target, &body).await {
            Ok(()) => {
                state.current = Some(new);
                report.written += 1;
            }
            Err(error) => {
                tracing::warn!(target = ?target, %error, "status write failed; retrying after the minimum interval");
                report.failed += 1;
            }
        }
    }
}

/// `droppedEvents` on the XR as the directory last saw it.
fn observed_dropped(cluster: &ClusterEntry) -> u64 {
    cluster
        .observed_status
        .as_ref()
        .and_then(|s| s.dropped_events)
        .unwrap_or(0)
}

fn service_seed(service: &ServiceEntry) -> Option<Owned> {
    service.observed_metrics.clone().map(Owned::Service)
}

/// The server-side apply body: identity plus only the owned status fields.
fn apply_body(target: &Target, owned: &Owned, write_enabled_kinds: bool) -> Value {
    match (target, owned) {
        (Target::Cluster(name), Owned::Cluster(status)) => {
            let mut signals = serde_json::to_value(status).unwrap_or_default();
            if !write_enabled_kinds && let Some(fields) = signals.as_object_mut() {
                fields.remove("enabledKinds");
            }
            json!({
                "apiVersion": apis::API_VERSION,
                "kind": apis::INFERENCE_CLUSTER_KIND,
                "metadata": { "name": name },
                "status": { "signals": signals },
            })
        }
        (Target::Service { tenant, name }, Owned::Service(metrics)) => json!({
            "apiVersion": apis::API_VERSION,
            "kind": apis::MODEL_SERVICE_KIND,
            "metadata": { "name": name, "namespace": tenant },
            "status": { "observability": { "metrics": metrics } },
        }),
        _ => Value::Null,
    }
}

async fn apply(client: &kube::Client, target: &Target, body: &Value) -> Result<(), kube::Error> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let patch = Patch::Apply(body);
    match target {
        Target::Cluster(name) => {
            let api = Api::<DynamicObject>::all_with(client.clone(), &inference_clusters());
            api.patch_status(name, &params, &patch).await?;
        }
        Target::Service { tenant, name } => {
            let api =
                Api::<DynamicObject>::namespaced_with(client.clone(), tenant, &model_services());
            api.patch_status(name, &params, &patch).await?;
        }
    }
    Ok(())
}
