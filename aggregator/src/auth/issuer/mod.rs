//! The ingest token issuer: one token per InferenceCluster, kept in a
//! control-plane Secret `signals-ingest-<cluster>` that provider-kubernetes
//! copies to the workload cluster, rotated on request or by age with an
//! overlap (`docs/auth.md`).
//!
//! - [`secret`]: the Secret's shape and the decisions about it (pure).
//! - [`issued`]: every replica's watched view of the issued Secrets; it is
//!   also an ingest token source, so all replicas accept what any issued.
//! - [`reconcile`]: the writes (create, rotate, drop the previous token) and
//!   `status.signals.ingestToken`.

pub mod issued;
pub mod reconcile;
pub mod secret;

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use apis::RetentionDuration;
use clap::{ArgAction, Args};
use tracing::Instrument as _;

pub use issued::IssuedTokens;
pub use reconcile::{IssueReport, TOKEN_FIELD_MANAGER, TokenIssuer};
pub use secret::RotationPolicy;

use crate::clock::Clock;
use crate::directory::Directory;

/// Token namespace when neither `--token-namespace` nor `POD_NAMESPACE` says.
pub const DEFAULT_TOKEN_NAMESPACE: &str = "modelplane-system";
/// Longest the issuer sleeps without an event (it also retries failed writes then).
const RECHECK: Duration = Duration::from_secs(30);

/// `--ingest-token-max-age`: a duration (`30d`, `12h`), or `0` for never.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxAge(Option<RetentionDuration>);

impl MaxAge {
    pub fn as_secs(self) -> u64 {
        self.0.map_or(0, RetentionDuration::as_secs)
    }
}

impl FromStr for MaxAge {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        if matches!(raw.trim(), "0" | "0s") {
            return Ok(MaxAge(None));
        }
        raw.trim()
            .parse()
            .map(|d| MaxAge(Some(d)))
            .map_err(|_| format!("{raw:?} is not a duration; want e.g. 30d, 12h, or 0 for never"))
    }
}

impl std::fmt::Display for MaxAge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(duration) => write!(f, "{duration}"),
            None => f.write_str("0"),
        }
    }
}

/// Token issuance flags (used only when Kubernetes is on, see `--kube`).
#[derive(Debug, Clone, Args)]
pub struct IssuerArgs {
    /// Issue one ingest token per InferenceCluster in Secret
    /// `signals-ingest-<cluster>` and accept those tokens (with or without
    /// `--ingest-tokens-file`). Takes effect only when Kubernetes is on.
    #[arg(long, env = "SIGNAL_AGGREGATOR_ISSUE_INGEST_TOKENS", default_value_t = true,
          action = ArgAction::Set, value_name = "true|false")]
    pub issue_ingest_tokens: bool,

    /// Namespace of the token Secrets (default: `$POD_NAMESPACE`, else
    /// `modelplane-system`). function-signals' `tokenNamespace` must name the same.
    #[arg(long, env = "SIGNAL_AGGREGATOR_TOKEN_NAMESPACE")]
    pub token_namespace: Option<String>,

    /// Rotate a token this long after it was issued; 0 = only on request
    /// (annotation `signals.modelplane.ai/rotate: "true"`).
    #[arg(
        long,
        env = "SIGNAL_AGGREGATOR_INGEST_TOKEN_MAX_AGE",
        default_value = "30d"
    )]
    pub ingest_token_max_age: MaxAge,

    /// How long the previous token stays accepted after a rotation: the new
    /// one must be copied to the workload cluster and the agent restarted.
    #[arg(
        long,
        env = "SIGNAL_AGGREGATOR_INGEST_TOKEN_OVERLAP",
        default_value = "24h"
    )]
    pub ingest_token_overlap: RetentionDuration,
}

impl IssuerArgs {
    pub fn policy(&self) -> RotationPolicy {
        RotationPolicy {
            max_age_secs: self.ingest_token_max_age.as_secs(),
            overlap_secs: self.ingest_token_overlap.as_secs(),
        }
    }

    /// The token namespace: the flag, else `pod_namespace`, else the default.
    pub fn namespace(&self, pod_namespace: Option<String>) -> anyhow::Result<String> {
        let namespace = self
            .token_namespace
            .clone()
            .or(pod_namespace.filter(|n| !n.is_empty()))
            .unwrap_or_else(|| DEFAULT_TOKEN_NAMESPACE.to_string());
        let valid = !namespace.is_empty()
            && namespace.len() <= 63
            && namespace
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !namespace.starts_with('-')
            && !namespace.ends_with('-');
        if !valid {
            anyhow::bail!(
                "--token-namespace {namespace:?} is not a namespace name (lowercase letters, digits and '-', at most 63)"
            );
        }
        Ok(namespace)
    }

    /// Cross-flag checks clap cannot express.
    pub fn validate(&self) -> anyhow::Result<()> {
        let policy = self.policy();
        if policy.max_age_secs > 0 && policy.overlap_secs >= policy.max_age_secs {
            anyhow::bail!(
                "--ingest-token-overlap ({}) must be shorter than --ingest-token-max-age ({}), \
                 else a token would be rotated again before its predecessor expired",
                self.ingest_token_overlap,
                self.ingest_token_max_age
            );
        }
        Ok(())
    }
}

/// Watches the token Secrets into `issued` and runs the issuer until
/// `stopped`. `directory` must be fed by the XR watch.
pub async fn run(
    client: kube::Client,
    namespace: String,
    policy: RotationPolicy,
    directory: Directory,
    issued: IssuedTokens,
    clock: Clock,
    stopped: impl Future<Output = ()>,
) {
    let watch = issued::watch(client.clone(), namespace.clone(), issued.clone());
    let issuer = TokenIssuer::new(client, namespace, directory, issued, policy);
    tokio::select! {
        _ = stopped => {}
        _ = watch => {}
        _ = issue(issuer, clock) => {}
    }
}

/// Passes after every change of the directory or the Secrets, when a token
/// is due for rotation or a previous token expires, and at least every
/// [`RECHECK`]. Nothing is written before both the XRs and the Secrets have
/// been listed.
async fn issue(mut issuer: TokenIssuer, clock: Clock) {
    let mut directory_changes = issuer.directory().subscribe();
    let mut secret_changes = issuer.issued().subscribe();
    loop {
        // Marked seen before the pass: a change during it wakes the next one.
        directory_changes.borrow_and_update();
        secret_changes.borrow_and_update();
        let mut wait = RECHECK;
        if issuer.directory().is_synced() && issuer.issued().is_synced() {
            let now = clock();
            let span = tracing::info_span!(
                "token.issue",
                clusters = issuer.directory().clusters().len() as i64,
                created = tracing::field::Empty,
                adopted = tracing::field::Empty,
                rotated = tracing::field::Empty,
                expired = tracing::field::Empty,
                conflicts = tracing::field::Empty,
                failed = tracing::field::Empty,
            );
            let report = issuer.reconcile_once(now).instrument(span.clone()).await;
            span.record("created", i64::from(report.created));
            span.record("adopted", i64::from(report.adopted));
            span.record("rotated", i64::from(report.rotated));
            span.record("expired", i64::from(report.expired));
            span.record("conflicts", i64::from(report.conflicts));
            span.record("failed", i64::from(report.failed));
            if report != IssueReport::default() {
                tracing::debug!(?report, "token issuer pass");
            }
            if let Some(due) = issuer.issued().next_due(&issuer.policy()) {
                wait = wait.min(Duration::from_secs(due.saturating_sub(now).max(1)));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            changed = directory_changes.changed() => if changed.is_err() { return },
            changed = secret_changes.changed() => if changed.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        issuer: IssuerArgs,
    }

    fn parse(args: &[&str]) -> Result<IssuerArgs, String> {
        Flags::try_parse_from(std::iter::once("x").chain(args.iter().copied()))
            .map(|f| f.issuer)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_issue_with_a_30_day_max_age_and_a_day_of_overlap() {
        let args = parse(&[]).unwrap();
        assert!(args.issue_ingest_tokens);
        assert_eq!(
            args.policy(),
            RotationPolicy {
                max_age_secs: 30 * 86_400,
                overlap_secs: 86_400
            }
        );
        assert!(args.validate().is_ok());
        assert_eq!(args.namespace(None).unwrap(), "modelplane-system");
        assert_eq!(args.namespace(Some("ops".into())).unwrap(), "ops");
        assert_eq!(
            args.namespace(Some(String::new())).unwrap(),
            "modelplane-system"
        );
    }

    #[test]
    fn flags_parse_and_are_checked() {
        let args = parse(&[
            "--issue-ingest-tokens",
            "false",
            "--token-namespace",
            "tokens",
            "--ingest-token-max-age",
            "0",
            "--ingest-token-overlap",
            "2h",
        ])
        .unwrap();
        assert!(!args.issue_ingest_tokens);
        assert_eq!(args.namespace(Some("ignored".into())).unwrap(), "tokens");
        assert_eq!(args.policy().max_age_secs, 0);
        assert!(args.validate().is_ok(), "no max age: any overlap");

        let error = parse(&["--ingest-token-max-age", "30 days"]).unwrap_err();
        assert!(error.contains("0 for never"), "{error}");
        let short = parse(&[
            "--ingest-token-max-age",
            "12h",
            "--ingest-token-overlap",
            "1d",
        ])
        .unwrap()
        .validate()
        .unwrap_err()
        .to_string();
        assert!(short.contains("must be shorter"), "{short}");
        let bad = parse(&["--token-namespace", "Not_A_Namespace"])
            .unwrap()
            .namespace(None)
            .unwrap_err()
            .to_string();
        assert!(bad.contains("not a namespace name"), "{bad}");
    }
}
