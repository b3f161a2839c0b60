//! The collector output's transport: dialling, TLS setup from PEM files,
//! and one connection, plain or TLS, driven without blocking so a single
//! `poll(2)` loop reads acks and writes events.

use super::TlsSettings;
use super::session::SessionError;
use crate::control::format_size;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Short enough that stopping the output never waits long on a collector
/// that drops SYNs.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A collector line longer than this is a broken collector.
const MAX_LINE: usize = 1 << 20;
/// Dials every address the host resolves to in turn, each within
/// `CONNECT_TIMEOUT`.
pub(super) fn connect(host: &str, port: u16) -> Result<TcpStream, String> {
    let mut last = "the name resolves to no address".to_string();
    for addr in (host, port).to_socket_addrs().map_err(|e| e.to_string())? {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            // Name the address tried when it is not the one written.
            Err(e) if addr.ip().to_string() == host => last = e.to_string(),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}

/// Reads the CA bundle and the optional client certificate.
pub(super) fn tls_config(tls: &TlsSettings) -> Result<Arc<ClientConfig>, String> {
    let ca = match &tls.ca_file {
        Some(path) => path.clone(),
        None => system_bundle().ok_or(
            "no ca_file is set and no system CA bundle was found; set [output.collector.tls] ca_file",
        )?,
    };
    let certs = pem_certs(&ca)?;
    let mut roots = RootCertStore::empty();
    let (_, unusable) = roots.add_parsable_certificates(certs);
    if roots.is_empty() {
        return Err(format!(
            "the CA file {} holds no usable certificate ({unusable} unusable)",
            ca.display()
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_root_certificates(roots);
    let config = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let chain = pem_certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("cannot read key_file {}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("the client certificate and key do not work together: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let fail =
        |e: &dyn fmt::Display| format!("cannot read certificates from {}: {e}", path.display());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(&e))?
        .collect::<Result<_, _>>()
        .map_err(|e| fail(&e))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// The system's CA bundle, where the usual distributions keep it.
fn system_bundle() -> Option<PathBuf> {
    let env = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    env.into_iter()
        .chain(
            [
                "/etc/ssl/certs/ca-certificates.crt",
                "/etc/pki/tls/certs/ca-bundle.crt",
                "/etc/ssl/ca-bundle.pem",
                "/etc/ssl/cert.pem",
            ]
            .into_iter()
            .map(PathBuf::from),
        )
        .find(|p| p.is_file())
}

/// One connection, plain or TLS, driven without blocking: `flush` and
/// `read` do what the socket allows now and return.
pub(super) struct Conn {
    pub(super) tcp: TcpStream,
    tls: Option<ClientConnection>,
    /// Bytes queued and not yet handed to the socket (or to TLS).
    out: Vec<u8>,
    /// Bytes received and not yet split into lines.
    input: Vec<u8>,
}

impl Conn {
    pub(super) fn new(tcp: TcpStream, tls: Option<ClientConnection>) -> io::Result<Conn> {
        tcp.set_nodelay(true)?;
        tcp.set_nonblocking(true)?;
        Ok(Conn {
            tcp,
            tls,
            out: Vec::new(),
            input: Vec::new(),
        })
    }

    pub(super) fn queue(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    pub(super) fn backlog(&self) -> usize {
        self.out.len()
    }

    pub(super) fn wants_write(&self) -> bool {
        match &self.tls {
            Some(tls) => tls.wants_write(),
            None => !self.out.is_empty(),
        }
    }

    pub(super) fn flush(&mut self) -> io::Result<()> {
        match &mut self.tls {
            None => {
                while !self.out.is_empty() {
                    match self.tcp.write(&self.out) {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => {
                            self.out.drain(..n);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            Some(tls) => loop {
                if !self.out.is_empty() {
                    // rustls takes what fits in its buffer and says how much.
                    let n = tls.writer().write(&self.out)?;
                    self.out.drain(..n);
                }
                if !tls.wants_write() {
                    break;
                }
                match tls.write_tls(&mut self.tcp) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            },
        }
        Ok(())
    }

    /// Reads what has arrived and appends each complete line to `lines`;
    /// true when the collector has closed the connection.
    pub(super) fn read(&mut self, lines: &mut Vec<Vec<u8>>) -> Result<bool, SessionError> {
        let mut buf = [0u8; 16 * 1024];
        let mut eof = false;
        match &mut self.tls {
            None => loop {
                match self.tcp.read(&mut buf) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => self.input.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.into()),
                }
            },
            Some(tls) => {
                loop {
                    match tls.read_tls(&mut self.tcp) {
                        Ok(0) => {
                            eof = true;
                            break;
                        }
                        Ok(_) => {
                            if let Err(error) = tls.process_new_packets() {
                                // Tell the collector why, as TLS expects.
                                let _ = tls.write_tls(&mut self.tcp);
                                return Err(SessionError::Broken(format!("TLS: {error}")));
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                loop {
                    match tls.reader().read(&mut buf) {
                        Ok(0) => {
                            eof = true;
                            break;
                        }
                        Ok(n) => self.input.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                            eof = true;
                            break;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        let mut start = 0;
        while let Some(i) = self.input[start..].iter().position(|&b| b == b'\n') {
            let line = &self.input[start..start + i];
            if !line.iter().all(u8::is_ascii_whitespace) {
                lines.push(line.to_vec());
            }
            start += i + 1;
        }
        self.input.drain(..start);
        if self.input.len() > MAX_LINE {
            return Err(SessionError::Broken(format!(
                "the collector sent a line over {}",
                format_size(MAX_LINE as u64)
            )));
        }
        Ok(eof)
    }
}
