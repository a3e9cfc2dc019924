//! The stored format: a header, then the plaintext in sealed segments.
//!
//! ```text
//! header (32 bytes)   "SENC", version 1, 3 zero bytes, 24-byte random salt
//! segment 0           64 KiB of plaintext sealed with AES-256-GCM (+16-byte tag)
//! segment 1           ...
//! last segment        the rest (possibly empty), sealed with the "last" flag
//! ```
//!
//! Each object gets its own key, derived from the master key and the
//! object's salt with HKDF-SHA256, so nonces never repeat under one key:
//! the nonce is the segment's index and a flag marking the last segment
//! (the STREAM construction). Reordering, truncating or extending the
//! segments fails authentication. Every object has at least one segment,
//! so an empty object is authenticated too.
//!
//! Sizes are fixed by the plaintext size, so the plaintext size of a
//! stored object is known from its stored size, and a plaintext range maps
//! to a range of whole segments.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::BoxStream;
use storage_core::{Error, ErrorKind, Result};

/// Plaintext bytes per segment.
pub(crate) const SEGMENT: u64 = 64 * 1024;
/// The GCM tag each segment carries.
const TAG: u64 = 16;
/// A stored segment's size (all but possibly the last).
const SEALED: u64 = SEGMENT + TAG;
/// The header's size.
pub(crate) const HEADER: u64 = 32;
const MAGIC: &[u8; 4] = b"SENC";
const VERSION: u8 = 1;
const SALT: usize = 24;
const INFO: &[u8] = b"storage-plugin-encrypted v1 object key";

/// The 256-bit master key. Never printed.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

impl MasterKey {
    /// A key from its 32 bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A key from standard base64 of 32 bytes. The error never contains
    /// the text.
    pub fn from_base64(text: &str) -> Result<Self> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| invalid_key("it is not valid base64"))?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|bytes: Vec<u8>| {
            invalid_key(&format!("it decodes to {} bytes, not 32", bytes.len()))
        })?;
        Ok(Self(bytes))
    }

    fn object_cipher(&self, salt: &[u8]) -> Result<ObjectCipher> {
        let key: UnboundKey = Salt::new(HKDF_SHA256, salt)
            .extract(&self.0)
            .expand(&[INFO], &AES_256_GCM)
            .map_err(|_| crypto("cannot derive the object key"))?
            .into();
        Ok(ObjectCipher(LessSafeKey::new(key)))
    }
}

fn invalid_key(why: &str) -> Error {
    Error::new(
        ErrorKind::InvalidConfig,
        format!("the key must be 32 bytes in standard base64; {why}"),
    )
}

fn crypto(what: &str) -> Error {
    Error::new(ErrorKind::Other, what.to_owned())
}

fn corrupt(what: String) -> Error {
    Error::new(ErrorKind::Corruption, what)
}

/// The number of segments of a plaintext of `plain` bytes.
pub(crate) fn segments(plain: u64) -> u64 {
    plain.div_ceil(SEGMENT).max(1)
}

/// The stored size of a plaintext of `plain` bytes.
pub(crate) fn stored_size(plain: u64) -> u64 {
    HEADER + plain + TAG * segments(plain)
}

/// The plaintext size of an object stored in `stored` bytes, or
/// `Corruption` if no plaintext has that stored size.
pub(crate) fn plain_size(stored: u64) -> Result<u64> {
    let body = stored.checked_sub(HEADER);
    let plain = body.and_then(|body| body.checked_sub(TAG * body.div_ceil(SEALED).max(1)));
    match plain {
        Some(plain) if stored_size(plain) == stored => Ok(plain),
        _ => Err(corrupt(format!(
            "a stored size of {stored} bytes is not one this plugin writes"
        ))),
    }
}

/// The stored bytes that hold plaintext bytes `start..end` (non-empty) of
/// an object of `plain` bytes: whole segments, from the first to the last
/// one touched.
pub(crate) fn stored_range(start: u64, end: u64, plain: u64) -> std::ops::Range<u64> {
    let first = start / SEGMENT;
    let last = (end - 1) / SEGMENT;
    let stored_end = (HEADER + (last + 1) * SEALED).min(stored_size(plain));
    HEADER + first * SEALED..stored_end
}

struct ObjectCipher(LessSafeKey);

impl ObjectCipher {
    fn nonce(index: u64, last: bool) -> Result<Nonce> {
        let index = u32::try_from(index).map_err(|_| crypto("an object of more than 256 TiB"))?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..4].copy_from_slice(&index.to_be_bytes());
        nonce[4] = u8::from(last);
        Ok(Nonce::assume_unique_for_key(nonce))
    }

    fn seal(&self, index: u64, last: bool, plaintext: &[u8]) -> Result<Bytes> {
        let mut sealed = Vec::with_capacity(plaintext.len() + TAG as usize);
        sealed.extend_from_slice(plaintext);
        self.0
            .seal_in_place_append_tag(Self::nonce(index, last)?, Aad::empty(), &mut sealed)
            .map_err(|_| crypto("cannot seal a segment"))?;
        Ok(Bytes::from(sealed))
    }

    fn open(&self, index: u64, last: bool, mut sealed: BytesMut) -> Result<Bytes> {
        let plain_len = self
            .0
            .open_in_place(Self::nonce(index, last)?, Aad::empty(), &mut sealed)
            .map_err(|_| {
                corrupt(format!(
                    "segment {index} does not authenticate: wrong key, or altered data"
                ))
            })?
            .len();
        sealed.truncate(plain_len);
        Ok(sealed.freeze())
    }
}

/// Encrypts a plaintext stream into the stored format, segment by
/// segment: at most two segments are in memory.
pub(crate) fn encrypt(
    key: &MasterKey,
    plaintext: BoxStream<'static, Result<Bytes>>,
) -> Result<BoxStream<'static, Result<Bytes>>> {
    let mut salt = [0u8; SALT];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| crypto("no randomness for the salt"))?;
    let cipher = key.object_cipher(&salt)?;
    let mut header = Vec::with_capacity(HEADER as usize);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&[VERSION, 0, 0, 0]);
    header.extend_from_slice(&salt);

    struct State {
        input: BoxStream<'static, Result<Bytes>>,
        cipher: ObjectCipher,
        pending: BytesMut,
        index: u64,
        finished: bool,
    }
    let state = State {
        input: plaintext,
        cipher,
        pending: BytesMut::new(),
        index: 0,
        finished: false,
    };
    let segments = futures::stream::try_unfold(state, |mut state| async move {
        if state.finished {
            return Ok(None);
        }
        // A segment is sealed once more plaintext follows it, so the last
        // one is known to be last.
        loop {
            if state.pending.len() as u64 > SEGMENT {
                let segment = state.pending.split_to(SEGMENT as usize);
                let sealed = state.cipher.seal(state.index, false, &segment)?;
                state.index += 1;
                return Ok(Some((sealed, state)));
            }
            match state.input.next().await {
                Some(chunk) => state.pending.extend_from_slice(&chunk?),
                None => {
                    let sealed = state.cipher.seal(state.index, true, &state.pending)?;
                    state.finished = true;
                    return Ok(Some((sealed, state)));
                }
            }
        }
    });
    Ok(
        futures::stream::once(async move { Ok(Bytes::from(header)) })
            .chain(segments)
            .boxed(),
    )
}

/// What to decrypt: stored bytes that start at the header (`header` is
/// `None`) or at segment `first_segment` (`header` holds the header, read
/// apart); of the plaintext those segments hold, bytes `skip..skip + take`
/// are yielded.
pub(crate) struct Decryption {
    /// The header, if the stored bytes do not start with it.
    pub(crate) header: Option<Bytes>,
    /// The first segment of the stored bytes.
    pub(crate) first_segment: u64,
    /// The object's segment count.
    pub(crate) segments: u64,
    /// Plaintext bytes to drop at the start.
    pub(crate) skip: u64,
    /// Plaintext bytes to yield.
    pub(crate) take: u64,
}

/// Decrypts stored bytes as `plan` says, one segment at a time.
pub(crate) fn decrypt(
    key: &MasterKey,
    stored: BoxStream<'static, Result<Bytes>>,
    plan: Decryption,
) -> Result<BoxStream<'static, Result<Bytes>>> {
    struct State {
        input: BoxStream<'static, Result<Bytes>>,
        key: MasterKey,
        cipher: Option<ObjectCipher>,
        header: BytesMut,
        pending: BytesMut,
        index: u64,
        segments: u64,
        skip: u64,
        left: u64,
    }
    let cipher = match &plan.header {
        Some(header) => Some(read_header(key, header)?),
        None => None,
    };
    let state = State {
        input: stored,
        key: key.clone(),
        cipher,
        header: BytesMut::new(),
        pending: BytesMut::new(),
        index: plan.first_segment,
        segments: plan.segments,
        skip: plan.skip,
        left: plan.take,
    };
    Ok(futures::stream::try_unfold(state, |mut state| async move {
        loop {
            if state.left == 0 {
                return Ok(None);
            }
            let last = state.index + 1 == state.segments;
            let need_more = match state.cipher {
                None => state.header.len() < HEADER as usize,
                Some(_) => state.pending.len() < SEALED as usize,
            };
            if need_more {
                match state.input.next().await {
                    Some(chunk) => {
                        let mut chunk = chunk?;
                        if state.cipher.is_none() {
                            // Header bytes first; the rest belongs to segments.
                            let need = (HEADER as usize - state.header.len()).min(chunk.len());
                            state.header.extend_from_slice(&chunk.split_to(need));
                            if state.header.len() == HEADER as usize {
                                state.cipher = Some(read_header(&state.key, &state.header)?);
                            }
                        }
                        state.pending.extend_from_slice(&chunk);
                        continue;
                    }
                    None if state.cipher.is_some() && last && !state.pending.is_empty() => {}
                    None => {
                        return Err(corrupt(format!(
                            "the stored object ends inside segment {}",
                            state.index
                        )));
                    }
                }
            }
            let Some(cipher) = &state.cipher else {
                continue;
            };
            let take = (SEALED as usize).min(state.pending.len());
            let sealed = state.pending.split_to(take);
            let mut plain = cipher.open(state.index, last, sealed)?;
            state.index += 1;
            let skip = (state.skip as usize).min(plain.len());
            plain = plain.slice(skip..);
            state.skip -= skip as u64;
            if plain.len() as u64 > state.left {
                plain.truncate(state.left as usize);
            }
            state.left -= plain.len() as u64;
            if !plain.is_empty() {
                return Ok(Some((plain, state)));
            }
        }
    })
    .boxed())
}

fn read_header(key: &MasterKey, header: &[u8]) -> Result<ObjectCipher> {
    if header.get(..4) != Some(&MAGIC[..]) || header.get(4) != Some(&VERSION) {
        return Err(corrupt(
            "the stored object is not in this plugin's format (bad header)".to_owned(),
        ));
    }
    key.object_cipher(&header[8..HEADER as usize])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn sizes_invert() {
        for plain in [
            0,
            1,
            SEGMENT - 1,
            SEGMENT,
            SEGMENT + 1,
            3 * SEGMENT,
            5 << 20,
        ] {
            assert_eq!(plain_size(stored_size(plain)).unwrap(), plain, "{plain}");
        }
        for stored in [0, 1, HEADER, HEADER + TAG - 1, HEADER + SEALED + 5] {
            assert_eq!(
                plain_size(stored).unwrap_err().kind(),
                ErrorKind::Corruption,
                "{stored}"
            );
        }
    }

    #[test]
    fn a_wrong_key_is_named_as_such() {
        let err = MasterKey::from_base64("c2hvcnQ=").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(err.to_string().contains("5 bytes"), "{err}");
        assert!(!err.to_string().contains("c2hvcnQ"), "{err}");
        assert_eq!(format!("{:?}", MasterKey::new([7; 32])), "MasterKey(***)");
    }
}
