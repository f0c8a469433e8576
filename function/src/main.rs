use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use function_sdk_rust::{Args, Server};
use function_signals::input::Ttl;
use function_signals::render_cmd::{self, RenderArgs, RenderOptions};
use function_signals::{Config, SignalsFunction};

/// Crossplane composition function that renders per-cluster OpenTelemetry
/// Collector agents from InferenceCluster.spec.signals.
#[derive(Parser, Debug)]
#[command(name = "function-signals")]
struct Cli {
    #[command(flatten)]
    args: Args,

    /// How long Crossplane may cache a response (and how often it re-runs the
    /// pipeline); a step's input.ttl wins.
    #[arg(
        long,
        env = "FUNCTION_SIGNALS_TTL",
        default_value = "60s",
        global = true
    )]
    ttl: Ttl,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the desired state for an XR as YAML, as `crossplane composition render` would.
    Render {
        #[command(flatten)]
        args: RenderArgs,
        #[command(flatten)]
        options: RenderOptions,
    },
}

fn main() -> ExitCode {
    // The SDK's Args carries its own crate version; state ours.
    let command = Cli::command()
        .version(env!("CARGO_PKG_VERSION"))
        .about("Crossplane composition function that renders per-cluster OpenTelemetry Collector agents from InferenceCluster.spec.signals");
    let cli = match Cli::from_arg_matches(&command.get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let config = Config { ttl: cli.ttl.0 };
    match &cli.command {
        Some(Command::Render { args, options }) => {
            ExitCode::from(render_cmd::run(args, options, &config) as u8)
        }
        None => serve(&cli.args, config),
    }
}

fn serve(args: &Args, config: Config) -> ExitCode {
    if !args.insecure && args.tls_certs_dir.is_none() {
        eprintln!(
            "function-signals: refusing to serve without transport security; pass --tls-certs-dir (or set TLS_SERVER_CERTS_DIR) to a directory with tls.crt, tls.key and ca.crt for mTLS, or --insecure for local development"
        );
        return ExitCode::from(2);
    }
    function_sdk_rust::logging::configure(args.debug);
    // rustls panics when it has to choose between two compiled-in providers;
    // the workspace builds only aws-lc-rs, and naming it keeps a dependency
    // that enables ring from turning the TLS listener into a panic.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("function-signals: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // RunFunction spans over OTLP, only when OTEL_EXPORTER_OTLP_*ENDPOINT is set.
    let self_tracing = {
        let _entered = runtime.enter();
        match selftrace::from_env("function-signals", env!("CARGO_PKG_VERSION")) {
            Ok(self_tracing) => self_tracing,
            Err(e) => {
                eprintln!(
                    "function-signals: cannot export spans as OTEL_EXPORTER_OTLP_* asks: {e}"
                );
                return ExitCode::from(2);
            }
        }
    };
    if let Some(self_tracing) = &self_tracing {
        opentelemetry::global::set_tracer_provider(self_tracing.provider().clone());
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        tracing::info!("exporting RunFunction spans over OTLP");
    }
    let function = SignalsFunction { config };
    let served = runtime.block_on(Server::new(function, args).serve());
    if let Some(self_tracing) = self_tracing
        && let Err(e) = self_tracing.shutdown()
    {
        tracing::warn!(error = %e, "the last spans could not be exported");
    }
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "function-signals stopped");
            eprintln!("function-signals: {e}");
            ExitCode::FAILURE
        }
    }
}
