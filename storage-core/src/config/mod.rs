//! The configuration file: providers by name, routes, the key layout.
//!
//! ```toml
//! default = "local"
//! layout = "{tenant}/{artifact_type}/{board}/{artifact_id}/{variant}"
//!
//! [providers.local]
//! type = "local"
//! root = "./storage-data"
//!
//! [providers.media]
//! type = "s3"
//! bucket = "boards-artifacts"
//! access_key_id = "${AWS_ACCESS_KEY_ID}"
//! secret_access_key = "${AWS_SECRET_ACCESS_KEY}"
//! endpoint = "${S3_ENDPOINT:-}"
//!
//! [[routes]]
//! when = { artifact_type = "video", size_gt = "100MB" }
//! provider = "media"
//!
//! [[routes]]
//! provider = "local"
//! ```
//!
//! - `default` names the provider used when no route applies (and by the
//!   command line when a location names none). With a single provider it
//!   may be left out.
//! - `[providers.NAME]` tables have a `type` and that type's own fields;
//!   each backend documents its table, and unknown fields are refused.
//! - `[[routes]]` are tried in order; the first whose `when` matches picks
//!   the provider (see [`Route`]). A route without `when` matches
//!   everything, so nothing may follow it.
//! - `layout` is the key template of the manager (see [`KeyLayout`]).
//! - `${VAR}`, `${VAR:-default}` and `$$` work in every string (see the
//!   `interpolate` rules in [`Config::parse_with`]).
//!
//! Every mistake is a [`ConfigError`] with the file, line and column, and
//! what was expected. Relative paths in a file (a local `root`) are
//! relative to the file's folder.

mod error;
mod interpolate;
mod registry;
mod route;
mod source;

use std::collections::BTreeMap;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

pub use error::{ConfigError, SecretMask};
pub use registry::{ProviderConfig, ProviderFactory, ProviderFuture, Providers, Registry};
pub use route::{
    ArtifactFacts, ByteSize, DEFAULT_LAYOUT, KeyLayout, Placeholder, Route, RouteCondition,
};
pub use source::Position;

use interpolate::{InterpolationError, interpolate};
/// Content-type globs, shared by routes and the validation layer.
pub(crate) use route::content_type_matches;
use source::Source;

/// The name the auto-detected configuration is reported under.
pub const ENVIRONMENT_SOURCE: &str = "<environment>";

/// A parsed and checked configuration.
///
/// Loading checks the whole file except the providers' own tables, which
/// their factories check when a [`Registry`] builds them
/// ([`Registry::check`] does it without opening anything).
#[derive(Debug, Clone)]
pub struct Config {
    source: Source,
    /// The variables read while loading, so providers are built with the
    /// same values that were checked.
    env: EnvSnapshot,
    default: String,
    providers: BTreeMap<String, ProviderEntry>,
    routes: Vec<Route>,
    layout: KeyLayout,
}

/// Environment values read at load time. Its `Debug` prints only names.
#[derive(Clone, Default)]
struct EnvSnapshot(BTreeMap<String, Option<String>>);

impl std::fmt::Debug for EnvSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl EnvSnapshot {
    fn lookup(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned().flatten()
    }
}

#[derive(Debug, Clone)]
struct ProviderEntry {
    type_name: String,
    type_offset: usize,
}

/// Reads the process environment.
fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl Config {
    /// Reads and checks the file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        Self::load_with(path, &process_env)
    }

    /// As [`load`](Self::load), with variables from `lookup` instead of the
    /// process environment (see [`parse_with`](Self::parse_with)).
    pub fn load_with(
        path: impl AsRef<Path>,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|err| ConfigError::in_file(&name, format!("cannot read the file: {err}")))?;
        let base = path.parent().filter(|p| !p.as_os_str().is_empty());
        Self::parse_source(Source::new(name, text, base), lookup)
    }

    /// Checks configuration `text`, reported as `name`, with variables from
    /// the process environment. Relative paths are relative to the current
    /// folder.
    pub fn parse(name: &str, text: &str) -> Result<Self, ConfigError> {
        Self::parse_source(Source::new(name, text, None), &process_env)
    }

    /// As [`parse`](Self::parse), with variables from `lookup` instead of
    /// the process environment.
    ///
    /// Interpolation in strings: `${VAR}` is the variable's value (unset is
    /// an error naming the variable and the setting that uses it);
    /// `${VAR:-default}` falls back to `default` when the variable is unset
    /// or empty; `$$` is a literal `$`.
    pub fn parse_with(
        name: &str,
        text: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        Self::parse_source(Source::new(name, text, None), lookup)
    }

    /// The configuration chosen from the environment when there is no file:
    ///
    /// 1. `SUPABASE_URL` and a key (`SUPABASE_SERVICE_KEY`,
    ///    `SUPABASE_SERVICE_ROLE_KEY` or `SUPABASE_ANON_KEY`): one provider
    ///    `supabase` of type `supabase`, bucket from `SUPABASE_BUCKET`
    ///    (default `storage`).
    /// 2. `S3_BUCKET` (or `AWS_S3_BUCKET`): one provider `s3` of type `s3`,
    ///    with `AWS_REGION` (default `us-east-1`), `S3_ENDPOINT` (an
    ///    `http://` endpoint also sets `allow_http`), `AWS_ACCESS_KEY_ID`,
    ///    `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`.
    /// 3. `GCS_BUCKET`: one provider `gcs` of type `gcs`; credentials from
    ///    the `GOOGLE_*` variables (or the emulator in
    ///    `STORAGE_EMULATOR_HOST`), as `GcsConfig` documents.
    /// 4. Otherwise one provider `local` of type `local` in
    ///    `STORAGE_LOCAL_ROOT` (default `./storage-data`).
    ///
    /// The choice and its reason are logged at `info` level. The result
    /// names the variables rather than copying their values, so secrets
    /// stay out of it.
    pub fn from_env() -> Self {
        Self::from_env_with(&process_env)
    }

    /// As [`from_env`](Self::from_env), with variables from `lookup`.
    pub fn from_env_with(lookup: &dyn Fn(&str) -> Option<String>) -> Self {
        let set = |name: &str| lookup(name).is_some_and(|v| !v.is_empty());
        let supabase_key = [
            "SUPABASE_SERVICE_KEY",
            "SUPABASE_SERVICE_ROLE_KEY",
            "SUPABASE_ANON_KEY",
        ]
        .into_iter()
        .find(|name| set(name));
        let (text, reason) = if let (true, Some(key)) = (set("SUPABASE_URL"), supabase_key) {
            (
                format!(
                    "default = \"supabase\"\n[providers.supabase]\ntype = \"supabase\"\n\
                     url = \"${{SUPABASE_URL}}\"\nkey = \"${{{key}}}\"\n\
                     bucket = \"${{SUPABASE_BUCKET:-storage}}\"\n"
                ),
                format!("SUPABASE_URL and {key} are set"),
            )
        } else if set("S3_BUCKET") || set("AWS_S3_BUCKET") {
            let bucket = if set("S3_BUCKET") {
                "S3_BUCKET"
            } else {
                "AWS_S3_BUCKET"
            };
            let mut text = format!(
                "default = \"s3\"\n[providers.s3]\ntype = \"s3\"\nbucket = \"${{{bucket}}}\"\n\
                 region = \"${{AWS_REGION:-us-east-1}}\"\n"
            );
            for (field, var) in [
                ("endpoint", "S3_ENDPOINT"),
                ("access_key_id", "AWS_ACCESS_KEY_ID"),
                ("secret_access_key", "AWS_SECRET_ACCESS_KEY"),
                ("session_token", "AWS_SESSION_TOKEN"),
            ] {
                if set(var) {
                    text.push_str(&format!("{field} = \"${{{var}}}\"\n"));
                }
            }
            if lookup("S3_ENDPOINT").is_some_and(|e| e.starts_with("http://")) {
                text.push_str("allow_http = true\n");
            }
            (text, format!("{bucket} is set"))
        } else if set("GCS_BUCKET") {
            (
                "default = \"gcs\"\n[providers.gcs]\ntype = \"gcs\"\nbucket = \"${GCS_BUCKET}\"\n"
                    .to_owned(),
                "GCS_BUCKET is set".to_owned(),
            )
        } else {
            (
                "default = \"local\"\n[providers.local]\ntype = \"local\"\n\
                 root = \"${STORAGE_LOCAL_ROOT:-./storage-data}\"\n"
                    .to_owned(),
                "neither Supabase, S3 nor GCS variables are set".to_owned(),
            )
        };
        let source = Source::new(ENVIRONMENT_SOURCE, text, None);
        match Self::parse_source(source, lookup) {
            Ok(config) => {
                tracing::info!(provider = %config.default, reason = %reason, "storage provider chosen from the environment");
                config
            }
            // The text above is fixed and every variable it names was
            // checked to be set; this branch is unreachable in practice, and
            // falls back to the local default rather than failing.
            Err(err) => {
                tracing::warn!(error = %err, "the environment configuration did not parse; using the local default");
                Self::local_default()
            }
        }
    }

    fn local_default() -> Self {
        let mut providers = BTreeMap::new();
        providers.insert(
            "local".to_owned(),
            ProviderEntry {
                type_name: "local".to_owned(),
                type_offset: 0,
            },
        );
        Self {
            env: EnvSnapshot::default(),
            source: Source::new(
                ENVIRONMENT_SOURCE,
                "[providers.local]\ntype = \"local\"\nroot = \"./storage-data\"\n",
                None,
            ),
            default: "local".to_owned(),
            providers,
            routes: Vec::new(),
            layout: KeyLayout::default(),
        }
    }

    fn parse_source(
        source: Source,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let seen = std::cell::RefCell::new(BTreeMap::new());
        let recording = |name: &str| {
            let value = lookup(name);
            seen.borrow_mut().insert(name.to_owned(), value.clone());
            value
        };
        let (document, secrets) = parse_document(&source, &recording)?;
        let fail = |offset: usize, message: String| {
            ConfigError::at(&source, Some(offset), message).masked(&secrets)
        };

        let mut default: Option<Spanned<String>> = None;
        let mut providers = BTreeMap::new();
        let mut raw_routes: Option<Spanned<DeValue<'_>>> = None;
        let mut layout = KeyLayout::default();
        for (key, value) in document.get_ref().iter() {
            match key.get_ref().as_ref() {
                "default" => default = Some(string_value(&source, value, "default", &secrets)?),
                "layout" => {
                    let text = string_value(&source, value, "layout", &secrets)?;
                    layout = KeyLayout::parse(text.get_ref())
                        .map_err(|message| fail(value.span().start, message))?;
                }
                "providers" => {
                    let DeValue::Table(table) = value.get_ref() else {
                        return Err(fail(
                            value.span().start,
                            "providers must be a table of [providers.NAME] tables".into(),
                        ));
                    };
                    for (name, provider) in table.iter() {
                        let entry = provider_entry(&source, name.get_ref(), provider, &secrets)?;
                        providers.insert(name.get_ref().to_string(), entry);
                    }
                }
                "routes" => raw_routes = Some(value.clone()),
                other => {
                    return Err(fail(
                        key.span().start,
                        format!(
                            "unknown top-level key {other:?}; expected one of default, layout, providers, routes"
                        ),
                    ));
                }
            }
        }
        if providers.is_empty() {
            return Err(ConfigError::at(
                &source,
                None,
                "no provider is configured; add a [providers.NAME] table with a type",
            ));
        }
        let default = match default {
            Some(name) if providers.contains_key(name.get_ref()) => name.into_inner(),
            Some(name) => {
                return Err(fail(
                    name.span().start,
                    format!(
                        "default names the provider {:?}, which is not configured; configured: {}",
                        name.get_ref(),
                        providers.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            None if providers.len() == 1 => providers.keys().next().cloned().unwrap_or_default(),
            None => {
                return Err(ConfigError::at(
                    &source,
                    None,
                    "several providers are configured but no default; add default = \"NAME\"",
                ));
            }
        };
        let routes = match raw_routes {
            Some(value) => {
                route::parse_routes(&source, value, &providers_names(&providers), &secrets)?
            }
            None => Vec::new(),
        };
        drop(document);
        let env = EnvSnapshot(seen.into_inner());
        Ok(Self {
            source,
            env,
            default,
            providers,
            routes,
            layout,
        })
    }

    /// The name the configuration is reported under (its path).
    pub fn source_name(&self) -> &str {
        &self.source.name
    }

    /// The default provider's name.
    pub fn default_provider(&self) -> &str {
        &self.default
    }

    /// The configured providers' names and types, by name.
    pub fn providers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.providers
            .iter()
            .map(|(name, entry)| (name.as_str(), entry.type_name.as_str()))
    }

    /// The routes, in order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The key layout.
    pub fn layout(&self) -> &KeyLayout {
        &self.layout
    }

    /// Hands one provider's table to `parse` (as its factory gets it), for
    /// tools that need a backend's own configuration struct rather than a
    /// built provider (`storage serve` reads the local table this way).
    pub fn with_provider<T>(
        &self,
        name: &str,
        parse: impl FnOnce(&ProviderConfig<'_>) -> Result<T, ConfigError>,
    ) -> Result<T, ConfigError> {
        self.with_provider_table(name, |table, _| parse(&table))
    }

    /// The type of the provider `name`, if configured.
    pub fn provider_type(&self, name: &str) -> Option<&str> {
        self.providers
            .get(name)
            .map(|entry| entry.type_name.as_str())
    }

    /// Runs `work` on one provider's table (without `type`), re-read from
    /// the source with the variables read at load time.
    pub(crate) fn with_provider_table<T>(
        &self,
        name: &str,
        work: impl FnOnce(ProviderConfig<'_>, &ProviderEntryView<'_>) -> Result<T, ConfigError>,
    ) -> Result<T, ConfigError> {
        let entry = self.providers.get(name).ok_or_else(|| {
            ConfigError::in_file(
                &self.source.name,
                format!("no provider named {name:?} is configured"),
            )
        })?;
        let lookup = |name: &str| self.env.lookup(name);
        let (document, secrets) = parse_document(&self.source, &lookup)?;
        let table = document
            .get_ref()
            .get("providers")
            .and_then(|p| p.get_ref().as_table())
            .and_then(|t| t.get(name))
            .cloned();
        let mut value = match table {
            Some(value) => value,
            // The built-in fallback has no file position to point to.
            None => Spanned::new(0..0, DeValue::Table(DeTable::new())),
        };
        let mut layers_value = None;
        if let DeValue::Table(table) = value.get_mut() {
            table.remove("type");
            layers_value = table.remove("layers");
        }
        // The `layers` table belongs to the registry, not to the backend.
        let layers = match layers_value {
            Some(layers) => ProviderConfig::new(name, layers, &self.source, &secrets)
                .parse::<crate::layers::LayersConfig>()
                .map_err(|err| err.in_layers())?,
            None => crate::layers::LayersConfig::default(),
        };
        let view = ProviderEntryView {
            type_name: &entry.type_name,
            type_offset: entry.type_offset,
            layers,
        };
        let config = ProviderConfig::new(name, value, &self.source, &secrets);
        work(config, &view)
    }
}

/// What the registry needs to know of a provider's entry.
pub(crate) struct ProviderEntryView<'a> {
    pub(crate) type_name: &'a str,
    pub(crate) type_offset: usize,
    pub(crate) layers: crate::layers::LayersConfig,
}

fn providers_names(providers: &BTreeMap<String, ProviderEntry>) -> Vec<String> {
    providers.keys().cloned().collect()
}

/// Parses the text and interpolates every string; returns the document
/// and the values that came from the environment (to mask in errors).
fn parse_document<'a>(
    source: &'a Source,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(Spanned<DeTable<'a>>, Vec<String>), ConfigError> {
    let mut document = DeTable::parse(&source.text).map_err(|err| {
        ConfigError::at(
            source,
            err.span().map(|s| s.start),
            format!("syntax error: {}", err.message().trim()),
        )
    })?;
    let mut secrets = Vec::new();
    let mut path = Vec::new();
    interpolate_table(source, document.get_mut(), lookup, &mut path, &mut secrets)?;
    Ok((document, secrets))
}

fn interpolate_table(
    source: &Source,
    table: &mut DeTable<'_>,
    lookup: &dyn Fn(&str) -> Option<String>,
    path: &mut Vec<String>,
    secrets: &mut Vec<String>,
) -> Result<(), ConfigError> {
    for (key, value) in table.iter_mut() {
        path.push(key.get_ref().to_string());
        interpolate_value(source, value, lookup, path, secrets)?;
        path.pop();
    }
    Ok(())
}

fn interpolate_value(
    source: &Source,
    value: &mut Spanned<DeValue<'_>>,
    lookup: &dyn Fn(&str) -> Option<String>,
    path: &mut Vec<String>,
    secrets: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let start = value.span().start;
    match value.get_mut() {
        DeValue::String(text) if text.contains('$') => {
            let (out, used) = interpolate(text, lookup).map_err(|err| {
                let setting = path.join(".");
                let (offset, message) = match err {
                    InterpolationError::Missing { name, offset } => (
                        offset,
                        format!(
                            "environment variable {name} is not set (used by {setting}); set it, or give a default with ${{{name}:-default}}"
                        ),
                    ),
                    InterpolationError::Unterminated { offset } => {
                        (offset, format!("unterminated ${{ in {setting}; write $$ for a literal $"))
                    }
                    InterpolationError::BadName { name, offset } => (
                        offset,
                        format!("{name:?} in {setting} is not a variable name (letters, digits and _)"),
                    ),
                };
                // Point into the string when it has no escapes before the
                // mistake (the common case); otherwise at its start.
                let raw = source.text.get(start + 1..).unwrap_or("");
                let exact = raw.get(..offset).is_some_and(|s| !s.contains('\\'));
                ConfigError::at(source, Some(if exact { start + 1 + offset } else { start }), message)
            })?;
            secrets.extend(used);
            *text = out.into();
        }
        DeValue::Array(array) => {
            for (index, item) in array.iter_mut().enumerate() {
                path.push(index.to_string());
                interpolate_value(source, item, lookup, path, secrets)?;
                path.pop();
            }
        }
        DeValue::Table(table) => interpolate_table(source, table, lookup, path, secrets)?,
        _ => {}
    }
    Ok(())
}

fn string_value(
    source: &Source,
    value: &Spanned<DeValue<'_>>,
    setting: &str,
    secrets: &[String],
) -> Result<Spanned<String>, ConfigError> {
    match value.get_ref() {
        DeValue::String(text) => Ok(Spanned::new(value.span(), text.to_string())),
        other => Err(ConfigError::at(
            source,
            Some(value.span().start),
            format!("{setting} must be a string, not {}", other.type_str()),
        )
        .masked(secrets)),
    }
}

fn provider_entry(
    source: &Source,
    name: &str,
    value: &Spanned<DeValue<'_>>,
    secrets: &[String],
) -> Result<ProviderEntry, ConfigError> {
    let DeValue::Table(table) = value.get_ref() else {
        return Err(ConfigError::at(
            source,
            Some(value.span().start),
            format!("providers.{name} must be a table with a type"),
        ));
    };
    let Some(type_value) = table.get("type") else {
        return Err(ConfigError::at(
            source,
            Some(value.span().start),
            format!(
                "providers.{name} has no type; add type = \"local\" (or s3, gcs, supabase, plugin, ...)"
            ),
        ));
    };
    let type_name = string_value(
        source,
        type_value,
        &format!("providers.{name}.type"),
        secrets,
    )?;
    Ok(ProviderEntry {
        type_offset: type_name.span().start,
        type_name: type_name.into_inner(),
    })
}
