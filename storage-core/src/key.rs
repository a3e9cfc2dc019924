//! Validated object keys and listing prefixes.
//!
//! Every backend receives keys that already passed the same rules, so a key
//! means one thing everywhere: the local backend cannot be walked out of its
//! root, and a key accepted by one provider is accepted by all of them.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

/// The longest key accepted, in bytes of UTF-8 (S3's and GCS's limit).
pub const MAX_KEY_LEN: usize = 1024;

/// A validated object key.
///
/// A key is UTF-8, 1 to [`MAX_KEY_LEN`] bytes, made of `/`-separated
/// segments. It is rejected, before any I/O, when it:
///
/// - is empty or longer than 1024 bytes;
/// - starts with `/` (an absolute path) or contains an empty segment
///   (`a//b`, a trailing `/`);
/// - has a `.` or `..` segment;
/// - contains a backslash, a control character (U+0000 to U+001F, U+007F
///   to U+009F), or a character that some systems fold into `/`, `\` or
///   `.` (fullwidth and other look-alike solidus and full stops);
/// - starts with a Windows drive (`C:`);
/// - has a percent-escape that decodes (once or more) to a separator, a
///   control character, a `.` or `..` segment, or bytes that are not UTF-8
///   (overlong encodings such as `%c0%ae`), because a backend or proxy that
///   decodes paths would read such a key as another one.
///
/// Other characters, spaces, `+`, `%`, `#`, `?`, `=` and any non-control
/// Unicode among them, are kept exactly as given.
///
/// ```
/// use storage_core::{Key, KeyRule};
///
/// let key = Key::new("boards/42/cover image.png")?;
/// assert_eq!(key.as_str(), "boards/42/cover image.png");
///
/// let err = Key::new("../etc/passwd").unwrap_err();
/// assert_eq!(err.rule(), KeyRule::DotSegment);
/// # Ok::<(), storage_core::InvalidKeyError>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(String);

/// The rule a rejected key or prefix broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyRule {
    /// The key is empty.
    Empty,
    /// The key is longer than [`MAX_KEY_LEN`] bytes.
    TooLong,
    /// The key starts with `/`.
    LeadingSlash,
    /// The key has an empty segment (`a//b` or a trailing `/`).
    EmptySegment,
    /// The key has a `.` or `..` segment.
    DotSegment,
    /// The key contains a backslash.
    Backslash,
    /// The key contains a control character.
    ControlCharacter,
    /// The key contains a character that some systems fold into a
    /// separator or a dot.
    LookalikeCharacter,
    /// The key starts with a Windows drive such as `C:`.
    DrivePrefix,
    /// A percent-escape in the key decodes to a separator, a control
    /// character, a dot segment or invalid UTF-8.
    EncodedTraversal,
}

impl KeyRule {
    /// A short phrase naming the rule, for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            KeyRule::Empty => "a key must not be empty",
            KeyRule::TooLong => "a key must be at most 1024 bytes",
            KeyRule::LeadingSlash => "a key must not start with '/'",
            KeyRule::EmptySegment => {
                "a key must not contain an empty segment ('//' or a trailing '/')"
            }
            KeyRule::DotSegment => "a key must not contain a '.' or '..' segment",
            KeyRule::Backslash => "a key must not contain a backslash",
            KeyRule::ControlCharacter => "a key must not contain control characters",
            KeyRule::LookalikeCharacter => {
                "a key must not contain characters that fold into '/', '\\' or '.'"
            }
            KeyRule::DrivePrefix => "a key must not start with a drive letter such as 'C:'",
            KeyRule::EncodedTraversal => {
                "a key must not contain percent-escapes of separators, control characters, dot segments or invalid UTF-8"
            }
        }
    }
}

/// A key or prefix that broke one of the [`Key`] rules.
///
/// It converts into an [`Error`](crate::Error) of kind
/// [`InvalidKey`](crate::ErrorKind::InvalidKey).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid key {key:?}: {}", rule.describe())]
pub struct InvalidKeyError {
    key: String,
    rule: KeyRule,
}

impl InvalidKeyError {
    /// The rule that was broken.
    pub fn rule(&self) -> KeyRule {
        self.rule
    }

    /// The rejected input, truncated to 1100 bytes so an enormous input
    /// cannot flood a log line.
    pub fn key(&self) -> &str {
        &self.key
    }

    fn new(key: &str, rule: KeyRule) -> Self {
        let mut end = key.len().min(MAX_KEY_LEN + 76);
        while !key.is_char_boundary(end) {
            end -= 1;
        }
        Self {
            key: key[..end].to_owned(),
            rule,
        }
    }
}

impl Key {
    /// Validates `key` and wraps it.
    pub fn new(key: impl Into<String>) -> Result<Self, InvalidKeyError> {
        let key = key.into();
        validate(&key, false).map_err(|rule| InvalidKeyError::new(&key, rule))?;
        Ok(Key(key))
    }

    /// The key as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key's `/`-separated segments.
    pub fn segments(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.0.split('/')
    }

    /// The last segment (the "file name").
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// A new key made of this key, a `/` and `suffix`.
    pub fn join(&self, suffix: &str) -> Result<Key, InvalidKeyError> {
        Key::new(format!("{}/{}", self.0, suffix))
    }

    /// Unwraps the key into its string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Deref for Key {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Key {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Key {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl FromStr for Key {
    type Err = InvalidKeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Key::new(s)
    }
}

impl TryFrom<&str> for Key {
    type Error = InvalidKeyError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Key::new(s)
    }
}

impl TryFrom<String> for Key {
    type Error = InvalidKeyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Key::new(s)
    }
}

impl From<Key> for String {
    fn from(key: Key) -> String {
        key.0
    }
}

/// A validated listing prefix: the start of a key.
///
/// A prefix follows the [`Key`] rules, except that it may be empty (list
/// everything) and may end with `/` (everything "inside" a folder). A
/// prefix is matched byte by byte: `im` matches `images/a.png` and
/// `img.png`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Prefix(String);

impl Prefix {
    /// Validates `prefix` and wraps it.
    pub fn new(prefix: impl Into<String>) -> Result<Self, InvalidKeyError> {
        let prefix = prefix.into();
        if prefix.is_empty() {
            return Ok(Prefix(prefix));
        }
        validate(&prefix, true).map_err(|rule| InvalidKeyError::new(&prefix, rule))?;
        Ok(Prefix(prefix))
    }

    /// The empty prefix, which matches every key.
    pub fn all() -> Self {
        Prefix(String::new())
    }

    /// The prefix as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the empty prefix.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `key` starts with this prefix.
    pub fn matches(&self, key: &str) -> bool {
        key.starts_with(&self.0)
    }
}

impl fmt::Debug for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Key> for Prefix {
    fn from(key: Key) -> Self {
        Prefix(key.0)
    }
}

impl FromStr for Prefix {
    type Err = InvalidKeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Prefix::new(s)
    }
}

/// Checks the key rules. With `partial`, the last segment may be empty
/// (a prefix ending in `/`) and may be a leading part of `.` or `..`.
fn validate(key: &str, partial: bool) -> Result<(), KeyRule> {
    if key.is_empty() {
        return Err(KeyRule::Empty);
    }
    if key.len() > MAX_KEY_LEN {
        return Err(KeyRule::TooLong);
    }
    if key.starts_with('/') {
        return Err(KeyRule::LeadingSlash);
    }
    // Every key of every operation passes here: most keys are ASCII,
    // checked byte by byte; the rest are decoded for the look-alikes.
    if key.is_ascii() {
        for b in key.bytes() {
            if b == b'\\' {
                return Err(KeyRule::Backslash);
            }
            if b.is_ascii_control() {
                return Err(KeyRule::ControlCharacter);
            }
        }
    } else {
        for c in key.chars() {
            if c == '\\' {
                return Err(KeyRule::Backslash);
            }
            if c.is_control() {
                return Err(KeyRule::ControlCharacter);
            }
            if is_lookalike(c) {
                return Err(KeyRule::LookalikeCharacter);
            }
        }
    }
    let mut segments = key.split('/').enumerate().peekable();
    while let Some((index, segment)) = segments.next() {
        let last = segments.peek().is_none();
        if segment.is_empty() {
            if partial && last {
                continue;
            }
            return Err(KeyRule::EmptySegment);
        }
        if !(partial && last) && (segment == "." || segment == "..") {
            return Err(KeyRule::DotSegment);
        }
        if index == 0 && is_drive(segment) {
            return Err(KeyRule::DrivePrefix);
        }
    }
    if key.contains('%') && encodes_traversal(key) {
        return Err(KeyRule::EncodedTraversal);
    }
    Ok(())
}

/// Characters that Unicode compatibility normalisation (NFKC), or some
/// file systems and proxies, turn into `/`, `\` or `.`.
fn is_lookalike(c: char) -> bool {
    matches!(
        c,
        '\u{2024}' // one dot leader
            | '\u{2025}' // two dot leader
            | '\u{FE52}' // small full stop
            | '\u{FF0E}' // fullwidth full stop
            | '\u{2044}' // fraction slash
            | '\u{2215}' // division slash
            | '\u{29F8}' // big solidus
            | '\u{FF0F}' // fullwidth solidus
            | '\u{FE68}' // small reverse solidus
            | '\u{2216}' // set minus
            | '\u{29F9}' // big reverse solidus
            | '\u{FF3C}' // fullwidth reverse solidus
    )
}

fn is_drive(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    bytes.len() == 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':'
}

/// Whether percent-decoding the key, up to three times (double and triple
/// encoding), reveals something the rules forbid.
fn encodes_traversal(key: &str) -> bool {
    let mut current: Vec<u8> = key.as_bytes().to_vec();
    for _ in 0..3 {
        if !current.contains(&b'%') {
            return false;
        }
        let decoded: Vec<u8> = percent_encoding::percent_decode(&current).collect();
        if decoded == current {
            return false;
        }
        let Ok(text) = std::str::from_utf8(&decoded) else {
            return true;
        };
        let forbidden = text
            .chars()
            .any(|c| c == '\\' || c.is_control() || is_lookalike(c));
        if forbidden {
            return true;
        }
        // A decoded '/' is only a problem if it was encoded: compare the
        // number of separators before and after.
        let before = current.iter().filter(|&&b| b == b'/').count();
        let after = decoded.iter().filter(|&&b| b == b'/').count();
        if after != before {
            return true;
        }
        if text.split('/').any(|s| s == "." || s == "..") {
            return true;
        }
        current = decoded;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(key: &str) -> Option<KeyRule> {
        Key::new(key).err().map(|e| e.rule())
    }

    #[test]
    fn ordinary_keys_are_accepted_unchanged() {
        for key in [
            "a",
            "a/b/c.txt",
            "with space",
            "plus+sign",
            "100%",
            "hash#tag",
            "what?",
            "k=v",
            "ünïcödé/文件.png",
            "...",
            ".hidden",
            "a.",
            "~user",
            "%41",
        ] {
            assert_eq!(Key::new(key).map(|k| k.into_string()).as_deref(), Ok(key));
        }
    }

    #[test]
    fn each_rule_is_named_in_the_error() {
        assert_eq!(rule(""), Some(KeyRule::Empty));
        assert_eq!(rule(&"a".repeat(1025)), Some(KeyRule::TooLong));
        assert_eq!(rule("/etc/passwd"), Some(KeyRule::LeadingSlash));
        assert_eq!(rule("a//b"), Some(KeyRule::EmptySegment));
        assert_eq!(rule("a/"), Some(KeyRule::EmptySegment));
        assert_eq!(rule("../x"), Some(KeyRule::DotSegment));
        assert_eq!(rule("a/./b"), Some(KeyRule::DotSegment));
        assert_eq!(rule("a\\b"), Some(KeyRule::Backslash));
        assert_eq!(rule("a\nb"), Some(KeyRule::ControlCharacter));
        assert_eq!(rule("a\u{0085}b"), Some(KeyRule::ControlCharacter));
        assert_eq!(
            rule("\u{FF0E}\u{FF0E}/x"),
            Some(KeyRule::LookalikeCharacter)
        );
        assert_eq!(rule("C:/Windows"), Some(KeyRule::DrivePrefix));
        assert_eq!(rule("%2e%2e/x"), Some(KeyRule::EncodedTraversal));
        assert_eq!(rule("a%2fb"), Some(KeyRule::EncodedTraversal));
        assert_eq!(rule("%252e%252e/x"), Some(KeyRule::EncodedTraversal));
        assert_eq!(rule("%c0%ae%c0%ae/x"), Some(KeyRule::EncodedTraversal));
        assert_eq!(rule("a%00b"), Some(KeyRule::EncodedTraversal));
    }

    #[test]
    fn exactly_1024_bytes_is_accepted() {
        assert!(Key::new("é".repeat(512)).is_ok());
        assert_eq!(
            rule(&format!("{}a", "é".repeat(512))),
            Some(KeyRule::TooLong)
        );
    }

    #[test]
    fn prefixes_may_be_empty_or_end_with_a_slash() {
        assert!(Prefix::new("").is_ok());
        assert!(Prefix::new("a/").is_ok());
        assert!(Prefix::new("a/.").is_ok());
        assert!(Prefix::new("im").is_ok());
        assert_eq!(
            Prefix::new("a//").unwrap_err().rule(),
            KeyRule::EmptySegment
        );
        assert_eq!(Prefix::new("../").unwrap_err().rule(), KeyRule::DotSegment);
        assert_eq!(Prefix::new("/a").unwrap_err().rule(), KeyRule::LeadingSlash);
    }

    #[test]
    fn the_error_message_names_the_key_and_the_rule() {
        let err = Key::new("a/../b").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid key \"a/../b\": a key must not contain a '.' or '..' segment"
        );
    }
}
