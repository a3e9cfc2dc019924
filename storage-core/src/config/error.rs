//! [`ConfigError`]: what is wrong with a configuration, and where.

use std::fmt;

use crate::config::source::{Position, Source};
use crate::error::{Error, ErrorKind};

/// A mistake in a configuration: the file, the line and column where it
/// is, and what was expected. Displays as one line:
///
/// `storage.toml:7:8: unknown provider type "s3"; ...`
///
/// Values taken from environment variables are masked in messages, so a
/// secret passed through `${VAR}` never appears in an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    file: String,
    position: Option<Position>,
    provider: Option<String>,
    message: String,
}

impl ConfigError {
    pub(crate) fn at(source: &Source, offset: Option<usize>, message: impl Into<String>) -> Self {
        Self {
            file: source.name.clone(),
            position: offset.map(|o| source.position(o)),
            provider: None,
            message: message.into(),
        }
    }

    pub(crate) fn in_file(file: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            position: None,
            provider: None,
            message: message.into(),
        }
    }

    pub(crate) fn with_provider(mut self, provider: &str) -> Self {
        self.provider = Some(provider.to_owned());
        self
    }

    /// Says the mistake is in the provider's `layers` table.
    pub(crate) fn in_layers(mut self) -> Self {
        self.message = format!("in layers: {}", self.message);
        self
    }

    /// Replaces every occurrence of each secret with `***`.
    pub(crate) fn masked(mut self, secrets: &[String]) -> Self {
        self.message = mask(&self.message, secrets);
        self
    }

    /// The file (or `<environment>`) the mistake is in.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The line and column, when the mistake has a place.
    pub fn position(&self) -> Option<Position> {
        self.position
    }

    /// The provider whose table has the mistake, if one.
    pub fn provider(&self) -> Option<&str> {
        self.provider.as_deref()
    }

    /// What is wrong, without the location.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(Position { line, column }) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        write!(f, ": ")?;
        if let Some(provider) = &self.provider {
            write!(f, "provider {provider:?}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

impl From<ConfigError> for Error {
    fn from(err: ConfigError) -> Self {
        Error::new(ErrorKind::InvalidConfig, err.to_string()).with_source(err)
    }
}

/// `text` with every secret (of four characters or more) replaced by `***`.
fn mask(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|s| s.len() >= 4)
        .fold(text.to_owned(), |text, secret| {
            text.replace(secret.as_str(), "***")
        })
}

/// The values a provider's table took from the environment, to mask in
/// messages made after the table was parsed (a plugin's refusal of its
/// settings, say). Prints none of them.
#[derive(Clone, Default)]
pub struct SecretMask(Vec<String>);

impl SecretMask {
    pub(crate) fn new(secrets: &[String]) -> Self {
        Self(secrets.to_vec())
    }

    /// `text` with every secret replaced by `***`.
    pub fn apply(&self, text: &str) -> String {
        mask(text, &self.0)
    }
}

impl fmt::Debug for SecretMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretMask({} values)", self.0.len())
    }
}
