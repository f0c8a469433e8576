//! The certificates a `rediss://` connection trusts and presents:
//! `--redis-ca-file` replaces the system roots (a private CA), and
//! `--redis-client-cert-file` + `--redis-client-key-file` present a client
//! certificate to a Redis running with `tls-auth-clients yes` (mTLS).
//!
//! The files are read and checked with rustls (the library the redis crate
//! connects with, on the one aws-lc-rs provider) before anything connects, so a
//! wrong path, a PEM without a certificate or a key that does not belong to the
//! certificate stops the aggregator at start with the flag's name, instead of
//! showing up later as a connect error on `/readyz`.

use std::path::{Path, PathBuf};

use redis::{ClientTlsConfig, TlsCertificates};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub const CA_FLAG: &str = "--redis-ca-file";
pub const CLIENT_CERT_FLAG: &str = "--redis-client-cert-file";
pub const CLIENT_KEY_FLAG: &str = "--redis-client-key-file";

/// The TLS flags as given (paths; read when the store opens or connects).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca_file: Option<PathBuf>,
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
}

impl TlsFiles {
    pub fn is_empty(&self) -> bool {
        self.ca_file.is_none() && self.client_cert_file.is_none() && self.client_key_file.is_none()
    }

    /// The flags that are set, for messages about them.
    pub fn flags_set(&self) -> Vec<&'static str> {
        [
            (CA_FLAG, &self.ca_file),
            (CLIENT_CERT_FLAG, &self.client_cert_file),
            (CLIENT_KEY_FLAG, &self.client_key_file),
        ]
        .into_iter()
        .filter_map(|(flag, path)| path.as_ref().map(|_| flag))
        .collect()
    }

    /// Reads and checks the files; `None` when no flag is set (the system
    /// roots, no client certificate).
    pub fn load(&self) -> Result<Option<TlsCertificates>, String> {
        if self.is_empty() {
            return Ok(None);
        }
        let root_cert = self
            .ca_file
            .as_deref()
            .map(|path| {
                let pem = read(CA_FLAG, path)?;
                trust_anchors(&pem)
                    .map_err(|why| format!("{CA_FLAG} {}: {why}", path.display()))?;
                Ok::<_, String>(pem)
            })
            .transpose()?;
        let client_tls = match (&self.client_cert_file, &self.client_key_file) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(format!(
                    "{CLIENT_CERT_FLAG} needs {CLIENT_KEY_FLAG} (the certificate's private key)"
                ));
            }
            (None, Some(_)) => {
                return Err(format!(
                    "{CLIENT_KEY_FLAG} needs {CLIENT_CERT_FLAG} (the certificate it belongs to)"
                ));
            }
            (Some(cert_path), Some(key_path)) => {
                let client_cert = read(CLIENT_CERT_FLAG, cert_path)?;
                let client_key = read(CLIENT_KEY_FLAG, key_path)?;
                check_client_identity(&client_cert, cert_path, &client_key, key_path)?;
                Some(ClientTlsConfig {
                    client_cert,
                    client_key,
                })
            }
        };
        Ok(Some(TlsCertificates {
            client_tls,
            root_cert,
        }))
    }
}

fn read(flag: &str, path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{flag} {}: cannot read it: {e}", path.display()))
}

fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
    }
    Ok(certs)
}

fn trust_anchors(pem: &[u8]) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(pem)? {
        roots
            .add(cert)
            .map_err(|e| format!("a certificate in it cannot be a trust anchor: {e}"))?;
    }
    Ok(roots)
}

/// Builds the rustls client configuration the connection will use, which
/// parses the key and checks that it belongs to the certificate.
fn check_client_identity(
    cert_pem: &[u8],
    cert_path: &Path,
    key_pem: &[u8],
    key_path: &Path,
) -> Result<(), String> {
    let chain = certificates(cert_pem)
        .map_err(|why| format!("{CLIENT_CERT_FLAG} {}: {why}", cert_path.display()))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| {
        format!(
            "{CLIENT_KEY_FLAG} {}: no PEM private key (PKCS#8, PKCS#1 or SEC1): {e}",
            key_path.display()
        )
    })?;
    rustls::ClientConfig::builder()
        .with_root_certificates(RootCertStore::empty())
        .with_client_auth_cert(chain, key)
        .map(drop)
        .map_err(|e| {
            format!(
                "{CLIENT_CERT_FLAG} {} with {CLIENT_KEY_FLAG} {}: unusable client identity: {e}",
                cert_path.display(),
                key_path.display()
            )
        })
}
