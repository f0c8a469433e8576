//! Bounds-checked binary reader/writer for the sketch wire format. Every read
//! validates against the remaining input so corrupt bytes become a
//! [`SketchError`], never a panic or an unbounded allocation.

use super::SketchError;

#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
    /// Writing encoding 1, which has no sparse bucket stores.
    pub(crate) dense_only: bool,
}

impl Writer {
    #[inline]
    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    #[inline]
    pub(crate) fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    #[inline]
    pub(crate) fn zigzag(&mut self, v: i64) {
        self.varint(((v << 1) ^ (v >> 63)) as u64);
    }

    #[inline]
    pub(crate) fn f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn u64_fixed(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.varint(v.len() as u64);
        self.buf.extend_from_slice(v);
    }

    pub(crate) fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }
}

/// Bytes `varint(v)` writes.
#[inline]
pub(crate) fn varint_len(v: u64) -> usize {
    if v < 0x80 {
        1
    } else {
        (64 - v.leading_zeros() as usize).div_ceil(7)
    }
}

#[derive(Clone)]
pub(crate) struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    /// Encoding version of the input (see `ENCODING_VERSION`), for layouts
    /// that only exist from some version on.
    pub(crate) version: u8,
}

pub(crate) fn corrupt(what: impl Into<String>) -> SketchError {
    SketchError::Corrupt(what.into())
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Reader {
            input,
            pos: 0,
            version: super::ENCODING_VERSION,
        }
    }

    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    pub(crate) fn finish(&self) -> Result<(), SketchError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(corrupt(format!("{} trailing bytes", self.remaining())))
        }
    }

    #[inline]
    pub(crate) fn u8(&mut self) -> Result<u8, SketchError> {
        let byte = *self
            .input
            .get(self.pos)
            .ok_or_else(|| corrupt("unexpected end of input"))?;
        self.pos += 1;
        Ok(byte)
    }

    /// Inlined for the one-byte case: most values (bucket counts, lengths)
    /// fit one byte, and bucket counts are most of a sketch's bytes.
    #[inline]
    pub(crate) fn varint(&mut self) -> Result<u64, SketchError> {
        if let Some(&byte) = self.input.get(self.pos)
            && byte < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(byte));
        }
        self.long_varint()
    }

    #[inline(never)]
    fn long_varint(&mut self) -> Result<u64, SketchError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(corrupt("varint overflows 64 bits"));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(corrupt("varint longer than 10 bytes"))
    }

    #[inline]
    pub(crate) fn zigzag(&mut self) -> Result<i64, SketchError> {
        let v = self.varint()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    /// A length that prefixes `len` items of at least `min_item_bytes` each;
    /// rejecting lengths the remaining input cannot hold bounds allocations.
    #[inline]
    pub(crate) fn len(&mut self, min_item_bytes: usize) -> Result<usize, SketchError> {
        let len = self.varint()?;
        self.fits(len, min_item_bytes)
    }

    /// `len` as a length of items of at least `min_item_bytes` each, if the
    /// remaining input can hold them (see [`Self::len`]).
    #[inline]
    pub(crate) fn fits(&self, len: u64, min_item_bytes: usize) -> Result<usize, SketchError> {
        let max = (self.remaining() / min_item_bytes.max(1)) as u64;
        if len > max {
            return Err(corrupt(format!(
                "length {len} exceeds the {} bytes left",
                self.remaining()
            )));
        }
        Ok(len as usize)
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], SketchError> {
        if n > self.remaining() {
            return Err(corrupt("unexpected end of input"));
        }
        let slice = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    #[inline]
    pub(crate) fn f64(&mut self) -> Result<f64, SketchError> {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(self.take(8)?);
        Ok(f64::from_le_bytes(raw))
    }

    pub(crate) fn finite_f64(&mut self, what: &str) -> Result<f64, SketchError> {
        let v = self.f64()?;
        if v.is_finite() {
            Ok(v)
        } else {
            Err(corrupt(format!("{what} is not finite")))
        }
    }

    pub(crate) fn u64_fixed(&mut self) -> Result<u64, SketchError> {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(raw))
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], SketchError> {
        let len = self.len(1)?;
        self.take(len)
    }

    pub(crate) fn str(&mut self) -> Result<&'a str, SketchError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| corrupt("string is not UTF-8"))
    }
}
