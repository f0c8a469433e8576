//! Content-coding framing (gzip, deflate, zstd) under the size limit: the
//! first byte picks the coding and the limit, the rest is the body. Any body
//! decompresses to at most `limit` bytes or is refused; a body this target
//! compressed itself always comes back intact.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use signal_aggregator::ingest::{ContentCoding, Refusal, decompress};

fn compress(data: &[u8], coding: ContentCoding) -> Vec<u8> {
    match coding {
        ContentCoding::Identity => data.to_vec(),
        ContentCoding::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        ContentCoding::Deflate => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        ContentCoding::Zstd => zstd::encode_all(data, 1).unwrap(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let coding = [
        ContentCoding::Gzip,
        ContentCoding::Deflate,
        ContentCoding::Zstd,
        ContentCoding::Identity,
    ][(selector & 3) as usize];
    // 64 B .. 64 KiB: small limits make bombs cheap to find.
    let limit = 64usize << (selector >> 2 & 0x0f).min(10);
    match decompress(body, coding, limit) {
        Ok(out) => assert!(
            out.len() <= limit,
            "{} bytes out past the {limit} limit",
            out.len()
        ),
        Err(Refusal::TooLarge { limit: l }) => assert_eq!(l, limit),
        Err(Refusal::InvalidData { description, .. }) => {
            assert!(description.starts_with("request body could not be decompressed"))
        }
        Err(other) => panic!("unexpected refusal {other:?}"),
    }
    let packed = compress(body, coding);
    match decompress(&packed, coding, limit) {
        Ok(out) => assert_eq!(out, body),
        Err(Refusal::TooLarge { .. }) => assert!(body.len() > limit),
        Err(other) => panic!("our own {coding:?} body refused: {other:?}"),
    }
});
