//! Several nodes, one vault: each node holds some of the vault in memory (the principal
//! directory, the custom roles, unwrapped keys), so a change made on one node is published on
//! the store's change feed, and every node follows the feed and reloads what changed. Sessions,
//! lockouts, approvals and tokens live in the store and need nothing.
//!
//! A publication that fails is only logged: the change is committed and in effect on the node
//! that made it, and the others catch up at the next full reload (every minute, and whenever
//! the feed says changes may have been missed).

use std::sync::Arc;
use std::time::Duration;

use tijori_store::EVERYTHING;
use tokio::sync::broadcast::error::RecvError;

use crate::{CoreError, Vault};

/// Topic: principals were created, changed, rotated or disabled.
pub(crate) const PRINCIPALS: &str = "principals";
/// Topic: a custom role was defined, changed or deleted.
pub(crate) const ROLES: &str = "roles";
/// Topic: a key was rotated or destroyed.
pub(crate) const KEYS: &str = "keys";
/// Topic prefix: a subject was erased.
const SUBJECT: &str = "subject:";

/// How often everything is reloaded even without news.
const FULL_RELOAD: Duration = Duration::from_secs(60);

pub(crate) fn subject_topic(subject: &str) -> String {
    format!("{SUBJECT}{subject}")
}

impl Vault {
    /// Tells every node that `topic` changed.
    pub(crate) async fn publish(&self, topic: &str) {
        if let Err(e) = self.store.publish(topic).await {
            tracing::warn!(error = %e, topic, "could not tell the other nodes of a change; they catch up within a minute");
        }
    }

    /// Follows the change feed until it closes, reloading what each change concerns (and all
    /// of it every minute). The server runs this for as long as it serves.
    pub async fn follow_changes(self: Arc<Self>) {
        let mut feed = self.store.changes();
        let mut full = tokio::time::interval(FULL_RELOAD);
        loop {
            let topic = tokio::select! {
                got = feed.recv() => match got {
                    Ok(topic) => topic,
                    Err(RecvError::Lagged(_)) => EVERYTHING.to_owned(),
                    Err(RecvError::Closed) => return,
                },
                _ = full.tick() => EVERYTHING.to_owned(),
            };
            if let Err(e) = self.apply_change(&topic).await {
                tracing::warn!(error = %e, topic = %topic, "reloading after a change failed; retrying within a minute");
            }
        }
    }

    /// Reloads what `topic` concerns.
    pub async fn apply_change(&self, topic: &str) -> Result<(), CoreError> {
        match topic {
            PRINCIPALS => self.reload_principals().await,
            ROLES => self.reload_roles().await,
            KEYS => self.reload_keys().await,
            t if t.starts_with(SUBJECT) => match self.keyring.keys() {
                Ok(keys) => keys.forget_subject(&t[SUBJECT.len()..]),
                Err(_) => Ok(()),
            },
            _ => {
                self.reload_roles().await?;
                self.reload_keys().await
            }
        }
    }

    /// Whether the store answers (a readiness probe).
    pub async fn check_store(&self) -> Result<(), CoreError> {
        self.store.meta("vault_id").await?;
        Ok(())
    }

    /// The key hierarchy again from the store, if unsealed (a sealed node holds no keys).
    async fn reload_keys(&self) -> Result<(), CoreError> {
        if self.keyring.is_sealed() {
            return Ok(());
        }
        self.keyring
            .reload(self.store.as_ref(), self.clock.now())
            .await
    }
}
