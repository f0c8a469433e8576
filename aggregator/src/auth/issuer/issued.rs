//! What every replica knows about the issued Secrets: it watches (list +
//! watch, never polls) the Secrets labelled
//! `app.kubernetes.io/managed-by=signal-aggregator` in the token namespace, so
//! a token one replica issued or rotated is accepted by all of them as soon
//! as the API server tells them. The same cache is the issuer's view of what
//! exists; its writes are checked by the API server (create fails if the
//! Secret exists, updates carry the resourceVersion they were based on), so
//! a stale cache costs a retry, never a second token.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::watch_backoff::WatchBackoff;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use parking_lot::RwLock;
use tokio_stream::StreamExt;

use super::secret::{self, LABEL_SELECTOR, RotationPolicy, TokenState};
use crate::auth::ingest::IngestTokenSource;
use crate::auth::tokens::{TokenTable, digest};
use crate::clock::Clock;

/// One accepted token: its cluster and, for a previous token, when it stops
/// being accepted.
#[derive(Debug, Clone, Default, PartialEq)]
struct Holder {
    cluster: String,
    expires_at: Option<u64>,
}

#[derive(Default)]
struct State {
    /// Managed Secrets by name.
    secrets: BTreeMap<String, Arc<Secret>>,
    tokens: Arc<TokenTable<Holder>>,
    synced: bool,
}

impl State {
    fn rebuild(&mut self) {
        let mut table = TokenTable::new();
        for secret in self.secrets.values() {
            let Some(cluster) = secret::cluster_of(secret) else {
                continue;
            };
            let state = TokenState::of(secret);
            let mut add = |token: &str, expires_at: Option<u64>| {
                let holder = Holder {
                    cluster: cluster.to_string(),
                    expires_at,
                };
                table.insert(digest(token), holder);
            };
            if let Some(token) = state.token {
                add(token, None);
            }
            // Without a readable end there is no overlap: never accepted.
            if let (Some(token), Some(at)) = (state.previous_token, state.previous_expires_at) {
                add(token, Some(at));
            }
        }
        self.tokens = Arc::new(table);
    }
}

/// Shared view of the issued Secrets (cheap to clone).
#[derive(Clone)]
pub struct IssuedTokens {
    state: Arc<RwLock<State>>,
    clock: Clock,
    changes: Arc<tokio::sync::watch::Sender<u64>>,
}

impl IssuedTokens {
    /// `clock` decides when a previous token's overlap is over.
    pub fn new(clock: Clock) -> Self {
        IssuedTokens {
            state: Arc::default(),
            clock,
            changes: Arc::new(tokio::sync::watch::channel(0).0),
        }
    }

    /// True once the Secrets have been listed.
    pub fn is_synced(&self) -> bool {
        self.state.read().synced
    }

    /// The managed Secret named `name`, as last seen.
    pub fn secret(&self, name: &str) -> Option<Arc<Secret>> {
        self.state.read().secrets.get(name).cloned()
    }

    /// Number of tokens accepted (current and overlapping previous ones).
    pub fn accepted_tokens(&self) -> usize {
        let now = (self.clock)();
        let state = self.state.read();
        let mut count = 0;
        for secret in state.secrets.values() {
            if secret::cluster_of(secret).is_none() {
                continue;
            }
            let tokens = TokenState::of(secret);
            count += usize::from(tokens.token.is_some());
            count += usize::from(tokens.previous_accepted(now));
        }
        count
    }

    /// The earliest time a managed Secret is due for rotation or for
    /// dropping its previous token.
    pub fn next_due(&self, policy: &RotationPolicy) -> Option<u64> {
        let state = self.state.read();
        state
            .secrets
            .values()
            .filter_map(|s| secret::next_due(s, policy))
            .min()
    }

    /// Bumps after every change.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Records a Secret as it is now on the server (a watch event, or the
    /// answer to this replica's own write, so it is accepted at once).
    pub fn upsert(&self, secret: Secret) {
        let Some(name) = secret.metadata.name.clone() else {
            return;
        };
        if secret::cluster_of(&secret).is_none() {
            tracing::warn!(secret = %name, "ignoring a managed Secret whose {} label does not match its name signals-ingest-<cluster>", secret::CLUSTER_LABEL);
        }
        let mut state = self.state.write();
        state.secrets.insert(name, Arc::new(secret));
        state.rebuild();
        drop(state);
        self.changed();
    }

    pub fn remove(&self, name: &str) {
        let mut state = self.state.write();
        state.secrets.remove(name);
        state.rebuild();
        drop(state);
        self.changed();
    }

    /// Replaces everything after a full (re)list and marks the view synced.
    pub fn replace(&self, secrets: Vec<Secret>) {
        let mut state = self.state.write();
        state.secrets = secrets
            .into_iter()
            .filter_map(|s| Some((s.metadata.name.clone()?, Arc::new(s))))
            .collect();
        state.synced = true;
        state.rebuild();
        drop(state);
        self.changed();
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }
}

impl IngestTokenSource for IssuedTokens {
    fn cluster_of(&self, token: &str) -> Option<String> {
        let tokens = self.state.read().tokens.clone();
        let holder = tokens.lookup(token)?;
        let now = (self.clock)();
        holder
            .expires_at
            .is_none_or(|at| now < at)
            .then_some(holder.cluster)
    }
}

/// Keeps `issued` current from the API server until the task is dropped.
/// Connection errors are logged and retried with the watcher's backoff.
pub async fn watch(client: kube::Client, namespace: String, issued: IssuedTokens) {
    let api = Api::<Secret>::namespaced(client, &namespace);
    let config = watcher::Config::default().labels(LABEL_SELECTOR);
    let mut events = std::pin::pin!(watcher::watcher(api, config));
    let mut backoff = WatchBackoff::default();
    let mut listed = Vec::new();
    while let Some(event) = events.next().await {
        if let Ok(event) = &event {
            backoff.observe(event);
        }
        match event {
            Ok(Event::Init) => listed.clear(),
            Ok(Event::InitApply(secret)) => listed.push(secret),
            Ok(Event::InitDone) => {
                issued.replace(std::mem::take(&mut listed));
                tracing::info!(
                    namespace = %namespace,
                    accepted_tokens = issued.accepted_tokens(),
                    "listed the issued ingest token Secrets"
                );
            }
            Ok(Event::Apply(secret)) => issued.upsert(secret),
            Ok(Event::Delete(secret)) => {
                if let Some(name) = &secret.metadata.name {
                    issued.remove(name);
                }
            }
            Err(error) => {
                let delay = backoff.failed();
                tracing::warn!(namespace = %namespace, %error, retry_in = ?delay,
                    "watching the ingest token Secrets failed; retrying with backoff");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::issuer::secret::{new_secret, rotated};

    const T0: u64 = 1_800_000_000;

    fn clock_at(now: Arc<std::sync::atomic::AtomicU64>) -> Clock {
        Arc::new(move || now.load(std::sync::atomic::Ordering::SeqCst))
    }

    #[test]
    fn current_and_overlapping_tokens_map_to_their_cluster() {
        let now = Arc::new(std::sync::atomic::AtomicU64::new(T0));
        let issued = IssuedTokens::new(clock_at(now.clone()));
        assert!(!issued.is_synced());
        issued.replace(vec![
            new_secret("a", "u1", "ns", "tok-a", 1, T0),
            new_secret("b", "u2", "ns", "tok-b", 1, T0),
        ]);
        assert!(issued.is_synced());
        assert_eq!(issued.cluster_of("tok-a").as_deref(), Some("a"));
        assert_eq!(issued.cluster_of("tok-b").as_deref(), Some("b"));
        assert_eq!(issued.cluster_of("tok-c"), None);

        let policy = RotationPolicy {
            max_age_secs: 0,
            overlap_secs: 60,
        };
        let a = issued.secret("signals-ingest-a").unwrap();
        issued.upsert(rotated(&a, "tok-a2", T0, &policy));
        assert_eq!(issued.cluster_of("tok-a2").as_deref(), Some("a"));
        assert_eq!(issued.cluster_of("tok-a").as_deref(), Some("a"));
        assert_eq!(issued.accepted_tokens(), 3);
        assert_eq!(issued.next_due(&policy), Some(T0 + 60));
        now.store(T0 + 60, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(issued.cluster_of("tok-a"), None, "overlap over");
        assert_eq!(issued.cluster_of("tok-a2").as_deref(), Some("a"));
        assert_eq!(issued.accepted_tokens(), 2);

        issued.remove("signals-ingest-b");
        assert_eq!(issued.cluster_of("tok-b"), None);
    }

    #[test]
    fn a_secret_whose_label_disagrees_with_its_name_lends_no_token() {
        let issued = IssuedTokens::new(Arc::new(|| T0));
        let mut secret = new_secret("a", "u1", "ns", "tok-a", 1, T0);
        secret.metadata.name = Some("signals-ingest-b".into());
        issued.upsert(secret);
        assert_eq!(issued.cluster_of("tok-a"), None);
        assert_eq!(issued.accepted_tokens(), 0);
    }
}
