//! The one error type every provider returns.

use std::fmt;
use std::time::Duration;

use crate::key::InvalidKeyError;

/// A `Result` whose error is the contract's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, as something a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The object (or the copy's source) does not exist.
    NotFound,
    /// A create-only write found an object already there.
    AlreadyExists,
    /// An `if-match` condition failed: the object changed, or is missing
    /// for a replace-if-match write.
    PreconditionFailed,
    /// A get with `if-none-match` matched the current etag: the caller's
    /// copy is current.
    NotModified,
    /// A byte range that the object cannot satisfy (start at or past the
    /// end).
    RangeNotSatisfiable,
    /// The credentials do not allow this operation.
    PermissionDenied,
    /// The backend is out of space or over a quota.
    QuotaExceeded,
    /// A transient failure (5xx, connection reset, throttling): retrying
    /// may succeed.
    Unavailable,
    /// The operation or a stream ran out of time.
    Timeout,
    /// The data read does not match its stored checksum.
    Corruption,
    /// The key or prefix broke a [`Key`](crate::Key) rule. Nothing was
    /// sent to the backend.
    InvalidKey,
    /// The configuration is missing something or has a wrong value.
    InvalidConfig,
    /// An argument other than the key is wrong (an empty range, an expiry
    /// too long for the backend, a body shorter than it claimed).
    InvalidInput,
    /// The backend cannot do this; see
    /// [`Capabilities`](crate::Capabilities).
    Unsupported,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// Whether an error of this kind is, by default, worth retrying.
    pub fn is_retryable_by_default(self) -> bool {
        matches!(self, ErrorKind::Unavailable | ErrorKind::Timeout)
    }

    /// The kind in words (`not found`, `unavailable`), as in messages,
    /// logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::PreconditionFailed => "precondition failed",
            ErrorKind::NotModified => "not modified",
            ErrorKind::RangeNotSatisfiable => "range not satisfiable",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::QuotaExceeded => "quota exceeded",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timed out",
            ErrorKind::Corruption => "corrupted data",
            ErrorKind::InvalidKey => "invalid key",
            ErrorKind::InvalidConfig => "invalid configuration",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Other => "error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The operation an error happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// [`Storage::put`](crate::Storage::put).
    Put,
    /// [`Storage::get`](crate::Storage::get).
    Get,
    /// [`Storage::head`](crate::Storage::head).
    Head,
    /// [`Storage::delete`](crate::Storage::delete).
    Delete,
    /// [`Storage::list`](crate::Storage::list).
    List,
    /// [`Storage::copy`](crate::Storage::copy).
    Copy,
    /// [`Storage::rename`](crate::Storage::rename).
    Rename,
    /// [`Storage::presign`](crate::Storage::presign).
    Presign,
    /// Building a provider from its configuration.
    Open,
}

impl Operation {
    /// The operation's name in lower case, as in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Put => "put",
            Operation::Get => "get",
            Operation::Head => "head",
            Operation::Delete => "delete",
            Operation::List => "list",
            Operation::Copy => "copy",
            Operation::Rename => "rename",
            Operation::Presign => "presign",
            Operation::Open => "open",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failed storage operation.
///
/// It carries a [`kind`](Error::kind) to match on, the provider, operation
/// and key it happened to, a message, the underlying error as its
/// [`source`](std::error::Error::source), and whether a retry may succeed.
/// It never contains a credential: backends build messages from status
/// codes, error codes and keys only.
///
/// It displays as one lower-case line:
/// `put "a/b.png" on provider "media": already exists: the key is taken`.
#[derive(thiserror::Error)]
pub struct Error {
    kind: ErrorKind,
    operation: Option<Operation>,
    provider: Option<String>,
    key: Option<String>,
    message: String,
    retryable: bool,
    retry_after: Option<Duration>,
    #[source]
    source: Option<Source>,
}

impl Error {
    /// A new error of `kind` with a message; retryable as the kind's
    /// default says.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            operation: None,
            provider: None,
            key: None,
            message: message.into(),
            retryable: kind.is_retryable_by_default(),
            retry_after: None,
            source: None,
        }
    }

    /// A [`NotFound`](ErrorKind::NotFound) error for `key`.
    pub fn not_found(key: &str) -> Self {
        Self::new(ErrorKind::NotFound, "no object at this key").with_key(key)
    }

    /// An [`Unsupported`](ErrorKind::Unsupported) error saying what is not
    /// supported.
    pub fn unsupported(what: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, what)
    }

    /// Sets the operation.
    pub fn with_operation(mut self, operation: Operation) -> Self {
        self.operation = Some(operation);
        self
    }

    /// Sets the provider's name.
    pub fn with_provider(mut self, provider: impl Into<String>) -> Self {
        self.provider = Some(provider.into());
        self
    }

    /// Sets the key the operation was about.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Keeps `source` as the underlying cause.
    pub fn with_source(mut self, source: impl Into<Source>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Overrides whether a retry may succeed.
    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// Records how long the backend asked the caller to wait (HTTP
    /// `Retry-After`).
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }

    /// Fills in the operation, provider and key where they are not set yet;
    /// providers call this once at their boundary.
    pub fn context(mut self, operation: Operation, provider: &str, key: Option<&str>) -> Self {
        self.operation.get_or_insert(operation);
        if self.provider.is_none() {
            self.provider = Some(provider.to_owned());
        }
        if self.key.is_none() {
            self.key = key.map(str::to_owned);
        }
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The operation, if known.
    pub fn operation(&self) -> Option<Operation> {
        self.operation
    }

    /// The provider's name, if known.
    pub fn provider(&self) -> Option<&str> {
        self.provider.as_deref()
    }

    /// The key, if the operation was about one.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The message, without context.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether retrying the same operation may succeed.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// How long the backend asked to wait before a retry, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut wrote = false;
        if let Some(operation) = self.operation {
            write!(f, "{operation}")?;
            wrote = true;
        }
        if let Some(key) = &self.key {
            if wrote {
                f.write_str(" ")?;
            }
            write!(f, "{key:?}")?;
            wrote = true;
        }
        if let Some(provider) = &self.provider {
            if wrote {
                f.write_str(" ")?;
            }
            write!(f, "on provider {provider:?}")?;
            wrote = true;
        }
        if wrote {
            f.write_str(": ")?;
        }
        write!(f, "{}", self.kind)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind)
            .field("operation", &self.operation)
            .field("provider", &self.provider)
            .field("key", &self.key)
            .field("message", &self.message)
            .field("retryable", &self.retryable);
        if let Some(delay) = self.retry_after {
            d.field("retry_after", &delay);
        }
        if let Some(source) = &self.source {
            d.field("source", &source.to_string());
        }
        d.finish()
    }
}

impl From<InvalidKeyError> for Error {
    fn from(err: InvalidKeyError) -> Self {
        let key = err.key().to_owned();
        Error::new(ErrorKind::InvalidKey, err.rule().describe())
            .with_key(key)
            .with_source(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_reads_as_one_line_with_context() {
        let err = Error::new(ErrorKind::AlreadyExists, "the key is taken").context(
            Operation::Put,
            "media",
            Some("a/b.png"),
        );
        assert_eq!(
            err.to_string(),
            "put \"a/b.png\" on provider \"media\": already exists: the key is taken"
        );
        assert!(!err.is_retryable());
    }

    #[test]
    fn transient_kinds_are_retryable_unless_overridden() {
        assert!(Error::new(ErrorKind::Unavailable, "503").is_retryable());
        assert!(Error::new(ErrorKind::Timeout, "").is_retryable());
        assert!(
            !Error::new(ErrorKind::Unavailable, "")
                .with_retryable(false)
                .is_retryable()
        );
        assert!(!Error::new(ErrorKind::NotFound, "").is_retryable());
    }

    #[test]
    fn context_never_overwrites_what_is_set() {
        let err = Error::not_found("inner").context(Operation::Copy, "p", Some("outer"));
        assert_eq!(err.key(), Some("inner"));
        assert_eq!(err.operation(), Some(Operation::Copy));
    }
}
