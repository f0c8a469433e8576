//! The fleet directory: what the aggregator knows from watching the
//! InferenceCluster and ModelService XRs (which kinds a cluster enabled, its
//! privacy scope, retention, GPU prices and trace-forwarding namespaces;
//! which services a tenant runs and whether they opted into fleet roll-ups).
//!
//! [`Directory`] is a cheap, cloneable read handle. The Kubernetes watchers in
//! [`watch`] write it; the status writer, the query API's fleet filter and the
//! scheduler endpoints read it. Until both kinds have been listed once,
//! [`Directory::is_synced`] is false and every fleet question answers "no":
//! nothing joins a cross-tenant roll-up before its opt-in is known.

mod entries;
pub mod watch;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::query::{FleetPolicy, PriceBook};
use crate::signal::SeriesKey;

pub use entries::{
    ClusterEntry, MODELS_ANNOTATION, ServiceEntry, SpecError, cluster_from_object, is_forwarder_in,
    service_from_object,
};

/// Which XR kind a directory event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum XrKind {
    InferenceCluster,
    ModelService,
}

#[derive(Default)]
struct State {
    clusters: BTreeMap<String, Arc<ClusterEntry>>,
    /// Keyed by (tenant, service name).
    services: BTreeMap<(String, String), Arc<ServiceEntry>>,
    /// (tenant, model) pairs served by a ModelService with `scope: Fleet`.
    fleet_models: HashSet<(String, String)>,
    synced: HashSet<XrKind>,
}

impl State {
    fn reindex_fleet_models(&mut self) {
        self.fleet_models = self
            .services
            .values()
            .filter(|s| s.is_fleet_opted_in())
            .flat_map(|s| s.models.iter().map(|m| (s.tenant.clone(), m.clone())))
            .collect();
    }
}

/// Shared read handle on what the watchers know. Clones share one state.
#[derive(Clone)]
pub struct Directory {
    state: Arc<RwLock<State>>,
    changes: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Default for Directory {
    fn default() -> Self {
        Directory::new()
    }
}

impl Directory {
    pub fn new() -> Self {
        Directory {
            state: Arc::default(),
            changes: Arc::new(tokio::sync::watch::channel(0).0),
        }
    }

    // --- reads -----------------------------------------------------------

    /// True once both InferenceClusters and ModelServices have been listed.
    pub fn is_synced(&self) -> bool {
        let state = self.state.read();
        state.synced.contains(&XrKind::InferenceCluster)
            && state.synced.contains(&XrKind::ModelService)
    }

    pub fn cluster(&self, name: &str) -> Option<Arc<ClusterEntry>> {
        self.state.read().clusters.get(name).cloned()
    }

    /// Every known InferenceCluster, by name.
    pub fn clusters(&self) -> Vec<Arc<ClusterEntry>> {
        self.state.read().clusters.values().cloned().collect()
    }

    pub fn service(&self, tenant: &str, name: &str) -> Option<Arc<ServiceEntry>> {
        self.state
            .read()
            .services
            .get(&(tenant.to_string(), name.to_string()))
            .cloned()
    }

    /// Every known ModelService, by (tenant, name).
    pub fn services(&self) -> Vec<Arc<ServiceEntry>> {
        self.state.read().services.values().cloned().collect()
    }

    /// The tenant's ModelServices that serve `model`.
    pub fn services_for_model(&self, tenant: &str, model: &str) -> Vec<Arc<ServiceEntry>> {
        self.state
            .read()
            .services
            .range((tenant.to_string(), String::new())..)
            .take_while(|((t, _), _)| t == tenant)
            .filter(|(_, s)| s.serves(model))
            .map(|(_, s)| s.clone())
            .collect()
    }

    /// Whether a ModelService of `tenant` serving `model` set
    /// `observability.metrics.scope: Fleet`.
    pub fn is_fleet_opted_in(&self, tenant: &str, model: &str) -> bool {
        self.state
            .read()
            .fleet_models
            .contains(&(tenant.to_string(), model.to_string()))
    }

    /// Whether the cluster set `spec.signals.privacy.scope: Fleet`.
    pub fn cluster_shares_fleet(&self, cluster: &str) -> bool {
        self.cluster(cluster)
            .is_some_and(|c| c.privacy == apis::PrivacyScope::Fleet)
    }

    /// Whether a series may join cross-tenant roll-ups: its service opted in,
    /// or its cluster's privacy scope is Fleet. False for everything until
    /// the directory is synced.
    pub fn fleet_includes(&self, key: &SeriesKey) -> bool {
        let state = self.state.read();
        if !(state.synced.contains(&XrKind::InferenceCluster)
            && state.synced.contains(&XrKind::ModelService))
        {
            return false;
        }
        state
            .fleet_models
            .contains(&(key.tenant.clone(), key.model.clone()))
            || state
                .clusters
                .get(&key.cluster)
                .is_some_and(|c| c.privacy == apis::PrivacyScope::Fleet)
    }

    /// Whether `cluster`'s InferenceCluster lists `tenant` in
    /// `spec.signals.traceForwarding.namespaces` (false for an unknown cluster).
    pub fn forwards_traces_of(&self, cluster: &str, tenant: &str) -> bool {
        self.cluster(cluster)
            .is_some_and(|c| c.trace_forwarding_namespaces.contains(tenant))
    }

    /// Price per GPU-hour of `sku` on `cluster` from `spec.signals.cost.pricing`.
    pub fn pricing(&self, cluster: &str, sku: &str) -> Option<apis::GpuPrice> {
        self.cluster(cluster)?.pricing.get(sku).cloned()
    }

    /// Sketch retention the cluster asked for (`spec.signals.retention.sketches`).
    pub fn retention(&self, cluster: &str) -> Option<apis::RetentionDuration> {
        self.cluster(cluster).map(|c| c.retention)
    }

    /// Notified (the value is a change counter) after every change.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    // --- writes (the watchers; tests) -------------------------------------

    /// Adds or replaces a cluster. Subscribers are notified only when more
    /// than its observed status changed.
    pub fn upsert_cluster(&self, entry: ClusterEntry) {
        let mut state = self.state.write();
        let relevant = state
            .clusters
            .get(&entry.name)
            .is_none_or(|old| !old.same_spec(&entry));
        state.clusters.insert(entry.name.clone(), Arc::new(entry));
        drop(state);
        if relevant {
            self.changed();
        }
    }

    pub fn remove_cluster(&self, name: &str) {
        self.state.write().clusters.remove(name);
        self.changed();
    }

    /// Adds or replaces a service. Subscribers are notified only when more
    /// than its observed metrics changed.
    pub fn upsert_service(&self, entry: ServiceEntry) {
        let mut state = self.state.write();
        let key = (entry.tenant.clone(), entry.name.clone());
        let relevant = state
            .services
            .get(&key)
            .is_none_or(|old| !old.same_spec(&entry));
        state.services.insert(key, Arc::new(entry));
        if relevant {
            state.reindex_fleet_models();
        }
        drop(state);
        if relevant {
            self.changed();
        }
    }

    pub fn remove_service(&self, tenant: &str, name: &str) {
        let mut state = self.state.write();
        state
            .services
            .remove(&(tenant.to_string(), name.to_string()));
        state.reindex_fleet_models();
        drop(state);
        self.changed();
    }

    /// Replaces every cluster after a full (re)list and marks the kind synced.
    pub fn replace_clusters(&self, entries: Vec<ClusterEntry>) {
        let mut state = self.state.write();
        state.clusters = entries
            .into_iter()
            .map(|e| (e.name.clone(), Arc::new(e)))
            .collect();
        state.synced.insert(XrKind::InferenceCluster);
        drop(state);
        self.changed();
    }

    /// Replaces every service after a full (re)list and marks the kind synced.
    pub fn replace_services(&self, entries: Vec<ServiceEntry>) {
        let mut state = self.state.write();
        state.services = entries
            .into_iter()
            .map(|e| ((e.tenant.clone(), e.name.clone()), Arc::new(e)))
            .collect();
        state.reindex_fleet_models();
        state.synced.insert(XrKind::ModelService);
        drop(state);
        self.changed();
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }
}

impl FleetPolicy for Directory {
    fn includes(&self, key: &SeriesKey) -> bool {
        self.fleet_includes(key)
    }
}

impl PriceBook for Directory {
    fn price_per_gpu_hour(&self, cluster: &str, sku: &str) -> Option<f64> {
        self.pricing(cluster, sku).map(|p| p.price_per_gpu_hour)
    }
}

#[cfg(test)]
mod tests;
