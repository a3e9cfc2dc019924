//! The object file: the content, then its metadata, in one file.
//!
//! ```text
//! [ content ... ][ metadata JSON ][ JSON length: u32 LE ][ MAGIC: 8 bytes ]
//! ```
//!
//! Content and metadata live in one file so that one `link` or `rename`
//! publishes both: no crash can pair new content with old metadata. The
//! content comes first so a range read is a read at its own offset, and
//! the metadata last because its checksum is known only once the content
//! is written.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use storage_core::{Checksum, Error, ErrorKind, Key, ObjectMeta, Result};

/// Marks the end of a complete object file.
pub(crate) const MAGIC: &[u8; 8] = b"STOBJv01";
/// Bytes after the metadata JSON: its length and the magic.
pub(crate) const FOOTER_LEN: u64 = 12;
/// The page size the metadata read aligns to (a guess where pages are
/// larger: it only decides how much the first read asks for).
const PAGE: u64 = 4096;
/// The largest metadata block accepted; user metadata beyond it is refused
/// at write time.
pub(crate) const MAX_METADATA_LEN: usize = 64 * 1024;

/// The metadata stored after the content.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct StoredMeta {
    pub(crate) size: u64,
    pub(crate) etag: String,
    pub(crate) crc32c: u32,
    /// Milliseconds since the Unix epoch.
    pub(crate) modified_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cache_control: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) user_metadata: BTreeMap<String, String>,
}

impl StoredMeta {
    /// The contract's metadata for `key` (moving the strings, not copying).
    pub(crate) fn into_object_meta(self, key: Key) -> ObjectMeta {
        let mut meta = ObjectMeta::new(key, self.size);
        meta.content_type = self.content_type;
        meta.cache_control = self.cache_control;
        meta.etag = Some(self.etag);
        meta.last_modified = Some(UNIX_EPOCH + Duration::from_millis(self.modified_ms));
        meta.user_metadata = self.user_metadata;
        meta.checksum = Some(Checksum::Crc32c(self.crc32c));
        meta
    }

    /// The trailer that follows the content.
    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        let mut out = serde_json::to_vec(self).map_err(|err| {
            Error::new(ErrorKind::Other, "cannot encode metadata").with_source(err)
        })?;
        if out.len() > MAX_METADATA_LEN {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the metadata takes {} bytes; at most {MAX_METADATA_LEN} are allowed",
                    out.len()
                ),
            ));
        }
        let len = out.len() as u32;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(MAGIC);
        Ok(out)
    }

    /// Parses the trailer at the end of `tail`, which holds the last bytes
    /// of a file of `file_len` bytes.
    pub(crate) fn decode_tail(tail: &[u8], file_len: u64) -> Result<(StoredMeta, u64)> {
        let corrupt =
            |why: &str| Error::new(ErrorKind::Corruption, format!("damaged object file: {why}"));
        if (tail.len() as u64) < FOOTER_LEN || file_len < FOOTER_LEN {
            return Err(corrupt("too short"));
        }
        let footer = &tail[tail.len() - FOOTER_LEN as usize..];
        if &footer[4..] != MAGIC {
            return Err(corrupt("no end marker"));
        }
        let json_len = u32::from_le_bytes([footer[0], footer[1], footer[2], footer[3]]) as u64;
        let trailer_len = json_len + FOOTER_LEN;
        if trailer_len > tail.len() as u64 || trailer_len > file_len {
            return Err(corrupt("metadata length out of bounds"));
        }
        let json_start = tail.len() - trailer_len as usize;
        let json = &tail[json_start..tail.len() - FOOTER_LEN as usize];
        let meta: StoredMeta = serde_json::from_slice(json)
            .map_err(|err| corrupt("unreadable metadata").with_source(err))?;
        let content_len = file_len - trailer_len;
        if meta.size != content_len {
            return Err(corrupt("content length differs from the recorded size"));
        }
        Ok((meta, content_len))
    }

    /// Reads the metadata of an open object file of `file_len` bytes.
    pub(crate) fn read_from(file: &File, file_len: u64) -> Result<StoredMeta> {
        let read = |buf: &mut [u8], offset| read_exact_at(file, buf, offset).map(|()| true);
        // `read` never answers "not now", so there is always an answer.
        Self::read_with(file_len, read)?
            .ok_or_else(|| Error::new(ErrorKind::Other, "the metadata read did not complete"))
    }

    /// Reads the metadata of an object file of `file_len` bytes with
    /// `read_at`, which fills a buffer from an offset or answers `false`
    /// (not now); `None` if it did.
    pub(crate) fn read_with(
        file_len: u64,
        mut read_at: impl FnMut(&mut [u8], u64) -> Result<bool>,
    ) -> Result<Option<StoredMeta>> {
        // Read what the file's last page holds: the trailer usually fits
        // there, and a read within one page is one page-cache lookup and a
        // short copy (4 KiB from the end of a 4 KiB object touched two
        // pages). A trailer reaching into the page before, or large user
        // metadata, takes a second read of its exact length.
        let in_last_page = file_len.saturating_sub(1) % PAGE + 1;
        let guess = if in_last_page >= FOOTER_LEN {
            in_last_page
        } else {
            file_len.min(in_last_page + PAGE)
        };
        let mut tail = vec![0u8; guess as usize];
        if !read_at(&mut tail, file_len - guess)? {
            return Ok(None);
        }
        // The footer (length, then end marker) when it is whole; without
        // the end marker the length is garbage.
        let footer = tail
            .len()
            .checked_sub(FOOTER_LEN as usize)
            .map(|at| &tail[at..])
            .filter(|footer| footer.ends_with(MAGIC));
        match (Self::decode_tail(&tail, file_len), footer) {
            (Ok((meta, _)), _) => Ok(Some(meta)),
            // A whole footer whose metadata did not fit in the first read:
            // read exactly the trailer. Otherwise the first error stands.
            (Err(_), Some(footer)) if guess < file_len => {
                let json_len =
                    u32::from_le_bytes([footer[0], footer[1], footer[2], footer[3]]) as u64;
                if json_len > MAX_METADATA_LEN as u64 {
                    return Err(Error::new(
                        ErrorKind::Corruption,
                        "damaged object file: metadata length out of bounds",
                    ));
                }
                let want = (json_len + FOOTER_LEN).min(file_len);
                let mut tail = vec![0u8; want as usize];
                if !read_at(&mut tail, file_len - want)? {
                    return Ok(None);
                }
                Self::decode_tail(&tail, file_len).map(|(meta, _)| Some(meta))
            }
            (Err(err), _) => Err(err),
        }
    }
}

pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> Result<()> {
    file.read_exact_at(buf, offset)
        .map_err(crate::error::from_io)
}

/// Milliseconds since the epoch, for `modified_ms`.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StoredMeta {
        StoredMeta {
            size: 5,
            etag: "\"e\"".into(),
            crc32c: 7,
            modified_ms: 1,
            content_type: Some("text/plain".into()),
            cache_control: None,
            user_metadata: BTreeMap::from([("k".into(), "v".into())]),
        }
    }

    #[test]
    fn a_trailer_decodes_to_what_was_encoded() {
        let mut file = b"hello".to_vec();
        file.extend(sample().encode().unwrap());
        let (meta, content_len) = StoredMeta::decode_tail(&file, file.len() as u64).unwrap();
        assert_eq!(meta, sample());
        assert_eq!(content_len, 5);
    }

    /// An object file of `content_len` bytes of content and `sample()`'s
    /// metadata with `user` bytes of user metadata.
    fn object_file(content_len: usize, user: usize) -> Vec<u8> {
        let mut meta = sample();
        meta.size = content_len as u64;
        meta.user_metadata = BTreeMap::from([("k".into(), "v".repeat(user))]);
        let mut file = vec![7u8; content_len];
        file.extend(meta.encode().unwrap());
        file
    }

    /// Reads `file`'s metadata with `read_with`, counting the reads.
    fn read_counting(file: &[u8]) -> (Result<Option<StoredMeta>>, usize) {
        let mut reads = 0;
        let result = StoredMeta::read_with(file.len() as u64, |buf, offset| {
            reads += 1;
            let start = offset as usize;
            buf.copy_from_slice(&file[start..start + buf.len()]);
            Ok(true)
        });
        (result, reads)
    }

    #[test]
    fn a_trailer_in_the_last_page_takes_one_read_and_others_two() {
        // 4 KiB of content: the trailer is alone in the second page.
        for (content, user, reads) in [(4096, 1, 1), (100, 1, 1), (4000, 1, 2), (10, 9000, 2)] {
            let file = object_file(content, user);
            let (meta, counted) = read_counting(&file);
            let meta = meta.unwrap().unwrap();
            assert_eq!(meta.size, content as u64);
            assert_eq!(meta.user_metadata["k"].len(), user);
            assert_eq!(
                counted, reads,
                "{content} bytes of content, {user} of user metadata"
            );
        }
    }

    #[test]
    fn a_file_without_its_end_marker_fails_after_one_read() {
        // The length field of a damaged footer is not trusted: no second
        // read of whatever size it says.
        let mut file = object_file(100_000, 1);
        let len = file.len();
        file[len - 4..len - 2].copy_from_slice(b"xx");
        let (result, reads) = read_counting(&file);
        assert_eq!(result.unwrap_err().kind(), ErrorKind::Corruption);
        assert_eq!(reads, 1);
        let mut file = object_file(100_000, 1);
        let len = file.len();
        file[len - 12..len - 8].copy_from_slice(&u32::MAX.to_le_bytes());
        let (result, reads) = read_counting(&file);
        assert_eq!(result.unwrap_err().kind(), ErrorKind::Corruption);
        assert_eq!(reads, 1);
    }

    #[test]
    fn a_truncated_file_is_corruption() {
        let mut file = b"hello".to_vec();
        file.extend(sample().encode().unwrap());
        file.pop();
        let err = StoredMeta::decode_tail(&file, file.len() as u64).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corruption);
    }
}
