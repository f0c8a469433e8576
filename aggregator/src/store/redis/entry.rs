//! The write-ahead-log payload of one `merge()` call: its windowed sketches.
//!
//! ```text
//! [version u8 = 1][count u32] ( [tenant][cluster][model] as (len u16, utf-8)
//!   [kind u8][resolution u8][window start u64][sketch len u32][SeriesSketch::encode()] )*
//! ```
//! Little-endian throughout.

use crate::signal::{SeriesKey, SignalKind};
use crate::sketch::{Resolution, SeriesSketch, Window, WindowedSketch};
use crate::store::StoreError;

const VERSION: u8 = 1;

pub fn encode(sketches: &[WindowedSketch]) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(64 + sketches.len() * 256);
    out.push(VERSION);
    out.extend_from_slice(&(sketches.len() as u32).to_le_bytes());
    for WindowedSketch {
        key,
        window,
        sketch,
    } in sketches
    {
        for text in [&key.tenant, &key.cluster, &key.model] {
            let len = u16::try_from(text.len()).map_err(|_| {
                StoreError::Corrupt(format!(
                    "series identity longer than 65535 bytes: {:.40}…",
                    text
                ))
            })?;
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        let kind = SignalKind::ALL
            .iter()
            .position(|k| *k == key.kind)
            .expect("kind in ALL");
        out.push(kind as u8);
        out.push(match window.resolution {
            Resolution::Minute => 0,
            Resolution::Hour => 1,
        });
        out.extend_from_slice(&window.start_unix_secs.to_le_bytes());
        let body = sketch.encode();
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
    }
    Ok(out)
}

struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.data.len() < n {
            return Err(StoreError::Corrupt(
                "write-ahead-log entry is truncated".into(),
            ));
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, StoreError> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }

    fn u32(&mut self) -> Result<u32, StoreError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn text(&mut self) -> Result<String, StoreError> {
        let len = self.u16()? as usize;
        String::from_utf8(self.take(len)?.to_vec())
            .map_err(|_| StoreError::Corrupt("write-ahead-log entry has a non-UTF-8 name".into()))
    }
}

pub fn decode(payload: &[u8]) -> Result<Vec<WindowedSketch>, StoreError> {
    let corrupt = |why: String| StoreError::Corrupt(format!("write-ahead-log entry: {why}"));
    let mut reader = Reader { data: payload };
    let version = reader.u8()?;
    if version != VERSION {
        return Err(corrupt(format!("unknown version {version}")));
    }
    let count = reader.u32()? as usize;
    let mut out = Vec::with_capacity(count.min(payload.len()));
    for _ in 0..count {
        let tenant = reader.text()?;
        let cluster = reader.text()?;
        let model = reader.text()?;
        let kind_index = reader.u8()? as usize;
        let kind = *SignalKind::ALL
            .get(kind_index)
            .ok_or_else(|| corrupt(format!("unknown signal kind index {kind_index}")))?;
        let resolution = match reader.u8()? {
            0 => Resolution::Minute,
            1 => Resolution::Hour,
            other => return Err(corrupt(format!("unknown resolution {other}"))),
        };
        let start_unix_secs = reader.u64()?;
        let len = reader.u32()? as usize;
        let sketch = SeriesSketch::decode(reader.take(len)?).map_err(|e| corrupt(e.to_string()))?;
        out.push(WindowedSketch {
            key: SeriesKey {
                tenant,
                cluster,
                model,
                kind,
            },
            window: Window {
                resolution,
                start_unix_secs,
            },
            sketch,
        });
    }
    if !reader.data.is_empty() {
        return Err(corrupt(format!("{} trailing bytes", reader.data.len())));
    }
    Ok(out)
}
