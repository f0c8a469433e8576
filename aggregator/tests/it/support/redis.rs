//! Real redis-server processes for the Redis store's tests: a single node on a
//! free loopback port, or a Redis Cluster of masters built with
//! `redis-cli --cluster create`, each optionally over TLS with a throwaway CA
//! ([`TestPki`]). Used by the `store` and `status` tests and the redis bench.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use otlp_test_kit::free_port;
use signal_aggregator::signal::{Field, FieldKey, Point, SeriesKey, SignalKind, Value};
use signal_aggregator::sketch::{Resolution, SeriesSketch, Window, WindowedSketch};
use signal_aggregator::store::StoreQuery;

/// redis-cli with `connection` options (the TLS ones for a TLS node).
fn cli_with(port: u16, connection: &[String], args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(connection)
        .args(args)
        .output()
        .expect("redis-cli is installed (test/run-all.sh installs redis-tools)");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A throwaway PKI for `rediss://` tests, as PEM files in one directory: a CA,
/// a certificate for 127.0.0.1/localhost that redis-server serves (and
/// presents to its cluster peers, hence both server and client usage), and a
/// client certificate for the aggregator.
pub struct TestPki {
    pub dir: PathBuf,
}

impl TestPki {
    pub fn generate(dir: &Path) -> TestPki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        std::fs::create_dir_all(dir).unwrap();
        let write = |name: &str, pem: String| std::fs::write(dir.join(name), pem).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name
            .push(DnType::CommonName, format!("test ca {}", dir.display()));
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        write("ca.crt", ca.self_signed(&ca_key).unwrap().pem());
        let issuer = Issuer::new(ca, ca_key);
        for (name, names, usages) in [
            (
                "server",
                vec!["127.0.0.1".to_string(), "localhost".to_string()],
                vec![
                    ExtendedKeyUsagePurpose::ServerAuth,
                    ExtendedKeyUsagePurpose::ClientAuth,
                ],
            ),
            (
                "client",
                Vec::new(),
                vec![ExtendedKeyUsagePurpose::ClientAuth],
            ),
        ] {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(names).unwrap();
            params
                .distinguished_name
                .push(DnType::CommonName, format!("signal-aggregator test {name}"));
            params.extended_key_usages = usages;
            write(
                &format!("{name}.crt"),
                params.signed_by(&key, &issuer).unwrap().pem(),
            );
            write(&format!("{name}.key"), key.serialize_pem());
        }
        TestPki {
            dir: dir.to_path_buf(),
        }
    }

    /// `ca.crt`, `server.crt`, `server.key`, `client.crt` or `client.key`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn server_args(&self, require_client_cert: bool) -> Vec<String> {
        vec![
            "--tls-cert-file".into(),
            self.arg("server.crt"),
            "--tls-key-file".into(),
            self.arg("server.key"),
            "--tls-ca-cert-file".into(),
            self.arg("ca.crt"),
            "--tls-auth-clients".into(),
            if require_client_cert { "yes" } else { "no" }.into(),
        ]
    }

    fn cli_args(&self) -> Vec<String> {
        vec![
            "--tls".into(),
            "--cacert".into(),
            self.arg("ca.crt"),
            "--cert".into(),
            self.arg("client.crt"),
            "--key".into(),
            self.arg("client.key"),
        ]
    }
}

pub struct RedisNode {
    pub port: u16,
    dir: PathBuf,
    extra: Vec<String>,
    child: Option<Child>,
    /// redis-cli options to reach it: the TLS ones for a TLS node.
    cli_connection: Vec<String>,
    tls: bool,
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
            cli_connection: Vec::new(),
            tls: false,
        };
        node.restart();
        node
    }

    /// A node serving only TLS (`rediss://`) with `pki`'s server certificate;
    /// with `require_client_cert` it refuses clients without a certificate
    /// from `pki`'s CA (mTLS).
    pub fn start_tls(
        dir: &Path,
        pki: &TestPki,
        require_client_cert: bool,
        extra: &[&str],
    ) -> RedisNode {
        let port = free_port();
        let dir = dir.join(port.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let mut all_extra = pki.server_args(require_client_cert);
        all_extra.extend(extra.iter().map(|s| s.to_string()));
        let mut node = RedisNode {
            port,
            dir,
            extra: all_extra,
            child: None,
            cli_connection: pki.cli_args(),
            tls: true,
        };
        node.restart();
        node
    }

    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let port = self.port.to_string();
        let listen: &[&str] = if self.tls {
            &["--port", "0", "--tls-port", &port]
        } else {
            &["--port", &port]
        };
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1"])
            .args(listen)
            .args(["--save", "", "--protected-mode", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (test/run-all.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.cli(&["PING"]) != "PONG" {
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
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn cli(&self, args: &[&str]) -> String {
        cli_with(self.port, &self.cli_connection, args)
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
        Self::start_with(dir, masters, None)
    }

    /// A cluster whose clients and bus speak only TLS; clients must present a
    /// certificate from `pki`'s CA.
    pub fn start_tls(dir: &Path, masters: usize, pki: &TestPki) -> RedisCluster {
        Self::start_with(dir, masters, Some(pki))
    }

    fn start_with(dir: &Path, masters: usize, pki: Option<&TestPki>) -> RedisCluster {
        let nodes: Vec<RedisNode> = (0..masters)
            .map(|_| {
                let bus = free_port().to_string();
                let mut args = vec![
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "5000",
                    "--cluster-port",
                    &bus,
                ];
                match pki {
                    Some(pki) => {
                        args.extend(["--tls-cluster", "yes"]);
                        RedisNode::start_tls(dir, pki, true, &args)
                    }
                    None => RedisNode::start(dir, false, &args),
                }
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(addresses.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        nodes[0].cli(&args);
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

/// RequestLifecycle of `tenant` (every tenant: `None`) over the last 15 minutes.
pub fn recent_query(tenant: Option<&str>) -> StoreQuery {
    let now = now_secs();
    StoreQuery {
        tenant: tenant.map(String::from),
        kind: SignalKind::RequestLifecycle,
        cluster: None,
        model: None,
        from_unix_secs: now - 900,
        to_unix_secs: now + 60,
    }
}

/// The start of the minute `ago` minutes back.
pub fn minute(ago: u64) -> u64 {
    let t = now_secs() - ago * 60;
    t - t % 60
}
