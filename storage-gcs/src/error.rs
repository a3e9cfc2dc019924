//! The one table from GCS answers to the contract's error kinds.

use std::time::Duration;

use storage_core::{Error, ErrorKind};

/// The contract's kind, and whether a retry may succeed, for a GCS status
/// and the `reason` of its JSON error body:
///
/// | GCS answer                                        | kind                | retryable |
/// |---------------------------------------------------|---------------------|-----------|
/// | 404 `notFound`                                    | NotFound            | no        |
/// | 304                                               | NotModified         | no        |
/// | 412 `conditionNotMet` (a precondition, not a retry) | PreconditionFailed | no        |
/// | 409 `conflict`                                    | AlreadyExists       | no        |
/// | 416 `requestedRangeNotSatisfiable`                | RangeNotSatisfiable | no        |
/// | 401 `authError`, 403 `forbidden`                  | PermissionDenied    | no        |
/// | 403 `quotaExceeded`, 413 `uploadTooLarge`         | QuotaExceeded       | no        |
/// | 403 `rateLimitExceeded`/`userRateLimitExceeded`, 429 | Unavailable      | yes       |
/// | 408 request timeout                               | Timeout             | yes       |
/// | 500, 502, 503, 504                                | Unavailable         | yes       |
/// | 400 `invalid` on an object name                   | InvalidKey          | no        |
/// | 400 otherwise                                     | InvalidInput        | no        |
/// | 501                                               | Unsupported         | no        |
/// | anything else                                     | Other               | no        |
pub(crate) fn from_status(status: u16, reason: Option<&str>) -> (ErrorKind, bool) {
    match (status, reason) {
        (403, Some("rateLimitExceeded" | "userRateLimitExceeded")) | (429, _) => {
            (ErrorKind::Unavailable, true)
        }
        (403, Some("quotaExceeded")) | (413, _) => (ErrorKind::QuotaExceeded, false),
        (304, _) => (ErrorKind::NotModified, false),
        (400, Some("invalidObjectName")) => (ErrorKind::InvalidKey, false),
        (400, _) => (ErrorKind::InvalidInput, false),
        (401 | 403, _) => (ErrorKind::PermissionDenied, false),
        (404, _) => (ErrorKind::NotFound, false),
        (408, _) => (ErrorKind::Timeout, true),
        (409, _) => (ErrorKind::AlreadyExists, false),
        (412, _) => (ErrorKind::PreconditionFailed, false),
        (416, _) => (ErrorKind::RangeNotSatisfiable, false),
        (500 | 502 | 503 | 504, _) => (ErrorKind::Unavailable, true),
        (501, _) => (ErrorKind::Unsupported, false),
        _ => (ErrorKind::Other, false),
    }
}

/// The contract error for a non-success answer: the table above decides
/// the kind; the message carries the status and the server's own words.
pub(crate) fn from_response(status: u16, body: &str, retry_after: Option<Duration>) -> Error {
    let parsed = parse_error_body(body);
    let reason = parsed.as_ref().and_then(|p| p.reason.as_deref());
    let (kind, retryable) = from_status(status, reason);
    let detail = parsed
        .as_ref()
        .and_then(|p| p.message.clone())
        .unwrap_or_else(|| one_line(body, 200));
    let message = match kind {
        // GCS says which is missing ("No such object: b/k", "The specified
        // bucket does not exist."); a bare "Not Found" says nothing more.
        ErrorKind::NotFound if detail.is_empty() || detail.eq_ignore_ascii_case("not found") => {
            "no object at this key".to_owned()
        }
        _ if detail.is_empty() => format!("GCS answered {status}"),
        _ => format!("GCS answered {status}: {detail}"),
    };
    let mut error = Error::new(kind, message).with_retryable(retryable);
    if let Some(delay) = retry_after.filter(|_| retryable) {
        error = error.with_retry_after(delay);
    }
    error
}

/// Transport failures, before any answer (no URL in them: a signed or
/// session URL is a credential).
pub(crate) fn from_transport(err: reqwest::Error) -> Error {
    storage_core::http::transport_error(err, "GCS")
}

/// The parts of GCS's JSON error body the table reads:
/// `{"error": {"code": 412, "message": "...", "errors": [{"reason": "conditionNotMet"}]}}`.
#[derive(Debug, PartialEq)]
struct ErrorBody {
    message: Option<String>,
    reason: Option<String>,
}

fn parse_error_body(body: &str) -> Option<ErrorBody> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let error = value.get("error")?;
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_owned);
    Some(ErrorBody {
        message: text(error.get("message")).map(|m| one_line(&m, 300)),
        reason: text(
            error
                .get("errors")
                .and_then(|e| e.get(0))
                .and_then(|e| e.get("reason")),
        ),
    })
}

fn one_line(text: &str, limit: usize) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match joined.char_indices().nth(limit) {
        Some((at, _)) => format!("{}...", &joined[..at]),
        None => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_reasons_map_to_kinds_with_retryable_set() {
        let cases = [
            (404, Some("notFound"), ErrorKind::NotFound, false),
            (
                412,
                Some("conditionNotMet"),
                ErrorKind::PreconditionFailed,
                false,
            ),
            (304, None, ErrorKind::NotModified, false),
            (409, Some("conflict"), ErrorKind::AlreadyExists, false),
            (416, None, ErrorKind::RangeNotSatisfiable, false),
            (401, Some("authError"), ErrorKind::PermissionDenied, false),
            (403, Some("forbidden"), ErrorKind::PermissionDenied, false),
            (403, Some("quotaExceeded"), ErrorKind::QuotaExceeded, false),
            (403, Some("rateLimitExceeded"), ErrorKind::Unavailable, true),
            (413, None, ErrorKind::QuotaExceeded, false),
            (429, Some("rateLimitExceeded"), ErrorKind::Unavailable, true),
            (408, None, ErrorKind::Timeout, true),
            (500, Some("backendError"), ErrorKind::Unavailable, true),
            (502, None, ErrorKind::Unavailable, true),
            (503, None, ErrorKind::Unavailable, true),
            (504, None, ErrorKind::Unavailable, true),
            (400, Some("invalid"), ErrorKind::InvalidInput, false),
            (400, Some("invalidObjectName"), ErrorKind::InvalidKey, false),
            (501, None, ErrorKind::Unsupported, false),
            (418, None, ErrorKind::Other, false),
        ];
        for (status, reason, kind, retryable) in cases {
            assert_eq!(
                from_status(status, reason),
                (kind, retryable),
                "{status} {reason:?}"
            );
        }
    }

    #[test]
    fn the_reason_and_message_are_read_from_the_json_body() {
        let body = r#"{"error":{"code":412,"message":"At least one of the pre-conditions\nyou specified did not hold.","errors":[{"message":"x","domain":"global","reason":"conditionNotMet"}]}}"#;
        let error = from_response(412, body, None);
        assert_eq!(error.kind(), ErrorKind::PreconditionFailed);
        assert!(!error.is_retryable());
        assert!(
            error
                .message()
                .contains("412: At least one of the pre-conditions you specified"),
            "{}",
            error.message()
        );
    }

    #[test]
    fn retry_after_is_kept_only_on_retryable_answers() {
        let delay = Some(Duration::from_secs(3));
        let busy = from_response(503, "", delay);
        assert!(busy.is_retryable());
        assert_eq!(busy.retry_after(), delay);
        let missing = from_response(404, "not json", delay);
        assert_eq!(missing.kind(), ErrorKind::NotFound);
        assert_eq!(missing.retry_after(), None);
    }

    #[test]
    fn plain_text_bodies_are_kept_short_and_on_one_line() {
        let body = "line\n".repeat(500);
        let error = from_response(400, &body, None);
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
        assert!(error.message().len() < 1100, "{}", error.message());
        assert!(!error.message().contains('\n'));
    }
}
