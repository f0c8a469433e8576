//! The value of a window key: a header and a sequence of encoded sketches
//! ("frames") that together are the window's sketch.
//!
//! ```text
//! [layout version u8 = 1][frame count u32 BE] ( [len u32 BE][SeriesSketch::encode()] )*
//! ```
//!
//! Writers never read: a flush appends one frame per window (atomic in Redis, so
//! any number of replicas can write the same window without losing updates).
//! Readers merge every frame. Compaction replaces the frames it read by their
//! merge, keeping whatever was appended meanwhile. Each frame carries the sketch
//! encoding's own version byte, so old frames stay readable after an upgrade.

use crate::sketch::SeriesSketch;
use crate::store::StoreError;

pub const LAYOUT_VERSION: u8 = 1;
pub const HEADER_LEN: usize = 5;

/// One length-prefixed frame, as appended by the flush script.
pub fn frame(encoded_sketch: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + encoded_sketch.len());
    out.extend_from_slice(&(encoded_sketch.len() as u32).to_be_bytes());
    out.extend_from_slice(encoded_sketch);
    out
}

/// A whole value holding exactly one frame.
#[cfg(test)]
pub fn single_frame_value(encoded_sketch: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + 4 + encoded_sketch.len());
    out.push(LAYOUT_VERSION);
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&frame(encoded_sketch));
    out
}

/// The frames of a value, checked against its header.
pub fn frames(value: &[u8]) -> Result<Vec<&[u8]>, StoreError> {
    let corrupt = |why: &str| StoreError::Corrupt(format!("window value: {why}"));
    if value.len() < HEADER_LEN {
        return Err(corrupt("shorter than its header"));
    }
    if value[0] != LAYOUT_VERSION {
        return Err(corrupt(&format!("unknown layout version {}", value[0])));
    }
    let count = u32::from_be_bytes(value[1..5].try_into().expect("4 bytes")) as usize;
    let mut out = Vec::with_capacity(count.min(1024));
    let mut rest = &value[HEADER_LEN..];
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err(corrupt("truncated frame length"));
        }
        let len = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let body = rest
            .get(4..4 + len)
            .ok_or_else(|| corrupt("frame longer than the value"))?;
        out.push(body);
        rest = &rest[4 + len..];
    }
    if out.len() != count {
        return Err(corrupt(&format!(
            "header says {count} frames, found {}",
            out.len()
        )));
    }
    Ok(out)
}

/// Every frame of a value merged into one sketch.
pub fn merge_value(value: &[u8]) -> Result<SeriesSketch, StoreError> {
    let mut merged = SeriesSketch::default();
    merge_value_into(&mut merged, value)?;
    Ok(merged)
}

/// Every frame of a value merged into `into`, each straight from its bytes
/// ([`SeriesSketch::merge_encoded`]). On error `into` is partly merged.
pub fn merge_value_into(into: &mut SeriesSketch, value: &[u8]) -> Result<(), StoreError> {
    let frames = frames(value)?;
    if frames.is_empty() {
        return Err(StoreError::Corrupt("window value without frames".into()));
    }
    for body in frames {
        into.merge_encoded(body)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    }
    Ok(())
}

/// Appends `frame` to a window key, creating it when missing; refreshes its
/// expiry. Returns the key's frame count.
const APPEND_FRAME_LUA: &str = r#"
local function append_frame(key, frame, expire_at)
  local header = redis.call('GETRANGE', key, 0, 4)
  local count = 1
  if header == '' then
    redis.call('SET', key, '\1' .. struct.pack('>I4', 1) .. frame)
  else
    count = struct.unpack('>I4', header, 2) + 1
    redis.call('SETRANGE', key, 1, struct.pack('>I4', count))
    redis.call('APPEND', key, frame)
  end
  redis.call('EXPIREAT', key, expire_at)
  return count
end
"#;

/// One tenant's share of a flush, applied atomically and at most once.
///
/// KEYS: checkpoint, then `n_index` series-index sets, then the window keys.
/// ARGV: seq, checkpoint expiry (unix s), index expiry (unix s), n_index,
/// index members (one per index set, `\n`-joined), then (frame, expire_at) per
/// window key. Skipped (returns `{-1}`) when the checkpoint already covers `seq`:
/// the write-ahead-log replay after a crash re-sends flushes that had landed.
/// Otherwise returns the frame count of each window key.
pub fn flush_script() -> String {
    format!(
        r#"#!lua
{APPEND_FRAME_LUA}
local seq = tonumber(ARGV[1])
local done = tonumber(redis.call('GET', KEYS[1]) or '0')
if done >= seq then return {{-1}} end
local n_index = tonumber(ARGV[4])
for i = 1, n_index do
  local key = KEYS[1 + i]
  for member in string.gmatch(ARGV[4 + i], '[^\n]+') do
    redis.call('SADD', key, member)
  end
  redis.call('EXPIREAT', key, ARGV[3])
end
local counts = {{}}
local arg = 5 + n_index
for k = 2 + n_index, #KEYS do
  counts[#counts + 1] = append_frame(KEYS[k], ARGV[arg], ARGV[arg + 1])
  arg = arg + 2
end
redis.call('SET', KEYS[1], ARGV[1], 'EXAT', ARGV[2])
return counts
"#
    )
}

/// Replaces the frames a compactor read (ARGV[1], the whole value as read) by
/// their merge (ARGV[2], one frame), keeping frames appended since. Refuses
/// (returns 0) when the frames read are no longer the value's first frames.
pub const COMPACT_SCRIPT: &str = r#"#!lua
local cur = redis.call('GET', KEYS[1])
local old = ARGV[1]
if not cur or #cur < #old or string.sub(cur, 6, #old) ~= string.sub(old, 6) then
  return 0
end
local old_count = struct.unpack('>I4', old, 2)
local cur_count = struct.unpack('>I4', cur, 2)
local value = string.sub(cur, 1, 1) .. struct.pack('>I4', 1 + cur_count - old_count)
  .. ARGV[2] .. string.sub(cur, #old + 1)
redis.call('SET', KEYS[1], value, 'KEEPTTL')
return 1
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::{Field, FieldKey, Point, Value};

    fn sketch(ttft: &[f64], requests: f64) -> SeriesSketch {
        let mut sketch = SeriesSketch::default();
        let values = ttft
            .iter()
            .map(|v| (Field::TtftSeconds, Value::Sample(*v)))
            .chain([(Field::Requests, Value::Counter(requests))]);
        for (field, value) in values {
            sketch.record(&Point {
                field: FieldKey::plain(field),
                time_unix_nano: 1,
                value,
            });
        }
        sketch
    }

    fn value_of(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut value = vec![LAYOUT_VERSION];
        value.extend_from_slice(&(frames.len() as u32).to_be_bytes());
        for body in frames {
            value.extend_from_slice(&frame(body));
        }
        value
    }

    #[test]
    fn a_value_is_the_merge_of_its_frames_in_either_encoding() {
        let parts = [
            sketch(&[0.1, 0.2], 2.0),
            sketch(&[], 1.0),
            sketch(&[5.0, 0.01, 7.5], 3.0),
        ];
        let value = value_of(&[
            parts[0].encode(),
            parts[1].encode_version(1).unwrap(),
            parts[2].encode(),
        ]);
        let mut expected = SeriesSketch::default();
        for part in &parts {
            expected.merge(part).unwrap();
        }
        let merged = merge_value(&value).unwrap();
        assert_eq!(merged, expected);
        assert_eq!(merged.summary(Field::TtftSeconds).unwrap().count, 5);
        assert_eq!(merged.counter_sum(Field::Requests), Some(6.0));
        // Into a series that already holds fields: a query's accumulator.
        let mut into = parts[2].clone();
        merge_value_into(&mut into, &value).unwrap();
        expected.merge(&parts[2]).unwrap();
        assert_eq!(into, expected);
    }

    #[test]
    fn damaged_frames_and_empty_values_are_corrupt_not_panics() {
        let good = sketch(&[0.3, 0.4, 9.0], 1.0).encode();
        let mut wrong_version = good.clone();
        wrong_version[0] = 99;
        for bad in [
            value_of(&[]),
            value_of(&[b"garbage".to_vec()]),
            value_of(&[good[..good.len() - 3].to_vec()]),
            value_of(&[good.clone(), wrong_version]),
        ] {
            assert!(matches!(merge_value(&bad), Err(StoreError::Corrupt(_))));
            let mut into = sketch(&[1.0], 1.0);
            assert!(matches!(
                merge_value_into(&mut into, &bad),
                Err(StoreError::Corrupt(_))
            ));
        }
    }

    #[test]
    fn frames_are_split_and_counted() {
        let mut value = single_frame_value(b"abc");
        value.extend_from_slice(&frame(b"de"));
        value[1..5].copy_from_slice(&2u32.to_be_bytes());
        assert_eq!(frames(&value).unwrap(), vec![&b"abc"[..], &b"de"[..]]);
    }

    #[test]
    fn damaged_values_are_reported_as_corrupt() {
        let good = single_frame_value(b"abc");
        for bad in [
            &good[..3],
            &good[..good.len() - 1],
            &[9, 0, 0, 0, 1, 0, 0, 0, 0][..],
            &[1, 0, 0, 0, 2, 0, 0, 0, 0][..],
        ] {
            assert!(
                matches!(frames(bad), Err(StoreError::Corrupt(_))),
                "{bad:?}"
            );
        }
    }
}
