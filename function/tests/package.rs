//! The Function package metadata and the input CRD agree with the code.

use std::path::Path;

use function_signals::input::{
    INPUT_API_VERSION, INPUT_KIND, Input, Mode, ProviderConfigKind, Ttl,
};
use serde_json::{Value, json};

fn load(relative: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_package_is_a_composition_function_named_function_signals() {
    let meta = load("package/function/crossplane.yaml");
    assert_eq!(meta["apiVersion"], "meta.pkg.crossplane.io/v1");
    assert_eq!(meta["kind"], "Function");
    assert_eq!(meta["metadata"]["name"], "function-signals");
    assert_eq!(meta["spec"]["capabilities"], json!(["composition"]));
}

#[test]
fn the_input_crd_matches_the_input_type() {
    let crd = load("package/function/input/signals.fn.modelplane.ai_inputs.yaml");
    let (group, version) = INPUT_API_VERSION.split_once('/').unwrap();
    assert_eq!(crd["spec"]["group"], group);
    assert_eq!(crd["spec"]["names"]["kind"], INPUT_KIND);
    assert_eq!(crd["spec"]["versions"][0]["name"], version);
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"];

    // Every field the type serializes (all set) is in the schema, and nothing else is.
    let full = Input {
        ttl: Some("1m".parse().unwrap()),
        aggregator_endpoint: Some("a:1".into()),
        collector_image: Some("i".into()),
        object_namespace: Some("n".into()),
        token_namespace: Some("t".into()),
        ..Input::default()
    };
    let mut fields: Vec<String> = serde_json::to_value(&full)
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    fields.push("metadata".into());
    fields.sort();
    let mut properties: Vec<String> = schema.as_object().unwrap().keys().cloned().collect();
    properties.sort();
    assert_eq!(properties, fields);

    let variants = |values: &[Value]| values.to_vec();
    assert_eq!(
        schema["mode"]["enum"].as_array().unwrap().clone(),
        variants(&[json!(Mode::MultiCluster), json!(Mode::SingleCluster)])
    );
    assert_eq!(schema["mode"]["default"], json!(Mode::default()));
    assert_eq!(
        schema["providerConfigKind"]["enum"]
            .as_array()
            .unwrap()
            .clone(),
        variants(&[
            json!(ProviderConfigKind::ClusterProviderConfig),
            json!(ProviderConfigKind::ProviderConfig)
        ])
    );
    assert_eq!(
        schema["providerConfigKind"]["default"],
        json!(ProviderConfigKind::default())
    );
    assert_eq!(schema["ttl"]["pattern"], "^([0-9]{1,9}(ms|s|m|h))+$");
    for ttl in ["60s", "1m30s", "500ms", "2h"] {
        assert!(ttl.parse::<Ttl>().is_ok(), "{ttl}");
    }
}

#[test]
fn example_inputs_parse() {
    let input = load("examples/ic-single-cluster/input.yaml");
    let parsed = Input::from_json(input).expect("the example input parses");
    assert_eq!(parsed.mode, Mode::SingleCluster);
}
