//! The provider registry: which backend types this binary has, and how to
//! build providers from a [`Config`].
//!
//! Each backend crate submits one [`ProviderFactory`] with
//! [`inventory::submit!`]; the registry collects every submitted factory
//! at run time, so adding a backend is adding a dependency.
//!
//! # The linker pitfall
//!
//! `inventory` works through static constructors. A crate that the binary
//! depends on but never references may not be linked at all, and then its
//! factory silently does not exist ("unknown provider type" at run time).
//! Two ways out:
//!
//! - Use the facade crate `storage`: its `registry()` references every
//!   backend its features turn on, so this cannot happen.
//! - Otherwise reference the backend from your code, for example by
//!   passing its factory explicitly:
//!   `Registry::with_factories(&[&storage_local::FACTORY])`.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeValue, ValueDeserializer};

use crate::config::error::{ConfigError, SecretMask};
use crate::config::source::Source;
use crate::config::{Config, ProviderEntryView};
use crate::error::{Error, Result};
use crate::layers::{BreakerState, Fallback, FallbackConfig, MetricsSnapshot, Stacked, stack};
use crate::storage::Storage;

/// What a factory returns: the provider, opened when awaited.
pub type ProviderFuture = Pin<Box<dyn Future<Output = Result<Arc<dyn Storage>>> + Send + 'static>>;

/// A backend type: its name in `type = "..."`, a description, and how to
/// build it from its table.
///
/// `create` must only parse and check the table ([`ProviderConfig::parse`])
/// and return a future; all I/O (opening folders, connecting) happens when
/// the future is awaited, so [`Registry::check`] can validate a
/// configuration without touching anything.
#[derive(Clone, Copy)]
pub struct ProviderFactory {
    /// The name used in `type = "..."`.
    pub type_name: &'static str,
    /// One line for `storage providers`.
    pub description: &'static str,
    /// Parses the table and returns the future that opens the provider.
    pub create: fn(&ProviderConfig<'_>) -> std::result::Result<ProviderFuture, ConfigError>,
}

impl fmt::Debug for ProviderFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderFactory")
            .field("type_name", &self.type_name)
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

inventory::collect!(ProviderFactory);

/// The first-party types and the facade feature that adds each, for the
/// "unknown type" message.
const KNOWN_TYPES: &[(&str, &str)] = &[
    ("local", "local"),
    ("s3", "s3"),
    ("gcs", "gcs"),
    ("supabase", "supabase"),
    ("plugin", "plugins"),
];

/// One provider's table, handed to its factory.
pub struct ProviderConfig<'a> {
    name: &'a str,
    value: Spanned<DeValue<'a>>,
    source: &'a Source,
    secrets: &'a [String],
}

impl fmt::Debug for ProviderConfig<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("name", &self.name)
            .field("source", &self.source.name)
            .finish_non_exhaustive()
    }
}

impl<'a> ProviderConfig<'a> {
    pub(crate) fn new(
        name: &'a str,
        value: Spanned<DeValue<'a>>,
        source: &'a Source,
        secrets: &'a [String],
    ) -> Self {
        Self {
            name,
            value,
            source,
            secrets,
        }
    }

    /// The provider's name (the `NAME` of `[providers.NAME]`).
    pub fn name(&self) -> &str {
        self.name
    }

    /// The folder that relative paths in this table are relative to: the
    /// configuration file's folder (`None`: the current folder).
    pub fn base_dir(&self) -> Option<&Path> {
        self.source.base_dir.as_deref()
    }

    /// Deserializes the table (without `type`) into the backend's config
    /// struct. Use `#[serde(deny_unknown_fields)]` on it. Mistakes come back
    /// with the file, line and column; values from environment variables
    /// are masked.
    pub fn parse<T: DeserializeOwned>(&self) -> std::result::Result<T, ConfigError> {
        T::deserialize(ValueDeserializer::from(self.value.clone())).map_err(|err| {
            let offset = err
                .span()
                .map(|s| s.start)
                .or(Some(self.value.span().start));
            ConfigError::at(self.source, offset, err.message().trim().to_owned())
                .with_provider(self.name)
                .masked(self.secrets)
        })
    }

    /// The values this table took from the environment, to mask in
    /// messages made later (when the provider opens); see [`SecretMask`].
    pub fn secret_mask(&self) -> SecretMask {
        SecretMask::new(self.secrets)
    }

    /// An error about the value of `field` in this provider's table
    /// (about the table itself if it has no such field).
    pub fn field_error(&self, field: &str, message: impl Into<String>) -> ConfigError {
        let offset = match self.value.get_ref() {
            DeValue::Table(table) => table
                .iter()
                .find(|(name, _)| name.get_ref() == field)
                .map(|(_, value)| value.span().start),
            _ => None,
        };
        ConfigError::at(
            self.source,
            offset.or(Some(self.value.span().start)),
            message,
        )
        .with_provider(self.name)
        .masked(self.secrets)
    }

    /// An error about this provider's table, for checks serde cannot make.
    pub fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::at(self.source, Some(self.value.span().start), message)
            .with_provider(self.name)
            .masked(self.secrets)
    }
}

/// The backend types this binary has.
#[derive(Debug, Clone)]
pub struct Registry {
    factories: BTreeMap<&'static str, ProviderFactory>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// Every factory submitted with `inventory` and linked into this
    /// binary (see the linker pitfall above).
    pub fn new() -> Self {
        Self::with_factories(&[])
    }

    /// The submitted factories plus `extra` (which win on a name clash).
    pub fn with_factories(extra: &[&ProviderFactory]) -> Self {
        let mut factories = BTreeMap::new();
        for factory in inventory::iter::<ProviderFactory> {
            factories.insert(factory.type_name, *factory);
        }
        for factory in extra {
            factories.insert(factory.type_name, **factory);
        }
        Self { factories }
    }

    /// Adds or replaces a factory.
    pub fn register(&mut self, factory: ProviderFactory) {
        self.factories.insert(factory.type_name, factory);
    }

    /// The types this binary has, by name.
    pub fn types(&self) -> impl Iterator<Item = &ProviderFactory> {
        self.factories.values()
    }

    fn factory(
        &self,
        config: &Config,
        view: &ProviderEntryView<'_>,
        name: &str,
    ) -> std::result::Result<&ProviderFactory, ConfigError> {
        self.factories.get(view.type_name).ok_or_else(|| {
            let have: Vec<&str> = self.factories.keys().copied().collect();
            let hint = match KNOWN_TYPES.iter().find(|(t, _)| *t == view.type_name) {
                Some((_, feature)) => format!(
                    "enable the {feature:?} feature of the storage crate (or link its backend crate) to add it"
                ),
                None => "no feature adds it: link the crate that provides it, or load it with type = \"plugin\"".to_owned(),
            };
            ConfigError::at(
                &config.source,
                Some(view.type_offset),
                format!(
                    "unknown provider type {:?}; this binary has: {}; {hint}",
                    view.type_name,
                    have.join(", ")
                ),
            )
            .with_provider(name)
        })
    }

    /// Checks every provider's table with its factory, opening nothing.
    pub fn check(&self, config: &Config) -> std::result::Result<(), ConfigError> {
        for (name, _) in config.providers() {
            config.with_provider_table(name, |table, view| {
                let factory = self.factory(config, view, name)?;
                (factory.create)(&table).map(drop)
            })?;
        }
        Ok(())
    }

    /// Builds the provider `name`, wrapped in the layers of its `layers`
    /// table (metrics and audit when it has none; see
    /// [`layers`](crate::layers)).
    pub async fn build(&self, config: &Config, name: &str) -> Result<Arc<dyn Storage>> {
        Ok(self.build_stacked(config, name).await?.storage)
    }

    /// As [`build`](Self::build), with handles on the stateful layers.
    /// A fallback layer needs the other providers: only
    /// [`build_all`](Self::build_all) applies it.
    pub async fn build_stacked(&self, config: &Config, name: &str) -> Result<Stacked> {
        Ok(self.build_with_fallback(config, name).await?.0)
    }

    async fn build_with_fallback(
        &self,
        config: &Config,
        name: &str,
    ) -> Result<(Stacked, Option<FallbackConfig>)> {
        let (future, layers) = config.with_provider_table(name, |table, view| {
            let factory = self.factory(config, view, name)?;
            Ok(((factory.create)(&table)?, view.layers.clone()))
        })?;
        let backend = future.await?;
        Ok((stack(backend, &layers), layers.fallback.clone()))
    }

    /// Builds every configured provider, then puts the fallback layers
    /// (which need the other providers) around those that ask for one.
    pub async fn build_all(&self, config: &Config) -> Result<Providers> {
        self.check(config)?;
        let mut providers = BTreeMap::new();
        let mut stacks = BTreeMap::new();
        let mut fallbacks = Vec::new();
        for (name, _) in config.providers() {
            let (stacked, fallback) = self.build_with_fallback(config, name).await?;
            providers.insert(name.to_owned(), stacked.storage.clone());
            stacks.insert(name.to_owned(), stacked);
            if let Some(fallback) = fallback {
                fallbacks.push((name.to_owned(), fallback));
            }
        }
        for (name, fallback) in fallbacks {
            let mut others = Vec::new();
            for other in &fallback.providers {
                let store = providers.get(other).cloned().ok_or_else(|| {
                    Error::new(
                        crate::ErrorKind::InvalidConfig,
                        format!(
                            "provider {name:?}: its fallback {other:?} is not a configured provider"
                        ),
                    )
                })?;
                if *other == name {
                    return Err(Error::new(
                        crate::ErrorKind::InvalidConfig,
                        format!("provider {name:?} names itself as its fallback"),
                    ));
                }
                others.push(store);
            }
            if let Some(primary) = providers.get(&name).cloned() {
                let wrapped: Arc<dyn Storage> =
                    Arc::new(Fallback::new(primary, others, fallback.writes));
                providers.insert(name, wrapped);
            }
        }
        Ok(Providers {
            default: config.default_provider().to_owned(),
            providers,
            stacks,
        })
    }
}

/// Built providers by name, and which is the default.
#[derive(Debug, Clone)]
pub struct Providers {
    default: String,
    providers: BTreeMap<String, Arc<dyn Storage>>,
    stacks: BTreeMap<String, Stacked>,
}

impl Providers {
    /// Providers from a map; `default` must be one of them.
    pub fn new(
        default: impl Into<String>,
        providers: BTreeMap<String, Arc<dyn Storage>>,
    ) -> Result<Self> {
        let default = default.into();
        if !providers.contains_key(&default) {
            return Err(Error::new(
                crate::ErrorKind::InvalidConfig,
                format!("the default provider {default:?} is not among the providers"),
            ));
        }
        Ok(Self {
            default,
            providers,
            stacks: BTreeMap::new(),
        })
    }

    /// The metrics of the provider `name`, if it records them.
    pub fn metrics(&self, name: &str) -> Option<MetricsSnapshot> {
        self.stacks
            .get(name)
            .and_then(|s| s.metrics.as_ref())
            .map(|recorder| recorder.snapshot())
    }

    /// The circuit breaker state of the provider `name`, if it has one.
    pub fn breaker_state(&self, name: &str) -> Option<BreakerState> {
        self.stacks
            .get(name)
            .and_then(|s| s.breaker.as_ref())
            .map(|handle| handle.state())
    }

    /// The provider called `name`, or an `InvalidConfig` error listing the
    /// configured ones.
    pub fn get(&self, name: &str) -> Result<&Arc<dyn Storage>> {
        self.providers.get(name).ok_or_else(|| {
            Error::new(
                crate::ErrorKind::InvalidConfig,
                format!(
                    "no provider named {name:?}; configured: {}",
                    self.providers
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
    }

    /// The default provider's name.
    pub fn default_name(&self) -> &str {
        &self.default
    }

    /// The default provider.
    pub fn default_provider(&self) -> Result<&Arc<dyn Storage>> {
        self.get(&self.default)
    }

    /// Every provider, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<dyn Storage>)> {
        self.providers.iter().map(|(n, p)| (n.as_str(), p))
    }
}
