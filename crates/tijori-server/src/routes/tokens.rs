//! `/v1/tokens`, `/v1/tokens/batch`, `/v1/tokens/search`, `/v1/tokens/{token}` and
//! `/v1/detokenize`. Handlers authorize first, then parse, then call the core; values pass
//! through here only on their way in (request) or out (detokenize answer), never into a log.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tijori_core::approval::Guarded;
use tijori_core::policy::{authorize, Delete, Detokenize, Search, Tokenize};
use tijori_core::{joined_types, made_resource, CoreError, Principal, Tokenized};
use tijori_types::api::{
    BatchRequest, DetokenizeRequest, ErrorEnvelope, SearchRequest, TokenResponse, TokenizeRequest,
};
use tijori_types::{DataType, ErrorCode};

use crate::context::{draft_record, note_reason, note_recorded, note_resource, note_value};
use crate::extract::{parse_json, parse_value, Body, Caller, PathParam};
use crate::{ApiError, AppState};

const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// A batch's answer, written straight to JSON: a thousand items are no tree of values first.
#[derive(serde::Serialize)]
struct BatchResponse {
    items: Vec<BatchItem>,
}

/// A saved batch answer, read back for a replay's record.
#[derive(serde::Deserialize)]
struct SavedBatch {
    items: Vec<Value>,
}

/// One item of a batch's answer: its token, or its error, in place.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum BatchItem {
    Made(TokenResponse),
    Failed(ErrorEnvelope),
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn to_bytes<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(v).map_err(|e| CoreError::Internal(e.to_string()).into())
}

/// Runs `work` once per `Idempotency-Key`: a retry with the same key and body gets the first
/// answer again; without the header the work simply runs. A replay's audit record names what
/// the first run's did: `replayed` notes it from the request and the saved answer (the work,
/// which would have, does not run), and a saved error's code is its reason.
async fn idempotent<F>(
    s: &AppState,
    p: &Principal,
    headers: &HeaderMap,
    (route, body): (&str, &[u8]),
    work: F,
    replayed: impl FnOnce(&[u8]),
) -> Result<Response, ApiError>
where
    F: std::future::Future<Output = Result<(StatusCode, Vec<u8>), ApiError>>,
{
    let Some(key) = headers.get(IDEMPOTENCY_KEY) else {
        let (status, bytes) = work.await?;
        return Ok(json_response(status, bytes));
    };
    // A header that is not visible ASCII reaches the core's key check as "", which it refuses.
    let key = key.to_str().unwrap_or_default();
    match s.vault.idempotency_begin(p, key, route, body).await? {
        Err(replay) => {
            let status = StatusCode::from_u16(replay.status).unwrap_or(StatusCode::OK);
            if status.is_success() {
                replayed(&replay.body);
            } else if let Some(code) = serde_json::from_slice::<ErrorEnvelope>(&replay.body)
                .ok()
                .and_then(|e| ErrorCode::parse(&e.error.code))
            {
                note_reason(code);
            }
            Ok(json_response(status, replay.body))
        }
        Ok(guard) => {
            let (status, bytes) = work.await.unwrap_or_else(|e| e.to_parts());
            if let Err(e) = s
                .vault
                .idempotency_finish(guard, status.as_u16(), bytes.clone())
                .await
            {
                // The work is done and durable; only a retry's replay is lost. Say so, answer.
                tracing::warn!(error = %e, "could not save the idempotent answer");
            }
            Ok(json_response(status, bytes))
        }
    }
}

fn token_answer(result: Tokenized) -> Result<(StatusCode, Vec<u8>), ApiError> {
    let (resp, created) = result?;
    note_resource(resp.token.clone(), Some(resp.data_type.clone()));
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        to_bytes(&resp)?,
    ))
}

pub(crate) async fn create(
    State(s): State<AppState>,
    Caller(p): Caller,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let auth = authorize::<Tokenize>(&p)?;
    let work = async {
        let req: TokenizeRequest = parse_json(&body)?;
        note_value(s.vault.audit_value_hmac(&req.data_type, &req.value));
        let record = draft_record(s.vault.now());
        let (result, recorded) = s.vault.tokenize_recorded(&auth, req, record).await;
        if recorded {
            note_recorded();
        }
        token_answer(result)
    };
    let replayed = |answer: &[u8]| {
        if let Ok(req) = parse_json::<TokenizeRequest>(&body) {
            note_value(s.vault.audit_value_hmac(&req.data_type, &req.value));
        }
        if let Ok(made) = serde_json::from_slice::<TokenResponse>(answer) {
            note_resource(made.token, Some(made.data_type));
        }
    };
    idempotent(&s, &p, &headers, ("POST /v1/tokens", &body), work, replayed).await
}

pub(crate) async fn batch(
    State(s): State<AppState>,
    Caller(p): Caller,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let auth = authorize::<Tokenize>(&p)?;
    let work = async {
        let req: BatchRequest = parse_json(&body)?;
        // Checked before parsing the items, so an oversized batch costs no per-item work.
        if req.items.len() > s.vault.config().max_batch {
            return Err(CoreError::TooManyItems.into());
        }
        // Items that do not parse keep their place with their own error.
        let mut parse_errors: Vec<Option<ApiError>> = Vec::with_capacity(req.items.len());
        let mut parsed = Vec::new();
        for item in req.items {
            match parse_value::<TokenizeRequest>(item) {
                Ok(r) => {
                    note_value(s.vault.audit_value_hmac(&r.data_type, &r.value));
                    parse_errors.push(None);
                    parsed.push(Ok(r));
                }
                Err(e) => parse_errors.push(Some(e)),
            }
        }
        let record = draft_record(s.vault.now());
        let (results, recorded) = s
            .vault
            .tokenize_many_recorded(&auth, parsed, record)
            .await?;
        if recorded {
            note_recorded();
        }
        // Noted for the record the request ends with, where it was not written with the tokens.
        let (resource, types) = made_resource(
            results
                .iter()
                .filter_map(|r| r.as_ref().ok().map(|(t, _)| t)),
        );
        note_resource(resource, types);
        let mut results = results.into_iter();
        let mut items = Vec::with_capacity(parse_errors.len());
        for slot in parse_errors {
            let item = match slot {
                Some(e) => BatchItem::Failed(e.envelope()),
                None => match results.next() {
                    Some(Ok((resp, _))) => BatchItem::Made(resp),
                    Some(Err(e)) => BatchItem::Failed(ApiError::from(e).envelope()),
                    None => {
                        return Err(CoreError::Internal("batch answers ran short".into()).into())
                    }
                },
            };
            items.push(item);
        }
        Ok((StatusCode::OK, to_bytes(&BatchResponse { items })?))
    };
    let replayed = |answer: &[u8]| {
        if let Ok(req) = parse_json::<BatchRequest>(&body) {
            for item in req.items {
                if let Ok(r) = parse_value::<TokenizeRequest>(item) {
                    note_value(s.vault.audit_value_hmac(&r.data_type, &r.value));
                }
            }
        }
        if let Ok(saved) = serde_json::from_slice::<SavedBatch>(answer) {
            let made: Vec<TokenResponse> = (saved.items.into_iter())
                .filter_map(|item| serde_json::from_value(item).ok())
                .collect();
            let (resource, types) = made_resource(&made);
            note_resource(resource, types);
        }
    };
    idempotent(
        &s,
        &p,
        &headers,
        ("POST /v1/tokens/batch", &body),
        work,
        replayed,
    )
    .await
}

pub(crate) async fn detokenize(
    State(s): State<AppState>,
    Caller(p): Caller,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let auth = authorize::<Detokenize>(&p)?;
    let req: DetokenizeRequest = parse_json(&body)?;
    // Checked below the dual-control threshold too: a malformed header is refused, not ignored.
    super::policy::approval_id(&headers)?;
    if req.tokens.len() > s.vault.config().dual_control.bulk_reveal_threshold {
        let summary = || format!("reveal {} values in one request", req.tokens.len());
        let guarded = super::policy::guard(
            &s,
            &p,
            Guarded::BulkReveal,
            "/v1/detokenize",
            &body,
            &headers,
            summary,
        );
        if let Some(pending) = guarded.await? {
            return Ok(pending);
        }
    }
    let results = s.vault.detokenize(&auth, &req.tokens).await?;
    let mut types = Vec::new();
    let mut known = Vec::new();
    let mut unknown = 0usize;
    let items: Vec<Value> = req
        .tokens
        .iter()
        .zip(results)
        .map(|(token, r)| match r {
            Ok(d) => {
                types.push(d.data_type.as_str());
                known.push(token.as_str());
                json!({ "token": d.token, "type": d.data_type.as_str(), "value": d.value.as_str() })
            }
            Err(e) => {
                if matches!(e, CoreError::NotFound) {
                    unknown += 1;
                } else {
                    known.push(token.as_str());
                }
                json!({ "token": token, "error": ApiError::from(e).body() })
            }
        })
        .collect();
    // Every token of the vault asked for is on the record, revealed or not. Strings that name
    // no token are only counted: a client that sends a card number by mistake must not have it
    // written into the (unerasable) audit trail.
    let mut resource = known.join(",");
    if unknown > 0 {
        resource.push_str(&format!(" (+{unknown} unknown)"));
    }
    note_resource(resource, joined_types(types));
    Ok(Json(json!({ "items": items })).into_response())
}

pub(crate) async fn search(
    State(s): State<AppState>,
    Caller(p): Caller,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let auth = authorize::<Search>(&p)?;
    let req: SearchRequest = parse_json(&body)?;
    note_value(s.vault.audit_value_hmac(&req.data_type, &req.value));
    let known_type = DataType::parse(&req.data_type).map(|t| t.as_str().to_owned());
    note_resource("", known_type);
    let token = s.vault.search(&auth, req).await?;
    note_resource(token.clone(), None);
    Ok(Json(json!({ "token": token })).into_response())
}

pub(crate) async fn describe(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParam(token): PathParam,
) -> Result<Response, ApiError> {
    let auth = authorize::<Search>(&p)?;
    let described = s.vault.describe(&auth, &token).await?;
    note_resource(token, Some(described.data_type.clone()));
    Ok(Json(described).into_response())
}

pub(crate) async fn delete(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParam(token): PathParam,
) -> Result<Response, ApiError> {
    let auth = authorize::<Delete>(&p)?;
    let record = draft_record(s.vault.now());
    if s.vault.delete_recorded(&auth, &token, record).await? {
        note_recorded();
    }
    note_resource(token, None);
    Ok(StatusCode::NO_CONTENT.into_response())
}
