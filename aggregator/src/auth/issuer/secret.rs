//! The control-plane Secret that holds one InferenceCluster's ingest token
//! (`docs/auth.md`, "Where ingest tokens come from"): its name, labels and
//! annotations, how a fresh one is built, and the two edits the issuer makes
//! to an existing one (rotate; drop the previous token after the overlap).
//! Pure functions of a Secret and the time, so every decision is testable
//! without an API server.

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::clock::rfc3339;

pub const NAME_PREFIX: &str = "signals-ingest-";
pub const TOKEN_KEY: &str = "token";
pub const PREVIOUS_TOKEN_KEY: &str = "previous-token";

pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "signal-aggregator";
pub const CLUSTER_LABEL: &str = "signals.modelplane.ai/cluster";
/// What the Secret watch selects: only Secrets this issuer manages.
pub const LABEL_SELECTOR: &str = "app.kubernetes.io/managed-by=signal-aggregator";

pub const GENERATION_ANNOTATION: &str = "signals.modelplane.ai/token-generation";
pub const ISSUED_AT_ANNOTATION: &str = "signals.modelplane.ai/issued-at";
pub const PREVIOUS_EXPIRES_ANNOTATION: &str = "signals.modelplane.ai/previous-token-expires-at";
/// Set by an operator (`kubectl annotate ... signals.modelplane.ai/rotate=true`).
pub const ROTATE_ANNOTATION: &str = "signals.modelplane.ai/rotate";

/// Random bytes per token: 256 bits, 43 base64url characters.
const TOKEN_BYTES: usize = 32;
/// Longest label value Kubernetes accepts (the cluster label).
const MAX_LABEL_VALUE: usize = 63;

pub fn secret_name(cluster: &str) -> String {
    format!("{NAME_PREFIX}{cluster}")
}

/// Why a cluster cannot get a Secret; the issuer logs it and moves on.
pub fn check_cluster_name(cluster: &str) -> Result<(), String> {
    if cluster.len() > MAX_LABEL_VALUE {
        return Err(format!(
            "the name is {} characters; the {CLUSTER_LABEL} label holds at most {MAX_LABEL_VALUE}",
            cluster.len()
        ));
    }
    Ok(())
}

/// A fresh token from the operating system's random source.
pub fn new_token() -> Result<String, String> {
    use rand::TryRngCore as _;
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| format!("the operating system's random source failed: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The InferenceCluster that owns a Secret: deleting it garbage-collects the
/// Secret. `blockOwnerDeletion` stays unset, so the aggregator needs no
/// permission on `inferenceclusters/finalizers`.
pub fn owner_reference(cluster: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: apis::API_VERSION.to_string(),
        kind: apis::INFERENCE_CLUSTER_KIND.to_string(),
        name: cluster.to_string(),
        uid: uid.to_string(),
        ..OwnerReference::default()
    }
}

/// A cluster's Secret as first created: `generation` is 1, or one more than
/// the XR last reported (a Secret deleted to revoke its token comes back
/// with a new generation, so the agent is restarted onto the new token).
pub fn new_secret(
    cluster: &str,
    uid: &str,
    namespace: &str,
    token: &str,
    generation: i64,
    now: u64,
) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(secret_name(cluster)),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([
                (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
                (CLUSTER_LABEL.to_string(), cluster.to_string()),
            ])),
            annotations: Some(BTreeMap::from([
                (GENERATION_ANNOTATION.to_string(), generation.to_string()),
                (ISSUED_AT_ANNOTATION.to_string(), rfc3339(now)),
            ])),
            owner_references: Some(vec![owner_reference(cluster, uid)]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_string()),
        data: Some(BTreeMap::from([(
            TOKEN_KEY.to_string(),
            ByteString(token.as_bytes().to_vec()),
        )])),
        ..Secret::default()
    }
}

/// Unix seconds of an RFC 3339 time, `None` if it is not one.
pub fn parse_time(text: &str) -> Option<u64> {
    let timestamp: k8s_openapi::jiff::Timestamp = text.trim().parse().ok()?;
    u64::try_from(timestamp.as_second()).ok()
}

fn annotation<'a>(secret: &'a Secret, key: &str) -> Option<&'a str> {
    secret
        .metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

fn data_text<'a>(secret: &'a Secret, key: &str) -> Option<&'a str> {
    let value = secret.data.as_ref()?.get(key)?;
    std::str::from_utf8(&value.0).ok().filter(|t| !t.is_empty())
}

/// What the issuer and the token table read from a Secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenState<'a> {
    pub token: Option<&'a str>,
    pub previous_token: Option<&'a str>,
    /// `None` when absent or not RFC 3339 (the previous token is then not
    /// accepted: an overlap without a known end is no overlap).
    pub previous_expires_at: Option<u64>,
    /// 0 when absent or unreadable.
    pub generation: i64,
    pub issued_at: Option<u64>,
    pub rotate_requested: bool,
}

impl<'a> TokenState<'a> {
    pub fn of(secret: &'a Secret) -> Self {
        TokenState {
            token: data_text(secret, TOKEN_KEY),
            previous_token: data_text(secret, PREVIOUS_TOKEN_KEY),
            previous_expires_at: annotation(secret, PREVIOUS_EXPIRES_ANNOTATION)
                .and_then(parse_time),
            generation: annotation(secret, GENERATION_ANNOTATION)
                .and_then(|g| g.trim().parse().ok())
                .filter(|g| *g >= 1)
                .unwrap_or(0),
            issued_at: annotation(secret, ISSUED_AT_ANNOTATION).and_then(parse_time),
            rotate_requested: annotation(secret, ROTATE_ANNOTATION)
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
        }
    }

    /// Whether the previous token is still accepted at `now`.
    pub fn previous_accepted(&self, now: u64) -> bool {
        self.previous_token.is_some() && self.previous_expires_at.is_some_and(|at| now < at)
    }
}

/// The cluster a managed Secret belongs to: its cluster label, which must
/// agree with its name (a Secret whose two disagree is ignored, so a copied
/// or hand-edited Secret cannot lend its token to another cluster).
pub fn cluster_of(secret: &Secret) -> Option<&str> {
    let cluster = secret
        .metadata
        .labels
        .as_ref()?
        .get(CLUSTER_LABEL)?
        .as_str();
    let name = secret.metadata.name.as_deref()?;
    (name.strip_prefix(NAME_PREFIX) == Some(cluster) && !cluster.is_empty()).then_some(cluster)
}

/// How long tokens live and overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// A token older than this is rotated; 0 = never by age.
    pub max_age_secs: u64,
    /// How long the previous token stays accepted after a rotation.
    pub overlap_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateReason {
    /// `signals.modelplane.ai/rotate: "true"`.
    Requested,
    /// Older than `--ingest-token-max-age` (or its issue time is unreadable).
    MaxAge,
    /// The `token` key is missing or empty: there is nothing to keep.
    MissingToken,
}

/// What an existing Secret needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    Keep,
    Rotate(RotateReason),
    DropPrevious,
}

pub fn plan(secret: &Secret, now: u64, policy: &RotationPolicy) -> Plan {
    let state = TokenState::of(secret);
    if state.token.is_none() {
        return Plan::Rotate(RotateReason::MissingToken);
    }
    if state.rotate_requested {
        return Plan::Rotate(RotateReason::Requested);
    }
    if policy.max_age_secs > 0
        && state
            .issued_at
            .is_none_or(|at| now >= at.saturating_add(policy.max_age_secs))
    {
        return Plan::Rotate(RotateReason::MaxAge);
    }
    let has_previous = secret
        .data
        .as_ref()
        .is_some_and(|d| d.contains_key(PREVIOUS_TOKEN_KEY));
    if has_previous && !state.previous_accepted(now) {
        return Plan::DropPrevious;
    }
    Plan::Keep
}

/// When `plan` will next say something other than `Keep` (by the clock
/// alone); `None` if only an edit of the Secret can change it.
pub fn next_due(secret: &Secret, policy: &RotationPolicy) -> Option<u64> {
    let state = TokenState::of(secret);
    let rotation = (policy.max_age_secs > 0)
        .then(|| {
            state
                .issued_at
                .map(|at| at.saturating_add(policy.max_age_secs))
        })
        .flatten();
    let expiry = state.previous_token.and(state.previous_expires_at);
    rotation.into_iter().chain(expiry).min()
}

fn annotations_mut(secret: &mut Secret) -> &mut BTreeMap<String, String> {
    secret
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
}

fn data_mut(secret: &mut Secret) -> &mut BTreeMap<String, ByteString> {
    secret.data.get_or_insert_with(BTreeMap::new)
}

/// `secret` after a rotation to `new_token` at `now`: the current token
/// becomes the previous one (accepted for the overlap), the generation goes
/// up by one, the rotate request is consumed. Everything else (other labels,
/// annotations, owner references, the resourceVersion the write is guarded
/// by) is kept.
pub fn rotated(secret: &Secret, new_token: &str, now: u64, policy: &RotationPolicy) -> Secret {
    let state = TokenState::of(secret);
    let generation = state.generation.max(0) + 1;
    let old_token = state.token.map(str::to_string);
    let mut next = secret.clone();
    // `stringData` is write-only; never send one back.
    next.string_data = None;
    let data = data_mut(&mut next);
    data.insert(
        TOKEN_KEY.to_string(),
        ByteString(new_token.as_bytes().to_vec()),
    );
    let annotations = annotations_mut(&mut next);
    annotations.remove(ROTATE_ANNOTATION);
    annotations.insert(GENERATION_ANNOTATION.to_string(), generation.to_string());
    annotations.insert(ISSUED_AT_ANNOTATION.to_string(), rfc3339(now));
    match old_token {
        Some(old) => {
            annotations.insert(
                PREVIOUS_EXPIRES_ANNOTATION.to_string(),
                rfc3339(now.saturating_add(policy.overlap_secs)),
            );
            data_mut(&mut next)
                .insert(PREVIOUS_TOKEN_KEY.to_string(), ByteString(old.into_bytes()));
        }
        None => {
            annotations.remove(PREVIOUS_EXPIRES_ANNOTATION);
            data_mut(&mut next).remove(PREVIOUS_TOKEN_KEY);
        }
    }
    next
}

/// `secret` without the previous token (its overlap is over).
pub fn without_previous(secret: &Secret) -> Secret {
    let mut next = secret.clone();
    next.string_data = None;
    data_mut(&mut next).remove(PREVIOUS_TOKEN_KEY);
    annotations_mut(&mut next).remove(PREVIOUS_EXPIRES_ANNOTATION);
    next
}

/// What `status.signals.ingestToken` says about `secret`.
pub fn token_status(secret: &Secret) -> Option<apis::IngestTokenStatus> {
    let state = TokenState::of(secret);
    if state.token.is_none() || state.generation < 1 {
        return None;
    }
    Some(apis::IngestTokenStatus {
        secret_name: secret.metadata.name.clone()?,
        secret_namespace: secret.metadata.namespace.clone()?,
        generation: state.generation,
        issued_at: annotation(secret, ISSUED_AT_ANNOTATION).map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RotationPolicy = RotationPolicy {
        max_age_secs: 1_000,
        overlap_secs: 100,
    };
    const T0: u64 = 1_800_000_000;

    fn text(secret: &Secret, key: &str) -> Option<String> {
        data_text(secret, key).map(str::to_string)
    }

    #[test]
    fn tokens_are_43_url_safe_characters_and_differ() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_eq!(a.len(), 43);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
            "{a}"
        );
        assert_ne!(a, b);
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&a)
            .unwrap();
        assert_eq!(decoded.len(), 32);
    }

    #[test]
    fn a_new_secret_is_generation_one_owned_by_its_cluster() {
        let secret = new_secret("eu-west", "uid-1", "ns", "tok", 1, T0);
        assert_eq!(
            secret.metadata.name.as_deref(),
            Some("signals-ingest-eu-west")
        );
        assert_eq!(cluster_of(&secret), Some("eu-west"));
        let state = TokenState::of(&secret);
        assert_eq!(state.token, Some("tok"));
        assert_eq!(state.generation, 1);
        assert_eq!(state.issued_at, Some(T0));
        assert_eq!(plan(&secret, T0, &POLICY), Plan::Keep);
        let owner = &secret.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("InferenceCluster", "eu-west", "uid-1")
        );
        assert_eq!(owner.block_owner_deletion, None);
        let status = token_status(&secret).unwrap();
        assert_eq!(status.generation, 1);
        assert_eq!(status.issued_at, Some(rfc3339(T0)));
    }

    #[test]
    fn plans_follow_the_request_the_age_and_the_overlap() {
        let fresh = new_secret("c", "u", "ns", "tok", 1, T0);
        assert_eq!(plan(&fresh, T0 + 999, &POLICY), Plan::Keep);
        assert_eq!(
            plan(&fresh, T0 + 1_000, &POLICY),
            Plan::Rotate(RotateReason::MaxAge)
        );
        let never = RotationPolicy {
            max_age_secs: 0,
            ..POLICY
        };
        assert_eq!(plan(&fresh, T0 + 10_000_000, &never), Plan::Keep);
        assert_eq!(next_due(&fresh, &never), None);
        assert_eq!(next_due(&fresh, &POLICY), Some(T0 + 1_000));

        let mut requested = fresh.clone();
        annotations_mut(&mut requested).insert(ROTATE_ANNOTATION.into(), "true".into());
        assert_eq!(
            plan(&requested, T0, &POLICY),
            Plan::Rotate(RotateReason::Requested)
        );

        let rotated = rotated(&requested, "tok2", T0 + 10, &POLICY);
        let state = TokenState::of(&rotated);
        assert_eq!(state.token, Some("tok2"));
        assert_eq!(state.previous_token, Some("tok"));
        assert_eq!(state.previous_expires_at, Some(T0 + 110));
        assert_eq!(state.generation, 2);
        assert!(!state.rotate_requested);
        assert!(state.previous_accepted(T0 + 109));
        assert!(!state.previous_accepted(T0 + 110));
        assert_eq!(plan(&rotated, T0 + 109, &POLICY), Plan::Keep);
        assert_eq!(next_due(&rotated, &POLICY), Some(T0 + 110));
        assert_eq!(plan(&rotated, T0 + 110, &POLICY), Plan::DropPrevious);

        let dropped = without_previous(&rotated);
        assert_eq!(text(&dropped, PREVIOUS_TOKEN_KEY), None);
        assert_eq!(text(&dropped, TOKEN_KEY).as_deref(), Some("tok2"));
        assert_eq!(plan(&dropped, T0 + 110, &POLICY), Plan::Keep);
        assert_eq!(TokenState::of(&dropped).generation, 2);
    }

    #[test]
    fn broken_secrets_are_repaired_not_trusted() {
        let mut empty = new_secret("c", "u", "ns", "tok", 1, T0);
        empty.data = None;
        assert_eq!(
            plan(&empty, T0, &POLICY),
            Plan::Rotate(RotateReason::MissingToken)
        );
        let repaired = rotated(&empty, "tok2", T0, &POLICY);
        assert_eq!(TokenState::of(&repaired).previous_token, None);
        assert_eq!(TokenState::of(&repaired).generation, 2);

        // An unreadable issue time counts as too old when ages are enforced.
        let mut undated = new_secret("c", "u", "ns", "tok", 1, T0);
        annotations_mut(&mut undated).insert(ISSUED_AT_ANNOTATION.into(), "yesterday".into());
        assert_eq!(
            plan(&undated, T0, &POLICY),
            Plan::Rotate(RotateReason::MaxAge)
        );

        // A previous token without a readable end is not accepted and is dropped.
        let mut open_ended = rotated(&new_secret("c", "u", "ns", "a", 1, T0), "b", T0, &POLICY);
        annotations_mut(&mut open_ended).remove(PREVIOUS_EXPIRES_ANNOTATION);
        assert!(!TokenState::of(&open_ended).previous_accepted(T0));
        assert_eq!(plan(&open_ended, T0, &POLICY), Plan::DropPrevious);
    }

    #[test]
    fn the_cluster_label_must_agree_with_the_name() {
        let mut secret = new_secret("eu-west", "u", "ns", "tok", 1, T0);
        secret.metadata.name = Some("signals-ingest-us-east".into());
        assert_eq!(cluster_of(&secret), None);
        assert!(check_cluster_name(&"a".repeat(63)).is_ok());
        assert!(
            check_cluster_name(&"a".repeat(64))
                .unwrap_err()
                .contains("63")
        );
    }

    #[test]
    fn times_parse_as_rfc3339() {
        assert_eq!(parse_time(&rfc3339(T0)), Some(T0));
        assert!(parse_time("2027-01-15T07:00:00Z").is_some());
        assert_eq!(
            parse_time("2027-01-15T08:00:00+01:00"),
            parse_time("2027-01-15T07:00:00Z")
        );
        assert_eq!(parse_time("not a time"), None);
    }
}
