//! Erasure on request (Pakistan's data-protection law, GDPR-style "right to erasure") by
//! crypto-shredding: every value stored with a `subject` is encrypted under that subject's own
//! data key, so destroying that key makes all of them unrecoverable at once, in backups and
//! replicas too, without finding each copy. The subject's tokens are deleted as well, so they
//! answer `404` like any unknown token.

use tijori_store::Erased;

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
        check_subject(subject)?;
        if !auth.allows_all_types(subject) {
            return Err(CoreError::Forbidden(ITEM_DENIED));
        }
        let keys = self.keyring.keys()?;
        let erased = self
            .store
            .erase_subject(subject, &subject_scope(subject))
            .await?;
        keys.forget_subject(subject)?;
        self.publish(&crate::changes::subject_topic(subject)).await;
        Ok(erased)
    }
}
