//! A local write-ahead log: numbered entries in segment files, appended in
//! groups with one `fdatasync` per group, replayed on start, deleted once
//! flushed elsewhere.
//!
//! ```text
//! <dir>/LOCK                      held (flock) while a process owns the log
//! <dir>/<first seq, 20 digits>.wal
//!   entry: [payload len u32 LE][seq u64 LE][xxh3(seq ‖ payload) u64 LE][payload]
//! ```
//!
//! Sequence numbers only grow, across restarts too: the newest segment is never
//! deleted and its name is the floor for the next number.
//! A torn entry at the end of the newest segment is what a crash during an
//! append leaves; that append was never acknowledged, so it is cut off. Damage
//! anywhere else is reported, not skipped.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::Xxh3;

const ENTRY_HEADER: usize = 4 + 8 + 8;
const SUFFIX: &str = ".wal";
/// Refuses absurd lengths from a damaged header instead of allocating them.
const MAX_ENTRY_BYTES: usize = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("write-ahead log {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("write-ahead log {path} is damaged at byte {offset}: {why}")]
    Damaged {
        path: PathBuf,
        offset: u64,
        why: String,
    },
    #[error("write-ahead log {0} is in use by another process")]
    Locked(PathBuf),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One replayed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalEntry {
    pub seq: u64,
    pub payload: Vec<u8>,
}

struct Segment {
    first_seq: u64,
    path: PathBuf,
    bytes: u64,
}

pub struct Wal {
    dir: PathBuf,
    segment_bytes: u64,
    /// Oldest first; the last one is being appended to.
    segments: Vec<Segment>,
    writer: BufWriter<File>,
    next_seq: u64,
    _lock: File,
}

impl Wal {
    /// Opens (creating) the log in `dir` and returns what it holds, oldest first.
    /// New entries go to a fresh segment.
    pub fn open(dir: &Path, segment_bytes: u64) -> Result<(Wal, Vec<WalEntry>), WalError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let lock_path = dir.join("LOCK");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        lock.try_lock().map_err(|e| match e {
            fs::TryLockError::WouldBlock => WalError::Locked(dir.to_path_buf()),
            fs::TryLockError::Error(source) => WalError::Io {
                path: lock_path.clone(),
                source,
            },
        })?;

        let mut segments = list_segments(dir)?;
        let mut entries = Vec::new();
        let last = segments.len().saturating_sub(1);
        for (index, segment) in segments.iter_mut().enumerate() {
            let valid_len = read_segment(segment, index == last, &mut entries)?;
            if valid_len < segment.bytes {
                tracing::warn!(
                    path = %segment.path.display(),
                    kept = valid_len,
                    cut = segment.bytes - valid_len,
                    "cutting off an unacknowledged torn append at the end of the write-ahead log"
                );
                let file = OpenOptions::new()
                    .write(true)
                    .open(&segment.path)
                    .map_err(io_err(&segment.path))?;
                file.set_len(valid_len).map_err(io_err(&segment.path))?;
                file.sync_all().map_err(io_err(&segment.path))?;
                segment.bytes = valid_len;
            }
        }
        let floor = segments.last().map_or(1, |s| s.first_seq);
        let next_seq = entries
            .last()
            .map_or(floor, |e: &WalEntry| e.seq + 1)
            .max(floor);
        if segments.last().is_some_and(|s| s.first_seq == next_seq) {
            // Holds no valid entry (else `next_seq` would be past it): reuse its name.
            segments.pop();
        }
        let (segment, writer) = create_segment(dir, next_seq)?;
        segments.push(segment);
        let wal = Wal {
            dir: dir.to_path_buf(),
            segment_bytes,
            segments,
            writer,
            next_seq,
            _lock: lock,
        };
        Ok((wal, entries))
    }

    /// Appends `payloads` as consecutive entries and makes them durable with one
    /// sync. Returns the first sequence number used.
    pub fn append(&mut self, payloads: &[&[u8]]) -> Result<u64, WalError> {
        let first = self.next_seq;
        let mut written = 0u64;
        for payload in payloads {
            let seq = self.next_seq;
            let mut hasher = Xxh3::new();
            hasher.update(&seq.to_le_bytes());
            hasher.update(payload);
            let path = &self.segments.last().expect("a current segment").path;
            let mut header = [0u8; ENTRY_HEADER];
            header[..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
            header[4..12].copy_from_slice(&seq.to_le_bytes());
            header[12..].copy_from_slice(&hasher.digest().to_le_bytes());
            self.writer.write_all(&header).map_err(io_err(path))?;
            self.writer.write_all(payload).map_err(io_err(path))?;
            written += (ENTRY_HEADER + payload.len()) as u64;
            self.next_seq += 1;
        }
        let current = self.segments.last_mut().expect("a current segment");
        self.writer.flush().map_err(io_err(&current.path))?;
        self.writer
            .get_ref()
            .sync_data()
            .map_err(io_err(&current.path))?;
        current.bytes += written;
        if current.bytes >= self.segment_bytes {
            let (segment, writer) = create_segment(&self.dir, self.next_seq)?;
            self.segments.push(segment);
            self.writer = writer;
        }
        Ok(first)
    }

    /// Deletes the segments whose every entry is below `seq` (flushed). The
    /// current segment stays (a fresh one replaces it when all is flushed).
    pub fn truncate_before(&mut self, seq: u64) -> Result<(), WalError> {
        let current = self.segments.last().expect("a current segment");
        if seq >= self.next_seq && current.bytes > 0 && current.bytes >= self.segment_bytes / 8 {
            // Everything is flushed: start a fresh segment so the old one can go
            // (not after every flush: creating a file costs a directory sync).
            let (segment, writer) = create_segment(&self.dir, self.next_seq)?;
            self.segments.push(segment);
            self.writer = writer;
        }
        while self.segments.len() > 1 && self.segments[1].first_seq <= seq {
            let segment = self.segments.remove(0);
            fs::remove_file(&segment.path).map_err(io_err(&segment.path))?;
        }
        Ok(())
    }

    /// Bytes on disk, flushed or not, across every segment.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn list_segments(dir: &Path) -> Result<Vec<Segment>, WalError> {
    let mut segments = Vec::new();
    for item in fs::read_dir(dir).map_err(io_err(dir))? {
        let item = item.map_err(io_err(dir))?;
        let name = item.file_name();
        let Some(first_seq) = name
            .to_str()
            .and_then(|n| n.strip_suffix(SUFFIX))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        let path = item.path();
        let bytes = item.metadata().map_err(io_err(&path))?.len();
        segments.push(Segment {
            first_seq,
            path,
            bytes,
        });
    }
    segments.sort_by_key(|s| s.first_seq);
    Ok(segments)
}

fn create_segment(dir: &Path, first_seq: u64) -> Result<(Segment, BufWriter<File>), WalError> {
    let path = dir.join(format!("{first_seq:020}{SUFFIX}"));
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io_err(&path))?;
    let bytes = file.metadata().map_err(io_err(&path))?.len();
    // The new name must survive a crash, or the sequence floor could go back.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))?;
    Ok((
        Segment {
            first_seq,
            path,
            bytes,
        },
        BufWriter::with_capacity(1 << 20, file),
    ))
}

/// Reads a segment's entries into `out`; returns the length of its valid prefix.
fn read_segment(
    segment: &Segment,
    is_last: bool,
    out: &mut Vec<WalEntry>,
) -> Result<u64, WalError> {
    let mut data = Vec::with_capacity(segment.bytes as usize);
    File::open(&segment.path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .map_err(io_err(&segment.path))?;
    let mut offset = 0usize;
    let mut expected_seq = segment.first_seq;
    while offset < data.len() {
        let damaged = |why: String| WalError::Damaged {
            path: segment.path.clone(),
            offset: offset as u64,
            why,
        };
        let problem = match parse_entry(&data[offset..], expected_seq) {
            Ok((entry, len)) => {
                out.push(entry);
                offset += len;
                expected_seq += 1;
                continue;
            }
            Err(problem) => problem,
        };
        return if is_last {
            Ok(offset as u64)
        } else {
            Err(damaged(problem))
        };
    }
    Ok(offset as u64)
}

fn parse_entry(data: &[u8], expected_seq: u64) -> Result<(WalEntry, usize), String> {
    if data.len() < ENTRY_HEADER {
        return Err("truncated entry header".into());
    }
    let len = u32::from_le_bytes(data[..4].try_into().expect("4 bytes")) as usize;
    let seq = u64::from_le_bytes(data[4..12].try_into().expect("8 bytes"));
    let digest = u64::from_le_bytes(data[12..20].try_into().expect("8 bytes"));
    if len > MAX_ENTRY_BYTES {
        return Err(format!("entry length {len} is implausible"));
    }
    let payload = data
        .get(ENTRY_HEADER..ENTRY_HEADER + len)
        .ok_or("truncated entry payload")?;
    let mut hasher = Xxh3::new();
    hasher.update(&seq.to_le_bytes());
    hasher.update(payload);
    if hasher.digest() != digest {
        return Err("checksum mismatch".into());
    }
    if seq != expected_seq {
        return Err(format!("sequence {seq} where {expected_seq} was expected"));
    }
    Ok((
        WalEntry {
            seq,
            payload: payload.to_vec(),
        },
        ENTRY_HEADER + len,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payloads(entries: &[WalEntry]) -> Vec<&[u8]> {
        entries.iter().map(|e| e.payload.as_slice()).collect()
    }

    #[test]
    fn entries_survive_reopen_in_order() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut wal, replay) = Wal::open(dir.path(), 1 << 20).unwrap();
            assert!(replay.is_empty());
            assert_eq!(wal.append(&[b"one", b"two"]).unwrap(), 1);
            assert_eq!(wal.append(&[b"three"]).unwrap(), 3);
        }
        let (wal, replay) = Wal::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(payloads(&replay), vec![&b"one"[..], b"two", b"three"]);
        assert_eq!(
            replay.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(wal.next_seq(), 4);
    }

    #[test]
    fn a_second_process_cannot_open_the_same_log() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Wal::open(dir.path(), 1 << 20).unwrap();
        assert!(matches!(
            Wal::open(dir.path(), 1 << 20),
            Err(WalError::Locked(_))
        ));
    }

    #[test]
    fn a_torn_tail_is_cut_and_numbering_continues() {
        let dir = tempfile::tempdir().unwrap();
        let path = {
            let (mut wal, _) = Wal::open(dir.path(), 1 << 20).unwrap();
            wal.append(&[b"kept", b"torn"]).unwrap();
            wal.segments.last().unwrap().path.clone()
        };
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 2)
            .unwrap();
        let (mut wal, replay) = Wal::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(payloads(&replay), vec![&b"kept"[..]]);
        assert_eq!(wal.append(&[b"next"]).unwrap(), 2);
    }

    #[test]
    fn damage_before_the_tail_is_an_error_not_a_silent_skip() {
        let dir = tempfile::tempdir().unwrap();
        let first = {
            let (mut wal, _) = Wal::open(dir.path(), 1).unwrap();
            wal.append(&[b"a"]).unwrap();
            wal.append(&[b"b"]).unwrap();
            wal.segments[1].path.clone()
        };
        let mut bytes = fs::read(&first).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&first, bytes).unwrap();
        assert!(matches!(
            Wal::open(dir.path(), 1),
            Err(WalError::Damaged { .. })
        ));
    }

    /// The log's segment files by first sequence number.
    fn segment_names(dir: &Path) -> Vec<u64> {
        let mut names: Vec<u64> = list_segments(dir)
            .unwrap()
            .iter()
            .map(|s| s.first_seq)
            .collect();
        names.sort();
        names
    }

    fn disk_bytes(dir: &Path) -> u64 {
        list_segments(dir).unwrap().iter().map(|s| s.bytes).sum()
    }

    #[test]
    fn bytes_counts_every_entry_header_and_payload_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(wal.dir(), dir.path());
        assert_eq!(wal.bytes(), 0);
        wal.append(&[b"abc", b"de"]).unwrap();
        assert_eq!(wal.bytes(), 2 * ENTRY_HEADER as u64 + 5);
        assert_eq!(wal.bytes(), disk_bytes(dir.path()));
        drop(wal);
        // Reopened, the old segment (with its entries) is still counted.
        let (wal, _) = Wal::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(wal.bytes(), 2 * ENTRY_HEADER as u64 + 5);
        assert_eq!(segment_names(dir.path()), vec![1, 3]);
    }

    #[test]
    fn a_segment_is_closed_once_it_reaches_its_size_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let one_entry = ENTRY_HEADER as u64 + 1;
        let (mut wal, _) = Wal::open(dir.path(), one_entry).unwrap();
        wal.append(&[b"a"]).unwrap();
        assert_eq!(segment_names(dir.path()), vec![1, 2]);
        let (mut wal2, _) = {
            drop(wal);
            Wal::open(dir.path(), one_entry + 1).unwrap()
        };
        wal2.append(&[b"b"]).unwrap();
        assert_eq!(
            segment_names(dir.path()),
            vec![1, 2],
            "one byte short of its size, the segment stays open"
        );
    }

    #[test]
    fn truncation_deletes_a_segment_once_the_next_one_starts_at_the_flushed_seq() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path(), 1).unwrap();
        for payload in [b"a", b"b", b"c"] {
            wal.append(&[payload]).unwrap();
        }
        assert_eq!(segment_names(dir.path()), vec![1, 2, 3, 4]);
        // Entry 1 flushed: segment 1 goes, segment 2 (entry 2) stays.
        wal.truncate_before(2).unwrap();
        assert_eq!(segment_names(dir.path()), vec![2, 3, 4]);
        assert_eq!(wal.bytes(), 2 * (ENTRY_HEADER as u64 + 1));
        wal.truncate_before(2).unwrap();
        assert_eq!(segment_names(dir.path()), vec![2, 3, 4]);
    }

    #[test]
    fn a_fully_flushed_log_starts_a_fresh_segment_only_past_an_eighth_of_its_size() {
        let entry = ENTRY_HEADER as u64 + 1;
        // Under an eighth of the segment size: the current segment is kept.
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path(), 8 * entry + 8).unwrap();
        wal.append(&[b"a"]).unwrap();
        wal.truncate_before(wal.next_seq()).unwrap();
        assert_eq!(segment_names(dir.path()), vec![1]);
        // At an eighth: a fresh segment replaces it, and the old one goes.
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path(), 8 * entry).unwrap();
        wal.append(&[b"a"]).unwrap();
        wal.truncate_before(wal.next_seq() - 1).unwrap();
        assert_eq!(
            segment_names(dir.path()),
            vec![1],
            "entry 1 is not flushed yet"
        );
        wal.truncate_before(wal.next_seq()).unwrap();
        assert_eq!(segment_names(dir.path()), vec![2]);
        assert_eq!(wal.bytes(), 0);
        // Nothing appended since: no new segment however often it is asked,
        // even when an eighth of the size is nothing.
        wal.truncate_before(wal.next_seq()).unwrap();
        assert_eq!(segment_names(dir.path()), vec![2]);
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path(), 1).unwrap();
        wal.append(&[b"a"]).unwrap();
        wal.truncate_before(wal.next_seq()).unwrap();
        wal.truncate_before(wal.next_seq()).unwrap();
        assert_eq!(segment_names(dir.path()), vec![2]);
        wal.append(&[b"b"]).unwrap();
        drop(wal);
        let (_, replay) = Wal::open(dir.path(), 1).unwrap();
        assert_eq!(payloads(&replay), vec![&b"b"[..]]);
    }

    #[test]
    fn a_cut_torn_tail_stays_cut_across_later_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = {
            let (mut wal, _) = Wal::open(dir.path(), 1 << 20).unwrap();
            wal.append(&[b"kept", b"torn"]).unwrap();
            wal.segments.last().unwrap().path.clone()
        };
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 2)
            .unwrap();
        {
            let (mut wal, _) = Wal::open(dir.path(), 1 << 20).unwrap();
            assert_eq!(
                fs::metadata(&path).unwrap().len(),
                ENTRY_HEADER as u64 + 4,
                "the file holds exactly the entry kept"
            );
            wal.append(&[b"next"]).unwrap();
        }
        // The cut segment is no longer the newest: had the torn bytes stayed,
        // this open would report damage.
        let (_, replay) = Wal::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(payloads(&replay), vec![&b"kept"[..], b"next"]);
    }

    #[test]
    fn an_implausible_length_is_named_apart_from_a_short_payload() {
        let header = |len: u32| {
            let mut h = [0u8; ENTRY_HEADER];
            h[..4].copy_from_slice(&len.to_le_bytes());
            h[4..12].copy_from_slice(&1u64.to_le_bytes());
            h
        };
        let limit = MAX_ENTRY_BYTES as u32;
        assert_eq!(
            parse_entry(&header(limit + 1), 1).unwrap_err(),
            format!("entry length {} is implausible", limit + 1)
        );
        assert_eq!(
            parse_entry(&header(limit), 1).unwrap_err(),
            "truncated entry payload"
        );
        assert_eq!(
            parse_entry(&header(0)[..ENTRY_HEADER - 1], 1).unwrap_err(),
            "truncated entry header"
        );
    }

    #[test]
    fn truncation_keeps_unflushed_entries_and_sequence_floor() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut wal, _) = Wal::open(dir.path(), 1).unwrap();
            for payload in [b"a", b"b", b"c"] {
                wal.append(&[payload]).unwrap();
            }
            wal.truncate_before(3).unwrap();
        }
        let (wal, replay) = Wal::open(dir.path(), 1).unwrap();
        assert_eq!(payloads(&replay), vec![&b"c"[..]]);
        assert_eq!(wal.next_seq(), 4);
        {
            drop(wal);
            let (mut wal, _) = Wal::open(dir.path(), 1).unwrap();
            wal.truncate_before(u64::MAX).unwrap();
        }
        let (wal, replay) = Wal::open(dir.path(), 1).unwrap();
        assert!(replay.is_empty());
        assert_eq!(
            wal.next_seq(),
            4,
            "numbers never go back after everything was flushed"
        );
    }
}
