//! HyperLogLog with 2^14 six-bit registers (0.81 % standard error) and
//! Ertl's improved estimator (2017), which needs no empirical bias tables.
//! While few items are seen it keeps an HLL++-style sparse list at 25-bit
//! index precision (Heule et al. 2013), where linear counting is exact in
//! practice: small prefix series count their distinct hashes exactly in a
//! few bytes, and convert losslessly to the dense registers when they grow.
//! Input is a 64-bit hash computed with the sketch module's fixed seed, so
//! registers built on any replica merge by taking the maximum.

use super::SketchError;
use super::codec::{Reader, Writer, corrupt};

pub const PRECISION: u32 = 14;
pub const REGISTERS: usize = 1 << PRECISION;
const MAX_RANK: u8 = (64 - PRECISION + 1) as u8;
const SPARSE_PRECISION: u32 = 25;
const SPARSE_MAX_RANK: u32 = 64 - SPARSE_PRECISION + 1;
/// Dense registers are 6 bits packed: 12 KiB (+1 byte so reads of two bytes
/// never run past the end).
const DENSE_BYTES: usize = REGISTERS * 6 / 8 + 1;
/// A sparse entry costs 4 bytes; past this many, dense is smaller.
const SPARSE_LIMIT: usize = 2_048;

#[derive(Clone, Debug, PartialEq)]
enum Registers {
    /// Sorted; each entry is `index25 << 6 | rank25` at sparse precision.
    Sparse(Vec<u32>),
    Dense(Box<[u8]>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct HyperLogLog {
    registers: Registers,
}

impl Default for HyperLogLog {
    fn default() -> Self {
        HyperLogLog {
            registers: Registers::Sparse(Vec::new()),
        }
    }
}

fn split_hash(hash: u64) -> (usize, u8) {
    let index = (hash >> (64 - PRECISION)) as usize;
    let rest = (hash << PRECISION) | (1 << (PRECISION - 1));
    (index, (rest.leading_zeros() + 1) as u8)
}

fn split_sparse(hash: u64) -> u32 {
    let index = (hash >> (64 - SPARSE_PRECISION)) as u32;
    let rest = (hash << SPARSE_PRECISION) | (1 << (SPARSE_PRECISION - 1));
    (index << 6) | (rest.leading_zeros() + 1)
}

/// The dense (index, rank) a sparse entry stands for: the same register the
/// hash would have set directly.
fn sparse_to_dense(entry: u32) -> (usize, u8) {
    let index25 = entry >> 6;
    let rank25 = entry & 0x3f;
    let low_bits = SPARSE_PRECISION - PRECISION;
    let low = index25 & ((1 << low_bits) - 1);
    let rank = if low != 0 {
        (low << (32 - low_bits)).leading_zeros() + 1
    } else {
        low_bits + rank25
    };
    ((index25 >> low_bits) as usize, rank as u8)
}

fn dense_get(bytes: &[u8], index: usize) -> u8 {
    let bit = index * 6;
    let word = u16::from_le_bytes([bytes[bit / 8], bytes[bit / 8 + 1]]);
    ((word >> (bit % 8)) & 0x3f) as u8
}

fn dense_set_max(bytes: &mut [u8], index: usize, rank: u8) {
    if dense_get(bytes, index) >= rank {
        return;
    }
    let bit = index * 6;
    let mut word = u16::from_le_bytes([bytes[bit / 8], bytes[bit / 8 + 1]]);
    word &= !(0x3f << (bit % 8));
    word |= u16::from(rank) << (bit % 8);
    let [lo, hi] = word.to_le_bytes();
    bytes[bit / 8] = lo;
    bytes[bit / 8 + 1] = hi;
}

impl HyperLogLog {
    /// Adds an already-hashed item (see `sketch::hash_u64`).
    pub fn add_hash(&mut self, hash: u64) {
        match &mut self.registers {
            Registers::Dense(bytes) => {
                let (index, rank) = split_hash(hash);
                dense_set_max(bytes, index, rank);
            }
            Registers::Sparse(_) => self.add_sparse(split_sparse(hash)),
        }
    }

    fn add_sparse(&mut self, entry: u32) {
        match &mut self.registers {
            Registers::Dense(bytes) => {
                let (index, rank) = sparse_to_dense(entry);
                dense_set_max(bytes, index, rank);
            }
            Registers::Sparse(entries) => {
                match entries.binary_search_by(|e| (e >> 6).cmp(&(entry >> 6))) {
                    Ok(at) => entries[at] = entries[at].max(entry),
                    Err(at) => {
                        entries.insert(at, entry);
                        if entries.len() > SPARSE_LIMIT {
                            self.densify();
                        }
                    }
                }
            }
        }
    }

    fn densify(&mut self) {
        if let Registers::Sparse(entries) = &self.registers {
            let mut bytes = vec![0u8; DENSE_BYTES].into_boxed_slice();
            for e in entries {
                let (index, rank) = sparse_to_dense(*e);
                dense_set_max(&mut bytes, index, rank);
            }
            self.registers = Registers::Dense(bytes);
        }
    }

    pub fn is_dense(&self) -> bool {
        matches!(self.registers, Registers::Dense(_))
    }

    /// Register-wise maximum: exactly the registers of the union's stream.
    pub fn merge(&mut self, other: &HyperLogLog) {
        match &other.registers {
            Registers::Sparse(entries) => {
                for e in entries {
                    self.add_sparse(*e);
                }
            }
            Registers::Dense(theirs) => {
                self.densify();
                if let Registers::Dense(mine) = &mut self.registers {
                    for index in 0..REGISTERS {
                        let rank = dense_get(theirs, index);
                        if rank > 0 {
                            dense_set_max(mine, index, rank);
                        }
                    }
                }
            }
        }
    }

    /// Every register's value, index order (for tests and equality of merges).
    pub fn register_values(&self) -> Vec<u8> {
        let mut out = vec![0u8; REGISTERS];
        match &self.registers {
            Registers::Sparse(entries) => {
                for e in entries {
                    let (index, rank) = sparse_to_dense(*e);
                    out[index] = out[index].max(rank);
                }
            }
            Registers::Dense(bytes) => {
                for (index, slot) in out.iter_mut().enumerate() {
                    *slot = dense_get(bytes, index);
                }
            }
        }
        out
    }

    fn rank_histogram(&self) -> [u32; MAX_RANK as usize + 1] {
        let mut histogram = [0u32; MAX_RANK as usize + 1];
        for rank in self.register_values() {
            histogram[rank as usize] += 1;
        }
        histogram
    }

    /// Estimated number of distinct hashes added (Ertl 2017, "improved raw
    /// estimator", section 4).
    pub fn estimate(&self) -> f64 {
        if let Registers::Sparse(entries) = &self.registers {
            // Linear counting over 2^25 slots: collisions are negligible
            // below the sparse limit.
            let slots = f64::from(1u32 << SPARSE_PRECISION);
            return slots * (slots / (slots - entries.len() as f64)).ln();
        }
        let histogram = self.rank_histogram();
        let m = REGISTERS as f64;
        let q = (64 - PRECISION) as usize;
        let mut z = m * tau(1.0 - f64::from(histogram[q + 1]) / m);
        for k in (1..=q).rev() {
            z = 0.5 * (z + f64::from(histogram[k]));
        }
        z += m * sigma(f64::from(histogram[0]) / m);
        let alpha_inf = 1.0 / (2.0 * std::f64::consts::LN_2);
        alpha_inf * m * m / z
    }

    /// Bytes this HLL takes in the series encoding.
    pub fn encoded_len(&self) -> usize {
        let mut w = Writer::default();
        self.encode(&mut w);
        w.buf.len()
    }

    pub fn shrink_to_fit(&mut self) {
        if let Registers::Sparse(entries) = &mut self.registers {
            entries.shrink_to_fit();
        }
    }

    pub fn heap_bytes(&self) -> usize {
        match &self.registers {
            Registers::Sparse(entries) => entries.capacity() * 4,
            Registers::Dense(bytes) => bytes.len(),
        }
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        match &self.registers {
            Registers::Sparse(entries) => {
                w.u8(0);
                w.varint(entries.len() as u64);
                let mut previous = 0u32;
                for e in entries {
                    // Entries are sorted, so index deltas are small varints.
                    w.varint(u64::from((e >> 6) - (previous >> 6)));
                    w.u8((e & 0x3f) as u8);
                    previous = *e;
                }
            }
            Registers::Dense(bytes) => {
                w.u8(1);
                w.buf.extend_from_slice(&bytes[..DENSE_BYTES - 1]);
            }
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, SketchError> {
        let check_rank = |rank: u8| {
            if rank > MAX_RANK {
                Err(corrupt(format!("HLL rank {rank} exceeds {MAX_RANK}")))
            } else {
                Ok(rank)
            }
        };
        match r.u8()? {
            0 => {
                let len = r.len(2)?;
                if len > SPARSE_LIMIT {
                    return Err(corrupt("sparse HLL longer than its dense switch-over"));
                }
                let mut entries = Vec::with_capacity(len);
                let mut index = 0u64;
                for i in 0..len {
                    let delta = r.varint()?;
                    if i > 0 && delta == 0 {
                        return Err(corrupt("sparse HLL indexes not strictly ascending"));
                    }
                    index = index.saturating_add(delta);
                    if index >= 1 << SPARSE_PRECISION {
                        return Err(corrupt("sparse HLL index out of range"));
                    }
                    let rank = u32::from(r.u8()?);
                    if rank == 0 || rank > SPARSE_MAX_RANK {
                        return Err(corrupt(format!("sparse HLL rank {rank} out of range")));
                    }
                    entries.push(((index as u32) << 6) | rank);
                }
                Ok(HyperLogLog {
                    registers: Registers::Sparse(entries),
                })
            }
            1 => {
                let mut bytes = vec![0u8; DENSE_BYTES].into_boxed_slice();
                for b in bytes.iter_mut().take(DENSE_BYTES - 1) {
                    *b = r.u8()?;
                }
                for index in 0..REGISTERS {
                    check_rank(dense_get(&bytes, index))?;
                }
                Ok(HyperLogLog {
                    registers: Registers::Dense(bytes),
                })
            }
            tag => Err(corrupt(format!("unknown HLL representation {tag}"))),
        }
    }
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let previous = z;
        z += x * y;
        y += y;
        if z == previous {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let previous = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if z == previous {
            return z / 3.0;
        }
    }
}
