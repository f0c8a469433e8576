//! RunFunction cost on the largest example (`examples/ic-full`: all six kinds,
//! two scraped namespaces, observed resources), against a pass-through
//! handler (`response::to` only) in the same run; then a gRPC round trip on
//! loopback against the same pair. Medians are in
//! `target/criterion/<group>/<bench>/new/estimates.json`; see
//! docs/benchmarks/function.md.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use function_sdk_rust::proto::v1::function_runner_service_client::FunctionRunnerServiceClient;
use function_sdk_rust::proto::v1::function_runner_service_server::{
    FunctionRunnerService, FunctionRunnerServiceServer,
};
use function_sdk_rust::proto::v1::{RunFunctionRequest, RunFunctionResponse};
use function_sdk_rust::response;
use function_signals::render_cmd::{RenderArgs, build_request};
use function_signals::{Config, SignalsFunction, run_function};
use tokio::runtime::Runtime;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status};

fn largest_example() -> RunFunctionRequest {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/ic-full");
    build_request(&RenderArgs {
        xr: dir.join("xr.yaml"),
        observed: Some(dir.join("observed")),
        input: None,
    })
    .expect("the example loads")
}

/// The cheapest spec-compliant handler: copy tag, desired state and context.
#[derive(Clone, Copy)]
struct PassThrough;

#[tonic::async_trait]
impl FunctionRunnerService for PassThrough {
    async fn run_function(
        &self,
        request: Request<RunFunctionRequest>,
    ) -> Result<Response<RunFunctionResponse>, Status> {
        Ok(Response::new(response::to(
            request.get_ref(),
            response::DEFAULT_TTL,
        )))
    }
}

fn handling(c: &mut Criterion) {
    let req = largest_example();
    let config = Config::default();
    let rendered = run_function(&req, &config);
    assert!(
        rendered.results.is_empty(),
        "the example must render cleanly"
    );
    let mut group = c.benchmark_group("handler");
    group.bench_function("run_function_ic_full", |b| {
        b.iter(|| run_function(black_box(&req), &config))
    });
    group.bench_function("pass_through", |b| {
        b.iter(|| response::to(black_box(&req), response::DEFAULT_TTL))
    });
    group.finish();
}

/// Serves `function` on 127.0.0.1:0 in `runtime` and returns a connected client.
fn serve<F: FunctionRunnerService>(
    runtime: &Runtime,
    function: F,
) -> FunctionRunnerServiceClient<Channel> {
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let address = listener.local_addr().expect("local address");
        tokio::spawn(
            Server::builder()
                .add_service(FunctionRunnerServiceServer::new(function))
                // As the SDK's server does (tonic's default); without it a
                // 30 KB response waits out a delayed ACK (~40 ms).
                .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true))),
        );
        FunctionRunnerServiceClient::connect(format!("http://{address}"))
            .await
            .expect("connect")
    })
}

fn round_trip(c: &mut Criterion) {
    let runtime = Runtime::new().expect("tokio runtime");
    let req = largest_example();
    let signals = serve(&runtime, SignalsFunction::default());
    let pass_through = serve(&runtime, PassThrough);
    let mut group = c.benchmark_group("grpc_loopback");
    for (name, client) in [
        ("run_function_ic_full", signals),
        ("pass_through", pass_through),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut client = client.clone();
                runtime.block_on(async {
                    client.run_function(req.clone()).await.expect("RunFunction")
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, handling, round_trip);
criterion_main!(benches);
