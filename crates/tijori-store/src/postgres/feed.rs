//! Changes told between nodes with PostgreSQL's LISTEN/NOTIFY. Each store keeps one connection
//! of its own listening on the vault's channel and hands every notification to its followers;
//! `publish` is a `pg_notify` on a pooled connection. NOTIFY is delivered only to listeners
//! connected at the time, so each time listening starts (at first, and after the connection
//! was lost) followers are told [`EVERYTHING`]: changes made before are not known, so all is
//! reloaded.

use std::time::Duration;

use futures_util::{stream, StreamExt};
use tokio::sync::broadcast::Sender;
use tokio_postgres::{AsyncMessage, Config, NoTls};

use crate::EVERYTHING;

/// Wait before listening again after the connection was lost.
const RETRY: Duration = Duration::from_secs(1);

/// The channel of a vault: one per schema, so vaults sharing a database hear only their own.
pub(crate) fn channel(schema: Option<&str>) -> String {
    match schema {
        Some(s) => format!("tijori_changes_{s}"),
        None => "tijori_changes".to_owned(),
    }
}

/// Listens on `channel` until the task is aborted, reconnecting as needed.
pub(crate) async fn listen(config: Config, channel: String, out: Sender<String>) {
    loop {
        match listen_once(&config, &channel, &out).await {
            Ok(()) => tracing::warn!("the change feed's connection closed; listening again"),
            Err(e) => tracing::warn!(error = %e, "the change feed cannot listen; retrying"),
        }
        tokio::time::sleep(RETRY).await;
    }
}

async fn listen_once(
    config: &Config,
    channel: &str,
    out: &Sender<String>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (tx, mut messages) = tokio::sync::mpsc::unbounded_channel();
    // The connection is driven here; its notifications come out of the stream.
    let driver = tokio::spawn(async move {
        let mut stream = stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = stream.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_owned()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    // The channel name is ours (fixed prefix and a checked schema name): no quoting needed.
    client.batch_execute(&format!("LISTEN {channel}")).await?;
    let _ = out.send(EVERYTHING.to_owned());
    while let Some(topic) = messages.recv().await {
        let _ = out.send(topic);
    }
    drop(client);
    match driver.await {
        Ok(result) => result,
        Err(_) => Ok(()),
    }
}
