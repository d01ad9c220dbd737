//! Who calls the REST API: the `Authorization: Bearer <key>` header, as on gRPC, or the
//! session cookie a browser got from `POST /v1/session` (a `<video>` element, a download
//! link and an `EventSource` cannot send headers). The cookie holds the key itself,
//! `HttpOnly` (no script reads it) and `SameSite=Strict` (no other site's page sends it),
//! and is checked exactly as the header is, in constant time against the digests.

use super::{RestState, error::HttpError};
use crate::api::{auth::Caller, service::ApiError};
use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, header, request::Parts},
};
use std::sync::Arc;

/// The session cookie's name.
pub const COOKIE: &str = "storyreel_session";

/// An authenticated REST caller.
pub struct Authed(pub Caller);

/// The key in the request's session cookie, if any.
fn cookie_key(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .and_then(|(_, value)| {
            let pair = format!("k={value}");
            url::form_urlencoded::parse(pair.as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        })
}

/// The caller of a request's headers.
pub fn caller(state: &RestState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let header = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if header.is_some() {
        return Ok(state.keys.authenticate(header)?);
    }
    let from_cookie = cookie_key(headers).map(|key| format!("Bearer {key}"));
    Ok(state.keys.authenticate(from_cookie.as_deref())?)
}

impl FromRequestParts<Arc<RestState>> for Authed {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<RestState>) -> Result<Self, Self::Rejection> {
        Ok(Authed(caller(state, &parts.headers)?))
    }
}

/// `Set-Cookie` of a session for `key` (empty: the cookie's removal).
pub fn session_cookie(key: &str, secure: bool) -> String {
    let value: String = url::form_urlencoded::byte_serialize(key.as_bytes()).collect();
    let age = if key.is_empty() { "; Max-Age=0" } else { "" };
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict{secure}{age}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_carries_any_key_and_is_found_among_others() {
        let key = "k; with=odd chars%";
        let cookie = session_cookie(key, false);
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        let value = cookie.split(';').next().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            format!("theme=dark; {value}; other=1").parse().unwrap(),
        );
        assert_eq!(cookie_key(&headers).as_deref(), Some(key));
        assert!(
            session_cookie("", true).contains("Max-Age=0; ")
                || session_cookie("", true).ends_with("Max-Age=0")
        );
        assert!(cookie_key(&HeaderMap::new()).is_none());
    }
}
