//! Real redis-server processes for the Redis store's tests: a single node on a
//! free loopback port, or a Redis Cluster of masters built with
//! `redis-cli --cluster create`. Included by the `redis_*.rs` tests.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use signal_aggregator::signal::{Field, FieldKey, Point, SeriesKey, SignalKind, Value};
use signal_aggregator::sketch::{Resolution, SeriesSketch, Window, WindowedSketch};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli is installed (test/run-all.sh installs redis-tools)");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub struct RedisNode {
    pub port: u16,
    dir: PathBuf,
    extra: Vec<String>,
    child: Option<Child>,
}

impl RedisNode {
    /// `appendonly`: fsync every write, so data survives `stop()`/`start()`.
    pub fn start(dir: &Path, appendonly: bool, extra: &[&str]) -> RedisNode {
        let port = free_port();
        let dir = dir.join(port.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let mut extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        if appendonly {
            extra.extend(["--appendonly", "yes", "--appendfsync", "always"].map(String::from));
        }
        let mut node = RedisNode {
            port,
            dir,
            extra,
            child: None,
        };
        node.restart();
        node
    }

    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--save",
                "",
                "--protected-mode",
                "no",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (test/run-all.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while cli(self.port, &["PING"]) != "PONG" {
            assert!(
                Instant::now() < deadline,
                "redis-server on {} never answered",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn cli(&self, args: &[&str]) -> String {
        cli(self.port, args)
    }
}

impl Drop for RedisNode {
    fn drop(&mut self) {
        self.stop();
    }
}

pub struct RedisCluster {
    pub nodes: Vec<RedisNode>,
}

impl RedisCluster {
    pub fn start(dir: &Path, masters: usize) -> RedisCluster {
        let nodes: Vec<RedisNode> = (0..masters)
            .map(|_| {
                let bus = free_port().to_string();
                RedisNode::start(
                    dir,
                    false,
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "5000",
                        "--cluster-port",
                        &bus,
                    ],
                )
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(addresses.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        cli(nodes[0].port, &args);
        let cluster = RedisCluster { nodes };
        cluster.wait_ok();
        cluster
    }

    pub fn wait_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self
            .nodes
            .iter()
            .all(|n| n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
        {
            assert!(
                Instant::now() < deadline,
                "cluster never reached cluster_state:ok"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Comma-separated seed URLs, as `--redis-url` takes them.
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(RedisNode::url)
            .collect::<Vec<_>>()
            .join(",")
    }
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn series(tenant: &str, cluster: &str, model: &str) -> SeriesKey {
    SeriesKey {
        tenant: tenant.into(),
        cluster: cluster.into(),
        model: model.into(),
        kind: SignalKind::RequestLifecycle,
    }
}

/// A RequestLifecycle minute window: `requests` requests, each with a TTFT
/// sample and `tokens` output tokens.
pub fn lifecycle(key: &SeriesKey, minute_start: u64, requests: u64, tokens: u64) -> WindowedSketch {
    let mut sketch = SeriesSketch::default();
    let time_unix_nano = (minute_start + 1) * 1_000_000_000;
    for i in 0..requests {
        for (field, value) in [
            (Field::Requests, Value::Counter(1.0)),
            (Field::OutputTokens, Value::Counter(tokens as f64)),
            (
                Field::TtftSeconds,
                Value::Sample(0.05 + (i % 100) as f64 * 0.01),
            ),
        ] {
            sketch.record(&Point {
                field: FieldKey::plain(field),
                time_unix_nano,
                value,
            });
        }
    }
    WindowedSketch {
        key: key.clone(),
        window: Window {
            resolution: Resolution::Minute,
            start_unix_secs: minute_start,
        },
        sketch,
    }
}

/// (requests, output tokens, TTFT sample count) of a query answer's sketch.
pub fn totals(sketch: &SeriesSketch) -> (f64, f64, u64) {
    (
        sketch.counter_sum(Field::Requests).unwrap_or(0.0),
        sketch.counter_sum(Field::OutputTokens).unwrap_or(0.0),
        sketch.summary(Field::TtftSeconds).map_or(0, |s| s.count),
    )
}
