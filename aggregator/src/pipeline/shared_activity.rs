//! Cluster activity merged across replicas through Redis, so every replica
//! writes the same `status.signals` for a cluster whichever replica its
//! agent's stream lands on (`docs/status.md`, "Several replicas").
//!
//! Each replica keeps recording into its in-process [`Activity`] (no Redis
//! round trip per request). Every push interval, and once more at shutdown,
//! it hands what changed to Redis in one script: per cluster the last flush
//! and the newest datapoint per kind as maxima, and the items dropped since
//! the last push as an increment. A status pass reads every cluster back in
//! one script.
//!
//! Exactly once: a push gets an id (this process's random incarnation and a
//! sequence number) and is resent unchanged until Redis confirms it; the
//! script records the id of the last push it applied for this replica and
//! skips a push carrying that id. So a push that landed but whose reply was
//! lost (a timeout) is not counted again when retried; changes recorded
//! meanwhile wait for the next push.
//!
//! Keys (all under the `{activity}` hash tag, so each script's keys share one
//! Redis Cluster slot; the data is a few fields per cluster):
//!
//! ```text
//! sig:{activity}:cluster:<cluster>   HASH flush, dp:<Kind> (unix s, max), dropped (sum), base
//! sig:{activity}:push:<replica>      id of the last push applied from that replica
//! ```
//!
//! Both expire after the retention unless refreshed by a push. A cluster name
//! after the tag cannot move it (the first `{…}` decides the slot).
//! `base` is `droppedEvents` as the XR showed it when the cluster's record was
//! created (`HSETNX` by the first replica to read it), so replicas and
//! restarts continue the XR's count instead of adding it twice.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use redis::RedisResult;

use super::activity::{Activity, ClusterActivity, DroppedOnXr};
use crate::signal::SignalKind;
use crate::store::ReplicaLink;
use crate::store::redis::{RedisConn, RedisUrl};

const KEY_PREFIX: &str = "sig:{activity}:";

/// The Redis hash holding one cluster's merged activity.
pub fn cluster_key(cluster: &str) -> String {
    format!("{KEY_PREFIX}cluster:{cluster}")
}

fn push_marker_key(replica: &str) -> String {
    format!("{KEY_PREFIX}push:{replica}")
}

/// KEYS[1]: push marker, KEYS[2..]: cluster hashes. ARGV[1]: push id,
/// ARGV[2]: TTL, then per cluster: flush (0: none), n, n × (kind, time), dropped.
const PUSH_SCRIPT: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return 0 end
local ttl = ARGV[2]
local a = 3
local function raise(key, field, value)
  local old = tonumber(redis.call('HGET', key, field) or '0')
  if tonumber(value) > old then redis.call('HSET', key, field, value) end
end
for i = 2, #KEYS do
  local key = KEYS[i]
  if tonumber(ARGV[a]) > 0 then raise(key, 'flush', ARGV[a]) end
  local n = tonumber(ARGV[a + 1])
  a = a + 2
  for _ = 1, n do
    raise(key, 'dp:' .. ARGV[a], ARGV[a + 1])
    a = a + 2
  end
  if tonumber(ARGV[a]) > 0 then redis.call('HINCRBY', key, 'dropped', ARGV[a]) end
  a = a + 1
  redis.call('EXPIRE', key, ttl)
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl)
return 1
"#;

/// KEYS: cluster hashes. ARGV[1]: TTL, ARGV[1 + i]: the XR's droppedEvents
/// for KEYS[i], recorded as `base` if the hash has none.
const READ_SCRIPT: &str = r#"
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('HSETNX', key, 'base', ARGV[i + 1]) == 1 and redis.call('TTL', key) < 0 then
    redis.call('EXPIRE', key, ARGV[1])
  end
  out[i] = redis.call('HGETALL', key)
end
return out
"#;

/// A push not yet confirmed by Redis.
struct Push {
    id: String,
    changes: Vec<(String, ClusterActivity)>,
}

/// The last view read from Redis, kept to fall back on during an outage.
struct LastView {
    clusters: HashMap<String, ClusterActivity>,
    /// This replica's dropped counts Redis had confirmed just before the read.
    confirmed: HashMap<String, u64>,
}

pub struct SharedActivity {
    url: RedisUrl,
    timeout: Duration,
    replica: String,
    incarnation: u64,
    ttl_secs: u64,
    conn: tokio::sync::Mutex<Option<RedisConn>>,
    /// Held across a push, so pushes are sent one at a time in order.
    in_flight: tokio::sync::Mutex<Option<Push>>,
    pushes: AtomicU64,
    /// Per cluster, the dropped items of this replica Redis confirmed.
    confirmed: Mutex<HashMap<String, u64>>,
    last_view: Mutex<Option<LastView>>,
    up: AtomicBool,
    push_failures: AtomicU64,
    local_fallbacks: AtomicU64,
}

impl SharedActivity {
    /// `replica` names this process's push marker; `ttl_secs` is how long a
    /// cluster's record outlives its last push.
    pub fn new(url: RedisUrl, replica: &str, ttl_secs: u64, timeout: Duration) -> Self {
        SharedActivity {
            url,
            timeout,
            replica: replica.to_string(),
            incarnation: rand::random(),
            ttl_secs: ttl_secs.max(1),
            conn: tokio::sync::Mutex::new(None),
            in_flight: tokio::sync::Mutex::new(None),
            pushes: AtomicU64::new(0),
            confirmed: Mutex::default(),
            last_view: Mutex::new(None),
            up: AtomicBool::new(true),
            push_failures: AtomicU64::new(0),
            local_fallbacks: AtomicU64::new(0),
        }
    }

    /// Shares activity through the Redis the store uses, under its replica
    /// id, for as long as it keeps sketches.
    pub fn through(link: ReplicaLink) -> Self {
        SharedActivity::new(link.url, &link.replica, link.ttl_secs, link.timeout)
    }

    async fn conn(&self) -> RedisResult<RedisConn> {
        let mut slot = self.conn.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let conn = RedisConn::connect(&self.url, self.timeout).await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Sends `cmd`, once more if the connection had broken (a Redis restart
    /// is first noticed by the request that meets the dead connection). Both
    /// scripts are safe to run twice: a push by its id, a read is a read.
    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> RedisResult<T> {
        match cmd.query_async(&mut self.conn().await?).await {
            Err(error) if error.is_io_error() || error.is_connection_dropped() => {
                cmd.query_async(&mut self.conn().await?).await
            }
            result => result,
        }
    }

    fn mark(&self, result: &RedisResult<impl Sized>, what: &str) {
        match result {
            Ok(_) => {
                if !self.up.swap(true, Ordering::Relaxed) {
                    tracing::info!("cluster activity is shared through Redis again");
                }
            }
            Err(error) => {
                if self.up.swap(false, Ordering::Relaxed) {
                    tracing::warn!(%error, what,
                        "cannot share cluster activity through Redis; status uses this replica's record until it answers");
                }
            }
        }
    }

    /// Applies `changes` under `push_id`, once: Redis skips a push whose id
    /// is the last one it applied for this replica (a retry of a push that
    /// landed but whose reply was lost). Returns whether it was applied now.
    pub async fn apply(
        &self,
        push_id: &str,
        changes: &[(String, ClusterActivity)],
    ) -> RedisResult<bool> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(PUSH_SCRIPT)
            .arg(changes.len() + 1)
            .arg(push_marker_key(&self.replica));
        for (cluster, _) in changes {
            cmd.arg(cluster_key(cluster));
        }
        cmd.arg(push_id).arg(self.ttl_secs);
        for (_, change) in changes {
            cmd.arg(change.last_flush.unwrap_or(0))
                .arg(change.last_datapoint.len());
            for (kind, at) in &change.last_datapoint {
                cmd.arg(kind.as_str()).arg(*at);
            }
            cmd.arg(change.dropped);
        }
        let applied: i64 = self.query(&cmd).await?;
        Ok(applied == 1)
    }

    /// Sends this replica's unconfirmed push, or else its changes since the
    /// last one. On failure the push is kept and resent unchanged next time.
    /// Returns whether anything was sent.
    pub async fn push(&self, activity: &Activity) -> RedisResult<bool> {
        let mut in_flight = self.in_flight.lock().await;
        let push = match in_flight.take() {
            Some(push) => push,
            None => {
                let changes = activity.take_changes();
                if changes.is_empty() {
                    return Ok(false);
                }
                let sequence = self.pushes.fetch_add(1, Ordering::Relaxed);
                Push {
                    id: format!("{:016x}:{sequence}", self.incarnation),
                    changes,
                }
            }
        };
        let result = self.apply(&push.id, &push.changes).await;
        self.mark(&result, "push");
        match result {
            Ok(_) => {
                let mut confirmed = self.confirmed.lock();
                for (cluster, change) in &push.changes {
                    *confirmed.entry(cluster.clone()).or_default() += change.dropped;
                }
                Ok(true)
            }
            Err(error) => {
                self.push_failures.fetch_add(1, Ordering::Relaxed);
                *in_flight = Some(push);
                Err(error)
            }
        }
    }

    /// Pushes until nothing is left (an unconfirmed push, then what was
    /// recorded meanwhile): the last push of a stopping replica.
    pub async fn push_all(&self, activity: &Activity) -> RedisResult<()> {
        // At most the unconfirmed push and one of fresh changes, plus one for
        // changes recorded while those were sent.
        for _ in 0..3 {
            if !self.push(activity).await? {
                break;
            }
        }
        Ok(())
    }

    /// The merged activity of `clusters` as every replica sees it; `dropped`
    /// includes the XR's count (the XR's value now, for a cluster whose
    /// shared record is new). When Redis does not answer: the last view
    /// read plus this replica's own changes since (logged, and counted on
    /// `/metrics`), or this replica's record alone if nothing was ever read.
    pub async fn views(
        &self,
        activity: &Activity,
        clusters: &[DroppedOnXr],
    ) -> HashMap<String, ClusterActivity> {
        if clusters.is_empty() {
            return HashMap::new();
        }
        let confirmed = self.confirmed.lock().clone();
        let result = self.read(clusters).await;
        self.mark(&result, "read");
        match result {
            Ok(view) => {
                *self.last_view.lock() = Some(LastView {
                    clusters: view.clone(),
                    confirmed,
                });
                view
            }
            Err(_) => {
                self.local_fallbacks.fetch_add(1, Ordering::Relaxed);
                let last = self.last_view.lock();
                clusters
                    .iter()
                    .map(|on_xr| {
                        let name = &on_xr.cluster;
                        let local = activity.cluster(name).unwrap_or_default();
                        let read = last.as_ref().and_then(|l| {
                            let view = l.clusters.get(name)?;
                            Some((view, l.confirmed.get(name).copied().unwrap_or(0)))
                        });
                        let view = match read {
                            Some((view, confirmed)) => ClusterActivity {
                                dropped: view.dropped + local.dropped.saturating_sub(confirmed),
                                ..later_of(view, &local)
                            },
                            None => activity.local_view(on_xr),
                        };
                        (name.clone(), view)
                    })
                    .collect()
            }
        }
    }

    async fn read(
        &self,
        clusters: &[DroppedOnXr],
    ) -> RedisResult<HashMap<String, ClusterActivity>> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(READ_SCRIPT).arg(clusters.len());
        for on_xr in clusters {
            cmd.arg(cluster_key(&on_xr.cluster));
        }
        cmd.arg(self.ttl_secs);
        for on_xr in clusters {
            cmd.arg(on_xr.now);
        }
        let hashes: Vec<Vec<String>> = self.query(&cmd).await?;
        Ok(clusters
            .iter()
            .zip(hashes)
            .map(|(on_xr, fields)| (on_xr.cluster.clone(), parse_hash(&fields)))
            .collect())
    }

    /// The shared layer's gauges and counters in Prometheus text format.
    pub fn prometheus_text(&self) -> String {
        let mut out = String::new();
        for (name, kind, help, value) in [
            (
                "signal_aggregator_shared_activity_up",
                "gauge",
                "0 while pushes or reads of cluster activity in Redis fail (status uses this replica's record), else 1.",
                u64::from(self.up.load(Ordering::Relaxed)),
            ),
            (
                "signal_aggregator_shared_activity_push_failures_total",
                "counter",
                "Pushes of cluster activity to Redis that failed and will be resent.",
                self.push_failures.load(Ordering::Relaxed),
            ),
            (
                "signal_aggregator_shared_activity_local_fallbacks_total",
                "counter",
                "Status passes that used this replica's activity because Redis did not answer.",
                self.local_fallbacks.load(Ordering::Relaxed),
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        }
        out
    }
}

/// `a`'s times raised to `b`'s where `b`'s are later.
fn later_of(a: &ClusterActivity, b: &ClusterActivity) -> ClusterActivity {
    let mut out = a.clone();
    out.last_flush = a.last_flush.max(b.last_flush);
    for (kind, at) in &b.last_datapoint {
        let slot = out.last_datapoint.entry(*kind).or_default();
        *slot = (*slot).max(*at);
    }
    out
}

/// A cluster hash (`HGETALL`, field/value pairs) as activity. Unknown or
/// malformed fields are ignored: they cannot come from this code.
fn parse_hash(fields: &[String]) -> ClusterActivity {
    let mut activity = ClusterActivity::default();
    for pair in fields.chunks_exact(2) {
        let Ok(value) = pair[1].parse::<u64>() else {
            continue;
        };
        match pair[0].as_str() {
            "flush" => activity.last_flush = Some(value),
            "dropped" | "base" => activity.dropped += value,
            field => {
                if let Some(kind) = field
                    .strip_prefix("dp:")
                    .and_then(|k| k.parse::<SignalKind>().ok())
                {
                    activity.last_datapoint.insert(kind, value);
                }
            }
        }
    }
    activity
}

/// How often each replica pushes its cluster activity to the shared record;
/// status lags what replicas recorded by about this.
pub const SHARED_PUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Pushes `activity`'s changes every `interval` until `stopped`, then once
/// more for everything left. Without a shared layer it only waits.
pub async fn run_pushes(activity: Activity, interval: Duration, stopped: impl Future<Output = ()>) {
    let Some(shared) = activity.shared().cloned() else {
        stopped.await;
        return;
    };
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            _ = ticker.tick() => {
                // Failures are logged by `mark` and the push is resent next tick.
                let _ = shared.push(&activity).await;
            }
        }
    }
    match tokio::time::timeout(shared.timeout * 3, shared.push_all(&activity)).await {
        Ok(Ok(())) => tracing::debug!("pushed the last cluster activity to Redis"),
        Ok(Err(error)) => {
            tracing::warn!(%error, "last push of cluster activity to Redis failed; its dropped counts are lost")
        }
        Err(_) => tracing::warn!(
            "last push of cluster activity to Redis timed out; its dropped counts may be lost"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_reads_back_as_activity_with_the_base_included() {
        let fields: Vec<String> = [
            "flush",
            "120",
            "dp:RequestLifecycle",
            "60",
            "dp:Nope",
            "1",
            "dropped",
            "7",
            "base",
            "10",
            "junk",
            "x",
        ]
        .map(String::from)
        .to_vec();
        let activity = parse_hash(&fields);
        assert_eq!(activity.last_flush, Some(120));
        assert_eq!(activity.dropped, 17);
        assert_eq!(
            activity.last_datapoint.into_iter().collect::<Vec<_>>(),
            vec![(SignalKind::RequestLifecycle, 60)]
        );
    }

    #[test]
    fn a_cluster_name_cannot_move_the_hash_tag() {
        let key = cluster_key("{evil}");
        assert!(key.starts_with("sig:{activity}:"));
        assert_eq!(key.find('{'), Some(4));
    }
}
