//! The Function package metadata and the input CRD agree with the code; the
//! input CRD is generated from it and must be current.

use std::path::Path;

use apis::structural::REGENERATE_COMMAND;
use function_signals::input::{
    INPUT_API_VERSION, INPUT_KIND, Input, Mode, ProviderConfigKind, Ttl,
};
use function_signals::input_crd::{INPUT_CRD_PATH, input_crd_file};
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
fn the_input_crd_is_what_the_input_type_generates() {
    let generated = input_crd_file().expect("Input has a structural schema");
    assert_eq!(generated.path, INPUT_CRD_PATH);
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(INPUT_CRD_PATH);
    let checked_in = std::fs::read_to_string(&path).unwrap();
    assert!(
        checked_in == generated.contents,
        "{INPUT_CRD_PATH} is out of date; regenerate with `{REGENERATE_COMMAND}`"
    );
}

#[test]
fn the_input_crd_describes_the_input_type() {
    let crd = load(INPUT_CRD_PATH);
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

    assert_eq!(
        schema["mode"]["enum"],
        json!(["MultiCluster", "SingleCluster"])
    );
    assert_eq!(schema["mode"]["default"], json!(Mode::default()));
    assert_eq!(
        schema["providerConfigKind"]["enum"],
        json!(["ClusterProviderConfig", "ProviderConfig"])
    );
    assert_eq!(
        schema["providerConfigKind"]["default"],
        json!(ProviderConfigKind::default())
    );
    // The API machinery's fields, not the Rust defaults that spare a step writing them.
    for field in ["apiVersion", "kind"] {
        assert_eq!(schema[field], json!({"type": "string"}));
    }
}

#[test]
fn the_ttl_pattern_accepts_what_the_parser_accepts() {
    let crd = load(INPUT_CRD_PATH);
    let pattern =
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["ttl"]["pattern"]
            .as_str()
            .unwrap();
    let pattern = regex::Regex::new(pattern).unwrap();
    for ttl in ["60s", "1m30s", "500ms", "2h", "999999999ms"] {
        assert!(ttl.parse::<Ttl>().is_ok(), "{ttl}");
        assert!(pattern.is_match(ttl), "{ttl}");
    }
    for ttl in ["", "10", "s", "1d", "-5s", "1.5s", "5 s", "1234567890s"] {
        assert!(ttl.parse::<Ttl>().is_err(), "{ttl}");
        assert!(!pattern.is_match(ttl), "{ttl}");
    }
    // Only the parser knows a TTL must be positive.
    assert!("0s".parse::<Ttl>().is_err() && pattern.is_match("0s"));
}

#[test]
fn example_inputs_parse() {
    let input = load("examples/ic-single-cluster/input.yaml");
    let parsed = Input::from_json(input).expect("the example input parses");
    assert_eq!(parsed.mode, Mode::SingleCluster);
}
