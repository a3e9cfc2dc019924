//! [`ArtifactRef`]: where an artifact really went.

use std::fmt;
use std::str::FromStr;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind};
use crate::key::Key;

/// Characters kept as they are in the key part of a reference string.
const KEY_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');
/// Characters kept as they are in a checksum (`crc32c:1a2b3c4d`).
const CHECKSUM_KEEP: &AsciiSet = &NON_ALPHANUMERIC.remove(b':');
/// Characters kept as they are in query values.
const VALUE_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'/');

/// A stored artifact: the provider it went to and its key, with what was
/// known when it was stored. Keep it (as JSON or as its string form) to
/// read, presign or delete the artifact later: it names the provider, so it
/// keeps working after the routes change.
///
/// The string form is stable and URL-like:
/// `storage://media/acme/video/42/7/original?size=1048576&type=video%2Fmp4&checksum=crc32c:1a2b3c4d`
///
/// ```
/// use storage_core::manager::ArtifactRef;
///
/// let text = "storage://local/acme/image/7/1/thumb?size=3&type=image/png";
/// let artifact: ArtifactRef = text.parse()?;
/// assert_eq!(artifact.provider, "local");
/// assert_eq!(artifact.key.as_str(), "acme/image/7/1/thumb");
/// assert_eq!(artifact.to_string(), text);
/// # Ok::<(), storage_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ArtifactRef {
    /// The provider's name in the configuration.
    pub provider: String,
    /// The object's key on that provider.
    #[serde(with = "key_serde")]
    pub key: Key,
    /// The size in bytes.
    pub size: u64,
    /// The content type stored with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The checksum, as `algorithm:hex` (`crc32c:1a2b3c4d`), where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

impl ArtifactRef {
    /// A reference to `key` on `provider`.
    pub fn new(provider: impl Into<String>, key: Key, size: u64) -> Self {
        Self {
            provider: provider.into(),
            key,
            size,
            content_type: None,
            checksum: None,
        }
    }

    /// The reference as JSON (`{"provider":..,"key":..,"size":..}`).
    pub fn to_json(&self) -> String {
        // Serializing strings and a number cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a reference from its JSON form.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        serde_json::from_str(text).map_err(|err| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("not an artifact reference: {err}"),
            )
        })
    }
}

impl fmt::Display for ArtifactRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "storage://{}/{}?size={}",
            utf8_percent_encode(&self.provider, VALUE_KEEP),
            utf8_percent_encode(self.key.as_str(), KEY_KEEP),
            self.size
        )?;
        if let Some(content_type) = &self.content_type {
            write!(f, "&type={}", utf8_percent_encode(content_type, VALUE_KEEP))?;
        }
        if let Some(checksum) = &self.checksum {
            write!(
                f,
                "&checksum={}",
                utf8_percent_encode(checksum, CHECKSUM_KEEP)
            )?;
        }
        Ok(())
    }
}

impl FromStr for ArtifactRef {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let invalid = |why: &str| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("{text:?} is not an artifact reference: {why}"),
            )
        };
        let rest = text
            .strip_prefix("storage://")
            .ok_or_else(|| invalid("it must start with storage://"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (provider, key) = path
            .split_once('/')
            .ok_or_else(|| invalid("it has no key"))?;
        let decode = |s: &str| percent_decode_str(s).decode_utf8().map(|c| c.into_owned());
        let provider = decode(provider).map_err(|_| invalid("the provider is not UTF-8"))?;
        let key = decode(key).map_err(|_| invalid("the key is not UTF-8"))?;
        let key = Key::new(key).map_err(Error::from)?;
        let mut artifact = ArtifactRef::new(provider, key, 0);
        let mut size = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| invalid("a parameter has no value"))?;
            let value = decode(value).map_err(|_| invalid("a parameter is not UTF-8"))?;
            match name {
                "size" => size = Some(value.parse().map_err(|_| invalid("size is not a number"))?),
                "type" => artifact.content_type = Some(value),
                "checksum" => artifact.checksum = Some(value),
                // Unknown parameters are ignored, so newer writers stay
                // readable.
                _ => {}
            }
        }
        artifact.size = size.ok_or_else(|| invalid("it has no size"))?;
        Ok(artifact)
    }
}

mod key_serde {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::key::Key;

    pub(super) fn serialize<S: Serializer>(key: &Key, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(key.as_str())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
        let text = String::deserialize(deserializer)?;
        Key::new(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_string_form_round_trips_odd_keys_and_types() {
        let mut artifact = ArtifactRef::new("media", Key::new("a b/ü+?#&=.mp4").unwrap(), 42);
        artifact.content_type = Some("video/mp4; codecs=\"avc1\"".into());
        artifact.checksum = Some("crc32c:0000002a".into());
        let text = artifact.to_string();
        assert!(text.starts_with("storage://media/a%20b/"), "{text}");
        assert_eq!(text.parse::<ArtifactRef>().unwrap(), artifact);
    }

    #[test]
    fn json_carries_every_field_and_reads_back() {
        let mut artifact = ArtifactRef::new("local", Key::new("k\"q").unwrap(), 1);
        artifact.content_type = Some("text/plain".into());
        let json = artifact.to_json();
        assert_eq!(
            json,
            r#"{"provider":"local","key":"k\"q","size":1,"content_type":"text/plain"}"#
        );
        assert_eq!(ArtifactRef::from_json(&json).unwrap(), artifact);
        assert!(ArtifactRef::from_json(r#"{"provider":"l","key":"../x","size":1}"#).is_err());
    }

    #[test]
    fn a_reference_with_a_hostile_key_is_refused() {
        let err = "storage://local/../etc/passwd?size=1"
            .parse::<ArtifactRef>()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidKey);
    }
}
