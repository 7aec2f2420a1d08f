//! The data operations: tokenize (one or many), detokenize, describe, search, delete.
//! Values are normalized, then encrypted under the subject's or the vault's data key with
//! associated data naming the token, type and key; deterministic tokens are found by the keyed
//! blind index. A plaintext never leaves this module except in a [`Detokenized`] answer.

use std::collections::HashMap;
use std::sync::Arc;

use tijori_crypto::{open, RandomPool, Sealer, SecretKey};
use tijori_store::{
    AuditAfter, AuditWith, ChainFn, InsertOutcome, Joined, MakeRecords, TokenRecord,
};
use tijori_types::api::{SearchRequest, TokenFormat, TokenResponse, TokenizeRequest};
use tijori_types::{mask::mask, normalize, DataType};
use zeroize::Zeroizing;

use crate::audit::AuditEvent;
use crate::cvc::CvcInfo;
use crate::keyring::Keys;
use crate::policy::{Authorized, Delete, Detokenize, Reveal, Search, Tokenize, ITEM_DENIED};
use crate::tokens::{new_token, value_ad, TokenGroup, RANDOM_PER_TOKEN};
use crate::{rfc3339, CoreError, Detokenized, Vault};

/// Longest card-security-code lifetime (API.md).
const CVC_MAX_TTL: u64 = 3600;
/// Most bytes of a token's metadata, as JSON.
const MAX_METADATA: usize = 4096;
/// Most characters of a subject.
const MAX_SUBJECT: usize = 256;
/// Data keys a request keeps ready to seal with (see [`Sealer`]).
const SEALERS_KEPT: usize = 16;
/// Draws of a fresh token before giving up on collisions (preserving tokens of short values).
const TOKEN_ATTEMPTS: usize = 16;

/// A subject is 1-256 characters without control characters.
pub(crate) fn check_subject(s: &str) -> Result<(), CoreError> {
    if s.is_empty() || s.chars().count() > MAX_SUBJECT || s.chars().any(char::is_control) {
        return Err(CoreError::InvalidRequest(
            "subject must be 1-256 characters without control characters",
        ));
    }
    Ok(())
}

/// A validated request, ready to encrypt. No `Debug`: it holds the value.
struct Prepared {
    ty: DataType,
    value: Zeroizing<String>,
    raw: Zeroizing<String>,
    format: TokenFormat,
    blind_index: Option<Vec<u8>>,
    subject: Option<String>,
    metadata: Option<String>,
    expires_at: Option<i64>,
}

/// One answer of tokenize: the token, and whether it was made now (`false`: an existing
/// deterministic token).
pub type Tokenized = Result<(TokenResponse, bool), CoreError>;

fn parse_type(name: &str) -> Result<DataType, CoreError> {
    DataType::parse(name).ok_or(CoreError::InvalidRequest(
        "unknown type; use card_number, iban, cnic, pk_mobile, bank_account, card_security_code or text",
    ))
}

/// The data types an audit record names: each once, sorted, comma-separated; `None` for none.
pub fn joined_types<'a>(types: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let types: std::collections::BTreeSet<&str> = types.into_iter().collect();
    (!types.is_empty()).then(|| types.into_iter().collect::<Vec<_>>().join(","))
}

/// What a tokenize's audit record names: the tokens it answered with, in order, and their
/// types ([`joined_types`]). The server's own record of a request uses it too, so that a
/// record is the same whichever writes it.
pub fn made_resource<'a>(
    made: impl IntoIterator<Item = &'a TokenResponse>,
) -> (String, Option<String>) {
    let (tokens, types): (Vec<&str>, Vec<&str>) = made
        .into_iter()
        .map(|m| (m.token.as_str(), m.data_type.as_str()))
        .unzip();
    (tokens.join(","), joined_types(types))
}

/// A request's audit record, completed as the success it describes (naming `answered`, every
/// token the request answers with) if each of its `inserting` new tokens is inserted, and
/// nothing otherwise (the caller then records the request as it ends).
fn new_tokens_record<'a>(
    event: AuditEvent,
    answered: impl IntoIterator<Item = &'a TokenResponse>,
    inserting: usize,
    chain: ChainFn,
) -> AuditWith {
    let (resource, data_type) = made_resource(answered);
    // Written out here, not in the closure: the closure runs on the store's one writer thread,
    // which every tokenize waits on.
    let text = serde_json::to_string(&event.succeeded(resource, data_type)).ok();
    AuditWith {
        records: Box::new(move |outcomes| {
            let all = outcomes.len() == inserting
                && outcomes
                    .iter()
                    .all(|o| matches!(o, InsertOutcome::Inserted));
            if all {
                text.into_iter().collect()
            } else {
                Vec::new()
            }
        }),
        chain,
    }
}

fn response(rec: &TokenRecord) -> TokenResponse {
    TokenResponse {
        token: rec.token.clone(),
        data_type: rec.data_type.clone(),
        masked: rec.masked.clone(),
        subject: rec.subject.clone(),
        created_at: rfc3339(rec.created_at),
        expires_at: rec.expires_at.map(rfc3339),
        metadata: rec
            .metadata
            .as_deref()
            .and_then(|m| serde_json::from_str(m).ok()),
    }
}

fn cvc_response(token: &str, info: &CvcInfo) -> TokenResponse {
    TokenResponse {
        token: token.to_owned(),
        data_type: DataType::CardSecurityCode.as_str().to_owned(),
        masked: info.masked.clone(),
        subject: info.subject.clone(),
        created_at: rfc3339(info.created_at),
        expires_at: Some(rfc3339(info.expires_at)),
        metadata: info
            .metadata
            .as_deref()
            .and_then(|m| serde_json::from_str(m).ok()),
    }
}

impl Vault {
    fn prepare(&self, keys: &Keys, req: TokenizeRequest, now: i64) -> Result<Prepared, CoreError> {
        let ty = parse_type(&req.data_type)?;
        let raw = Zeroizing::new(req.value);
        let value = Zeroizing::new(normalize(ty, &raw)?);
        if let Some(s) = &req.subject {
            check_subject(s)?;
        }
        let metadata = match req.metadata {
            Some(m) => {
                let text =
                    serde_json::to_string(&m).map_err(|e| CoreError::Internal(e.to_string()))?;
                if text.len() > MAX_METADATA {
                    return Err(CoreError::InvalidRequest(
                        "metadata must be at most 4096 bytes of JSON",
                    ));
                }
                Some(text)
            }
            None => None,
        };
        let ttl = match (ty.is_ephemeral(), req.ttl_seconds) {
            (_, Some(0)) => {
                return Err(CoreError::InvalidRequest("ttl_seconds must be at least 1"))
            }
            (true, Some(t)) if t > CVC_MAX_TTL => {
                return Err(CoreError::InvalidRequest(
                    "ttl_seconds of a card_security_code is at most 3600",
                ))
            }
            (true, t) => Some(t.unwrap_or(CVC_MAX_TTL)),
            (false, Some(t)) if t > self.config.max_ttl => {
                return Err(CoreError::InvalidRequest(
                    "ttl_seconds is too large (at most ten years)",
                ))
            }
            (false, t) => t,
        };
        if ty.is_ephemeral() && req.deterministic {
            return Err(CoreError::InvalidRequest(
                "card_security_code tokens cannot be deterministic: the code would be guessable from its index",
            ));
        }
        if req.format == TokenFormat::Preserving {
            tijori_types::format::check_preserving(ty)?;
        }
        let blind_index = req
            .deterministic
            .then(|| keys.blind.index(ty.as_str(), value.as_bytes()).to_vec());
        Ok(Prepared {
            ty,
            value,
            raw,
            format: req.format,
            blind_index,
            subject: req.subject,
            metadata,
            expires_at: ttl.map(|t| now + t as i64),
        })
    }

    fn encrypt(
        p: &Prepared,
        (key_id, sealer): (i64, &Sealer),
        now: i64,
        group: &TokenGroup,
        pool: &mut RandomPool,
    ) -> Result<TokenRecord, CoreError> {
        let token = new_token(p.ty, p.format, &p.value, &p.raw, group, pool)?;
        let ciphertext = sealer.seal(
            pool,
            &value_ad(&token, p.ty.as_str(), key_id),
            p.value.as_bytes(),
        )?;
        Ok(TokenRecord {
            token,
            data_type: p.ty.as_str().to_owned(),
            ciphertext,
            data_key_id: key_id,
            blind_index: p.blind_index.clone(),
            masked: mask(p.ty, &p.value),
            subject: p.subject.clone(),
            metadata: p.metadata.clone(),
            created_at: now,
            expires_at: p.expires_at,
        })
    }

    /// Tokenizes one value.
    pub async fn tokenize(
        &self,
        auth: &Authorized<'_, Tokenize>,
        req: TokenizeRequest,
    ) -> Tokenized {
        self.tokenize_recorded(auth, req, None).await.0
    }

    /// [`tokenize`](Self::tokenize), writing `record` (the request's audit record, whose
    /// resource, data type and outcome are filled in here) in the same durable commit as a new
    /// token, where the trail lives in the vault's store: a tokenize then costs one commit, not
    /// two. Answers whether the record was written; if not (an existing token, a failure,
    /// another audit sink, a store that cannot join them), the caller writes its own.
    pub async fn tokenize_recorded(
        &self,
        auth: &Authorized<'_, Tokenize>,
        req: TokenizeRequest,
        record: Option<AuditEvent>,
    ) -> (Tokenized, bool) {
        match self.tokenize_inner(auth, vec![Ok(req)], record).await {
            Ok((mut out, written)) => match out.pop() {
                Some(answer) => (answer, written),
                None => (
                    Err(CoreError::Internal("tokenize lost its answer".into())),
                    written,
                ),
            },
            Err(e) => (Err(e), false),
        }
    }

    /// Tokenizes many values in one durable commit. Items that failed to parse come in as
    /// errors and go out as the same errors, in place.
    pub async fn tokenize_many(
        &self,
        auth: &Authorized<'_, Tokenize>,
        items: Vec<Result<TokenizeRequest, CoreError>>,
    ) -> Result<Vec<Tokenized>, CoreError> {
        Ok(self.tokenize_many_recorded(auth, items, None).await?.0)
    }

    /// [`tokenize_many`](Self::tokenize_many), writing `record` in the commit of the new
    /// tokens, as [`tokenize_recorded`](Self::tokenize_recorded) does: a batch then waits for
    /// one commit, not two. Answers whether the record was written (not where a token had to
    /// be drawn again, or none was new).
    pub async fn tokenize_many_recorded(
        &self,
        auth: &Authorized<'_, Tokenize>,
        items: Vec<Result<TokenizeRequest, CoreError>>,
        record: Option<AuditEvent>,
    ) -> Result<(Vec<Tokenized>, bool), CoreError> {
        self.tokenize_inner(auth, items, record).await
    }

    async fn tokenize_inner(
        &self,
        auth: &Authorized<'_, Tokenize>,
        items: Vec<Result<TokenizeRequest, CoreError>>,
        mut record: Option<AuditEvent>,
    ) -> Result<(Vec<Tokenized>, bool), CoreError> {
        if items.len() > self.config.max_batch {
            return Err(CoreError::TooManyItems);
        }
        let mut keys = self.keyring.keys()?;
        let now = self.clock.now();
        let single = items.len() == 1;
        // One draw from the OS for the request's tokens and nonces, and one key schedule per
        // data key: a batch's items share both.
        let mut pool = RandomPool::new(items.len() * RANDOM_PER_TOKEN);
        let mut sealers: HashMap<i64, Sealer> = HashMap::new();
        let mut written = false;
        let mut answers: Vec<Option<Tokenized>> = Vec::with_capacity(items.len());
        let mut pending: Vec<(usize, Prepared, (i64, Arc<SecretKey>))> = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let prepared = match item.and_then(|req| self.prepare(&keys, req, now)) {
                Ok(p) if !auth.allows(p.ty.as_str(), p.subject.as_deref()) => {
                    answers.push(Some(Err(CoreError::Forbidden(ITEM_DENIED))));
                    continue;
                }
                Ok(p) => p,
                Err(e) => {
                    answers.push(Some(Err(e)));
                    continue;
                }
            };
            if prepared.ty.is_ephemeral() {
                // A group of its own: held in memory only, it gains nothing from sharing one,
                // and would be linkable to the card's token.
                let group = TokenGroup::new()?;
                answers.push(Some(self.keep_cvc(&prepared, now, &group, &mut pool)));
                continue;
            }
            if let Some(index) = &prepared.blind_index {
                if let Some(rec) = self
                    .store
                    .token_by_index(prepared.ty.as_str(), index, now)
                    .await?
                {
                    answers.push(Some(existing(auth, &rec)));
                    continue;
                }
            }
            let key = keys
                .write_key(self.store.as_ref(), prepared.subject.as_deref(), now)
                .await?;
            answers.push(None);
            pending.push((i, prepared, key));
        }
        // A single random token joins its caller's run (see `TokenGroups`); anything else, or a
        // request that makes no random token, draws a group of its own.
        let group = match pending.as_slice() {
            [(_, p, _)] if single && p.format == TokenFormat::Random => {
                self.token_groups.next(&auth.principal().id, now)?
            }
            _ => TokenGroup::new()?,
        };
        for _ in 0..TOKEN_ATTEMPTS {
            if pending.is_empty() {
                break;
            }
            let mut records = Vec::with_capacity(pending.len());
            for (_, p, (key_id, key)) in &pending {
                // Subjects' own keys could be thousands in a batch: a few kept at a time. Kept
                // by id, which the store never gives to another key.
                if sealers.len() >= SEALERS_KEPT && !sealers.contains_key(key_id) {
                    sealers.clear();
                }
                let sealer = sealers.entry(*key_id).or_insert_with(|| Sealer::new(key));
                records.push(Self::encrypt(p, (*key_id, sealer), now, &group, &mut pool)?);
            }
            // The answers are made before the records move into the store: no copy of them.
            let made: Vec<TokenResponse> = records.iter().map(response).collect();
            let audit = match self.joined_record(record.take(), Joined::Tokens) {
                Some((event, chain)) => {
                    // Every answer the request will give if all these tokens go in: the ones
                    // known already (existing tokens, card security codes) and these, in order.
                    let mut inserting = made.iter();
                    let answered = answers.iter().filter_map(|a| match a {
                        Some(Ok((resp, _))) => Some(resp),
                        Some(Err(_)) => None,
                        None => inserting.next(),
                    });
                    Some(new_tokens_record(event, answered, made.len(), chain))
                }
                None => None,
            };
            let outcomes = match audit {
                Some(audit) => {
                    let (outcomes, joined) = self
                        .store
                        .insert_tokens_audited(records, now, audit)
                        .await?;
                    if joined {
                        written = true;
                        self.audit_appended();
                    }
                    outcomes
                }
                None => self.store.insert_tokens(records, now).await?,
            };
            let mut retry = Vec::new();
            let mut stale = Vec::new();
            for ((slot, made), outcome) in pending.into_iter().zip(made).zip(outcomes) {
                match outcome {
                    InsertOutcome::Inserted => answers[slot.0] = Some(Ok((made, true))),
                    InsertOutcome::Existing(rec) => answers[slot.0] = Some(existing(auth, &rec)),
                    InsertOutcome::TokenTaken => retry.push(slot),
                    InsertOutcome::StaleKey => stale.push(slot),
                }
            }
            if !stale.is_empty() {
                // Another node rotated a key away or erased a subject: load the keys as they
                // are now and encrypt those values again under the current ones.
                self.keyring.reload(self.store.as_ref(), now).await?;
                keys = self.keyring.keys()?;
                for (i, p, (old_id, _)) in stale {
                    // An erased subject's key goes now, not at the request's end.
                    sealers.remove(&old_id);
                    let key = keys
                        .write_key(self.store.as_ref(), p.subject.as_deref(), now)
                        .await?;
                    retry.push((i, p, key));
                }
            }
            pending = retry;
        }
        for (i, _, _) in pending {
            answers[i] = Some(Err(CoreError::Unavailable(
                "no free token after repeated draws, or the keys kept changing under the write"
                    .into(),
            )));
        }
        let answers = answers
            .into_iter()
            .map(|a| a.ok_or_else(|| CoreError::Internal("a batch item got no answer".into())))
            .collect::<Result<_, _>>()?;
        Ok((answers, written))
    }

    fn keep_cvc(
        &self,
        p: &Prepared,
        now: i64,
        group: &TokenGroup,
        pool: &mut RandomPool,
    ) -> Tokenized {
        let info = CvcInfo {
            masked: mask(p.ty, &p.value),
            subject: p.subject.clone(),
            metadata: p.metadata.clone(),
            created_at: now,
            expires_at: p.expires_at.unwrap_or(now + CVC_MAX_TTL as i64),
        };
        for _ in 0..TOKEN_ATTEMPTS {
            let token = new_token(p.ty, TokenFormat::Random, &p.value, &p.raw, group, pool)?;
            if self.cvc.put(&token, &p.value, info.clone())? {
                return Ok((cvc_response(&token, &info), true));
            }
        }
        Err(CoreError::Internal(
            "no free token after repeated draws".into(),
        ))
    }

    /// Reveals values, in full or masked by the caller's reveal level. Each token answers for
    /// itself; a card security code is gone once revealed.
    pub async fn detokenize(
        &self,
        auth: &Authorized<'_, Detokenize>,
        tokens: &[String],
    ) -> Result<Vec<Result<Detokenized, CoreError>>, CoreError> {
        if tokens.len() > self.config.max_batch {
            return Err(CoreError::TooManyItems);
        }
        let keys = self.keyring.keys()?;
        let now = self.clock.now();
        let stored: HashMap<String, TokenRecord> = self
            .store
            .tokens(tokens, now)
            .await?
            .into_iter()
            .map(|r| (r.token.clone(), r))
            .collect();
        let mut out = Vec::with_capacity(tokens.len());
        for token in tokens {
            let cvc_type = DataType::CardSecurityCode.as_str();
            if let Some(info) = self.cvc.info(token, now)? {
                let reveal = auth.reveal_for(cvc_type, info.subject.as_deref());
                if reveal == Reveal::None {
                    out.push(Err(CoreError::NotFound));
                    continue;
                }
                // Taken only once the caller may see it: a refused look leaves the code.
                let Some((value, info)) = self.cvc.take(token, now)? else {
                    out.push(Err(CoreError::NotFound));
                    continue;
                };
                let value = match reveal {
                    Reveal::Full => Zeroizing::new(String::from_utf8_lossy(&value).into_owned()),
                    _ => Zeroizing::new(info.masked),
                };
                out.push(Ok(Detokenized {
                    token: token.clone(),
                    data_type: DataType::CardSecurityCode,
                    value,
                }));
                continue;
            }
            let Some(rec) = stored.get(token) else {
                out.push(Err(CoreError::NotFound));
                continue;
            };
            let reveal = auth.reveal_for(&rec.data_type, rec.subject.as_deref());
            out.push(self.reveal_one(&keys, rec, reveal).await);
        }
        Ok(out)
    }

    async fn reveal_one(
        &self,
        keys: &Keys,
        rec: &TokenRecord,
        reveal: Reveal,
    ) -> Result<Detokenized, CoreError> {
        let data_type = DataType::parse(&rec.data_type)
            .ok_or_else(|| CoreError::Internal("a stored token has an unknown type".into()))?;
        let value = match reveal {
            Reveal::Full => {
                let key = keys.data_key(self.store.as_ref(), rec.data_key_id).await?;
                let plain = open(
                    &key,
                    &value_ad(&rec.token, &rec.data_type, rec.data_key_id),
                    &rec.ciphertext,
                )
                .map_err(|_| {
                    tracing::error!(token = %rec.token, "stored ciphertext failed authentication");
                    CoreError::Internal("a stored value failed its integrity check".into())
                })?;
                Zeroizing::new(
                    String::from_utf8(plain.to_vec())
                        .map_err(|_| CoreError::Internal("a stored value is not UTF-8".into()))?,
                )
            }
            Reveal::Masked => Zeroizing::new(rec.masked.clone()),
            // Outside the caller's rules a token is as unknown as a missing one (as in
            // `describe`): a different answer would tell that it exists.
            Reveal::None => return Err(CoreError::NotFound),
        };
        Ok(Detokenized {
            token: rec.token.clone(),
            data_type,
            value,
        })
    }

    /// A token's metadata and masked form, never its value.
    pub async fn describe(
        &self,
        auth: &Authorized<'_, Search>,
        token: &str,
    ) -> Result<TokenResponse, CoreError> {
        self.keyring.keys()?;
        let now = self.clock.now();
        // A token outside the caller's rules is as unknown as a missing one.
        if let Some(info) = self.cvc.info(token, now)? {
            if !auth.allows(DataType::CardSecurityCode.as_str(), info.subject.as_deref()) {
                return Err(CoreError::NotFound);
            }
            return Ok(cvc_response(token, &info));
        }
        let rec = self
            .store
            .token(token, now)
            .await?
            .filter(|r| auth.allows(&r.data_type, r.subject.as_deref()))
            .ok_or(CoreError::NotFound)?;
        Ok(response(&rec))
    }

    /// The deterministic token of a value, found by its blind index.
    pub async fn search(
        &self,
        auth: &Authorized<'_, Search>,
        req: SearchRequest,
    ) -> Result<String, CoreError> {
        let keys = self.keyring.keys()?;
        let ty = parse_type(&req.data_type)?;
        let value = Zeroizing::new(normalize(ty, &req.value)?);
        if ty.is_ephemeral() {
            return Err(CoreError::NotFound);
        }
        let index = keys.blind.index(ty.as_str(), value.as_bytes());
        let rec = self
            .store
            .token_by_index(ty.as_str(), &index, self.clock.now())
            .await?;
        rec.filter(|r| auth.allows(&r.data_type, r.subject.as_deref()))
            .map(|r| r.token)
            .ok_or(CoreError::NotFound)
    }

    /// Deletes a token; afterwards it is unknown everywhere.
    pub async fn delete(
        &self,
        auth: &Authorized<'_, Delete>,
        token: &str,
    ) -> Result<(), CoreError> {
        self.delete_recorded(auth, token, None).await.map(|_| ())
    }

    /// [`delete`](Self::delete), writing `record` (the request's audit record; its resource
    /// and outcome are filled in here) in the same commit as the deletion, where the trail lives
    /// in the vault's store: a deletion then never stands without its record, whatever befalls
    /// the trail after. Answers whether the record was written; if not, the caller writes its
    /// own.
    pub async fn delete_recorded(
        &self,
        auth: &Authorized<'_, Delete>,
        token: &str,
        record: Option<AuditEvent>,
    ) -> Result<bool, CoreError> {
        self.keyring.keys()?;
        let now = self.clock.now();
        if let Some(info) = self.cvc.info(token, now)? {
            if !auth.allows(DataType::CardSecurityCode.as_str(), info.subject.as_deref()) {
                return Err(CoreError::NotFound);
            }
            return if self.cvc.remove(token, now)? {
                Ok(false)
            } else {
                Err(CoreError::NotFound)
            };
        }
        let allowed = self
            .store
            .token(token, now)
            .await?
            .is_some_and(|r| auth.allows(&r.data_type, r.subject.as_deref()));
        if !allowed {
            return Err(CoreError::NotFound);
        }
        let audit = self
            .joined_record(record, Joined::Removals)
            .map(|(event, chain)| {
                let text = serde_json::to_string(&event.succeeded(token.to_owned(), None)).ok();
                let records: MakeRecords<bool> = Box::new(move |deleted| match *deleted {
                    true => text.into_iter().collect(),
                    false => Vec::new(),
                });
                AuditAfter { records, chain }
            });
        let (deleted, written) = self.store.delete_token_audited(token, now, audit).await?;
        if written {
            self.audit_appended();
        }
        if deleted {
            Ok(written)
        } else {
            Err(CoreError::NotFound)
        }
    }
}

/// The answer for a deterministic token that already exists: its token, if the caller's rules
/// cover it. One outside them (another tenant's subject) is refused: answering it would hand
/// over another tenant's token, subject and metadata. The refusal does tell that the value is
/// tokenized elsewhere; it is audited like every refusal.
fn existing(auth: &Authorized<'_, Tokenize>, rec: &TokenRecord) -> Tokenized {
    if auth.allows(&rec.data_type, rec.subject.as_deref()) {
        Ok((response(rec), false))
    } else {
        Err(CoreError::Forbidden(ITEM_DENIED))
    }
}
