//! The one table from Supabase Storage answers to the contract's kinds.
//!
//! Supabase answers almost every error with HTTP 400 and puts the real
//! status, as a string, in the JSON body with a stable `code`:
//! `{"statusCode":"404","error":"not_found","message":"Object not found","code":"NoSuchKey"}`.
//! The code decides first, then the body's status, then the HTTP status.

use std::time::Duration;

use storage_core::{Error, ErrorKind};

/// The contract's kind, and whether a retry may succeed:
///
/// | Supabase code (body status)                         | kind                | retryable |
/// |------------------------------------------------------|---------------------|-----------|
/// | NoSuchKey, NoSuchBucket (404)                        | NotFound            | no        |
/// | KeyAlreadyExists, ResourceAlreadyExists, BucketAlreadyExists (409) | AlreadyExists | no |
/// | InvalidKey, InvalidBucketName                        | InvalidKey          | no        |
/// | InvalidMimeType (415), InvalidRequest (400)          | InvalidInput        | no        |
/// | EntityTooLarge (413)                                 | QuotaExceeded       | no        |
/// | AccessDenied (403), InvalidJWT, InvalidSignature     | PermissionDenied    | no        |
/// | InvalidRange (416)                                   | RangeNotSatisfiable | no        |
/// | ResourceNotEmpty (409)                               | PreconditionFailed  | no        |
/// | 304                                                  | NotModified         | no        |
/// | 408                                                  | Timeout             | yes       |
/// | 429, 500, 502, 503, 504                              | Unavailable         | yes       |
/// | other 404 (a route or a related resource missing)    | NotFound            | no        |
/// | anything else                                        | Other               | no        |
pub(crate) fn classify(
    http_status: u16,
    body_status: Option<u16>,
    code: Option<&str>,
) -> (ErrorKind, bool) {
    match code {
        Some("NoSuchKey" | "NoSuchBucket") => return (ErrorKind::NotFound, false),
        Some("KeyAlreadyExists" | "ResourceAlreadyExists" | "BucketAlreadyExists") => {
            return (ErrorKind::AlreadyExists, false);
        }
        Some("InvalidKey" | "InvalidBucketName") => return (ErrorKind::InvalidKey, false),
        Some("InvalidMimeType") => return (ErrorKind::InvalidInput, false),
        Some("EntityTooLarge") => return (ErrorKind::QuotaExceeded, false),
        Some("AccessDenied" | "InvalidJWT" | "InvalidSignature") => {
            return (ErrorKind::PermissionDenied, false);
        }
        Some("InvalidRange") => return (ErrorKind::RangeNotSatisfiable, false),
        Some("ResourceNotEmpty") => return (ErrorKind::PreconditionFailed, false),
        _ => {}
    }
    match body_status.unwrap_or(http_status) {
        304 => (ErrorKind::NotModified, false),
        400 => (ErrorKind::InvalidInput, false),
        401 | 403 => (ErrorKind::PermissionDenied, false),
        404 => (ErrorKind::NotFound, false),
        408 => (ErrorKind::Timeout, true),
        409 => (ErrorKind::AlreadyExists, false),
        413 => (ErrorKind::QuotaExceeded, false),
        415 => (ErrorKind::InvalidInput, false),
        416 => (ErrorKind::RangeNotSatisfiable, false),
        429 | 500 | 502 | 503 | 504 => (ErrorKind::Unavailable, true),
        _ => (ErrorKind::Other, false),
    }
}

/// The contract error for a non-success answer and its body.
pub(crate) fn from_response(http_status: u16, body: &str, retry_after: Option<Duration>) -> Error {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let field = |name: &str| parsed.as_ref().and_then(|v| v.get(name));
    // `statusCode` is a string on object routes, a number at the root.
    let body_status = field("statusCode").and_then(|v| match v {
        serde_json::Value::String(s) => s.parse().ok(),
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        _ => None,
    });
    let code = field("code").and_then(|v| v.as_str());
    let (kind, retryable) = classify(http_status, body_status, code);
    let detail = field("message")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| body.split_whitespace().collect::<Vec<_>>().join(" "));
    let detail: String = detail.chars().take(300).collect();
    let message = match (kind, code) {
        (ErrorKind::NotFound, Some("NoSuchKey")) => "no object at this key".to_owned(),
        (_, Some(code)) => format!("Supabase answered {code}: {detail}"),
        _ if detail.is_empty() => format!("Supabase answered {http_status}"),
        _ => format!(
            "Supabase answered {}: {detail}",
            body_status.unwrap_or(http_status)
        ),
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
    storage_core::http::transport_error(err, "Supabase")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_facts_files_answers_map_to_kinds() {
        let cases = [
            (
                r#"{"statusCode":"404","error":"not_found","message":"Object not found","code":"NoSuchKey"}"#,
                ErrorKind::NotFound,
            ),
            (
                r#"{"statusCode":"404","error":"Bucket not found","message":"Bucket not found","code":"NoSuchBucket"}"#,
                ErrorKind::NotFound,
            ),
            (
                r#"{"statusCode":"404","error":"InvalidRequest","message":"The related resource does not exist","code":"InvalidRequest"}"#,
                ErrorKind::NotFound,
            ),
            (
                r#"{"statusCode":"409","error":"Duplicate","message":"The resource already exists","code":"KeyAlreadyExists"}"#,
                ErrorKind::AlreadyExists,
            ),
            (
                r#"{"statusCode":"409","error":"Duplicate","message":"The resource already exists","code":"ResourceAlreadyExists"}"#,
                ErrorKind::AlreadyExists,
            ),
            (
                r#"{"statusCode":"400","error":"InvalidKey","message":"Invalid key: ü","code":"InvalidKey"}"#,
                ErrorKind::InvalidKey,
            ),
            (
                r#"{"statusCode":"415","error":"invalid_mime_type","message":"mime type application/json is not supported","code":"InvalidMimeType"}"#,
                ErrorKind::InvalidInput,
            ),
            (
                r#"{"statusCode":"413","error":"Payload too large","message":"The object exceeded the maximum allowed size","code":"EntityTooLarge"}"#,
                ErrorKind::QuotaExceeded,
            ),
            (
                r#"{"statusCode":"403","error":"Unauthorized","message":"Invalid Compact JWS","code":"AccessDenied"}"#,
                ErrorKind::PermissionDenied,
            ),
            (
                r#"{"statusCode":"400","error":"InvalidJWT","message":"\"exp\" claim timestamp check failed","code":"InvalidJWT"}"#,
                ErrorKind::PermissionDenied,
            ),
            (
                r#"{"statusCode":"400","error":"InvalidSignature","message":"Invalid signature","code":"InvalidSignature"}"#,
                ErrorKind::PermissionDenied,
            ),
            (
                r#"{"statusCode":"400","error":"Error","message":"headers must have required property 'authorization'","code":"InvalidRequest"}"#,
                ErrorKind::InvalidInput,
            ),
            (
                r#"{"statusCode":"416","error":"invalid_range","message":"invalid range provided","code":"InvalidRange"}"#,
                ErrorKind::RangeNotSatisfiable,
            ),
            (
                r#"{"message":"Route GET:/nope not found","error":"Not Found","statusCode":404}"#,
                ErrorKind::NotFound,
            ),
        ];
        for (body, kind) in cases {
            let error = from_response(400, body, None);
            assert_eq!(error.kind(), kind, "{body}");
            assert!(!error.is_retryable(), "{body}");
        }
    }

    #[test]
    fn server_failures_are_retryable_and_keep_retry_after() {
        let delay = Some(Duration::from_secs(2));
        for status in [429, 500, 502, 503, 504] {
            let error = from_response(status, "", delay);
            assert_eq!(error.kind(), ErrorKind::Unavailable, "{status}");
            assert!(error.is_retryable());
            assert_eq!(error.retry_after(), delay);
        }
        assert_eq!(from_response(408, "", None).kind(), ErrorKind::Timeout);
    }
}
