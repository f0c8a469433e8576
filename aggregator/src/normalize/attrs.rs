//! Reading OTLP attribute values without allocating, and the hashing used to
//! key series state. Callers match keys themselves (one `match` over
//! `kv.key.as_str()` per attribute), so an attribute whose key is not
//! allowlisted is never even looked at.

use std::hash::{BuildHasherDefault, Hasher};

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};

/// The value of an attribute, if it has one.
pub(crate) fn value_of(kv: &KeyValue) -> Option<&any_value::Value> {
    kv.value.as_ref().and_then(|v: &AnyValue| v.value.as_ref())
}

pub(crate) fn as_str(value: &any_value::Value) -> Option<&str> {
    match value {
        any_value::Value::StringValue(s) => Some(s.as_str()),
        _ => None,
    }
}

/// A number from an int, double or numeric string value (the Prometheus
/// receiver and some SDKs stringify numbers).
pub(crate) fn as_f64(value: &any_value::Value) -> Option<f64> {
    let number = match value {
        any_value::Value::DoubleValue(d) => *d,
        any_value::Value::IntValue(i) => *i as f64,
        any_value::Value::StringValue(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    number.is_finite().then_some(number)
}

pub(crate) fn str_attr(kv: &KeyValue) -> Option<&str> {
    value_of(kv).and_then(as_str)
}

pub(crate) fn f64_attr(kv: &KeyValue) -> Option<f64> {
    value_of(kv).and_then(as_f64)
}

/// An order-independent digest of a whole attribute set. Used only as an
/// in-memory key for series state; the values themselves are never kept.
pub(crate) fn attribute_set_hash(attributes: &[KeyValue]) -> u64 {
    attributes.iter().fold(0u64, |acc, kv| {
        acc.wrapping_add(mix(xxh3(kv.key.as_bytes()), value_hash(value_of(kv))))
    })
}

fn value_hash(value: Option<&any_value::Value>) -> u64 {
    use any_value::Value;
    match value {
        None => 0,
        Some(Value::StringValue(s)) => xxh3(s.as_bytes()),
        Some(Value::BoolValue(b)) => u64::from(*b) + 1,
        Some(Value::IntValue(i)) => mix(2, *i as u64),
        Some(Value::DoubleValue(d)) => mix(3, d.to_bits()),
        Some(Value::BytesValue(b)) => mix(4, xxh3(b)),
        Some(Value::ArrayValue(array)) => array
            .values
            .iter()
            .fold(5u64, |acc, v| mix(acc, value_hash(v.value.as_ref()))),
        Some(Value::KvlistValue(list)) => mix(6, attribute_set_hash(&list.values)),
        Some(Value::StringValueStrindex(i)) => mix(7, *i as u64),
    }
}

pub(crate) fn xxh3(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// Combines two 64-bit hashes (order-dependent).
pub(crate) fn mix(a: u64, b: u64) -> u64 {
    // splitmix64 finaliser over a rotated xor: cheap and well distributed.
    let mut z = a.rotate_left(23) ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hasher for maps whose keys are already well-mixed 64-bit hashes.
#[derive(Default)]
pub(crate) struct PrehashedHasher(u64);

impl Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

pub(crate) type PrehashedMap<V> =
    std::collections::HashMap<u64, V, BuildHasherDefault<PrehashedHasher>>;
