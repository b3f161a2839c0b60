//! TLS for agent connections (rustls with the ring provider): the server
//! certificate and key from PEM files, and optionally a CA whose signature
//! every agent's client certificate must carry; then the names that
//! certificate gives, which `[[auth.agent_certs]]` binds to agent names.

use hopwatch_wire::diag::{Diagnostic, Located};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod names;

/// `[collector.tls]`: agents connect over TLS.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub cert_file: Located<PathBuf>,
    pub key_file: Located<PathBuf>,
    /// When set, agents must present a certificate signed by this CA.
    pub client_ca_file: Option<Located<PathBuf>>,
}

/// Which setting a TLS error is about, so `check-config` points at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFile {
    Cert,
    Key,
    ClientCa,
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct TlsError {
    pub file: TlsFile,
    pub message: String,
}

impl TlsError {
    /// A diagnostic at the key naming the file at fault.
    pub fn diagnostic(&self, tls: &TlsSettings) -> Diagnostic {
        let at = match (self.file, &tls.client_ca_file) {
            (TlsFile::Cert, _) | (TlsFile::ClientCa, None) => &tls.cert_file,
            (TlsFile::Key, _) => &tls.key_file,
            (TlsFile::ClientCa, Some(ca)) => ca,
        };
        at.diagnostic(
            self.message.clone(),
            Some("PEM files: the certificate chain (leaf first), its private key (PKCS#8, PKCS#1 or SEC1), and the agents' CA".into()),
        )
    }
}

fn certs(path: &Path, file: TlsFile) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let fail = |reason: String| TlsError {
        file,
        message: format!("cannot read certificates from {}: {reason}", path.display()),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| fail(e.to_string()))?;
    if certs.is_empty() {
        return Err(fail("the file holds no CERTIFICATE block".into()));
    }
    Ok(certs)
}

/// The rustls server configuration for `[collector.tls]`.
pub fn server_config(tls: &TlsSettings) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = certs(&tls.cert_file.value, TlsFile::Cert)?;
    let key = PrivateKeyDer::from_pem_file(&tls.key_file.value).map_err(|e| TlsError {
        file: TlsFile::Key,
        message: format!(
            "cannot read a private key from {}: {e}",
            tls.key_file.value.display()
        ),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError {
            file: TlsFile::Cert,
            message: format!("TLS setup failed: {e}"),
        })?;
    let builder = match &tls.client_ca_file {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certs(&ca.value, TlsFile::ClientCa)? {
                roots.add(cert).map_err(|e| TlsError {
                    file: TlsFile::ClientCa,
                    message: format!("bad CA certificate in {}: {e}", ca.value.display()),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError {
                    file: TlsFile::ClientCa,
                    message: format!("cannot verify clients with {}: {e}", ca.value.display()),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(chain, key).map_err(|e| TlsError {
        file: TlsFile::Key,
        message: format!(
            "the key {} does not fit the certificate {}: {e}",
            tls.key_file.value.display(),
            tls.cert_file.value.display()
        ),
    })?;
    Ok(Arc::new(config))
}

/// The subject CNs and DNS names of the client's (already verified)
/// certificate; empty without one.
pub fn peer_names(connection: &rustls::ServerConnection) -> Vec<String> {
    connection
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|leaf| names::cert_names(leaf.as_ref()))
        .unwrap_or_default()
}

/// Where the system keeps the CAs it trusts (Debian's `ca-certificates`),
/// for `https` receivers and a PostgreSQL store when no `ca_file` is given.
pub const SYSTEM_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The CAs in a PEM file.
pub fn roots(ca_file: &Path) -> Result<RootCertStore, String> {
    let fail = |reason: String| {
        format!(
            "cannot read CA certificates from {}: {reason}",
            ca_file.display()
        )
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| fail(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| fail(e.to_string()))?;
    if certs.is_empty() {
        return Err(fail("the file holds no CERTIFICATE block".into()));
    }
    let mut roots = RootCertStore::empty();
    let (_, ignored) = roots.add_parsable_certificates(certs);
    if roots.is_empty() {
        return Err(fail(format!(
            "none of its {ignored} certificates can be used as a CA"
        )));
    }
    Ok(roots)
}
