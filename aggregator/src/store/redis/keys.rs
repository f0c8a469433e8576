//! Redis key layout. Every key of a tenant carries the hash tag `{tenant}` so a
//! tenant's keys share one Redis Cluster slot: one flush per tenant is a single
//! atomic script and one query per tenant is a single MGET.
//!
//! ```text
//! sig:tenants                                  SET of tenants (fleet queries)
//! sig:{t}:series:<Kind>                        SET of "<cluster>:<model>"
//! sig:{t}:m:<Kind>:<cluster>:<model>:<start>   minute window (frames, see frames.rs)
//! sig:{t}:h:<Kind>:<cluster>:<model>:<start>   hour window (every minute folded in)
//! sig:{t}:ckpt:<replica>                       last write-ahead-log sequence flushed
//! ```
//!
//! Identity components are percent-encoded (everything outside `[A-Za-z0-9._-]`),
//! so a `:`, `{` or `}` in a name can neither split a key nor move its hash tag.

use crate::signal::{SeriesKey, SignalKind};
use crate::sketch::{HOUR_SECS, MINUTE_SECS, Resolution};

pub const TENANTS_KEY: &str = "sig:tenants";

pub fn escape(component: &str) -> String {
    let mut out = String::with_capacity(component.len());
    for byte in component.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

pub fn unescape(component: &str) -> Option<String> {
    let bytes = component.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = component.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn tenant_prefix(tenant: &str) -> String {
    format!("sig:{{{}}}", escape(tenant))
}

pub fn series_index_key(tenant: &str, kind: SignalKind) -> String {
    format!("{}:series:{}", tenant_prefix(tenant), kind.as_str())
}

/// The member of [`series_index_key`] naming one series.
pub fn series_member(key: &SeriesKey) -> String {
    format!("{}:{}", escape(&key.cluster), escape(&key.model))
}

pub fn parse_series_member(tenant: &str, kind: SignalKind, member: &str) -> Option<SeriesKey> {
    let (cluster, model) = member.split_once(':')?;
    Some(SeriesKey {
        tenant: tenant.to_string(),
        cluster: unescape(cluster)?,
        model: unescape(model)?,
        kind,
    })
}

pub fn window_len(resolution: Resolution) -> u64 {
    match resolution {
        Resolution::Minute => MINUTE_SECS,
        Resolution::Hour => HOUR_SECS,
    }
}

pub fn window_key(key: &SeriesKey, resolution: Resolution, start_unix_secs: u64) -> String {
    format!("{}{start_unix_secs}", window_key_prefix(key, resolution))
}

/// A series' window keys up to the window start (queries build thousands
/// of keys from a few prefixes).
pub fn window_key_prefix(key: &SeriesKey, resolution: Resolution) -> String {
    let tag = match resolution {
        Resolution::Minute => 'm',
        Resolution::Hour => 'h',
    };
    format!(
        "{}:{tag}:{}:{}:{}:",
        tenant_prefix(&key.tenant),
        key.kind.as_str(),
        escape(&key.cluster),
        escape(&key.model),
    )
}

pub fn checkpoint_key(tenant: &str, replica: &str) -> String {
    format!("{}:ckpt:{}", tenant_prefix(tenant), escape(replica))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(tenant: &str, cluster: &str, model: &str) -> SeriesKey {
        SeriesKey {
            tenant: tenant.into(),
            cluster: cluster.into(),
            model: model.into(),
            kind: SignalKind::RequestLifecycle,
        }
    }

    #[test]
    fn hostile_names_cannot_move_the_hash_tag_or_split_the_key() {
        let key = window_key(&series("a}b{c", "x:y", "m/7%"), Resolution::Minute, 120);
        assert_eq!(key, "sig:{a%7Db%7Bc}:m:RequestLifecycle:x%3Ay:m%2F7%25:120");
        assert_eq!(key.matches('{').count(), 1);
        assert_eq!(key.matches('}').count(), 1);
    }

    #[test]
    fn series_members_round_trip() {
        let original = series("team-a", "eu:west", "llama 3.1 {70b}");
        let member = series_member(&original);
        let parsed = parse_series_member("team-a", SignalKind::RequestLifecycle, &member);
        assert_eq!(parsed, Some(original));
    }

    #[test]
    fn malformed_members_are_rejected_not_misread() {
        assert_eq!(unescape("%G1"), None);
        assert_eq!(unescape("%4"), None);
        assert_eq!(
            parse_series_member("t", SignalKind::Cost, "no-separator"),
            None
        );
    }

    #[test]
    fn every_key_of_a_tenant_shares_its_hash_tag() {
        let s = series("tenant-1", "c", "m");
        for key in [
            window_key(&s, Resolution::Hour, 3600),
            series_index_key("tenant-1", SignalKind::Cost),
            checkpoint_key("tenant-1", "replica-0"),
        ] {
            assert!(key.starts_with("sig:{tenant-1}:"), "{key}");
        }
    }
}
