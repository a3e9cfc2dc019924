//! `PROVIDER:KEY` locations on the command line.

use std::sync::Arc;

use storage::config::Providers;
use storage::{Error, ErrorKind, Key, Prefix, Result, Storage};

/// A place on a provider: `media:videos/a.mp4`, or `videos/a.mp4` on the
/// default provider.
#[derive(Debug, Clone)]
pub(crate) struct Location {
    pub(crate) provider: String,
    pub(crate) path: String,
}

impl Location {
    /// Splits `PROVIDER:PATH` when `PROVIDER` is a configured provider;
    /// otherwise the whole text is a path on the default provider.
    pub(crate) fn parse(text: &str, providers: &Providers) -> Self {
        if let Some((name, path)) = text.split_once(':')
            && !name.contains('/')
            && providers.get(name).is_ok()
        {
            return Self {
                provider: name.to_owned(),
                path: path.to_owned(),
            };
        }
        Self {
            provider: providers.default_name().to_owned(),
            path: text.to_owned(),
        }
    }

    pub(crate) fn storage<'a>(&self, providers: &'a Providers) -> Result<&'a Arc<dyn Storage>> {
        providers.get(&self.provider)
    }

    pub(crate) fn key(&self) -> Result<Key> {
        if self.path.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{self} names no object; give a key after the provider"),
            ));
        }
        Ok(Key::new(self.path.as_str())?)
    }

    pub(crate) fn prefix(&self) -> Result<Prefix> {
        Ok(Prefix::new(self.path.as_str())?)
    }

    /// The path as a folder prefix: empty, or ending with `/`.
    pub(crate) fn folder_prefix(&self) -> String {
        if self.path.is_empty() || self.path.ends_with('/') {
            self.path.clone()
        } else {
            format!("{}/", self.path)
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.provider, self.path)
    }
}
