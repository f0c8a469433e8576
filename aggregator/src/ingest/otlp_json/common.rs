//! `common.v1` and `resource.v1` messages.

use serde_json::Value;

use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::{
    Ctx, Result, base64_bytes, boolean, double, field, int32, int64, object, one_of, optional,
    repeated, string, uint32,
};

pub(super) fn resource(ctx: &mut Ctx, value: Value) -> Result<Resource> {
    let mut m = object(ctx, value)?;
    Ok(Resource {
        attributes: attributes(ctx, &mut m)?,
        dropped_attributes_count: field(
            ctx,
            &mut m,
            "droppedAttributesCount",
            "dropped_attributes_count",
            uint32,
        )?,
        entity_refs: repeated(ctx, &mut m, "entityRefs", "entity_refs", entity_ref)?,
    })
}

fn entity_ref(ctx: &mut Ctx, value: Value) -> Result<EntityRef> {
    let mut m = object(ctx, value)?;
    Ok(EntityRef {
        schema_url: field(ctx, &mut m, "schemaUrl", "schema_url", string)?,
        r#type: field(ctx, &mut m, "type", "type", string)?,
        id_keys: repeated(ctx, &mut m, "idKeys", "id_keys", string)?,
        description_keys: repeated(ctx, &mut m, "descriptionKeys", "description_keys", string)?,
    })
}

pub(super) fn scope(ctx: &mut Ctx, value: Value) -> Result<InstrumentationScope> {
    let mut m = object(ctx, value)?;
    Ok(InstrumentationScope {
        name: field(ctx, &mut m, "name", "name", string)?,
        version: field(ctx, &mut m, "version", "version", string)?,
        attributes: attributes(ctx, &mut m)?,
        dropped_attributes_count: field(
            ctx,
            &mut m,
            "droppedAttributesCount",
            "dropped_attributes_count",
            uint32,
        )?,
    })
}

/// The `attributes` field every OTLP message with attributes carries.
pub(super) fn attributes(
    ctx: &mut Ctx,
    m: &mut serde_json::Map<String, Value>,
) -> Result<Vec<KeyValue>> {
    repeated(ctx, m, "attributes", "attributes", key_value)
}

pub(super) fn key_value(ctx: &mut Ctx, value: Value) -> Result<KeyValue> {
    let mut m = object(ctx, value)?;
    Ok(KeyValue {
        key: field(ctx, &mut m, "key", "key", string)?,
        value: optional(ctx, &mut m, "value", "value", any_value)?,
        key_strindex: field(ctx, &mut m, "keyStrindex", "key_strindex", int32)?,
    })
}

/// An `AnyValue`; `{}` is a valid empty value.
fn any_value(ctx: &mut Ctx, value: Value) -> Result<AnyValue> {
    use any_value::Value as V;
    let mut m = object(ctx, value)?;
    let value = one_of(
        ctx,
        &mut m,
        &[
            ("stringValue", "string_value", |c, v| {
                string(c, v).map(V::StringValue)
            }),
            ("boolValue", "bool_value", |c, v| {
                boolean(c, v).map(V::BoolValue)
            }),
            ("intValue", "int_value", |c, v| int64(c, v).map(V::IntValue)),
            ("doubleValue", "double_value", |c, v| {
                double(c, v).map(V::DoubleValue)
            }),
            ("arrayValue", "array_value", |c, v| {
                array_value(c, v).map(V::ArrayValue)
            }),
            ("kvlistValue", "kvlist_value", |c, v| {
                kvlist_value(c, v).map(V::KvlistValue)
            }),
            ("bytesValue", "bytes_value", |c, v| {
                base64_bytes(c, v).map(V::BytesValue)
            }),
            ("stringValueStrindex", "string_value_strindex", |c, v| {
                int32(c, v).map(V::StringValueStrindex)
            }),
        ],
    )?;
    Ok(AnyValue { value })
}

fn array_value(ctx: &mut Ctx, value: Value) -> Result<ArrayValue> {
    let mut m = object(ctx, value)?;
    Ok(ArrayValue {
        values: repeated(ctx, &mut m, "values", "values", any_value)?,
    })
}

fn kvlist_value(ctx: &mut Ctx, value: Value) -> Result<KeyValueList> {
    let mut m = object(ctx, value)?;
    Ok(KeyValueList {
        values: repeated(ctx, &mut m, "values", "values", key_value)?,
    })
}
