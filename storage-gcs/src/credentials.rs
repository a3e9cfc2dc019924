//! Who the requests are from: bearer tokens for the API, and the
//! service-account key that signs URLs.
//!
//! Tokens come from object_store's Google credential providers (service
//! account self-signed JWTs, application default credentials with refresh,
//! the metadata server), which cache and refresh them; this crate adds no
//! OAuth code of its own. URL signing needs the private key itself, which
//! object_store keeps private, so the key file is read here too.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use object_store::gcp::{GcpCredentialProvider, GoogleCloudStorageBuilder};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use serde::Deserialize;
use storage_core::{Error, ErrorKind, Result};

use crate::config::GcsConfig;

/// Where bearer tokens come from.
#[derive(Clone)]
pub(crate) enum Auth {
    /// No `Authorization` header (emulators, public buckets).
    Anonymous,
    /// A token provider that caches and refreshes.
    Tokens(GcpCredentialProvider),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Anonymous => f.write_str("Anonymous"),
            Auth::Tokens(_) => f.write_str("Tokens(..)"),
        }
    }
}

impl Auth {
    /// Credentials as configured (see [`GcsConfig`]); reads key files, no
    /// network.
    pub(crate) fn new(config: &GcsConfig) -> Result<Self> {
        if config.is_anonymous() {
            return Ok(Auth::Anonymous);
        }
        // An explicit key must not meet a second one from the environment
        // (object_store refuses a path and a key together).
        let mut builder =
            if config.service_account_key.is_some() || config.service_account_path.is_some() {
                GoogleCloudStorageBuilder::new()
            } else {
                GoogleCloudStorageBuilder::from_env()
            };
        builder = builder.with_bucket_name(&config.bucket);
        if let Some(key) = &config.service_account_key {
            builder = builder.with_service_account_key(key.expose());
        }
        if let Some(path) = &config.service_account_path {
            builder = builder.with_service_account_path(path.display().to_string());
        }
        let store = builder.build().map_err(|err| {
            // object_store's messages name the problem, not the key.
            Error::new(
                ErrorKind::InvalidConfig,
                format!("cannot load the Google credentials: {err}"),
            )
        })?;
        Ok(Auth::Tokens(Arc::clone(store.credentials())))
    }

    /// The bearer token for the next request, if any.
    pub(crate) async fn bearer(&self) -> Result<Option<String>> {
        match self {
            Auth::Anonymous => Ok(None),
            Auth::Tokens(provider) => {
                let credential = provider.get_credential().await.map_err(|err| {
                    Error::new(
                        ErrorKind::PermissionDenied,
                        format!("cannot get a Google access token: {err}"),
                    )
                    .with_retryable(true)
                })?;
                Ok(Some(credential.bearer.clone()).filter(|b| !b.is_empty()))
            }
        }
    }
}

/// A service account's email and RSA key, for V4 signed URLs.
pub(crate) struct SigningKey {
    pub(crate) email: String,
    key: RsaKeyPair,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// The fields of a service-account JSON key that signing needs.
#[derive(Deserialize)]
struct ServiceAccountFile {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    client_email: Option<String>,
    #[serde(default)]
    private_key: Option<String>,
}

impl SigningKey {
    /// The key from the configuration, else from the first `GOOGLE_*`
    /// variable that names a service-account key. `Ok(None)` when there is
    /// none (URLs cannot be signed); an error when one is named but bad.
    pub(crate) fn find(config: &GcsConfig) -> Result<Option<Self>> {
        if config.is_anonymous() && config.service_account_key.is_none() {
            return Ok(None);
        }
        if let Some(key) = &config.service_account_key {
            return Self::from_json(key.expose(), "service_account_key").map(Some);
        }
        if let Some(path) = &config.service_account_path {
            return Self::from_file(&path.display().to_string(), "service_account_path").map(Some);
        }
        if let Ok(key) = std::env::var("GOOGLE_SERVICE_ACCOUNT_KEY") {
            return Self::from_json(&key, "GOOGLE_SERVICE_ACCOUNT_KEY").map(Some);
        }
        for variable in [
            "GOOGLE_SERVICE_ACCOUNT_PATH",
            "GOOGLE_SERVICE_ACCOUNT",
            "GOOGLE_APPLICATION_CREDENTIALS",
        ] {
            if let Ok(path) = std::env::var(variable) {
                return match Self::from_file(&path, variable) {
                    Ok(key) => Ok(Some(key)),
                    // Application default credentials may be a user's
                    // login: fine for tokens, just not for signing.
                    Err(_) if variable == "GOOGLE_APPLICATION_CREDENTIALS" => Ok(None),
                    Err(err) => Err(err),
                };
            }
        }
        Ok(None)
    }

    fn from_file(path: &str, source: &str) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|err| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!("cannot read the service-account key {path:?} ({source}): {err}"),
            )
        })?;
        Self::from_json(&text, source)
    }

    /// Parses a service-account JSON key. Messages name the field that is
    /// wrong and never quote the key.
    pub(crate) fn from_json(json: &str, source: &str) -> Result<Self> {
        let invalid = |what: &str| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!("the service-account key ({source}) {what}"),
            )
        };
        let file: ServiceAccountFile =
            serde_json::from_str(json).map_err(|_| invalid("is not valid JSON"))?;
        if let Some(kind) = file.kind.as_deref().filter(|k| *k != "service_account") {
            return Err(invalid(&format!(
                "is of type {kind:?}, not \"service_account\""
            )));
        }
        let email = file
            .client_email
            .filter(|e| !e.is_empty())
            .ok_or_else(|| invalid("has no client_email"))?;
        let pem = file
            .private_key
            .filter(|k| !k.is_empty())
            .ok_or_else(|| invalid("has no private_key"))?;
        let der = PrivateKeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|_| invalid("has a private_key that is not a PEM private key"))?;
        let key = match &der {
            PrivateKeyDer::Pkcs8(der) => RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(der) => RsaKeyPair::from_der(der.secret_pkcs1_der()),
            _ => return Err(invalid("has a private_key that is not an RSA key")),
        }
        .map_err(|_| invalid("has a private_key that is not a usable RSA key"))?;
        Ok(Self { email, key })
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 over `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut signature,
            )
            .map_err(|_| Error::new(ErrorKind::Other, "RSA signing failed"))?;
        Ok(signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_keys_are_named_without_quoting_them() {
        let cases = [
            ("not json", "is not valid JSON"),
            (r#"{"type":"authorized_user"}"#, "authorized_user"),
            (r#"{"private_key":"x"}"#, "no client_email"),
            (r#"{"client_email":"a@b"}"#, "no private_key"),
            (
                r#"{"client_email":"a@b","private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}"#,
                "not a usable RSA key",
            ),
        ];
        for (json, expected) in cases {
            let err = SigningKey::from_json(json, "test").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig);
            assert!(err.message().contains(expected), "{json}: {err}");
            assert!(!err.to_string().contains("AAAA"), "{err}");
        }
    }
}
