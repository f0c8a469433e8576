//! Request bodies: content type and coding negotiation, bounded decompression,
//! and decoding into the prost request. The size limit holds after
//! decompression and the output buffer never grows past it, so a small gzip
//! bomb costs at most `limit` bytes of memory before it is refused.

use std::io::Read;

use super::Refusal;
use super::request::OtlpRequest;

/// How the OTLP message is serialized (`Content-Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFormat {
    /// `application/x-protobuf`
    Protobuf,
    /// `application/json` (the OTLP/JSON mapping)
    Json,
}

pub(crate) const ACCEPTED_CONTENT_TYPES: &str = "application/x-protobuf, application/json";
pub(crate) const ACCEPTED_CONTENT_CODINGS: &str = "gzip, deflate, zstd, identity";

impl PayloadFormat {
    /// Parses a `Content-Type` value; parameters such as `charset` are ignored.
    pub fn from_content_type(value: &str) -> Option<Self> {
        let essence = value.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case("application/x-protobuf")
            || essence.eq_ignore_ascii_case("application/protobuf")
        {
            Some(PayloadFormat::Protobuf)
        } else if essence.eq_ignore_ascii_case("application/json") {
            Some(PayloadFormat::Json)
        } else {
            None
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            PayloadFormat::Protobuf => "application/x-protobuf",
            PayloadFormat::Json => "application/json",
        }
    }
}

/// How the body is compressed (`Content-Encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentCoding {
    Identity,
    Gzip,
    Deflate,
    Zstd,
}

impl ContentCoding {
    /// Parses a `Content-Encoding` value; absent means identity. Stacked
    /// codings (`gzip, zstd`) are not supported.
    pub fn from_header(value: Option<&str>) -> Option<Self> {
        let Some(value) = value else {
            return Some(ContentCoding::Identity);
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => Some(ContentCoding::Identity),
            "gzip" | "x-gzip" => Some(ContentCoding::Gzip),
            "deflate" => Some(ContentCoding::Deflate),
            "zstd" => Some(ContentCoding::Zstd),
            _ => None,
        }
    }
}

/// Decompresses `body` into at most `limit` bytes.
pub fn decompress(body: &[u8], coding: ContentCoding, limit: usize) -> Result<Vec<u8>, Refusal> {
    let too_large = || Refusal::TooLarge { limit };
    if body.len() > limit && coding == ContentCoding::Identity {
        return Err(too_large());
    }
    // Compressed OTLP typically inflates 5-30x; start there, never past the limit.
    let hint = body.len().saturating_mul(8);
    match coding {
        ContentCoding::Identity => Ok(body.to_vec()),
        ContentCoding::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(body), limit, hint),
        ContentCoding::Deflate => read_bounded(flate2::read::ZlibDecoder::new(body), limit, hint),
        ContentCoding::Zstd => {
            let decoder = zstd::stream::read::Decoder::new(body).map_err(|e| corrupt(&e))?;
            read_bounded(decoder, limit, hint)
        }
    }
}

fn corrupt(error: &std::io::Error) -> Refusal {
    Refusal::InvalidData {
        field: String::new(),
        description: format!("request body could not be decompressed: {error}"),
    }
}

/// Reads `reader` to the end, refusing once more than `limit` bytes come out.
/// Capacity grows by doubling but is capped at `limit`.
fn read_bounded(mut reader: impl Read, limit: usize, hint: usize) -> Result<Vec<u8>, Refusal> {
    let mut out: Vec<u8> = Vec::with_capacity(hint.min(limit));
    let mut chunk = [0u8; 32 * 1024];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(corrupt(&e)),
        };
        if out.len() + n > limit {
            return Err(Refusal::TooLarge { limit });
        }
        if out.capacity() - out.len() < n {
            let target = (out.capacity() * 2).max(out.len() + n).min(limit);
            out.reserve_exact(target - out.len());
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// Decodes an (already decompressed) body in the given format.
pub fn decode<R: OtlpRequest>(body: &[u8], format: PayloadFormat) -> Result<R, Refusal> {
    match format {
        PayloadFormat::Protobuf => R::decode(body).map_err(|e| Refusal::InvalidData {
            field: String::new(),
            description: format!("request body is not a valid {}: {e}", R::MESSAGE_NAME),
        }),
        PayloadFormat::Json => R::decode_json(body).map_err(|e| Refusal::InvalidData {
            field: e.path,
            description: e.message,
        }),
    }
}

/// The whole HTTP decode path on bytes already in memory: bounded
/// decompression then decoding. Public so benches can compare it with a bare
/// `prost::Message::decode` of the same payload.
pub fn decode_request<R: OtlpRequest>(
    body: &[u8],
    format: PayloadFormat,
    coding: ContentCoding,
    limit: usize,
) -> Result<R, Refusal> {
    if coding == ContentCoding::Identity {
        if body.len() > limit {
            return Err(Refusal::TooLarge { limit });
        }
        return decode(body, format);
    }
    decode(&decompress(body, coding, limit)?, format)
}
