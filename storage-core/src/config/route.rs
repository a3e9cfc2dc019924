//! Routes (which provider an artifact goes to) and the key layout.

use std::fmt;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeValue, ValueDeserializer};

use crate::config::error::ConfigError;
use crate::config::source::Source;

/// A size from the configuration: a number of bytes, or a string with a
/// unit: `KB`, `MB`, `GB`, `TB` are powers of 1000, `KiB`, `MiB`, `GiB`,
/// `TiB` powers of 1024 (`100MB`, `1.5GiB`, `512 KiB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `100MB`, `1.5 GiB`, `4096`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: f64 = number.parse().map_err(|_| {
            format!("{text:?} is not a size; write a number and a unit such as 100MB or 1GiB")
        })?;
        let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1.0,
            "kb" => 1e3,
            "mb" => 1e6,
            "gb" => 1e9,
            "tb" => 1e12,
            "kib" => 1024.0,
            "mib" => 1024f64.powi(2),
            "gib" => 1024f64.powi(3),
            "tib" => 1024f64.powi(4),
            other => {
                return Err(format!(
                    "unknown size unit {other:?} in {text:?}; use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"
                ));
            }
        };
        let bytes = number * scale;
        if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
            return Err(format!("{text:?} is out of range"));
        }
        Ok(ByteSize(bytes.round() as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes", self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"100MB\" or \"1GiB\", or a number of bytes")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(n))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<ByteSize, E> {
                u64::try_from(n)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<ByteSize, E> {
                ByteSize::parse(text).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// One value or a list of values in a route condition.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    #[serde(default)]
    when: Option<RawWhen>,
    provider: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWhen {
    artifact_type: Option<OneOrMany>,
    content_type: Option<OneOrMany>,
    tenant: Option<OneOrMany>,
    size_gt: Option<ByteSize>,
    size_lt: Option<ByteSize>,
}

/// One condition of a route; all of a route's conditions must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteCondition {
    /// The artifact type is one of these.
    ArtifactType(Vec<String>),
    /// The content type matches one of these globs (`video/*`, `*/*`,
    /// `image/png`), ignoring parameters such as `; charset=utf-8`.
    ContentType(Vec<String>),
    /// The tenant is one of these.
    Tenant(Vec<String>),
    /// The size is greater than this.
    SizeGreaterThan(u64),
    /// The size is less than this.
    SizeLessThan(u64),
}

/// What a route looks at.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct ArtifactFacts<'a> {
    /// The artifact type (`video`, `image`).
    pub artifact_type: Option<&'a str>,
    /// The content type.
    pub content_type: Option<&'a str>,
    /// The tenant.
    pub tenant: Option<&'a str>,
    /// The size in bytes, if known.
    pub size: Option<u64>,
}

impl RouteCondition {
    /// Whether the condition holds. An unknown size satisfies no size
    /// condition.
    pub fn matches(&self, facts: &ArtifactFacts<'_>) -> bool {
        let among = |wanted: &[String], value: Option<&str>| {
            value.is_some_and(|v| wanted.iter().any(|w| w == v))
        };
        match self {
            RouteCondition::ArtifactType(types) => among(types, facts.artifact_type),
            RouteCondition::Tenant(tenants) => among(tenants, facts.tenant),
            RouteCondition::ContentType(globs) => facts
                .content_type
                .is_some_and(|ct| globs.iter().any(|g| content_type_matches(g, ct))),
            RouteCondition::SizeGreaterThan(limit) => facts.size.is_some_and(|s| s > *limit),
            RouteCondition::SizeLessThan(limit) => facts.size.is_some_and(|s| s < *limit),
        }
    }
}

/// Whether `content_type` (parameters ignored, any case) matches `glob`
/// (`video/*`, `*/*`, `image/png`, or a bare top-level type).
pub(crate) fn content_type_matches(glob: &str, content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let glob = glob.trim().to_ascii_lowercase();
    let (g_type, g_sub) = glob.split_once('/').unwrap_or((glob.as_str(), "*"));
    let (c_type, c_sub) = essence.split_once('/').unwrap_or((essence.as_str(), ""));
    (g_type == "*" || g_type == c_type) && (g_sub == "*" || g_sub == c_sub)
}

/// A rule: when every condition holds, the artifact goes to `provider`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The conditions; empty matches every artifact.
    pub conditions: Vec<RouteCondition>,
    /// The provider's name.
    pub provider: String,
}

impl Route {
    /// Whether every condition holds.
    pub fn matches(&self, facts: &ArtifactFacts<'_>) -> bool {
        self.conditions.iter().all(|c| c.matches(facts))
    }

    /// Whether the route needs the artifact's size to decide.
    pub fn needs_size(&self) -> bool {
        self.conditions.iter().any(|c| {
            matches!(
                c,
                RouteCondition::SizeGreaterThan(_) | RouteCondition::SizeLessThan(_)
            )
        })
    }
}

pub(crate) fn parse_routes(
    source: &Source,
    value: Spanned<DeValue<'_>>,
    providers: &[String],
    secrets: &[String],
) -> Result<Vec<Route>, ConfigError> {
    let routes_offset = Some(value.span().start);
    let raw: Vec<Spanned<RawRoute>> =
        Vec::deserialize(ValueDeserializer::from(value)).map_err(|err| {
            ConfigError::at(
                source,
                err.span().map(|s| s.start),
                format!("in [[routes]]: {}", err.message()),
            )
            .masked(secrets)
        })?;
    let mut routes = Vec::with_capacity(raw.len());
    let mut catch_all: Option<usize> = None;
    for (index, spanned) in raw.into_iter().enumerate() {
        let number = index + 1;
        let offset = spanned.span().start;
        let RawRoute { when, provider } = spanned.into_inner();
        if let Some(previous) = catch_all {
            return Err(ConfigError::at(
                source,
                Some(offset),
                format!(
                    "route {number} can never match: route {previous} before it has no conditions and takes every artifact"
                ),
            ));
        }
        if !providers.iter().any(|p| p == provider.get_ref()) {
            return Err(ConfigError::at(
                source,
                Some(provider.span().start),
                format!(
                    "route {number} sends artifacts to the provider {:?}, which is not configured; configured: {}",
                    provider.get_ref(),
                    providers.join(", ")
                ),
            ));
        }
        let mut conditions = Vec::new();
        if let Some(when) = when {
            if let Some(types) = when.artifact_type {
                conditions.push(RouteCondition::ArtifactType(types.into_vec()));
            }
            if let Some(types) = when.content_type {
                conditions.push(RouteCondition::ContentType(types.into_vec()));
            }
            if let Some(tenants) = when.tenant {
                conditions.push(RouteCondition::Tenant(tenants.into_vec()));
            }
            if let Some(ByteSize(limit)) = when.size_gt {
                conditions.push(RouteCondition::SizeGreaterThan(limit));
            }
            if let Some(ByteSize(limit)) = when.size_lt {
                conditions.push(RouteCondition::SizeLessThan(limit));
            }
            if let (Some(ByteSize(gt)), Some(ByteSize(lt))) = (when.size_gt, when.size_lt)
                && gt.saturating_add(1) >= lt
            {
                return Err(ConfigError::at(
                    source,
                    Some(offset),
                    format!(
                        "route {number} can never match: no size is greater than {gt} and less than {lt}"
                    ),
                ));
            }
        }
        if conditions.is_empty() {
            catch_all = Some(number);
        }
        routes.push(Route {
            conditions,
            provider: provider.into_inner(),
        });
    }
    if !routes.is_empty() && catch_all.is_none() {
        return Err(ConfigError::at(
            source,
            routes_offset,
            "the routes can leave an artifact with no provider; end them with a [[routes]] that has only provider = \"NAME\"",
        ));
    }
    Ok(routes)
}

/// The key template of the manager: `/`-separated segments made of text
/// and placeholders. The default is
/// `{tenant}/{artifact_type}/{board}/{artifact_id}/{variant}`.
///
/// Placeholders: `tenant`, `artifact_type`, `board`, `artifact_id`,
/// `variant`, `file_name`. The template must contain `{artifact_id}` (or
/// artifacts would overwrite each other) and may not name others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLayout {
    template: String,
    parts: Vec<LayoutPart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum LayoutPart {
    Text(String),
    Placeholder(Placeholder),
}

/// A value the layout can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Placeholder {
    /// `{tenant}`.
    Tenant,
    /// `{artifact_type}`.
    ArtifactType,
    /// `{board}`.
    Board,
    /// `{artifact_id}`.
    ArtifactId,
    /// `{variant}`.
    Variant,
    /// `{file_name}`.
    FileName,
}

impl Placeholder {
    const ALL: [(&'static str, Placeholder); 6] = [
        ("tenant", Placeholder::Tenant),
        ("artifact_type", Placeholder::ArtifactType),
        ("board", Placeholder::Board),
        ("artifact_id", Placeholder::ArtifactId),
        ("variant", Placeholder::Variant),
        ("file_name", Placeholder::FileName),
    ];

    /// The placeholder's name, as written between braces.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, p)| *p == self)
            .map(|(n, _)| *n)
            .unwrap_or("")
    }
}

/// The default key layout.
pub const DEFAULT_LAYOUT: &str = "{tenant}/{artifact_type}/{board}/{artifact_id}/{variant}";

impl Default for KeyLayout {
    fn default() -> Self {
        // The default template is known to parse.
        Self::parse(DEFAULT_LAYOUT).unwrap_or(KeyLayout {
            template: String::new(),
            parts: Vec::new(),
        })
    }
}

impl KeyLayout {
    /// Parses a template, refusing unknown placeholders, unbalanced braces
    /// and a template without `{artifact_id}`.
    pub fn parse(template: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = template;
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                Some(i) if rest.as_bytes()[i] == b'}' => {
                    return Err(format!("unbalanced '}}' in the layout {template:?}"));
                }
                Some(i) => {
                    if i > 0 {
                        parts.push(LayoutPart::Text(rest[..i].to_owned()));
                    }
                    let after = &rest[i + 1..];
                    let close = after
                        .find('}')
                        .ok_or_else(|| format!("unclosed '{{' in the layout {template:?}"))?;
                    let name = &after[..close];
                    let placeholder = Placeholder::ALL
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, p)| *p)
                        .ok_or_else(|| {
                            format!(
                                "unknown placeholder {{{name}}} in the layout; known: {}",
                                Placeholder::ALL
                                    .iter()
                                    .map(|(n, _)| format!("{{{n}}}"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        })?;
                    parts.push(LayoutPart::Placeholder(placeholder));
                    rest = &after[close + 1..];
                }
                None => {
                    parts.push(LayoutPart::Text(rest.to_owned()));
                    rest = "";
                }
            }
        }
        if !parts.contains(&LayoutPart::Placeholder(Placeholder::ArtifactId)) {
            return Err(format!(
                "the layout {template:?} has no {{artifact_id}}, so artifacts would overwrite each other"
            ));
        }
        Ok(Self {
            template: template.to_owned(),
            parts,
        })
    }

    /// The template as written.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// The placeholders the template uses, in order.
    pub fn placeholders(&self) -> impl Iterator<Item = Placeholder> + '_ {
        self.parts.iter().filter_map(|p| match p {
            LayoutPart::Placeholder(p) => Some(*p),
            LayoutPart::Text(_) => None,
        })
    }

    /// Fills the template. `value` gives each placeholder's value; a
    /// missing or empty value, or one containing `/`, is an error naming
    /// the placeholder.
    pub fn render(&self, value: impl Fn(Placeholder) -> Option<String>) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                LayoutPart::Text(text) => out.push_str(text),
                LayoutPart::Placeholder(p) => {
                    let v = value(*p).filter(|v| !v.is_empty()).ok_or_else(|| {
                        format!(
                            "the layout needs {{{}}}, which this artifact does not give",
                            p.name()
                        )
                    })?;
                    if v.contains('/') {
                        return Err(format!(
                            "{{{}}} must be one key segment; {v:?} contains '/'",
                            p.name()
                        ));
                    }
                    out.push_str(&v);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_decimal_and_binary_units() {
        assert_eq!(ByteSize::parse("100MB"), Ok(ByteSize(100_000_000)));
        assert_eq!(ByteSize::parse("1.5 GiB"), Ok(ByteSize(1_610_612_736)));
        assert_eq!(ByteSize::parse("512kib"), Ok(ByteSize(524_288)));
        assert_eq!(ByteSize::parse("42"), Ok(ByteSize(42)));
        assert!(
            ByteSize::parse("10 parsecs")
                .unwrap_err()
                .contains("unknown size unit")
        );
        assert!(ByteSize::parse("MB").is_err());
    }

    #[test]
    fn content_type_globs_ignore_parameters_and_case() {
        assert!(content_type_matches("video/*", "video/mp4"));
        assert!(content_type_matches(
            "text/plain",
            "Text/Plain; charset=utf-8"
        ));
        assert!(content_type_matches("*/*", "application/json"));
        assert!(content_type_matches("image", "image/png"));
        assert!(!content_type_matches("video/*", "image/png"));
    }

    #[test]
    fn the_layout_renders_and_names_what_is_missing() {
        let layout = KeyLayout::default();
        let key = layout.render(|p| Some(format!("{}-v", p.name()))).unwrap();
        assert_eq!(
            key,
            "tenant-v/artifact_type-v/board-v/artifact_id-v/variant-v"
        );
        let err = layout
            .render(|p| (p != Placeholder::Board).then(|| "x".to_owned()))
            .unwrap_err();
        assert!(err.contains("{board}"), "{err}");
    }

    #[test]
    fn a_layout_without_artifact_id_or_with_unknown_names_is_refused() {
        assert!(
            KeyLayout::parse("{tenant}/{board}")
                .unwrap_err()
                .contains("{artifact_id}")
        );
        assert!(
            KeyLayout::parse("{tenant}/{nope}/{artifact_id}")
                .unwrap_err()
                .contains("unknown placeholder {nope}")
        );
        assert!(KeyLayout::parse("{tenant/{artifact_id}").is_err());
    }
}
