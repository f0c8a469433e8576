//! Bounds on every string that can leave `normalize`: identities (tenant,
//! cluster, model) are validated and refused when out of bounds; dimension
//! values are either members of a fixed enum or short, restricted-charset
//! tokens. Free text (a prompt, a URL, an error message) fails these checks
//! by construction: it contains spaces or is too long.

pub const MAX_TENANT_LEN: usize = 63;
pub const MAX_CLUSTER_LEN: usize = 128;
pub const MAX_MODEL_LEN: usize = 200;
pub const MAX_TOKEN_LEN: usize = 48;

/// Tenants are Kubernetes namespaces (or an explicit `modelplane.tenant`):
/// DNS-label characters only.
pub fn valid_tenant(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_TENANT_LEN
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.' || b == b'_'
        })
}

/// Clusters are InferenceCluster names (DNS subdomain characters).
pub fn valid_cluster(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_CLUSTER_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

/// Model identifiers: Hugging Face style (`org/name-7B-Instruct`), served
/// names, Ollama-style tags (`llama3:8b`). No spaces, no URLs.
pub fn valid_model(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_MODEL_LEN
        && !s.contains("://")
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'/' | b':' | b'@' | b'+')
        })
}

/// A short lowercase token (`[a-z0-9_.-]`, ≤ 48 bytes) or `None`.
pub fn token(s: &str) -> Option<&str> {
    let ok = !s.is_empty()
        && s.len() <= MAX_TOKEN_LEN
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        });
    ok.then_some(s)
}

/// GPU SKU from a device name such as DCGM's `modelName`
/// (`NVIDIA H100 80GB HBM3` → `nvidia-h100-80gb-hbm3`). `None` when the
/// result would be empty or longer than 48 bytes.
pub fn sku(device_name: &str) -> Option<String> {
    let mut out = String::with_capacity(device_name.len());
    let mut pending_dash = false;
    for ch in device_name.trim().chars() {
        if ch.is_ascii_alphanumeric() {
            if pending_dash && !out.is_empty() {
                out.push('-');
            }
            pending_dash = false;
            out.push(ch.to_ascii_lowercase());
        } else if matches!(ch, ' ' | '-' | '_' | '.' | '/') {
            pending_dash = true;
        } else {
            return None;
        }
        if out.len() > MAX_TOKEN_LEN {
            return None;
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Returns the member of `allowed` equal to `s`, as a static string.
pub fn one_of(s: &str, allowed: &[&'static str]) -> Option<&'static str> {
    allowed.iter().copied().find(|candidate| *candidate == s)
}

pub const COLDSTART_PHASES: &[&str] = &[
    "gpu_procurement",
    "image_load",
    "model_load",
    "engine_startup",
    "cache_hydration",
];

pub const KV_TIERS: &[&str] = &["hbm", "cpu", "ssd", "network"];

/// `mesh_llm.failure_reason` values from the mesh-llm survey schema.
pub const MESH_FAILURE_REASONS: &[&str] = &[
    "spawn_failed",
    "health_timeout",
    "exited_before_healthy",
    "backend_proxy_failed",
    "capacity_rejected",
    "known_kv_cache_crash",
    "mmproj_missing",
    "other",
];

/// `mesh_llm.context_bucket` values from the mesh-llm survey schema.
pub const CONTEXT_BUCKETS: &[&str] = &["<=8k", "8k_16k", "16k_32k", "32k_64k", "64k_128k", ">128k"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_refuse_free_text() {
        assert!(valid_tenant("team-a"));
        assert!(!valid_tenant("Team A"));
        assert!(!valid_tenant(&"a".repeat(64)));
        assert!(valid_cluster("eu-west-1.prod"));
        assert!(!valid_cluster("eu west"));
        assert!(valid_model("meta-llama/Llama-3.3-70B-Instruct"));
        assert!(valid_model("llama3:8b"));
        assert!(!valid_model("https://evil.example/x"));
        assert!(!valid_model("tell me a story about"));
        assert!(!valid_model(&"m".repeat(201)));
    }

    #[test]
    fn sku_is_canonical_and_bounded() {
        assert_eq!(
            sku("NVIDIA H100 80GB HBM3").as_deref(),
            Some("nvidia-h100-80gb-hbm3")
        );
        assert_eq!(sku("  Tesla T4 ").as_deref(), Some("tesla-t4"));
        assert_eq!(
            sku("NVIDIA A100-SXM4-40GB").as_deref(),
            Some("nvidia-a100-sxm4-40gb")
        );
        assert_eq!(sku("x".repeat(60).as_str()), None);
        assert_eq!(sku("rm -rf /; echo $HOME"), None);
        assert_eq!(sku(""), None);
    }
}
