//! `/v1/subjects/{subject}`: erasure of everything stored for a data subject
//! (crypto-shredding), for the data officer.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use tijori_core::policy::{authorize, Delete};

use crate::context::{draft_record, note_count, note_recorded, note_resource};
use crate::extract::{Caller, PathParam};
use crate::{ApiError, AppState};

/// `DELETE /v1/subjects/{subject}`: crypto-shredding of everything stored for a data subject.
pub(crate) async fn erase(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParam(subject): PathParam,
) -> Result<Response, ApiError> {
    let auth = authorize::<Delete>(&p)?;
    note_resource(subject.clone(), None);
    let record = draft_record(s.vault.now());
    let (erased, recorded) = s
        .vault
        .erase_subject_recorded(&auth, &subject, record)
        .await?;
    if recorded {
        note_recorded();
    }
    note_count(erased.tokens);
    tracing::warn!(by = %p.id, tokens = erased.tokens, keys = erased.keys, "subject erased");
    Ok(Json(serde_json::json!({
        "subject": subject,
        "tokens_erased": erased.tokens,
        "keys_destroyed": erased.keys,
    }))
    .into_response())
}
