//! Erasure on request (Pakistan's data-protection law, GDPR-style "right to erasure") by
//! crypto-shredding: every value stored with a `subject` is encrypted under that subject's own
//! data key, so destroying that key makes all of them unrecoverable at once, in backups and
//! replicas too, without finding each copy. The subject's tokens are deleted as well, so they
//! answer `404` like any unknown token.

use tijori_store::{AuditAfter, Erased, MakeRecords};

use crate::audit::AuditEvent;
use crate::keyring::subject_scope;
use crate::policy::{Authorized, Delete, ITEM_DENIED};
use crate::service::check_subject;
use crate::{CoreError, Vault};

impl Vault {
    /// Destroys `subject`'s data keys and deletes its tokens; answers the counts. Erasing an
    /// unknown (or already erased) subject answers zeros: a request may be repeated.
    pub async fn erase_subject(
        &self,
        auth: &Authorized<'_, Delete>,
        subject: &str,
    ) -> Result<Erased, CoreError> {
        Ok(self.erase_subject_recorded(auth, subject, None).await?.0)
    }

    /// [`erase_subject`](Self::erase_subject), writing `record` (the request's audit record;
    /// its resource, count and outcome are filled in here) in the same commit as the erasure,
    /// where the trail lives in the vault's store: an erasure then never stands without its
    /// record. Answers whether the record was written; if not, the caller writes its own.
    pub async fn erase_subject_recorded(
        &self,
        auth: &Authorized<'_, Delete>,
        subject: &str,
        record: Option<AuditEvent>,
    ) -> Result<(Erased, bool), CoreError> {
        check_subject(subject)?;
        if !auth.allows_all_types(subject) {
            return Err(CoreError::Forbidden(ITEM_DENIED));
        }
        let keys = self.keyring.keys()?;
        let scope = subject_scope(subject);
        let audit = self
            .joined_record(record, tijori_store::Joined::Removals)
            .map(|(event, chain)| {
                let event = event.succeeded(subject.to_owned(), None);
                let records: MakeRecords<Erased> = Box::new(move |erased| {
                    let event = AuditEvent {
                        count: Some(erased.tokens),
                        ..event
                    };
                    serde_json::to_string(&event).ok().into_iter().collect()
                });
                AuditAfter { records, chain }
            });
        let (erased, written) = self
            .store
            .erase_subject_audited(subject, &scope, audit)
            .await?;
        if written {
            self.audit_appended();
        }
        keys.forget_subject(subject)?;
        self.publish(&crate::changes::subject_topic(subject)).await;
        Ok((erased, written))
    }
}
