//! function-signals: a Crossplane composition function that renders the
//! OpenTelemetry Collector agent of each InferenceCluster from
//! `spec.signals`, and resolves ModelService observability policy.

pub mod function;
pub mod input;
pub mod input_crd;
pub mod render;
pub mod render_cmd;
pub mod span;

pub use function::{Config, SignalsFunction, run_function};
