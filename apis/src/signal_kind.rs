use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The typed signals the bus carries (the v0.1 set from the signal-bus design).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum SignalKind {
    /// TTFT, TPOT, end-to-end latency, queue time, token counts, errors, queue depth,
    /// prefix-cache hit rate.
    RequestLifecycle,
    /// Distinct prefix hashes and their frequency, for cross-cluster overlap.
    PrefixHash,
    /// GPUs by SKU, KV-cache utilization per tier, replicas, cache bytes staged.
    Capacity,
    /// GPU procurement, image load, model load, engine start-up, cache hydration.
    ColdStart,
    /// GPU price and usage, for $/GPU-hour and $/token.
    Cost,
    /// Failure events per (cluster, SKU, root cause).
    Reliability,
}

impl SignalKind {
    pub const ALL: [SignalKind; 6] = [
        SignalKind::RequestLifecycle,
        SignalKind::PrefixHash,
        SignalKind::Capacity,
        SignalKind::ColdStart,
        SignalKind::Cost,
        SignalKind::Reliability,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            SignalKind::RequestLifecycle => "RequestLifecycle",
            SignalKind::PrefixHash => "PrefixHash",
            SignalKind::Capacity => "Capacity",
            SignalKind::ColdStart => "ColdStart",
            SignalKind::Cost => "Cost",
            SignalKind::Reliability => "Reliability",
        }
    }

    /// Kinds derived from spans can be head-sampled; kinds derived from scraped
    /// metrics cannot (a counter thinned by sampling is wrong, not approximate).
    pub const fn is_span_derived(self) -> bool {
        matches!(self, SignalKind::RequestLifecycle | SignalKind::PrefixHash)
    }
}

impl fmt::Display for SignalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown signal kind {0:?}; expected one of RequestLifecycle, PrefixHash, Capacity, ColdStart, Cost, Reliability"
)]
pub struct UnknownSignalKind(pub String);

impl FromStr for SignalKind {
    type Err = UnknownSignalKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SignalKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownSignalKind(s.to_string()))
    }
}
