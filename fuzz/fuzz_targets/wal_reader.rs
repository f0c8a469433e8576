//! The write-ahead log reader on any segment contents.
//!
//! Input: [flags u8][first seq u64 LE][segment bytes]. The segment is written
//! as the log's only (newest) segment, or, with flag bit 0, as an older one
//! followed by an empty newest segment.
//! - Newest: opening never fails; whatever is not a whole, checksummed,
//!   correctly numbered entry at the end is cut off (a torn append), the file
//!   is truncated to exactly the entries returned, a second open returns the
//!   same entries, and an append after it is replayed after them.
//! - Older: opening returns every entry or reports the damage; the file is
//!   left as it was.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use signal_aggregator::store::redis::wal::{Wal, WalError};

const ENTRY_HEADER: u64 = 20;

fn scratch() -> PathBuf {
    // tmpfs: the log syncs its directory on every new segment.
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    base.join(format!("wal-fuzz-{}", std::process::id()))
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let flags = data[0];
    let first_seq = u64::from_le_bytes(data[1..9].try_into().unwrap());
    let contents = &data[9..];
    let dir = scratch();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let segment = dir.join(format!("{first_seq:020}.wal"));
    std::fs::write(&segment, contents).unwrap();
    let older = flags & 1 == 1 && first_seq < u64::MAX;
    if older {
        std::fs::write(dir.join(format!("{:020}.wal", u64::MAX)), b"").unwrap();
    }

    let opened = Wal::open(&dir, 1 << 20);
    if older {
        match opened {
            Ok((_, entries)) => {
                let total: u64 = entries
                    .iter()
                    .map(|e| ENTRY_HEADER + e.payload.len() as u64)
                    .sum();
                assert_eq!(
                    total,
                    contents.len() as u64,
                    "an older segment was read only in part"
                );
            }
            Err(WalError::Damaged { .. }) => {}
            Err(other) => panic!("unexpected error {other}"),
        }
        assert_eq!(
            std::fs::read(&segment).unwrap(),
            contents,
            "an older segment was changed"
        );
        return;
    }

    let (mut wal, entries) = opened.expect("the newest segment always opens");
    let kept: u64 = entries
        .iter()
        .map(|e| ENTRY_HEADER + e.payload.len() as u64)
        .sum();
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(entry.seq, first_seq + i as u64, "entries out of sequence");
    }
    assert!(kept <= contents.len() as u64);
    assert_eq!(
        &std::fs::read(&segment).unwrap()[..],
        &contents[..kept as usize],
        "truncated to the wrong length"
    );
    let next = wal.next_seq();
    let appended = if next < u64::MAX {
        Some(wal.append(&[b"after"]).expect("append after a torn tail"))
    } else {
        None
    };
    drop(wal);

    let (_, again) = Wal::open(&dir, 1 << 20).expect("reopen");
    assert_eq!(
        &again[..entries.len()],
        &entries[..],
        "a second open reads differently"
    );
    match appended {
        Some(seq) => {
            assert_eq!(again.len(), entries.len() + 1);
            assert_eq!(again[entries.len()].seq, seq);
            assert_eq!(again[entries.len()].payload, b"after");
        }
        None => assert_eq!(again.len(), entries.len()),
    }
});
