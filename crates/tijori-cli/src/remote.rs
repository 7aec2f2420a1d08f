//! Talking to a running server: requests with the caller's credential, and answers turned into
//! JSON or into an error that says what the server said.

use anyhow::{bail, Result};

use crate::Remote;

/// A request to the server at `path`, with the caller's credential.
pub(crate) fn request(remote: &Remote, method: &str, path: &str) -> ureq::Request {
    ureq::request(
        method,
        &format!("{}{path}", remote.addr.trim_end_matches('/')),
    )
    .set("Authorization", &format!("Bearer {}", remote.token))
}

pub(crate) fn get(remote: &Remote, path: &str) -> Result<serde_json::Value> {
    answer(request(remote, "GET", path).call())
}

pub(crate) fn answer(r: Result<ureq::Response, ureq::Error>) -> Result<serde_json::Value> {
    match r {
        Ok(resp) => Ok(resp.into_json()?),
        Err(ureq::Error::Status(code, resp)) => {
            let body: serde_json::Value = resp.into_json().unwrap_or_default();
            let msg = body["error"]["message"].as_str().unwrap_or("no message");
            bail!("the server answered {code}: {msg}")
        }
        Err(e) => bail!("cannot reach the server: {e}; is it running, and is --addr right?"),
    }
}
