//! Attributes (`KeyValue`s) of every value kind.

use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, any_value};

pub fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        key_strindex: 0,
    }
}

pub fn string_kv(key: &str, value: impl Into<String>) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.into()))
}

pub fn int_kv(key: &str, value: i64) -> KeyValue {
    kv(key, any_value::Value::IntValue(value))
}

pub fn double_kv(key: &str, value: f64) -> KeyValue {
    kv(key, any_value::Value::DoubleValue(value))
}

pub fn array_kv(key: &str, values: Vec<any_value::Value>) -> KeyValue {
    let values = values
        .into_iter()
        .map(|v| AnyValue { value: Some(v) })
        .collect();
    kv(key, any_value::Value::ArrayValue(ArrayValue { values }))
}
