//! Query-string parsing shared by the API handlers. Every error names the
//! parameter and says what would be accepted.

use std::collections::HashMap;
use std::str::FromStr;

use apis::RetentionDuration;

use crate::api::error::ApiError;
use crate::signal::{SignalKind, check_identity};

/// The time range `[from, to)` a query covers, in unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub from_unix_secs: u64,
    pub to_unix_secs: u64,
}

/// What a query result can be grouped by; a group merges every series that
/// shares the chosen identity parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupBy {
    pub cluster: bool,
    pub model: bool,
}

/// Query parameters after validation, looked up by name so unknown names can
/// be refused (a typo such as `groupby` should not silently do nothing).
pub struct Params {
    values: HashMap<String, String>,
}

impl Params {
    pub fn new(values: HashMap<String, String>, allowed: &[&str]) -> Result<Self, ApiError> {
        if let Some(unknown) = values.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(ApiError::invalid_parameter(
                unknown,
                format!("unknown parameter; accepted: {}", allowed.join(", ")),
            ));
        }
        Ok(Params { values })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::invalid_parameter(name, "required"))
    }

    /// An optional identity filter (`cluster`, `model`); empty means absent.
    pub fn identity(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(value) => validate_identity(name, value).map(|v| Some(v.to_string())),
        }
    }

    pub fn group_by(&self) -> Result<GroupBy, ApiError> {
        let raw = self.get("groupBy").unwrap_or("cluster,model");
        let mut group_by = GroupBy::default();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "cluster" => group_by.cluster = true,
                "model" => group_by.model = true,
                other => {
                    return Err(ApiError::invalid_parameter(
                        "groupBy",
                        format!(
                            "cannot group by {other:?}; use a comma list of cluster, model (or empty for one group)"
                        ),
                    ));
                }
            }
        }
        Ok(group_by)
    }

    /// `window` (default 5m) ending at `to` (unix seconds, default now); the
    /// range may not reach back further than the store's retention.
    pub fn time_range(
        &self,
        now_unix_secs: u64,
        retention_secs: u64,
    ) -> Result<TimeRange, ApiError> {
        let window = parse_window(self.get("window").unwrap_or("5m"))?;
        let to = match self.get("to") {
            None | Some("") => now_unix_secs,
            Some(raw) => raw.parse::<u64>().map_err(|_| {
                ApiError::invalid_parameter(
                    "to",
                    format!("{raw:?} is not unix seconds (e.g. 1767225600)"),
                )
            })?,
        };
        let from = to.checked_sub(window).ok_or_else(|| {
            ApiError::invalid_parameter("window", "reaches before the unix epoch")
        })?;
        let oldest_kept = now_unix_secs.saturating_sub(retention_secs);
        if window > retention_secs {
            return Err(ApiError::invalid_parameter(
                "window",
                format!(
                    "{} is longer than the retention ({}s); data older than that is deleted",
                    self.get("window").unwrap_or_default(),
                    retention_secs
                ),
            ));
        }
        if from < oldest_kept {
            return Err(ApiError::invalid_parameter(
                "to",
                format!(
                    "the window would start at {from}, before the oldest retained data ({oldest_kept})"
                ),
            ));
        }
        Ok(TimeRange {
            from_unix_secs: from,
            to_unix_secs: to,
        })
    }

    pub fn quantile(&self) -> Result<f64, ApiError> {
        let raw = self.get("quantile").unwrap_or("0.99");
        match raw.parse::<f64>() {
            Ok(q) if q > 0.0 && q < 1.0 => Ok(q),
            _ => Err(ApiError::invalid_parameter(
                "quantile",
                format!("{raw:?} is not a number strictly between 0 and 1 (e.g. 0.99)"),
            )),
        }
    }
}

/// `30s`, `5m`, `1h`, `7d`: a positive whole number and one unit.
pub fn parse_window(raw: &str) -> Result<u64, ApiError> {
    RetentionDuration::from_str(raw)
        .map(RetentionDuration::as_secs)
        .map_err(|_| {
            ApiError::invalid_parameter(
                "window",
                format!("{raw:?} is not a duration; use a whole number and one of s, m, h, d (e.g. 30s, 5m, 1h, 7d)"),
            )
        })
}

pub fn parse_kind(parameter: &str, raw: &str) -> Result<SignalKind, ApiError> {
    raw.parse::<SignalKind>().map_err(|_| {
        let valid: Vec<&str> = SignalKind::ALL.iter().map(|k| k.as_str()).collect();
        ApiError::invalid_parameter(
            parameter,
            format!(
                "unknown signal kind {raw:?}; valid kinds: {}",
                valid.join(", ")
            ),
        )
    })
}

pub fn validate_identity<'a>(parameter: &str, value: &'a str) -> Result<&'a str, ApiError> {
    check_identity(value).map_err(|problem| ApiError::invalid_parameter(parameter, problem))
}
