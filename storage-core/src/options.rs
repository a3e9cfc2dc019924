//! Options for each operation.
//!
//! Every options type is `#[non_exhaustive]` and built from `default()`
//! with `with_*` methods, so new options never break a caller.

use std::ops::Range;

use crate::error::{Error, ErrorKind, Result};
use crate::key::Key;
use crate::object::UserMetadata;

/// How a put treats an object already at the key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteMode {
    /// Replace whatever is there (the default).
    #[default]
    Overwrite,
    /// Write only if no object is at the key; otherwise fail with
    /// `AlreadyExists` and change nothing. Of concurrent create-only
    /// writers exactly one succeeds.
    CreateNew,
    /// Replace only if the current object's etag equals this one;
    /// otherwise (or if there is no object) fail with
    /// `PreconditionFailed` and change nothing.
    UpdateIfMatch(String),
}

/// Options of [`Storage::put`](crate::Storage::put).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PutOptions {
    /// The content type to store and serve (`Content-Type`).
    pub content_type: Option<String>,
    /// The cache control to store and serve (`Cache-Control`).
    pub cache_control: Option<String>,
    /// User metadata to store with the object.
    pub user_metadata: UserMetadata,
    /// What to do if an object is already at the key.
    pub mode: WriteMode,
}

impl PutOptions {
    /// Sets the content type.
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// Sets the cache control.
    pub fn with_cache_control(mut self, cache_control: impl Into<String>) -> Self {
        self.cache_control = Some(cache_control.into());
        self
    }

    /// Adds one user metadata pair.
    pub fn with_metadata(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.user_metadata.insert(name.into(), value.into());
        self
    }

    /// Sets the write mode.
    pub fn with_mode(mut self, mode: WriteMode) -> Self {
        self.mode = mode;
        self
    }

    /// Create only if absent (shorthand for [`WriteMode::CreateNew`]).
    pub fn create_new(self) -> Self {
        self.with_mode(WriteMode::CreateNew)
    }

    /// Replace only if the etag matches (shorthand for
    /// [`WriteMode::UpdateIfMatch`]).
    pub fn if_match(self, etag: impl Into<String>) -> Self {
        self.with_mode(WriteMode::UpdateIfMatch(etag.into()))
    }
}

/// A byte range to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ByteRange {
    /// Bytes `start..end` (end exclusive). A range reaching past the end
    /// of the object is cut at the end.
    Bounded {
        /// The first byte.
        start: u64,
        /// One past the last byte; greater than `start`.
        end: u64,
    },
    /// Bytes from `start` to the end of the object.
    From(u64),
    /// The last `n` bytes (the whole object if it is shorter).
    Suffix(u64),
}

impl ByteRange {
    /// The bytes of `range`.
    pub fn bounded(range: Range<u64>) -> Self {
        ByteRange::Bounded {
            start: range.start,
            end: range.end,
        }
    }

    /// The absolute byte range this asks for in an object of `size` bytes.
    ///
    /// An empty request (`start >= end`, or a zero suffix) is
    /// `InvalidInput`. A range that starts at or after the end, any range
    /// of an empty object included, is `RangeNotSatisfiable`, as HTTP 416.
    pub fn resolve(&self, size: u64) -> Result<Range<u64>> {
        let (start, end) = match *self {
            ByteRange::Bounded { start, end } if start >= end => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("the range {start}..{end} is empty"),
                ));
            }
            ByteRange::Bounded { start, end } => (start, end.min(size)),
            ByteRange::From(start) => (start, size),
            ByteRange::Suffix(0) => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "a suffix range of 0 bytes is empty",
                ));
            }
            ByteRange::Suffix(n) => (size.saturating_sub(n), size),
        };
        if start >= size {
            return Err(Error::new(
                ErrorKind::RangeNotSatisfiable,
                format!("the range starts at byte {start} of an object of {size} bytes"),
            ));
        }
        Ok(start..end)
    }

    /// The value of an HTTP `Range` header for this range.
    pub fn to_http_header(&self) -> String {
        match *self {
            ByteRange::Bounded { start, end } => {
                format!("bytes={start}-{}", end.saturating_sub(1))
            }
            ByteRange::From(start) => format!("bytes={start}-"),
            ByteRange::Suffix(n) => format!("bytes=-{n}"),
        }
    }

    /// Parses an HTTP `Range` header with a single range (`bytes=a-b`,
    /// `bytes=a-`, `bytes=-n`). Multiple ranges are not supported.
    pub fn parse_http_header(value: &str) -> Result<Self> {
        let invalid = || {
            Error::new(
                ErrorKind::InvalidInput,
                format!("unsupported Range header {value:?}"),
            )
        };
        let spec = value.trim().strip_prefix("bytes=").ok_or_else(invalid)?;
        let (first, last) = spec.split_once('-').ok_or_else(invalid)?;
        let number = |s: &str| s.trim().parse::<u64>().map_err(|_| invalid());
        match (first.trim().is_empty(), last.trim().is_empty()) {
            (true, false) => Ok(ByteRange::Suffix(number(last)?)),
            (false, true) => Ok(ByteRange::From(number(first)?)),
            (false, false) => {
                let start = number(first)?;
                let end = number(last)?.checked_add(1).ok_or_else(invalid)?;
                if end <= start {
                    return Err(invalid());
                }
                Ok(ByteRange::Bounded { start, end })
            }
            (true, true) => Err(invalid()),
        }
    }
}

impl From<Range<u64>> for ByteRange {
    fn from(range: Range<u64>) -> Self {
        ByteRange::bounded(range)
    }
}

/// Options of [`Storage::get`](crate::Storage::get).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GetOptions {
    /// Read only these bytes.
    pub range: Option<ByteRange>,
    /// Fail with `PreconditionFailed` unless the current etag is this one.
    pub if_match: Option<String>,
    /// Fail with `NotModified` if the current etag is this one.
    pub if_none_match: Option<String>,
}

impl GetOptions {
    /// Reads only `range`.
    pub fn with_range(mut self, range: impl Into<ByteRange>) -> Self {
        self.range = Some(range.into());
        self
    }

    /// Requires the current etag to be `etag`.
    pub fn with_if_match(mut self, etag: impl Into<String>) -> Self {
        self.if_match = Some(etag.into());
        self
    }

    /// Requires the current etag to differ from `etag`.
    pub fn with_if_none_match(mut self, etag: impl Into<String>) -> Self {
        self.if_none_match = Some(etag.into());
        self
    }

    /// Applies `if_match` and `if_none_match` to the object's current
    /// etag, for backends that check conditions themselves. `*` matches
    /// any existing object.
    pub fn check_conditions(&self, etag: Option<&str>) -> Result<()> {
        if let Some(expected) = &self.if_match
            && expected != "*"
            && etag != Some(expected.as_str())
        {
            return Err(Error::new(
                ErrorKind::PreconditionFailed,
                "the object's etag does not match if-match",
            ));
        }
        if let Some(unexpected) = &self.if_none_match
            && (unexpected == "*" || etag == Some(unexpected.as_str()))
        {
            return Err(Error::new(
                ErrorKind::NotModified,
                "the object's etag matches if-none-match",
            ));
        }
        Ok(())
    }
}

/// Options of [`Storage::list`](crate::Storage::list).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListOptions {
    /// Group keys that continue past a `/` after the prefix into one
    /// [`ListEntry::Prefix`](crate::ListEntry::Prefix) each, as a
    /// directory listing does.
    pub delimiter: bool,
    /// Start after this key (exclusive): resumes an interrupted listing.
    pub start_after: Option<Key>,
}

impl ListOptions {
    /// Lists one "directory" level: sets [`delimiter`](Self::delimiter).
    pub fn with_delimiter(mut self) -> Self {
        self.delimiter = true;
        self
    }

    /// Starts after `key`.
    pub fn with_start_after(mut self, key: Key) -> Self {
        self.start_after = Some(key);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_as_http_does() {
        assert_eq!(ByteRange::bounded(2..5).resolve(10).unwrap(), 2..5);
        assert_eq!(ByteRange::bounded(8..50).resolve(10).unwrap(), 8..10);
        assert_eq!(ByteRange::From(3).resolve(10).unwrap(), 3..10);
        assert_eq!(ByteRange::Suffix(4).resolve(10).unwrap(), 6..10);
        assert_eq!(ByteRange::Suffix(40).resolve(10).unwrap(), 0..10);
        let past = ByteRange::From(10).resolve(10).unwrap_err();
        assert_eq!(past.kind(), ErrorKind::RangeNotSatisfiable);
        let empty_object = ByteRange::Suffix(1).resolve(0).unwrap_err();
        assert_eq!(empty_object.kind(), ErrorKind::RangeNotSatisfiable);
        let empty = ByteRange::bounded(5..5).resolve(10).unwrap_err();
        assert_eq!(empty.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn http_range_headers_round_trip() {
        for range in [
            ByteRange::bounded(0..1),
            ByteRange::bounded(5..100),
            ByteRange::From(7),
            ByteRange::Suffix(9),
        ] {
            let header = range.to_http_header();
            assert_eq!(ByteRange::parse_http_header(&header).unwrap(), range);
        }
        assert!(ByteRange::parse_http_header("bytes=5-2").is_err());
        assert!(ByteRange::parse_http_header("bytes=0-1,3-4").is_err());
        assert!(ByteRange::parse_http_header("items=0-1").is_err());
    }
}
