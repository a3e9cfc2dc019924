//! What backends that speak HTTP with reqwest share (feature `http`):
//! transport failures as contract errors, `Retry-After`, and one resend of
//! an idempotent request whose pooled connection had just been closed.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, Response};

use crate::error::{Error, ErrorKind, Result};

/// A failure before any answer, as the contract's error: timeouts are
/// `Timeout`, refused or broken connections `Unavailable` (both
/// retryable). The message and the source carry no URL, since a signed or
/// session URL is a credential. `service` names the far side ("GCS").
pub fn transport_error(err: reqwest::Error, service: &str) -> Error {
    let (kind, what) = if err.is_timeout() {
        (ErrorKind::Timeout, "the request timed out")
    } else if err.is_connect() {
        (ErrorKind::Unavailable, "cannot connect")
    } else if err.is_body() || err.is_request() || err.is_decode() {
        (ErrorKind::Unavailable, "the connection failed")
    } else {
        (ErrorKind::Other, "the request failed")
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        if !detail.is_empty() {
            detail.push_str(": ");
        }
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    if detail.is_empty() {
        detail.push_str("no detail");
    }
    Error::new(kind, format!("{service}: {what}: {detail}"))
        .with_retryable(kind != ErrorKind::Other)
        .with_source(err.without_url())
}

/// `Retry-After` in seconds (the form storage services send).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Sends `request`. An idempotent one (GET, HEAD, DELETE) whose connection
/// failed before any answer is sent once more at once: a pooled connection
/// the server has just closed fails that way, and HTTP clients resend it.
/// Anything else is left to the retry layer.
pub async fn send(request: RequestBuilder, service: &str) -> Result<Response> {
    let idempotent = request
        .try_clone()
        .and_then(|r| r.build().ok())
        .is_some_and(|r| matches!(*r.method(), Method::GET | Method::HEAD | Method::DELETE));
    let again = if idempotent {
        request.try_clone()
    } else {
        None
    };
    match request.send().await {
        Err(err) if !err.is_timeout() && (err.is_connect() || err.is_request()) => match again {
            Some(again) => again
                .send()
                .await
                .map_err(|err| transport_error(err, service)),
            None => Err(transport_error(err, service)),
        },
        other => other.map_err(|err| transport_error(err, service)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_is_unavailable_retryable_and_names_no_url() {
        // A port that was free a moment ago: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/bucket/key?token=secret-token");
        let err = send(reqwest::Client::new().get(&url), "Test")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert!(err.is_retryable());
        let printed = format!("{err} {err:?}");
        assert!(!printed.contains("secret-token"), "{printed}");
        assert!(printed.contains("Test: cannot connect"), "{printed}");
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
