//! `GET /v1/fleet/compare`: one quantile per cluster and its ratio to the
//! fleet median, over the series the [`FleetPolicy`](super::FleetPolicy) admits.

use std::collections::HashMap;

use crate::api::Answer;
use axum::extract::{Query, State};

use crate::api::model::{ClusterValue, CompareResponse, KindName};
use crate::api::params::{Params, parse_kind, validate_identity};
use crate::api::signals::COMPARABLE_FIELDS;
use crate::api::tenant::merge_groups;
use crate::api::{ApiError, ApiState, window};
use crate::query::readout;
use crate::signal::{DIM_PHASE, Field, FieldKey};
use crate::store::StoreQuery;

const PARAMETERS: &[&str] = &[
    "kind", "field", "quantile", "window", "to", "model", "phase",
];

pub async fn compare(
    State(state): State<ApiState>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Answer<CompareResponse>, ApiError> {
    let params = Params::new(raw, PARAMETERS)?;
    let kind = parse_kind("kind", params.required("kind")?)?;
    let field_name = params.required("field")?;
    let field = COMPARABLE_FIELDS
        .iter()
        .find(|(k, f)| *k == kind && f.as_str() == field_name)
        .map(|(_, f)| *f)
        .ok_or_else(|| {
            let valid: Vec<&str> = COMPARABLE_FIELDS
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, f)| f.as_str())
                .collect();
            ApiError::invalid_parameter(
                "field",
                format!(
                    "{field_name:?} is not a comparable field of {kind}; valid: {}",
                    if valid.is_empty() {
                        "none".to_string()
                    } else {
                        valid.join(", ")
                    }
                ),
            )
        })?;
    let field_key = match params.get("phase").filter(|p| !p.is_empty()) {
        Some(phase) if field == Field::PhaseSeconds => {
            FieldKey::with_dim(field, DIM_PHASE, validate_identity("phase", phase)?)
        }
        Some(_) => {
            return Err(ApiError::invalid_parameter(
                "phase",
                "only applies to field phase_seconds",
            ));
        }
        None if field == Field::PhaseSeconds => {
            return Err(ApiError::invalid_parameter(
                "phase",
                "required for phase_seconds (e.g. model_load)",
            ));
        }
        None => FieldKey::plain(field),
    };
    let quantile = params.quantile()?;
    let range = params.time_range((state.clock)(), state.store.retention_secs())?;
    let query = StoreQuery {
        tenant: None,
        kind,
        cluster: None,
        model: params.identity("model")?,
        from_unix_secs: range.from_unix_secs,
        to_unix_secs: range.to_unix_secs,
    };
    let series: Vec<_> = state
        .store
        .query(&query)
        .await?
        .into_iter()
        .filter(|(key, _)| state.fleet.includes(key))
        .collect();
    let per_cluster = merge_groups(series, |key| key.cluster.clone())?;
    let values: Vec<(String, u64, Option<f64>)> = per_cluster
        .iter()
        .map(|(cluster, sketch)| {
            let field = sketch.field(&field_key);
            let count = field.and_then(readout::count).unwrap_or(0);
            let value = field.and_then(|f| readout::quantile(f, quantile));
            (cluster.clone(), count, value)
        })
        .collect();
    let median = median(values.iter().filter_map(|(_, _, v)| *v).collect());
    let clusters = values
        .into_iter()
        .map(|(cluster, count, value)| ClusterValue {
            cluster,
            count,
            value,
            ratio_to_fleet_median: match (value, median) {
                (Some(v), Some(m)) if m > 0.0 => Some(v / m),
                _ => None,
            },
        })
        .collect();
    Ok(Answer(CompareResponse {
        kind: KindName(kind.as_str()),
        field: field_name.to_string(),
        quantile,
        window: window(range),
        fleet_median: median,
        clusters,
    }))
}

/// Median of the per-cluster values (mean of the middle two for an even count).
fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }
}
