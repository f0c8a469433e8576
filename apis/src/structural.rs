//! Turns the JSON Schema schemars derives for a type into the structural
//! OpenAPI v3 schema a Kubernetes CRD (and a Crossplane XRD) carries, and
//! renders generated Kubernetes documents as YAML. The XRDs and the function's
//! input CRD are generated with it (`cargo run -p function-signals --example
//! generate-schemas`), so the Rust types stay the only hand-written schema.
//!
//! Kubernetes accepts a dialect of OpenAPI v3, not JSON Schema 2020-12: one
//! `type` per node (`nullable` instead of a `null` type), no `$ref`, no
//! `const`, a boolean `exclusiveMinimum`, no `uniqueItems`, and `oneOf`/`anyOf`
//! only as extra validation over what the node itself declares. Anything the
//! conversion cannot express faithfully is an error naming the field, never a
//! silently weaker schema.

use std::fmt;

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

/// Regenerates every generated schema file; named in their headers and in the
/// test that fails when one is stale.
pub const REGENERATE_COMMAND: &str = "cargo run -p function-signals --example generate-schemas";

/// A construct of the type's JSON Schema that has no structural equivalent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedSchema {
    /// Where in the schema, e.g. `.spec.signals.kinds[]`.
    pub path: String,
    pub reason: String,
}

impl fmt::Display for UnsupportedSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "."
        } else {
            &self.path
        };
        write!(f, "{path}: {}", self.reason)
    }
}

impl std::error::Error for UnsupportedSchema {}

/// The structural schema of `T`, as it goes under a CRD version's
/// `schema.openAPIV3Schema`.
pub fn structural_schema_for<T: JsonSchema>() -> Result<Value, UnsupportedSchema> {
    let schema = SchemaSettings::draft2020_12()
        .with(|settings| {
            // A CRD schema cannot refer to anything: every type is written out
            // where it is used. Only recursive types keep a `$ref`, and those
            // are refused below.
            settings.inline_subschemas = true;
            settings.meta_schema = None;
        })
        .into_generator()
        .into_root_schema_for::<T>();
    to_structural(schema.to_value(), "")
}

fn unsupported(path: &str, reason: impl Into<String>) -> UnsupportedSchema {
    UnsupportedSchema {
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// Keywords Kubernetes' JSONSchemaProps knows and this conversion passes on
/// unchanged (after converting their subschemas).
const KEPT_KEYWORDS: &[&str] = &[
    "description",
    "type",
    "format",
    "default",
    "enum",
    "maximum",
    "minimum",
    "exclusiveMaximum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "multipleOf",
    "maxProperties",
    "minProperties",
    "required",
    "items",
    "properties",
    "additionalProperties",
    "nullable",
];

/// One converted node, plus whether the type also accepts `null`, and the
/// docs of its enum values (kept apart until the node's description is final:
/// a field's doc replaces its type's doc, not the list of values).
struct Converted {
    schema: Map<String, Value>,
    accepts_null: bool,
    value_docs: Option<String>,
}

impl Converted {
    fn finish(self) -> Map<String, Value> {
        let mut schema = self.schema;
        if let Some(values) = self.value_docs {
            let description = match schema.get("description").and_then(Value::as_str) {
                Some(text) => format!("{text}\n\n{values}"),
                None => values,
            };
            schema.insert("description".into(), json!(description));
        }
        schema
    }
}

fn to_structural(node: Value, path: &str) -> Result<Value, UnsupportedSchema> {
    let converted = convert(node, path)?;
    let accepts_null = converted.accepts_null;
    let mut schema = converted.finish();
    if accepts_null {
        schema.insert("nullable".into(), Value::Bool(true));
    }
    Ok(Value::Object(schema))
}

fn convert(node: Value, path: &str) -> Result<Converted, UnsupportedSchema> {
    let mut node = match node {
        Value::Object(map) => map,
        // `serde_json::Value` and friends: anything goes, and the API server
        // must keep it rather than prune it.
        Value::Bool(true) => {
            let mut map = Map::new();
            map.insert("x-kubernetes-preserve-unknown-fields".into(), json!(true));
            return Ok(Converted {
                schema: map,
                accepts_null: false,
                value_docs: None,
            });
        }
        other => {
            return Err(unsupported(
                path,
                format!("schema {other} has no structural form"),
            ));
        }
    };
    if node.contains_key("$ref") {
        return Err(unsupported(
            path,
            "a recursive type: a structural schema cannot refer back to itself",
        ));
    }
    // The Rust type name schemars puts at the root says nothing to a user, and
    // read/write-only say which way serde skips a field, nothing a stored
    // object could break.
    for annotation in ["title", "$schema", "readOnly", "writeOnly"] {
        node.remove(annotation);
    }

    let mut accepts_null = false;
    let mut value_docs = None;
    let mut out = Map::new();

    // `Option<Struct>` and friends: the alternatives beside `null` become the
    // node itself; its own keywords (a field's description, default) win.
    for keyword in ["anyOf", "oneOf"] {
        if let Some(Value::Array(alternatives)) = node.remove(keyword) {
            let (nulls, rest): (Vec<Value>, Vec<Value>) =
                alternatives.into_iter().partition(is_null_schema);
            accepts_null |= !nulls.is_empty();
            match rest.len() {
                0 => {}
                1 => {
                    let inner = convert(rest.into_iter().next().unwrap(), path)?;
                    accepts_null |= inner.accepts_null;
                    value_docs = inner.value_docs;
                    out.extend(inner.schema);
                }
                _ => {
                    let (values, docs) = string_enum(rest, keyword, path)?;
                    out.insert("type".into(), json!("string"));
                    out.insert("enum".into(), Value::Array(values));
                    value_docs = docs;
                }
            }
        }
    }
    if let Some(value) = node.remove("const") {
        out.insert("enum".into(), json!([value]));
    }
    if let Some(types) = node.remove("type") {
        let (ty, nullable) = single_type(types, path)?;
        accepts_null |= nullable;
        if let Some(ty) = ty {
            out.insert("type".into(), json!(ty));
        }
    }
    if let Some(Value::String(format)) = node.remove("format") {
        let ty = out.get("type").and_then(Value::as_str).unwrap_or_default();
        if let Some(format) = kubernetes_format(ty, &format, path)? {
            out.insert("format".into(), json!(format));
        }
    }
    // JSON Schema's exclusive bounds are numbers; OpenAPI v3's are flags on
    // minimum/maximum.
    for (exclusive, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        if let Some(limit) = node.get(exclusive).filter(|limit| limit.is_number()) {
            out.insert(bound.into(), limit.clone());
            node.insert(exclusive.into(), json!(true));
        }
    }
    if let Some(unique) = node.remove("uniqueItems") {
        // Kubernetes refuses `uniqueItems: true` (quadratic to check); a set
        // list type makes the API server refuse duplicates instead.
        if unique == json!(true) {
            out.insert("x-kubernetes-list-type".into(), json!("set"));
        }
    }
    if let Some(description) = node.remove("description") {
        let description = description.as_str().unwrap_or_default();
        out.insert("description".into(), json!(unwrap_lines(description)));
    }

    let required: Vec<String> = node
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();

    for (keyword, value) in node {
        match keyword.as_str() {
            "properties" => {
                let Value::Object(properties) = value else {
                    return Err(unsupported(path, "properties is not an object"));
                };
                let mut converted = Map::new();
                for (name, schema) in properties {
                    let child = convert(schema, &format!("{path}.{name}"))?;
                    let accepts_null = child.accepts_null;
                    let mut schema = child.finish();
                    // An optional field that may be `null` is an `Option` that
                    // may be absent: the API server prunes a null it was not
                    // told to keep, which is what absence means to serde.
                    // Keeping it (`nullable`) would make `has()` true in CEL
                    // rules for a field the function sees as unset.
                    if accepts_null && required.contains(&name) {
                        schema.insert("nullable".into(), json!(true));
                    }
                    converted.insert(name, Value::Object(schema));
                }
                out.insert(keyword, Value::Object(converted));
            }
            "items" => {
                let items = to_structural(value, &format!("{path}[]"))?;
                out.insert(keyword, items);
            }
            "additionalProperties" => match value {
                // Kubernetes prunes unknown fields of an object with properties,
                // which is as strict as it gets; `false` itself is refused.
                Value::Bool(false) => {}
                schema => {
                    let values = to_structural(schema, &format!("{path}{{}}"))?;
                    out.insert(keyword, values);
                }
            },
            _ if keyword.starts_with("x-kubernetes-") => {
                out.insert(keyword, value);
            }
            _ if KEPT_KEYWORDS.contains(&keyword.as_str()) => {
                out.insert(keyword, value);
            }
            _ => {
                return Err(unsupported(
                    path,
                    format!("keyword `{keyword}` has no structural equivalent"),
                ));
            }
        }
    }
    if out.contains_key("properties") && out.contains_key("additionalProperties") {
        return Err(unsupported(
            path,
            "an object with both fixed properties and arbitrary keys (#[serde(flatten)] of a map?)",
        ));
    }
    Ok(Converted {
        schema: out,
        accepts_null,
        value_docs,
    })
}

fn is_null_schema(schema: &Value) -> bool {
    schema.get("type") == Some(&json!("null")) && schema.as_object().is_some_and(|o| o.len() == 1)
}

/// `type: "string"` or `type: ["string", "null"]` → the one type and whether
/// `null` was allowed too.
fn single_type(types: Value, path: &str) -> Result<(Option<String>, bool), UnsupportedSchema> {
    match types {
        Value::String(ty) if ty == "null" => Ok((None, true)),
        Value::String(ty) => Ok((Some(ty), false)),
        Value::Array(types) => {
            let mut nullable = false;
            let mut concrete = Vec::new();
            for ty in types {
                match ty.as_str() {
                    Some("null") => nullable = true,
                    Some(ty) => concrete.push(ty.to_string()),
                    None => return Err(unsupported(path, format!("type {ty} is not a name"))),
                }
            }
            if concrete.len() > 1 {
                return Err(unsupported(
                    path,
                    format!("one of several types {concrete:?}: a structural schema has one"),
                ));
            }
            Ok((concrete.pop(), nullable))
        }
        other => Err(unsupported(path, format!("type {other} is not a name"))),
    }
}

/// A unit enum: schemars writes documented variants as `const`s (undocumented
/// ones grouped into an `enum`) under `oneOf`. Kubernetes knows neither
/// `const` nor a `oneOf` that introduces the node's type, so it becomes one
/// string `enum`, and the variants' docs a list for the description.
fn string_enum(
    alternatives: Vec<Value>,
    keyword: &str,
    path: &str,
) -> Result<(Vec<Value>, Option<String>), UnsupportedSchema> {
    let mut values = Vec::new();
    let mut documented = Vec::new();
    for alternative in &alternatives {
        if alternative.get("type") != Some(&json!("string")) {
            return Err(unsupported(
                path,
                format!(
                    "{keyword} of non-string alternatives (a data-carrying enum) needs a structural form written for it"
                ),
            ));
        }
        let consts = match (alternative.get("const"), alternative.get("enum")) {
            (Some(value), None) => vec![value.clone()],
            (None, Some(Value::Array(values))) => values.clone(),
            _ => {
                return Err(unsupported(
                    path,
                    format!("{keyword} alternative {alternative} is not a fixed string"),
                ));
            }
        };
        if let Some(doc) = alternative.get("description").and_then(Value::as_str) {
            for value in &consts {
                let name = value.as_str().unwrap_or_default();
                documented.push(format!("- `{name}`: {}", unwrap_lines(doc)));
            }
        }
        values.extend(consts);
    }
    let docs = (!documented.is_empty()).then(|| documented.join("\n"));
    Ok((values, docs))
}

/// String formats the API server checks (its strfmt registry, as listed by
/// Kubernetes' own schema generators).
const KUBERNETES_STRING_FORMATS: &[&str] = &[
    "bsonobjectid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "byte",
    "password",
    "date",
    "duration",
    "datetime",
    "date-time",
];

/// The format Kubernetes should see. Integer widths become the two it knows;
/// an unsigned 64-bit width has none, and its `minimum: 0` already says what
/// matters. A string format the API server does not check would read as a
/// check that never runs, so it is an error.
fn kubernetes_format(
    ty: &str,
    format: &str,
    path: &str,
) -> Result<Option<String>, UnsupportedSchema> {
    let known = match (ty, format) {
        ("integer", "int8" | "int16" | "int32" | "uint8" | "uint16") => "int32",
        ("integer", "int64" | "uint32") => "int64",
        ("integer", "uint64" | "uint" | "uint128" | "int" | "int128") => return Ok(None),
        ("number", "float" | "double") => format,
        ("string", _) if KUBERNETES_STRING_FORMATS.contains(&format) => format,
        _ => {
            return Err(unsupported(
                path,
                format!("format `{format}` of a {ty} is not one the API server checks"),
            ));
        }
    };
    Ok(Some(known.to_string()))
}

/// Doc comments wrap at source width; a description reads best with its
/// paragraphs (and list items) kept and the wrapping undone.
fn unwrap_lines(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let line = line.trim();
        if out.is_empty() {
            out.push_str(line);
        } else if line.is_empty() {
            if !out.ends_with("\n\n") {
                out.push_str("\n\n");
            }
        } else if out.ends_with('\n') || line.starts_with("- ") {
            if !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(line);
        } else {
            out.push(' ');
            out.push_str(line);
        }
    }
    out
}

/// A generated document as YAML under a comment header, keys sorted at every
/// level so the bytes depend only on the content (not on whether some crate in
/// the build turned on serde_json's `preserve_order`).
pub fn render_yaml(header: &str, document: &Value) -> String {
    let mut text = String::new();
    for line in header.lines() {
        if line.is_empty() {
            text.push_str("#\n");
        } else {
            text.push_str("# ");
            text.push_str(line);
            text.push('\n');
        }
    }
    text.push_str(
        &serde_yaml::to_string(&sorted_yaml(document)).expect("a JSON value renders as YAML"),
    );
    text
}

fn sorted_yaml(value: &Value) -> serde_yaml::Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut mapping = serde_yaml::Mapping::new();
            for key in keys {
                mapping.insert(
                    serde_yaml::Value::String(key.clone()),
                    sorted_yaml(&map[key]),
                );
            }
            serde_yaml::Value::Mapping(mapping)
        }
        Value::Array(items) => serde_yaml::Value::Sequence(items.iter().map(sorted_yaml).collect()),
        other => serde_yaml::to_value(other).expect("a JSON scalar is a YAML scalar"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    #[allow(dead_code)]
    #[derive(JsonSchema)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Sample {
        /// A count.
        count: u64,
        small: u8,
        maybe_count: Option<u32>,
        #[serde(default)]
        labels: BTreeMap<String, String>,
        tags: BTreeSet<String>,
        inner: Option<Inner>,
        anything: serde_json::Value,
        #[schemars(extend("exclusiveMinimum" = 0.0))]
        positive: f64,
        colour: Colour,
    }

    #[allow(dead_code)]
    #[derive(JsonSchema)]
    struct Inner {
        /// Text wrapped
        /// over two lines.
        ///
        /// Second paragraph.
        text: String,
    }

    #[allow(dead_code)]
    #[derive(JsonSchema)]
    enum Colour {
        /// The colour of the sky.
        Blue,
        Green,
        Red,
    }

    #[test]
    fn converts_json_schema_into_a_structural_schema() {
        let schema = structural_schema_for::<Sample>().unwrap();
        let properties = &schema["properties"];
        assert_eq!(
            properties["count"],
            json!({"type": "integer", "minimum": 0, "description": "A count."})
        );
        assert_eq!(
            properties["small"],
            json!({"type": "integer", "format": "int32", "minimum": 0, "maximum": 255})
        );
        assert_eq!(
            properties["maybeCount"],
            json!({"type": "integer", "format": "int64", "minimum": 0}),
            "an optional field's null is absence, not nullable"
        );
        assert_eq!(
            properties["labels"],
            json!({"type": "object", "additionalProperties": {"type": "string"}, "default": {}})
        );
        assert_eq!(
            properties["tags"],
            json!({"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"})
        );
        assert_eq!(
            properties["inner"],
            json!({"type": "object", "required": ["text"], "properties": {"text": {
                "type": "string",
                "description": "Text wrapped over two lines.\n\nSecond paragraph."
            }}})
        );
        assert_eq!(
            properties["anything"],
            json!({"x-kubernetes-preserve-unknown-fields": true})
        );
        assert_eq!(
            properties["positive"],
            json!({"type": "number", "format": "double", "minimum": 0.0, "exclusiveMinimum": true})
        );
        assert_eq!(
            properties["colour"],
            json!({"type": "string", "enum": ["Green", "Red", "Blue"], "description": "- `Blue`: The colour of the sky."})
        );
        assert!(
            schema.get("additionalProperties").is_none(),
            "deny_unknown_fields becomes pruning"
        );
        assert!(schema.get("title").is_none() && schema.get("$schema").is_none());
    }

    #[test]
    fn null_is_kept_only_where_absence_is_not_an_option() {
        // schemars never makes an `Option` field required; a hand-written
        // schema (or a future schemars) may, and then null must survive.
        let schema = json!({
            "type": "object",
            "required": ["must"],
            "properties": {
                "must": {"type": ["string", "null"]},
                "may": {"type": ["string", "null"]},
            },
        });
        assert_eq!(
            to_structural(schema, "").unwrap(),
            json!({
                "type": "object",
                "required": ["must"],
                "properties": {
                    "must": {"type": "string", "nullable": true},
                    "may": {"type": "string"},
                },
            })
        );
        let items =
            json!({"type": "array", "items": {"anyOf": [{"type": "integer"}, {"type": "null"}]}});
        assert_eq!(
            to_structural(items, "").unwrap(),
            json!({"type": "array", "items": {"type": "integer", "nullable": true}})
        );
    }

    #[allow(dead_code)]
    #[derive(JsonSchema)]
    struct Tree {
        children: Vec<Tree>,
    }

    #[allow(dead_code)]
    #[derive(JsonSchema)]
    enum Shape {
        Circle { radius: f64 },
        Square(f64),
    }

    #[allow(dead_code)]
    #[derive(JsonSchema)]
    struct Drawing {
        shape: Shape,
    }

    #[allow(dead_code)]
    #[derive(JsonSchema)]
    struct Mixed {
        value: MixedValue,
    }

    #[allow(dead_code)]
    #[derive(JsonSchema)]
    #[serde(untagged)]
    enum MixedValue {
        Number(f64),
        Text(String),
    }

    #[test]
    fn refuses_what_a_structural_schema_cannot_say_and_names_where() {
        let recursive = structural_schema_for::<Tree>().unwrap_err();
        assert_eq!(recursive.path, ".children[]");
        assert!(recursive.reason.contains("recursive"), "{recursive}");

        let data_enum = structural_schema_for::<Drawing>().unwrap_err();
        assert_eq!(data_enum.path, ".shape");
        assert!(
            data_enum.reason.contains("data-carrying enum"),
            "{data_enum}"
        );

        let two_types = structural_schema_for::<Mixed>().unwrap_err();
        assert_eq!(two_types.path, ".value");

        let unchecked_format = to_structural(json!({"type": "string", "format": "iri"}), ".x");
        assert_eq!(
            unchecked_format.unwrap_err().to_string(),
            ".x: format `iri` of a string is not one the API server checks"
        );
    }

    #[test]
    fn renders_yaml_with_sorted_keys_under_a_comment_header() {
        let mut document = Map::new();
        document.insert("kind".into(), json!("X"));
        document.insert("apiVersion".into(), json!("v1"));
        document.insert("spec".into(), json!({"b": 1, "a": [true]}));
        assert_eq!(
            render_yaml("first line\n\nthird", &Value::Object(document)),
            "# first line\n#\n# third\napiVersion: v1\nkind: X\nspec:\n  a:\n  - true\n  b: 1\n"
        );
    }
}
