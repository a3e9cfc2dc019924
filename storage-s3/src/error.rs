//! The one table from S3 (and object_store) errors to the contract's kinds.

use object_store::client::{HttpError, HttpErrorKind};
use storage_core::{Error, ErrorKind};

/// Maps an object_store error. Where the S3 response is known, its status
/// and error code decide:
///
/// | S3 answer                                   | kind                 | retryable |
/// |---------------------------------------------|----------------------|-----------|
/// | 404, NoSuchKey, NoSuchBucket                | NotFound             | no        |
/// | 412 PreconditionFailed                      | PreconditionFailed   | no        |
/// | 304                                         | NotModified          | no        |
/// | 409 (conditional write conflict)            | AlreadyExists        | no        |
/// | 416 InvalidRange                            | RangeNotSatisfiable  | no        |
/// | 401, 403, AccessDenied, SignatureDoesNotMatch | PermissionDenied   | no        |
/// | EntityTooLarge, QuotaExceeded               | QuotaExceeded        | no        |
/// | 400 RequestTimeout                          | Timeout              | yes       |
/// | 429, 500, 502, 503 SlowDown, 504            | Unavailable          | yes       |
/// | connection refused/reset, interrupted       | Unavailable          | yes       |
/// | request timed out                           | Timeout              | yes       |
/// | 501 NotImplemented, unsupported operation   | Unsupported          | no        |
/// | anything else                               | Other                | no        |
pub(crate) fn from_object_store(err: object_store::Error) -> Error {
    use object_store::Error as Os;
    let (kind, retryable) = match &err {
        Os::NotFound { .. } => (ErrorKind::NotFound, false),
        Os::AlreadyExists { .. } => (ErrorKind::AlreadyExists, false),
        Os::Precondition { .. } => (ErrorKind::PreconditionFailed, false),
        Os::NotModified { .. } => (ErrorKind::NotModified, false),
        Os::PermissionDenied { .. } | Os::Unauthenticated { .. } => {
            (ErrorKind::PermissionDenied, false)
        }
        Os::NotSupported { .. } | Os::NotImplemented { .. } => (ErrorKind::Unsupported, false),
        Os::InvalidPath { .. } => (ErrorKind::InvalidKey, false),
        _ => classify_source(&err),
    };
    let message = match kind {
        ErrorKind::NotFound => "no object at this key".to_owned(),
        _ => one_line(&err.to_string()),
    };
    Error::new(kind, message)
        .with_retryable(retryable)
        .with_source(err)
}

/// Looks through the error's sources for the transport failure or the HTTP
/// answer behind a generic error. object_store keeps its response error
/// type private, so the status and the S3 error code are read from its
/// message ("... status code: 503 Service Unavailable: <Error><Code>SlowDown
/// ..."); `tests` pins that format.
fn classify_source(err: &(dyn std::error::Error + 'static)) -> (ErrorKind, bool) {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if let Some(status) = response_status(&text) {
            return from_status(status, error_code(&text).as_deref());
        }
        if let Some(http) = e.downcast_ref::<HttpError>() {
            return match http.kind() {
                HttpErrorKind::Timeout => (ErrorKind::Timeout, true),
                HttpErrorKind::Connect | HttpErrorKind::Request | HttpErrorKind::Interrupted => {
                    (ErrorKind::Unavailable, true)
                }
                _ => (ErrorKind::Other, false),
            };
        }
        current = e.source();
    }
    (ErrorKind::Other, false)
}

/// The contract's kind for an S3 status and error code.
pub(crate) fn from_status(status: u16, code: Option<&str>) -> (ErrorKind, bool) {
    match (status, code) {
        (_, Some("NoSuchKey" | "NoSuchBucket")) | (404, _) => (ErrorKind::NotFound, false),
        (_, Some("SlowDown" | "ServiceUnavailable" | "InternalError")) => {
            (ErrorKind::Unavailable, true)
        }
        (_, Some("RequestTimeout")) => (ErrorKind::Timeout, true),
        (_, Some("EntityTooLarge" | "QuotaExceeded" | "TooManyBuckets")) => {
            (ErrorKind::QuotaExceeded, false)
        }
        (
            _,
            Some("AccessDenied" | "SignatureDoesNotMatch" | "InvalidAccessKeyId" | "ExpiredToken"),
        ) => (ErrorKind::PermissionDenied, false),
        (304, _) => (ErrorKind::NotModified, false),
        (401 | 403, _) => (ErrorKind::PermissionDenied, false),
        (409, _) => (ErrorKind::AlreadyExists, false),
        (412, _) => (ErrorKind::PreconditionFailed, false),
        (416, _) => (ErrorKind::RangeNotSatisfiable, false),
        (429 | 500 | 502 | 503 | 504, _) => (ErrorKind::Unavailable, true),
        (501, _) => (ErrorKind::Unsupported, false),
        _ => (ErrorKind::Other, false),
    }
}

/// The HTTP status in an object_store response error message.
fn response_status(text: &str) -> Option<u16> {
    let marker = "status code: ";
    let start = text.find(marker)? + marker.len();
    text.get(start..start + 3)?.parse().ok()
}

/// The `<Code>` of an S3 XML error body.
pub(crate) fn error_code(body: &str) -> Option<String> {
    let start = body.find("<Code>")? + "<Code>".len();
    let end = body[start..].find("</Code>")? + start;
    Some(body[start..end].trim().to_owned())
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes_map_to_kinds_with_retryable_set() {
        let cases = [
            (404, None, ErrorKind::NotFound, false),
            (503, Some("SlowDown"), ErrorKind::Unavailable, true),
            (500, None, ErrorKind::Unavailable, true),
            (429, None, ErrorKind::Unavailable, true),
            (400, Some("RequestTimeout"), ErrorKind::Timeout, true),
            (
                403,
                Some("SignatureDoesNotMatch"),
                ErrorKind::PermissionDenied,
                false,
            ),
            (412, None, ErrorKind::PreconditionFailed, false),
            (
                416,
                Some("InvalidRange"),
                ErrorKind::RangeNotSatisfiable,
                false,
            ),
            (400, Some("EntityTooLarge"), ErrorKind::QuotaExceeded, false),
            (400, Some("InvalidArgument"), ErrorKind::Other, false),
        ];
        for (status, code, kind, retryable) in cases {
            assert_eq!(
                from_status(status, code),
                (kind, retryable),
                "{status} {code:?}"
            );
        }
    }

    #[test]
    fn the_status_is_read_from_object_stores_message() {
        let text = "Error performing GET http://127.0.0.1:9/b/k in 2ms - Server returned non-2xx status code: 503 Service Unavailable: <Error><Code>SlowDown</Code></Error>";
        assert_eq!(response_status(text), Some(503));
        assert_eq!(error_code(text).as_deref(), Some("SlowDown"));
        assert_eq!(response_status("connection refused"), None);
    }

    #[test]
    fn the_error_code_is_read_from_the_xml_body() {
        let body =
            "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>Reduce</Message></Error>";
        assert_eq!(error_code(body).as_deref(), Some("SlowDown"));
        assert_eq!(error_code("not xml"), None);
    }
}
