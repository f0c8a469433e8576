//! `GET /v1/tenants/{tenant}/signals/{kind}`: one tenant's signals, grouped.

use std::collections::{BTreeMap, HashMap};

use crate::api::Answer;
use axum::extract::{Path, Query, State};

use crate::api::model::{Group, GroupDimension, KindName, SignalsResponse};
use crate::api::params::{GroupBy, Params, parse_kind, validate_identity};
use crate::api::signals::{self, Companion};
use crate::api::{ApiError, ApiState, window};
use crate::query::cost::CostBreakdown;
use crate::query::readout;
use crate::signal::{Field, SeriesKey, SignalKind};
use crate::sketch::SeriesSketch;
use crate::store::StoreQuery;

const PARAMETERS: &[&str] = &["cluster", "model", "window", "to", "groupBy"];

/// Identity of one result group: the parts the query groups by.
type GroupKey = (Option<String>, Option<String>);

pub async fn signals(
    State(state): State<ApiState>,
    Path((tenant, kind)): Path<(String, String)>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Answer<SignalsResponse>, ApiError> {
    validate_identity("tenant", &tenant)?;
    let kind = parse_kind("kind", &kind)?;
    let params = Params::new(raw, PARAMETERS)?;
    let group_by = params.group_by()?;
    let range = params.time_range((state.clock)(), state.store.retention_secs())?;
    let query = StoreQuery {
        tenant: Some(tenant.clone()),
        kind,
        cluster: params.identity("cluster")?,
        model: params.identity("model")?,
        from_unix_secs: range.from_unix_secs,
        to_unix_secs: range.to_unix_secs,
    };
    let groups = grouped(&state, &query, group_by).await?;
    let (tokens, costs) = if kind == SignalKind::Cost {
        let lifecycle = StoreQuery {
            kind: SignalKind::RequestLifecycle,
            ..query.clone()
        };
        let tokens = grouped(&state, &lifecycle, group_by).await?;
        (
            Some(tokens),
            Some(costs_per_group(&state, &query, group_by).await?),
        )
    } else {
        (None, None)
    };
    let window_secs = range.to_unix_secs - range.from_unix_secs;
    let rendered: Vec<Group> = groups
        .iter()
        .map(|(group, sketch)| {
            let companion = Companion {
                tokens: tokens.as_ref().map(|t| {
                    t.get(group).map_or(0.0, |s| {
                        readout::total_of(s, Field::InputTokens)
                            + readout::total_of(s, Field::OutputTokens)
                    })
                }),
                cost: costs.as_ref().and_then(|c| c.get(group).cloned()),
            };
            Group {
                cluster: group.0.clone(),
                model: group.1.clone(),
                signals: signals::render_group(kind, sketch, window_secs, companion),
            }
        })
        .collect();
    let unmapped_points = state.metrics.unmapped_of(&tenant);
    let note = nothing_mapped(kind, rendered.is_empty(), &unmapped_points);
    Ok(Answer(SignalsResponse {
        kind: KindName(kind.as_str()),
        tenant,
        window: window(range),
        group_by: dimensions(group_by),
        groups: rendered,
        unmapped_points,
        note,
    }))
}

/// Says why an answer is empty when the tenant's points arrived but mapped
/// to nothing, instead of leaving an empty answer unexplained.
fn nothing_mapped(
    kind: SignalKind,
    empty: bool,
    unmapped: &std::collections::BTreeMap<String, u64>,
) -> Option<String> {
    if !empty || unmapped.is_empty() {
        return None;
    }
    let points: u64 = unmapped.values().sum();
    Some(format!(
        "nothing in this window mapped to {}; this aggregator accepted {points} data point(s) of \
         this tenant that map to no signal (see unmapped_points and docs/signals.md)",
        kind.as_str()
    ))
}

fn dimensions(group_by: GroupBy) -> Vec<GroupDimension> {
    let mut by = Vec::new();
    if group_by.cluster {
        by.push(GroupDimension::Cluster);
    }
    if group_by.model {
        by.push(GroupDimension::Model);
    }
    by
}

/// Runs `query` and merges the series of each group into one sketch (merging
/// sketches, so quantiles of a group are quantiles of all its requests).
pub async fn grouped(
    state: &ApiState,
    query: &StoreQuery,
    group_by: GroupBy,
) -> Result<BTreeMap<GroupKey, SeriesSketch>, ApiError> {
    let series = state.store.query(query).await?;
    merge_groups(series, |key| {
        (
            group_by.cluster.then(|| key.cluster.clone()),
            group_by.model.then(|| key.model.clone()),
        )
    })
}

/// Each group's cost, every cluster priced with its own prices before the
/// group's clusters are added up.
async fn costs_per_group(
    state: &ApiState,
    query: &StoreQuery,
    group_by: GroupBy,
) -> Result<BTreeMap<GroupKey, CostBreakdown>, ApiError> {
    let series = state.store.query(query).await?;
    let per_cluster = merge_groups(series, |key| {
        (
            group_by.cluster.then(|| key.cluster.clone()),
            group_by.model.then(|| key.model.clone()),
            key.cluster.clone(),
        )
    })?;
    let mut out: BTreeMap<GroupKey, CostBreakdown> = BTreeMap::new();
    for ((cluster_part, model_part, cluster), sketch) in &per_cluster {
        out.entry((cluster_part.clone(), model_part.clone()))
            .or_default()
            .add(&CostBreakdown::of_cluster(
                cluster,
                sketch,
                state.prices.as_ref(),
            ));
    }
    Ok(out)
}

pub fn merge_groups<K: Ord>(
    series: Vec<(SeriesKey, SeriesSketch)>,
    group_of: impl Fn(&SeriesKey) -> K,
) -> Result<BTreeMap<K, SeriesSketch>, ApiError> {
    let mut groups: BTreeMap<K, SeriesSketch> = BTreeMap::new();
    for (key, sketch) in series {
        match groups.entry(group_of(&key)) {
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(sketch);
            }
            std::collections::btree_map::Entry::Occupied(mut slot) => {
                slot.get_mut().merge(&sketch).map_err(|e| ApiError {
                    status: axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    code: "merge_failed",
                    message: format!("cannot merge series {}/{}: {e}", key.cluster, key.model),
                })?;
            }
        }
    }
    Ok(groups)
}
