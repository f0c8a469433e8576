//! Whether the aggregator talks to Kubernetes, decided once at start.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::ValueEnum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KubeMode {
    /// Use in-cluster config or a kubeconfig when one is found; otherwise run
    /// without Kubernetes (said once at start).
    Auto,
    /// Require Kubernetes: fail at start without a usable config.
    On,
    /// Never talk to Kubernetes: no XR watch, no status writes, no issued tokens.
    Off,
}

/// Kubernetes flags: the XR watch, the status writer and the token issuer
/// share one client.
#[derive(Debug, Clone, clap::Args)]
pub struct KubeArgs {
    /// Whether to watch the XRs, write their status and issue ingest tokens.
    #[arg(
        long = "kube",
        env = "SIGNAL_AGGREGATOR_KUBE",
        value_enum,
        default_value = "auto"
    )]
    pub kube: KubeMode,

    /// Kubeconfig to use instead of in-cluster config / `$KUBECONFIG` / `~/.kube/config`.
    #[arg(long, env = "SIGNAL_AGGREGATOR_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
}

/// The client the flags ask for, and the line that tells a person which
/// mode was chosen and how to change it.
pub struct Connection {
    pub client: Option<kube::Client>,
    pub announcement: String,
}

const OFF_CONSEQUENCES: &str = "XR status, fleet opt-ins and issued ingest tokens disabled";

impl KubeArgs {
    /// Connects as asked: `--kube on` fails without a usable config; `auto`
    /// falls back to off and says why in one line, without the chain of
    /// kubeconfig errors (`--kube on` shows them).
    pub async fn connect(&self) -> anyhow::Result<Connection> {
        if self.kube == KubeMode::Off {
            return Ok(Connection {
                client: None,
                announcement: format!("Kubernetes: off (--kube off); {OFF_CONSEQUENCES}"),
            });
        }
        let config = match &self.kubeconfig {
            Some(path) => {
                let kubeconfig = kube::config::Kubeconfig::read_from(path)
                    .with_context(|| format!("cannot read --kubeconfig {}", path.display()));
                match kubeconfig {
                    Ok(k) => kube::Config::from_custom_kubeconfig(k, &Default::default())
                        .await
                        .with_context(|| format!("unusable --kubeconfig {}", path.display())),
                    Err(e) => Err(e),
                }
            }
            None => kube::Config::infer()
                .await
                .context("no in-cluster config and no usable kubeconfig"),
        };
        let config = match (config, self.kube) {
            (Ok(config), _) => config,
            (Err(error), KubeMode::On) => return Err(error.context("--kube on")),
            (Err(error), _) => {
                tracing::debug!(error = format!("{error:#}"), "no Kubernetes config");
                let why = match &self.kubeconfig {
                    Some(path) => format!("--kubeconfig {} is unusable", path.display()),
                    None => "no in-cluster config or kubeconfig".to_string(),
                };
                return Ok(Connection {
                    client: None,
                    announcement: format!(
                        "Kubernetes: off ({why}); {OFF_CONSEQUENCES}; --kube on to require it"
                    ),
                });
            }
        };
        let announcement = format!(
            "Kubernetes: on ({}); watching XRs and writing their status",
            config.cluster_url
        );
        let client =
            kube::Client::try_from(config).context("cannot build the Kubernetes client")?;
        Ok(Connection {
            client: Some(client),
            announcement,
        })
    }
}
