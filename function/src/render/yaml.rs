//! A small block-style YAML printer for JSON values. The collector config
//! is printed on every RunFunction call, and serde_yaml (libyaml) spends more
//! time printing it than the function spends building everything else.
//! Strings are printed plain only when they cannot be read back as anything
//! but that string; otherwise as JSON strings, which are valid YAML
//! double-quoted scalars. `tests/collector_config.rs` reads every printed
//! config back with serde_yaml and compares.

use std::fmt::Write;

use serde_json::Value;

pub fn to_yaml(value: &Value) -> String {
    let mut out = String::with_capacity(16 * 1024);
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0),
        Value::Array(items) if !items.is_empty() => write_list(&mut out, items, 0),
        scalar => {
            write_scalar(&mut out, scalar);
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

fn write_map(out: &mut String, map: &serde_json::Map<String, Value>, level: usize) {
    for (key, value) in map {
        indent(out, level);
        write_string(out, key);
        out.push(':');
        write_nested(out, value, level, true);
    }
}

fn write_list(out: &mut String, items: &[Value], level: usize) {
    for item in items {
        indent(out, level);
        out.push('-');
        match item {
            // A map in a list starts on the dash's line: "- key: value".
            Value::Object(map) if !map.is_empty() => {
                let mut first = true;
                for (key, value) in map {
                    if first {
                        out.push(' ');
                        first = false;
                    } else {
                        indent(out, level + 1);
                    }
                    write_string(out, key);
                    out.push(':');
                    write_nested(out, value, level + 1, true);
                }
            }
            other => write_nested(out, other, level, false),
        }
    }
}

/// Writes what follows `key:` or `-`: a scalar on the same line, or a block
/// on the next lines. Lists under a map key sit at the key's indentation.
fn write_nested(out: &mut String, value: &Value, level: usize, under_key: bool) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_map(out, map, level + 1);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            write_list(out, items, if under_key { level } else { level + 1 });
        }
        scalar => {
            out.push(' ');
            write_scalar(out, scalar);
            out.push('\n');
        }
    }
}

fn write_scalar(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_string(out, s),
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
}

fn write_string(out: &mut String, s: &str) {
    if is_plain_safe(s) {
        out.push_str(s);
    } else if !s.chars().any(char::is_control) {
        // Single quotes escape nothing but themselves, so regexes and OTTL
        // statements stay readable.
        out.push('\'');
        out.push_str(&s.replace('\'', "''"));
        out.push('\'');
    } else {
        // serde_json escapes exactly what a YAML double-quoted scalar needs.
        out.push_str(&Value::String(s.to_string()).to_string());
    }
}

/// Plain scalars that YAML 1.1 and 1.2 both read back as this same string:
/// a letter or `_` first, then letters, digits and `_ . / -`, and not a word
/// YAML reads as a boolean or null.
fn is_plain_safe(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-'))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_through_a_yaml_parser() {
        let value = json!({
            "a": { "b": [1, 2.5, "x"], "empty": {}, "none": [], "t": true, "n": null },
            "list": [{ "k": "v", "k2": ["p", "q"], "m": { "z": 1 } }, ["nested", "list"], {}],
            "tricky": ["yes", "No", "on", "1.0", "0x1F", "~", "", "a: b", "#c", "-x", "${env:X}:1", "$$1", "a\"b\\c", "it's", "line\nbreak", "tab\there", "é", "_x", "__name__"],
            "otlp_grpc/aggregator": "signal-aggregator.modelplane-system.svc.cluster.local:4317",
        });
        let printed = to_yaml(&value);
        let parsed: Value = serde_yaml::from_str(&printed).unwrap();
        assert_eq!(parsed, value, "{printed}");
    }

    #[test]
    fn prints_block_style() {
        let printed = to_yaml(
            &json!({ "service": { "pipelines": { "metrics": { "receivers": ["otlp"] } } }, "x": [{ "a": 1, "b": 2 }] }),
        );
        assert_eq!(
            printed,
            "service:\n  pipelines:\n    metrics:\n      receivers:\n      - otlp\nx:\n- a: 1\n  b: 2\n"
        );
    }
}
