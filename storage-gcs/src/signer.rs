//! V4 signed URLs (`GOOG4-RSA-SHA256`), computed locally from a
//! service-account key.
//!
//! The canonical request follows Google's specification and its Python
//! client byte for byte: the object name is percent-encoded except for
//! unreserved characters and `/` (so `?`, `#`, `%`, `+` and spaces are
//! encoded, which object_store's signer does not do), query parameters are
//! encoded except for unreserved characters and sorted, and the signed
//! headers are `host` plus `content-type` when one is bound.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};
use storage_core::{Error, ErrorKind, Result};

use crate::credentials::SigningKey;

/// Everything but `A-Z a-z 0-9 - . _ ~` is encoded (RFC 3986 unreserved).
pub(crate) const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// As [`UNRESERVED`], and `/` stays: the path of an object name.
const PATH: &AsciiSet = &UNRESERVED.remove(b'/');

/// GCS's longest signed URL lifetime: seven days.
pub(crate) const MAX_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// What a signed URL grants.
#[derive(Debug, Clone)]
pub(crate) struct SignedUrlRequest<'a> {
    /// `GET` or `PUT`.
    pub(crate) method: &'a str,
    /// Scheme and host the URL points at (`https://storage.googleapis.com`).
    pub(crate) endpoint: &'a str,
    pub(crate) bucket: &'a str,
    pub(crate) object: &'a str,
    pub(crate) expires_in: Duration,
    /// A content type the request must carry, bound by the signature.
    pub(crate) content_type: Option<&'a str>,
    /// The signing time (now, except in tests).
    pub(crate) at: SystemTime,
}

/// The signed URL for `request`.
pub(crate) fn signed_url(key: &SigningKey, request: &SignedUrlRequest<'_>) -> Result<String> {
    let canonical = canonical(&key.email, request)?;
    let signature = key.sign(canonical.string_to_sign.as_bytes())?;
    Ok(format!(
        "{}&X-Goog-Signature={}",
        canonical.unsigned_url,
        hex(&signature)
    ))
}

/// A request in canonical form: the URL without its signature, and the
/// string the signature is computed over.
#[derive(Debug)]
pub(crate) struct Canonical {
    pub(crate) unsigned_url: String,
    pub(crate) string_to_sign: String,
}

/// The canonical form of `request`, signed by `email`.
pub(crate) fn canonical(email: &str, request: &SignedUrlRequest<'_>) -> Result<Canonical> {
    let expires = request.expires_in.as_secs();
    if expires == 0 || request.expires_in > MAX_EXPIRY {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "GCS signed URLs live between 1 second and 7 days; {expires} seconds were asked"
            ),
        ));
    }
    let endpoint = request.endpoint.trim_end_matches('/');
    let host = endpoint
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(endpoint)
        .split('/')
        .next()
        .unwrap_or_default();
    let time: DateTime<Utc> = request.at.into();
    let timestamp = time.format("%Y%m%dT%H%M%SZ").to_string();
    let scope = format!("{}/auto/storage/goog4_request", &timestamp[..8]);

    let mut headers: Vec<(&str, String)> = vec![("host", host.to_owned())];
    if let Some(content_type) = request.content_type {
        headers.push((
            "content-type",
            content_type
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        ));
    }
    headers.sort();
    let signed_headers = headers
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect();

    let credential = format!("{email}/{scope}");
    let mut query: Vec<String> = [
        ("X-Goog-Algorithm", "GOOG4-RSA-SHA256"),
        ("X-Goog-Credential", credential.as_str()),
        ("X-Goog-Date", timestamp.as_str()),
        ("X-Goog-Expires", &expires.to_string()),
        ("X-Goog-SignedHeaders", signed_headers.as_str()),
    ]
    .iter()
    .map(|(name, value)| {
        format!(
            "{}={}",
            utf8_percent_encode(name, UNRESERVED),
            utf8_percent_encode(value, UNRESERVED)
        )
    })
    .collect();
    query.sort();
    let query = query.join("&");

    let resource = format!(
        "/{}/{}",
        request.bucket,
        utf8_percent_encode(request.object, PATH)
    );
    let canonical_request = [
        request.method,
        &resource,
        &query,
        &canonical_headers,
        &signed_headers,
        "UNSIGNED-PAYLOAD",
    ]
    .join("\n");
    let string_to_sign = format!(
        "GOOG4-RSA-SHA256\n{timestamp}\n{scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    Ok(Canonical {
        unsigned_url: format!("{endpoint}{resource}?{query}"),
        string_to_sign,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_are_encoded_except_unreserved_and_slash() {
        let encoded = utf8_percent_encode("a b+c?d#e%f/ü~_.-", PATH).to_string();
        assert_eq!(encoded, "a%20b%2Bc%3Fd%23e%25f/%C3%BC~_.-");
    }

    #[test]
    fn hex_is_lowercase_and_padded() {
        assert_eq!(hex(&[0, 0xab, 0x0f]), "00ab0f");
    }
}
