//! Spec and status types for the fields modelplane-signals owns on Modelplane's
//! composite resources. These types are the single source of truth: the XRDs in
//! `apis/xrds/` are generated from them ([`xrd`], [`structural`]).
//! [`wire`] is the agent → aggregator contract both binaries derive from.

pub mod duration;
pub mod inference_cluster;
pub mod model_service;
pub mod schema;
pub mod signal_kind;
pub mod structural;
pub mod validation;
pub mod wire;
pub mod xrd;

pub use duration::RetentionDuration;
pub use inference_cluster::*;
pub use model_service::*;
pub use signal_kind::SignalKind;
pub use validation::{FieldError, FieldErrors};

/// API group of every kind this project extends.
pub const GROUP: &str = "modelplane.ai";
/// API version of every kind this project extends.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` string of both kinds.
pub const API_VERSION: &str = "modelplane.ai/v1alpha1";
