//! Shared by the ingest tests: a recording sink and real listeners on
//! loopback. The payloads are `otlp_test_kit::rich`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::{Semaphore, oneshot};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use signal_aggregator::ingest::{Authenticator, IngestConfig, http_router, serve_grpc};
use signal_aggregator::pipeline::{ExportError, ExportOutcome, ExportSink};
use signal_aggregator::signal::Origin;
use signal_aggregator::telemetry::SelfMetrics;

/// What the sink answers.
#[derive(Clone, Debug)]
pub enum Behaviour {
    Accept,
    PartiallyReject {
        rejected: i64,
        message: String,
    },
    Overloaded(Duration),
    Unavailable(Duration, String),
    /// Park every export until `RecordingSink::release` is called.
    Hold,
}

pub struct RecordingSink {
    behaviour: Mutex<Behaviour>,
    pub metrics: Mutex<Vec<(Origin, ExportMetricsServiceRequest)>>,
    pub traces: Mutex<Vec<(Origin, ExportTraceServiceRequest)>>,
    entered: AtomicUsize,
    release: Semaphore,
}

impl RecordingSink {
    pub fn new(behaviour: Behaviour) -> Arc<Self> {
        Arc::new(RecordingSink {
            behaviour: Mutex::new(behaviour),
            metrics: Mutex::new(Vec::new()),
            traces: Mutex::new(Vec::new()),
            entered: AtomicUsize::new(0),
            release: Semaphore::new(0),
        })
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock() = behaviour;
    }

    /// Exports that reached the sink (held ones included).
    pub fn entered(&self) -> usize {
        self.entered.load(Ordering::SeqCst)
    }

    pub fn release(&self, n: usize) {
        self.release.add_permits(n);
    }

    pub async fn wait_entered(&self, n: usize) {
        for _ in 0..500 {
            if self.entered() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("only {} of {n} exports reached the sink", self.entered());
    }

    async fn answer(&self) -> Result<ExportOutcome, ExportError> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let behaviour = self.behaviour.lock().clone();
        match behaviour {
            Behaviour::Accept => Ok(ExportOutcome::default()),
            Behaviour::PartiallyReject { rejected, message } => {
                Ok(ExportOutcome { rejected, message })
            }
            Behaviour::Overloaded(retry_after) => Err(ExportError::Overloaded { retry_after }),
            Behaviour::Unavailable(retry_after, reason) => Err(ExportError::Unavailable {
                retry_after,
                reason,
            }),
            Behaviour::Hold => {
                self.release.acquire().await.expect("never closed").forget();
                Ok(ExportOutcome::default())
            }
        }
    }
}

#[async_trait]
impl ExportSink for RecordingSink {
    async fn export_metrics(
        &self,
        origin: &Origin,
        request: ExportMetricsServiceRequest,
    ) -> Result<ExportOutcome, ExportError> {
        let answer = self.answer().await;
        if answer.is_ok() {
            self.metrics.lock().push((origin.clone(), request));
        }
        answer
    }

    async fn export_traces(
        &self,
        origin: &Origin,
        request: ExportTraceServiceRequest,
    ) -> Result<ExportOutcome, ExportError> {
        let answer = self.answer().await;
        if answer.is_ok() {
            self.traces.lock().push((origin.clone(), request));
        }
        answer
    }
}

/// A running receiver; shuts down when dropped.
pub struct Running {
    pub addr: SocketAddr,
    pub metrics: Arc<SelfMetrics>,
    _stop: oneshot::Sender<()>,
}

impl Running {
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn rejected(&self, signal: &str, reason: &str) -> u64 {
        self.metrics
            .rejected_snapshot()
            .iter()
            .find(|((s, r), _)| *s == signal && *r == reason)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    }
}

pub async fn start_grpc(sink: Arc<RecordingSink>, config: IngestConfig) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = Arc::new(SelfMetrics::default());
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    tokio::spawn(serve_grpc(
        listener,
        sink,
        config,
        Arc::clone(&metrics),
        shutdown,
    ));
    Running {
        addr,
        metrics,
        _stop: stop,
    }
}

pub async fn start_http(sink: Arc<RecordingSink>, config: IngestConfig) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = Arc::new(SelfMetrics::default());
    let router = http_router(sink, config, Arc::clone(&metrics));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Running {
        addr,
        metrics,
        _stop: stop,
    }
}

/// A gzip member that inflates to `inflated` zero bytes (a "zip bomb").
pub fn gzip_of_zeros(inflated: usize) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let chunk = vec![0u8; 1 << 20];
    let mut left = inflated;
    while left > 0 {
        let n = left.min(chunk.len());
        encoder.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    encoder.finish().unwrap()
}

/// Accepts `Bearer good` as cluster `c1`.
pub struct OneToken;

impl Authenticator for OneToken {
    fn authenticate(&self, authorization: Option<&[u8]>) -> Result<Origin, String> {
        match authorization {
            Some(b"Bearer good") => Ok(Origin {
                authenticated_cluster: Some("c1".into()),
            }),
            Some(_) => Err("ingest token not recognised".into()),
            None => Err("missing authorization: Bearer <ingest token>".into()),
        }
    }
}
