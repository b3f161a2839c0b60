//! A connection of its own to the store for `LISTEN`: a pooled connection
//! hands its notifications to nobody, so whoever waits on a channel (the
//! trace relay, the silences) opens one of these, made as the pool's are
//! (URL, TLS, connect timeout), and reads its notifications from a channel.

use super::{PostgresSettings, SslMode, connect};
use crate::store::StoreError;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Connects to the store `settings` names; the payload of every
/// notification the connection receives goes to `notes`. The handle ends
/// when the connection does, with its error if it broke.
pub async fn connect(
    settings: &PostgresSettings,
    notes: mpsc::UnboundedSender<String>,
) -> Result<
    (
        tokio_postgres::Client,
        JoinHandle<Option<tokio_postgres::Error>>,
    ),
    StoreError,
> {
    let url = connect::url_text(&settings.url)?;
    let mut config = connect::parse_url(&url, "in [store]")?;
    config.connect_timeout(settings.connect_timeout);
    if settings.ssl_mode == SslMode::Disable {
        config.ssl_mode(tokio_postgres::config::SslMode::Disable);
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        return Ok((client, tokio::spawn(drive(connection, notes))));
    }
    config.ssl_mode(tokio_postgres::config::SslMode::Require);
    let tls = connect::tls_config(settings.ssl_mode, settings.ca_file.as_deref())?;
    let (client, connection) = config
        .connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
        .await?;
    Ok((client, tokio::spawn(drive(connection, notes))))
}

/// Reads the connection's messages, so its notifications reach `notes`
/// rather than being dropped; its error, if it broke.
async fn drive<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    notes: mpsc::UnboundedSender<String>,
) -> Option<tokio_postgres::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut messages = futures_util::stream::poll_fn(|cx| connection.poll_message(cx));
    while let Some(message) = messages.next().await {
        match message {
            Ok(tokio_postgres::AsyncMessage::Notification(note)) => {
                if notes.send(note.payload().to_string()).is_err() {
                    return None;
                }
            }
            Ok(_) => {}
            Err(error) => return Some(error),
        }
    }
    None
}
