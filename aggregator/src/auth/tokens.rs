//! Bearer tokens as SHA-256 digests. Token files may hold plain tokens or
//! `sha256:<64 hex digits>` digests; only digests are kept in memory, and a
//! presented token is compared against every digest in constant time, so
//! neither timing nor logs reveal a token.

use sha2::{Digest, Sha256};

/// Prefix marking a token file entry as a digest rather than a token.
pub const DIGEST_PREFIX: &str = "sha256:";

pub type TokenDigest = [u8; 32];

pub fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

/// `sha256:<hex>` of a token: what an operator puts in a token file instead
/// of the token itself.
pub fn digest_hex(token: &str) -> String {
    let mut out = String::from(DIGEST_PREFIX);
    for byte in digest(token) {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Reads one token file entry (a token or `sha256:<hex>`) into its digest.
/// The error never contains the entry.
pub fn parse_entry(entry: &str) -> Result<TokenDigest, String> {
    let entry = entry.trim();
    if entry.is_empty() {
        return Err("an empty token".into());
    }
    let Some(hex) = entry.strip_prefix(DIGEST_PREFIX) else {
        return Ok(digest(entry));
    };
    if hex.len() != 64 {
        return Err(format!(
            "a {DIGEST_PREFIX} digest must have 64 hex digits, this one has {}",
            hex.len()
        ));
    }
    let mut out = [0u8; 32];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .map_err(|_| format!("a {DIGEST_PREFIX} digest must be hex digits only"))?;
    }
    Ok(out)
}

fn equal_in_constant_time(a: &TokenDigest, b: &TokenDigest) -> bool {
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

/// Digests each mapped to who holds the token (a cluster, a tenant, ...).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenTable<P> {
    entries: Vec<(TokenDigest, P)>,
}

impl<P: Clone> TokenTable<P> {
    pub fn new() -> Self {
        TokenTable {
            entries: Vec::new(),
        }
    }

    pub fn insert(&mut self, digest: TokenDigest, principal: P) {
        self.entries.push((digest, principal));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Who holds `token`. Every digest is compared (no early exit), so the
    /// time taken does not depend on which entry matched or how much of it.
    pub fn lookup(&self, token: &str) -> Option<P> {
        let presented = digest(token);
        let mut found = None;
        for (digest, principal) in &self.entries {
            if equal_in_constant_time(digest, &presented) && found.is_none() {
                found = Some(principal.clone());
            }
        }
        found
    }

    /// Whether two principals share a digest (a file mistake: one token
    /// would be two identities).
    pub fn duplicate_digest(&self) -> bool {
        let mut digests: Vec<&TokenDigest> = self.entries.iter().map(|(d, _)| d).collect();
        digests.sort();
        digests.windows(2).any(|w| w[0] == w[1])
    }
}

/// The token of an `authorization: Bearer <token>` header value.
pub fn bearer_token(authorization: &[u8]) -> Result<&str, &'static str> {
    let value = std::str::from_utf8(authorization)
        .map_err(|_| "the authorization header is not valid UTF-8")?;
    let (scheme, token) = value
        .trim()
        .split_once(' ')
        .ok_or("the authorization header must be `Bearer <token>`")?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err("the authorization scheme must be Bearer (`authorization: Bearer <token>`)");
    }
    let token = token.trim();
    if token.is_empty() {
        return Err("the bearer token is empty");
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_tokens_and_digests_are_the_same_entry() {
        let digest_entry = digest_hex("s3cret");
        assert!(digest_entry.starts_with("sha256:"));
        assert_eq!(parse_entry("s3cret"), parse_entry(&digest_entry));
        assert_ne!(parse_entry("s3cret"), parse_entry("other"));
    }

    #[test]
    fn malformed_digests_are_refused_without_echoing_them() {
        let error = parse_entry("sha256:abcd").unwrap_err();
        assert!(error.contains("64 hex digits"), "{error}");
        assert!(!error.contains("abcd"));
        let bad_hex = format!("sha256:{}", "zz".repeat(32));
        assert!(
            parse_entry(&bad_hex)
                .unwrap_err()
                .contains("hex digits only")
        );
        assert!(parse_entry("  ").is_err());
    }

    #[test]
    fn lookup_finds_the_holder() {
        let mut table = TokenTable::new();
        table.insert(digest("a"), "cluster-a");
        table.insert(digest("b"), "cluster-b");
        table.insert(digest("b2"), "cluster-b");
        assert_eq!(table.lookup("a"), Some("cluster-a"));
        assert_eq!(table.lookup("b2"), Some("cluster-b"));
        assert_eq!(table.lookup("c"), None);
        assert!(!table.duplicate_digest());
        table.insert(digest("a"), "cluster-c");
        assert!(table.duplicate_digest());
    }

    #[test]
    fn bearer_headers() {
        assert_eq!(bearer_token(b"Bearer abc"), Ok("abc"));
        assert_eq!(bearer_token(b"bearer  abc "), Ok("abc"));
        assert!(bearer_token(b"Basic abc").is_err());
        assert!(bearer_token(b"abc").is_err());
        assert!(bearer_token(b"Bearer ").is_err());
        assert!(bearer_token(&[0xff, 0xfe]).is_err());
    }
}
