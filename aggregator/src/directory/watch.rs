//! Keeps the [`Directory`] current by watching (list + watch, not polling)
//! InferenceClusters and ModelServices as dynamic objects. A dynamic object
//! always decodes, so one XR with a bad spec is logged and left out instead
//! of breaking the watch for every other XR.

use std::future::Future;

use crate::watch_backoff::WatchBackoff;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::watcher::{self, Event};
use tokio_stream::StreamExt;

use super::{ClusterEntry, Directory, ServiceEntry, SpecError, XrKind};
use super::{cluster_from_object, service_from_object};

pub fn inference_clusters() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(apis::GROUP, apis::VERSION, apis::INFERENCE_CLUSTER_KIND),
        "inferenceclusters",
    )
}

pub fn model_services() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(apis::GROUP, apis::VERSION, apis::MODEL_SERVICE_KIND),
        "modelservices",
    )
}

/// Watches both kinds into `directory` until `stopped` resolves. Connection
/// errors are logged and retried with the watcher's default backoff.
pub async fn run(client: kube::Client, directory: Directory, stopped: impl Future<Output = ()>) {
    let clusters = Api::<DynamicObject>::all_with(client.clone(), &inference_clusters());
    let services = Api::<DynamicObject>::all_with(client, &model_services());
    tokio::select! {
        _ = stopped => {}
        _ = watch_kind(clusters, XrKind::InferenceCluster, directory.clone()) => {}
        _ = watch_kind(services, XrKind::ModelService, directory) => {}
    }
}

enum Parsed {
    Cluster(ClusterEntry),
    Service(ServiceEntry),
}

fn parse(kind: XrKind, object: &DynamicObject) -> Result<Parsed, SpecError> {
    let json = serde_json::to_value(object).map_err(|e| SpecError {
        object: format!("{kind:?}"),
        message: format!("cannot re-encode the object: {e}"),
    })?;
    match kind {
        XrKind::InferenceCluster => cluster_from_object(&json).map(Parsed::Cluster),
        XrKind::ModelService => service_from_object(&json).map(Parsed::Service),
    }
}

fn remove(directory: &Directory, kind: XrKind, object: &DynamicObject) {
    let name = object.metadata.name.as_deref().unwrap_or_default();
    match kind {
        XrKind::InferenceCluster => directory.remove_cluster(name),
        XrKind::ModelService => {
            let namespace = object.metadata.namespace.as_deref().unwrap_or_default();
            directory.remove_service(namespace, name)
        }
    }
}

async fn watch_kind(api: Api<DynamicObject>, kind: XrKind, directory: Directory) {
    let mut events = std::pin::pin!(watcher::watcher(api, watcher::Config::default()));
    let mut backoff = WatchBackoff::default();
    let mut listed: Vec<Parsed> = Vec::new();
    while let Some(event) = events.next().await {
        if let Ok(event) = &event {
            backoff.observe(event);
        }
        match event {
            Ok(Event::Init) => listed.clear(),
            Ok(Event::InitApply(object)) => match parse(kind, &object) {
                Ok(parsed) => listed.push(parsed),
                Err(error) => skip(kind, &error),
            },
            Ok(Event::InitDone) => {
                let (clusters, services) = split(std::mem::take(&mut listed));
                match kind {
                    XrKind::InferenceCluster => directory.replace_clusters(clusters),
                    XrKind::ModelService => directory.replace_services(services),
                }
                tracing::info!(kind = ?kind, "listed XRs into the fleet directory");
            }
            Ok(Event::Apply(object)) => match parse(kind, &object) {
                Ok(Parsed::Cluster(entry)) => directory.upsert_cluster(entry),
                Ok(Parsed::Service(entry)) => directory.upsert_service(entry),
                Err(error) => {
                    // An XR that cannot be read counts as absent: its opt-in
                    // and prices are unknown, so it must not keep old ones.
                    skip(kind, &error);
                    remove(&directory, kind, &object);
                }
            },
            Ok(Event::Delete(object)) => remove(&directory, kind, &object),
            Err(error) => {
                let delay = backoff.failed();
                tracing::warn!(kind = ?kind, %error, retry_in = ?delay, "watch failed; retrying with backoff");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

fn split(parsed: Vec<Parsed>) -> (Vec<ClusterEntry>, Vec<ServiceEntry>) {
    let mut clusters = Vec::new();
    let mut services = Vec::new();
    for p in parsed {
        match p {
            Parsed::Cluster(c) => clusters.push(c),
            Parsed::Service(s) => services.push(s),
        }
    }
    (clusters, services)
}

fn skip(kind: XrKind, error: &SpecError) {
    tracing::warn!(kind = ?kind, %error, "skipping an XR whose spec cannot be read; fix the spec to include it");
}
