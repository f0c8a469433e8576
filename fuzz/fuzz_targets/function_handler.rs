//! The composition function's handler on arbitrary requests: the input is
//! JSON, read as a whole RunFunctionRequest when it is one, and always also as
//! the observed XR (as is, and as an InferenceCluster and a ModelService).
//! The handler must answer every one without panicking: rendered resources,
//! or one Fatal result naming what is wrong.
#![no_main]

use function_sdk_rust::proto::v1::RunFunctionRequest;
use function_sdk_rust::response;
use function_signals::{Config, run_function};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fn check(req: &RunFunctionRequest) {
    let rsp = run_function(req, &Config::default());
    let fatal = rsp.results.iter().filter(|r| r.severity == 1).count();
    if fatal > 0 {
        assert_eq!(fatal, 1, "more than one Fatal result");
        // Nothing half-rendered: the earlier steps' desired state, unchanged.
        let untouched = response::to(req, Config::default().ttl);
        assert_eq!(
            rsp.desired, untouched.desired,
            "a Fatal response carries rendered resources"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Ok(req) = serde_json::from_value::<RunFunctionRequest>(value.clone()) {
        check(&req);
    }
    let mut xrs = vec![value.clone()];
    if value.is_object() {
        for kind in ["InferenceCluster", "ModelService"] {
            let mut xr = value.clone();
            xr["apiVersion"] = json!("modelplane.ai/v1alpha1");
            xr["kind"] = json!(kind);
            xrs.push(xr);
        }
    }
    for xr in xrs {
        let request =
            json!({ "meta": { "tag": "fuzz" }, "observed": { "composite": { "resource": xr } } });
        if let Ok(req) = serde_json::from_value::<RunFunctionRequest>(request) {
            check(&req);
        }
    }
});
