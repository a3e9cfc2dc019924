//! HMAC-SHA256 signed URLs for the local backend, and their verification.
//!
//! A URL looks like
//! `{public_url}/{key, percent-encoded}?expires={unix seconds}[&content-type=...]&signature={hex}`.
//! The signature covers a version tag, the method, the key, the expiry
//! and the content type (empty when none was bound), so changing any of
//! them, or using the URL with the other method, fails verification.
//! Comparison is constant-time.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::Sha256;
use storage_core::{
    Error, ErrorKind, Key, PresignMethod, PresignOptions, PresignedRequest, Result, Secret, Url,
};

/// The shortest signing secret accepted.
pub const MIN_SECRET_LEN: usize = 16;

/// Characters left as they are in a key's URL path: unreserved characters
/// and the separator.
const PATH_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// Signs and verifies presigned URLs.
#[derive(Clone)]
pub struct UrlSigner {
    base: Url,
    /// The HMAC keyed once with the secret; cloned for each signature.
    keyed: Hmac<Sha256>,
}

impl fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UrlSigner")
            .field("base", &self.base.as_str())
            .field("secret", &"***")
            .finish()
    }
}

/// Why a presigned request was refused. The handler answers 403 for all of
/// them and says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The URL has no valid `expires` or `signature`, or has parameters
    /// that were never signed.
    Malformed,
    /// The URL expired.
    Expired,
    /// The signature does not match the method, key, expiry and content
    /// type of this request.
    BadSignature,
    /// The request's `Content-Type` differs from the signed one.
    WrongContentType,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl Refusal {
    /// A short explanation for the 403 body.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Malformed => "the presigned URL is malformed",
            Refusal::Expired => "the presigned URL has expired",
            Refusal::BadSignature => "the signature does not match this request",
            Refusal::WrongContentType => "the content type differs from the signed one",
        }
    }
}

impl UrlSigner {
    /// A signer for URLs under `base`, with `secret`. The secret must be at
    /// least [`MIN_SECRET_LEN`] bytes.
    pub fn new(base: Url, secret: Secret) -> Result<Self> {
        if secret.expose().len() < MIN_SECRET_LEN {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!("signing_secret must be at least {MIN_SECRET_LEN} bytes"),
            ));
        }
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "public_url must be an http or https URL",
            ));
        }
        let keyed = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).map_err(|_| {
            Error::new(
                ErrorKind::InvalidConfig,
                "signing_secret cannot key HMAC-SHA256",
            )
        })?;
        Ok(Self { base, keyed })
    }

    /// The URL path under which keys are served, without a trailing `/`.
    pub fn base_path(&self) -> &str {
        self.base.path().trim_end_matches('/')
    }

    fn mac(
        &self,
        method: PresignMethod,
        key: &str,
        expires: u64,
        content_type: &str,
    ) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
        for part in [
            "storage-local-v1",
            method.as_str(),
            key,
            &expires.to_string(),
            content_type,
        ] {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }

    /// Signs `method` on `key` until `now + expires_in`.
    pub fn sign(
        &self,
        method: PresignMethod,
        key: &Key,
        expires_in: Duration,
        options: &PresignOptions,
    ) -> Result<PresignedRequest> {
        let expires_at = SystemTime::now() + expires_in;
        let expires = expires_at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let content_type = match method {
            PresignMethod::Put => options.content_type.as_deref().unwrap_or(""),
            _ => "",
        };
        let signature = self
            .mac(method, key.as_str(), expires, content_type)
            .finalize()
            .into_bytes();
        let mut url = self.base.clone();
        let path = format!(
            "{}/{}",
            self.base_path(),
            utf8_percent_encode(key.as_str(), PATH_KEEP)
        );
        url.set_path(&path);
        url.set_query(None);
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("expires", &expires.to_string());
            if !content_type.is_empty() {
                query.append_pair("content-type", content_type);
            }
            query.append_pair("signature", &hex(&signature));
        }
        let expires_at = UNIX_EPOCH + Duration::from_secs(expires);
        let mut request = PresignedRequest::new(method, url, expires_at);
        if !content_type.is_empty() {
            request = request.with_header("content-type", content_type);
        }
        Ok(request)
    }

    /// Checks a request for `key` made with `method`, the URL's raw
    /// `query`, and the request's `Content-Type`. Returns `Ok` only if the
    /// URL was signed by this signer for exactly this request and has not
    /// expired.
    pub fn verify(
        &self,
        method: PresignMethod,
        key: &Key,
        query: &str,
        content_type: Option<&str>,
        now: SystemTime,
    ) -> std::result::Result<(), Refusal> {
        let mut expires: Option<String> = None;
        let mut signed_type: Option<String> = None;
        let mut signature: Option<String> = None;
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match name.as_ref() {
                "expires" => &mut expires,
                "content-type" => &mut signed_type,
                "signature" => &mut signature,
                _ => return Err(Refusal::Malformed),
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(Refusal::Malformed);
            }
        }
        let expires: u64 = expires
            .and_then(|e| e.parse().ok())
            .ok_or(Refusal::Malformed)?;
        let signature = signature
            .and_then(|s| unhex(&s))
            .ok_or(Refusal::Malformed)?;
        let signed_type = signed_type.unwrap_or_default();
        self.mac(method, key.as_str(), expires, &signed_type)
            .verify_slice(&signature)
            .map_err(|_| Refusal::BadSignature)?;
        let now = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(u64::MAX);
        if now > expires {
            return Err(Refusal::Expired);
        }
        if !signed_type.is_empty() && content_type != Some(signed_type.as_str()) {
            return Err(Refusal::WrongContentType);
        }
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> UrlSigner {
        let base = Url::parse("http://127.0.0.1:9/files/").unwrap();
        UrlSigner::new(base, Secret::new("0123456789abcdef-secret")).unwrap()
    }

    fn query(request: &PresignedRequest) -> String {
        request.url.query().unwrap_or_default().to_owned()
    }

    #[test]
    fn a_signed_url_verifies_for_its_method_key_and_type() {
        let key = Key::new("a b/ü+?.png").unwrap();
        let options = PresignOptions::default().with_content_type("image/png");
        let signed = signer()
            .sign(PresignMethod::Put, &key, Duration::from_secs(60), &options)
            .unwrap();
        assert!(signed.url.path().starts_with("/files/a%20b/"));
        let q = query(&signed);
        let now = SystemTime::now();
        assert_eq!(
            signer().verify(PresignMethod::Put, &key, &q, Some("image/png"), now),
            Ok(())
        );
        assert_eq!(
            signer().verify(PresignMethod::Get, &key, &q, Some("image/png"), now),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            signer().verify(PresignMethod::Put, &key, &q, Some("text/html"), now),
            Err(Refusal::WrongContentType)
        );
        let other = Key::new("a b/other").unwrap();
        assert_eq!(
            signer().verify(PresignMethod::Put, &other, &q, Some("image/png"), now),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn an_expired_url_is_refused() {
        let key = Key::new("k").unwrap();
        let signed = signer()
            .sign(
                PresignMethod::Get,
                &key,
                Duration::from_secs(10),
                &PresignOptions::default(),
            )
            .unwrap();
        let later = SystemTime::now() + Duration::from_secs(20);
        assert_eq!(
            signer().verify(PresignMethod::Get, &key, &query(&signed), None, later),
            Err(Refusal::Expired)
        );
    }

    #[test]
    fn a_changed_expiry_or_extra_parameter_is_refused() {
        let key = Key::new("k").unwrap();
        let signed = signer()
            .sign(
                PresignMethod::Get,
                &key,
                Duration::from_secs(10),
                &PresignOptions::default(),
            )
            .unwrap();
        let q = query(&signed);
        let now = SystemTime::now();
        let extended = q.replacen("expires=", "expires=9", 1);
        assert_eq!(
            signer().verify(PresignMethod::Get, &key, &extended, None, now),
            Err(Refusal::BadSignature)
        );
        let extra = format!("{q}&x=1");
        assert_eq!(
            signer().verify(PresignMethod::Get, &key, &extra, None, now),
            Err(Refusal::Malformed)
        );
    }

    #[test]
    fn a_short_secret_is_a_config_error() {
        let base = Url::parse("http://127.0.0.1/").unwrap();
        let err = UrlSigner::new(base, Secret::new("short")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(!err.to_string().contains("short"));
    }
}
