//! Wire layout of one quantile bucket store (counts for bucket indexes
//! `offset..offset + len`):
//!
//! ```text
//! dense  (encodings 1, 2): zigzag(offset) varint(len)          varint(count) × len
//! sparse (encoding 2):     zigzag(offset) varint(len | SPARSE) varint(n) entry × n
//! ```
//!
//! A sparse store lists its `n` non-zero buckets in ascending order, one byte
//! each in the common case: `gap << 4 | count`, where `gap` is the number of
//! zero buckets skipped since the previous non-zero one (or since `offset`).
//! A gap of 15 or more is written as 15 followed by `varint(gap - 15)`, a
//! count of 16 or more as 0 followed by `varint(count - 16)`.
//!
//! The encoder writes whichever form is smaller (dense on ties). A minute of
//! 60 requests spreads its samples over a few hundred buckets, most of them
//! empty, and costs ~1 byte per sample sparse versus ~1 byte per bucket dense;
//! an hour of thousands of requests fills its buckets and stays dense. Both
//! forms decode to the same store (same offset and length), so decode then
//! encode reproduces the input bytes.

use super::SketchError;
use super::codec::{Reader, Writer, corrupt, varint_len};

/// Set in the length of a sparse store; above any dense length
/// ([`super::quantile::MAX_BUCKETS`]), so encoding-1 decoders refuse it.
const SPARSE: u64 = 1 << 13;
const GAP_ESCAPE: u64 = 15;
const COUNT_ESCAPE: u64 = 16;

/// A decoded store header; the counts follow in the reader.
pub(crate) struct StoreHeader {
    pub(crate) offset: i64,
    pub(crate) len: usize,
    /// Non-zero buckets listed, for a sparse store.
    sparse_entries: Option<usize>,
}

impl StoreHeader {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<StoreHeader, SketchError> {
        let offset = r.zigzag()?;
        let len = r.varint()?;
        if len & SPARSE != 0 && r.version >= 2 {
            let len = len ^ SPARSE;
            // Every entry takes at least a byte.
            let entries = r.len(1)?;
            if entries as u64 > len {
                return Err(corrupt(format!(
                    "sparse bucket store lists {entries} buckets of {len}"
                )));
            }
            return Ok(StoreHeader {
                offset,
                len: usize::try_from(len).map_err(|_| corrupt("bucket store too long"))?,
                sparse_entries: Some(entries),
            });
        }
        Ok(StoreHeader {
            offset,
            // Every dense count takes at least a byte.
            len: r.fits(len, 1)?,
            sparse_entries: None,
        })
    }

    /// Reads the counts, calling `add(slot, count)` with `slot < len`: for
    /// every slot of a dense store (zeros included), for the non-zero slots
    /// of a sparse one, in ascending order either way.
    #[inline]
    pub(crate) fn read_counts(
        &self,
        r: &mut Reader<'_>,
        mut add: impl FnMut(usize, u64) -> Result<(), SketchError>,
    ) -> Result<(), SketchError> {
        let Some(entries) = self.sparse_entries else {
            for slot in 0..self.len {
                add(slot, r.varint()?)?;
            }
            return Ok(());
        };
        let mut next = 0u64;
        for _ in 0..entries {
            let byte = r.u8()?;
            let mut gap = u64::from(byte >> 4);
            if gap == GAP_ESCAPE {
                gap = gap
                    .checked_add(r.varint()?)
                    .ok_or_else(|| corrupt("sparse bucket gap overflows"))?;
            }
            let mut count = u64::from(byte & 0x0f);
            if count == 0 {
                count = COUNT_ESCAPE
                    .checked_add(r.varint()?)
                    .ok_or_else(|| corrupt("sparse bucket count overflows"))?;
            }
            let slot = next.saturating_add(gap);
            if slot >= self.len as u64 {
                return Err(corrupt("sparse bucket past the end of its store"));
            }
            add(slot as usize, count)?;
            next = slot + 1;
        }
        Ok(())
    }
}

/// Writes a store in its smaller form (dense only for encoding 1).
pub(crate) fn encode<T: Copy + Into<u64>>(w: &mut Writer, offset: i32, counts: &[T]) {
    w.zigzag(i64::from(offset));
    let len = counts.len() as u64;
    if !w.dense_only && sparse_is_smaller(counts) {
        encode_sparse(w, counts);
        return;
    }
    w.buf.reserve(counts.len() + 2);
    w.varint(len);
    for &count in counts {
        w.varint(count.into());
    }
}

fn sparse_is_smaller<T: Copy + Into<u64>>(counts: &[T]) -> bool {
    let (mut dense, mut sparse, mut entries, mut gap) = (0usize, 0usize, 0u64, 0u64);
    for &count in counts {
        let count: u64 = count.into();
        dense += varint_len(count);
        if count == 0 {
            gap += 1;
        } else {
            sparse += entry_len(gap, count);
            entries += 1;
            gap = 0;
        }
    }
    let len = counts.len() as u64;
    varint_len(len | SPARSE) + varint_len(entries) + sparse < varint_len(len) + dense
}

fn encode_sparse<T: Copy + Into<u64>>(w: &mut Writer, counts: &[T]) {
    let entries = counts.iter().filter(|c| (**c).into() != 0).count();
    w.buf.reserve(entries + 4);
    w.varint(counts.len() as u64 | SPARSE);
    w.varint(entries as u64);
    let mut gap = 0u64;
    for &count in counts {
        let count: u64 = count.into();
        if count == 0 {
            gap += 1;
            continue;
        }
        let gap_nibble = gap.min(GAP_ESCAPE);
        let count_nibble = if count >= COUNT_ESCAPE { 0 } else { count };
        w.u8(((gap_nibble << 4) | count_nibble) as u8);
        if gap >= GAP_ESCAPE {
            w.varint(gap - GAP_ESCAPE);
        }
        if count >= COUNT_ESCAPE {
            w.varint(count - COUNT_ESCAPE);
        }
        gap = 0;
    }
}

fn entry_len(gap: u64, count: u64) -> usize {
    1 + if gap >= GAP_ESCAPE {
        varint_len(gap - GAP_ESCAPE)
    } else {
        0
    } + if count >= COUNT_ESCAPE {
        varint_len(count - COUNT_ESCAPE)
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(offset: i32, counts: &[u64]) -> Vec<u8> {
        let mut w = Writer::default();
        encode(&mut w, offset, counts);
        let mut r = Reader::new(&w.buf);
        let header = StoreHeader::decode(&mut r).unwrap();
        assert_eq!(
            (header.offset, header.len),
            (i64::from(offset), counts.len())
        );
        let mut decoded = vec![0u64; header.len];
        header
            .read_counts(&mut r, |slot, count| {
                decoded[slot] += count;
                Ok(())
            })
            .unwrap();
        r.finish().unwrap();
        assert_eq!(decoded, counts);
        w.buf
    }

    #[test]
    fn scattered_small_counts_are_written_one_byte_each() {
        let mut counts = vec![0u64; 200];
        for (i, slot) in (0..200).step_by(4).enumerate() {
            counts[slot] = 1 + (i as u64 % 15);
        }
        let bytes = round_trip(-7, &counts);
        // offset, 2-byte flagged length, entry count, 50 one-byte entries.
        assert_eq!(bytes.len(), 1 + 2 + 1 + 50);
    }

    #[test]
    fn long_gaps_and_large_counts_escape() {
        let mut counts = vec![0u64; 3_000];
        counts[0] = 16;
        counts[14] = 15;
        counts[30] = 1;
        counts[2_999] = 1 << 40;
        let bytes = round_trip(100, &counts);
        assert!(bytes.len() < 20, "{}", bytes.len());
    }

    #[test]
    fn dense_stores_stay_dense_and_read_as_encoding_1() {
        let counts: Vec<u64> = (1..=100).collect();
        let bytes = round_trip(3, &counts);
        assert_eq!(bytes[1], 100, "plain length: dense");
        let mut r = Reader::new(&bytes);
        r.version = 1;
        let header = StoreHeader::decode(&mut r).unwrap();
        assert_eq!(header.len, 100);
        assert!(header.sparse_entries.is_none());
    }

    #[test]
    fn encoding_1_refuses_a_sparse_store() {
        let mut counts = vec![0u64; 300];
        counts[150] = 2;
        let bytes = round_trip(0, &counts);
        let mut r = Reader::new(&bytes);
        r.version = 1;
        assert!(StoreHeader::decode(&mut r).is_err());
    }

    #[test]
    fn damaged_sparse_stores_are_refused() {
        let sparse = |len: u64, entries: &[u8]| {
            let mut w = Writer::default();
            w.zigzag(0);
            w.varint(len | SPARSE);
            w.varint(entries.len() as u64);
            w.buf.extend_from_slice(entries);
            w.buf
        };
        let read = |bytes: &[u8]| {
            let mut r = Reader::new(bytes);
            let header = StoreHeader::decode(&mut r)?;
            header.read_counts(&mut r, |_, _| Ok(()))
        };
        assert!(read(&sparse(4, &[0x01, 0x01])).is_ok());
        // Past the end: gap 3 after slot 0 lands on slot 4 of 4.
        assert!(read(&sparse(4, &[0x01, 0x31])).is_err());
        // More entries than buckets.
        assert!(read(&sparse(1, &[0x01, 0x01])).is_err());
        // Escapes cut short.
        assert!(read(&sparse(100, &[0xf1])).is_err());
        assert!(read(&sparse(100, &[0x10])).is_err());
        // Overflowing escapes.
        let mut huge = vec![0xf1];
        huge.extend_from_slice(&[0xff; 9]);
        huge.push(0x01);
        assert!(read(&sparse(100, &huge)).is_err());
    }
}
