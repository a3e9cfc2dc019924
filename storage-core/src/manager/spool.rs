//! Learning the size of a stream of unknown length, in bounded memory.
//!
//! Size routes need a size. A body that declares none is read ahead: the
//! first [`MEMORY_LIMIT`] bytes in memory, the rest into an anonymous
//! temporary file, until the stream ends (the size is then exact) or passes
//! the largest size any route compares against (then that is all routing
//! needs to know). The body handed on replays what was read, then the rest
//! of the stream, so nothing is lost and memory stays under a few MiB
//! whatever the size.

use std::io::{Read, Seek, SeekFrom, Write};

use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt, stream};

use crate::body::{Body, ByteStream};
use crate::error::{Error, ErrorKind, Result};

/// Bytes kept in memory before spilling to a temporary file.
pub const MEMORY_LIMIT: usize = 8 << 20;
/// Chunk size when replaying the temporary file.
const REPLAY_CHUNK: usize = 1 << 20;

/// What reading ahead learned about the size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnownSize {
    /// The stream ended: this is its size.
    Exact(u64),
    /// The stream is longer than this (the largest limit asked about).
    MoreThan(u64),
}

impl KnownSize {
    /// A size that answers every comparison with limits up to the one read
    /// ahead for as the real size would.
    pub fn for_routing(self) -> u64 {
        match self {
            KnownSize::Exact(n) => n,
            KnownSize::MoreThan(n) => n.saturating_add(1),
        }
    }
}

fn io_error(err: std::io::Error) -> Error {
    Error::new(
        ErrorKind::Other,
        format!("cannot spool the body to a temporary file: {err}"),
    )
    .with_source(err)
}

/// Reads `body` ahead until its size is known or exceeds `limit`; returns
/// what was learned and a body that yields the same bytes.
pub async fn measure(body: Body, limit: u64) -> Result<(KnownSize, Body)> {
    let mut stream = match body {
        Body::Bytes(bytes) => {
            return Ok((KnownSize::Exact(bytes.len() as u64), Body::Bytes(bytes)));
        }
        Body::Stream {
            stream,
            size: Some(size),
        } => {
            return Ok((
                KnownSize::Exact(size),
                Body::Stream {
                    stream,
                    size: Some(size),
                },
            ));
        }
        Body::Stream { stream, size: None } => stream,
    };
    let mut memory = BytesMut::new();
    let mut file: Option<std::fs::File> = None;
    let mut total = 0u64;
    let mut ended = false;
    while total <= limit {
        let Some(chunk) = stream.try_next().await? else {
            ended = true;
            break;
        };
        total += chunk.len() as u64;
        if file.is_none() && memory.len() + chunk.len() <= MEMORY_LIMIT {
            memory.extend_from_slice(&chunk);
            continue;
        }
        let spill = match file.take() {
            Some(spill) => spill,
            None => tokio::task::spawn_blocking(tempfile::tempfile)
                .await
                .map_err(|err| {
                    Error::new(ErrorKind::Other, "spooling did not complete").with_source(err)
                })?
                .map_err(io_error)?,
        };
        file = Some(
            tokio::task::spawn_blocking(move || {
                let mut spill = spill;
                spill.write_all(&chunk).map(|()| spill)
            })
            .await
            .map_err(|err| {
                Error::new(ErrorKind::Other, "spooling did not complete").with_source(err)
            })?
            .map_err(io_error)?,
        );
    }
    let known = if ended {
        KnownSize::Exact(total)
    } else {
        KnownSize::MoreThan(limit)
    };
    let head: ByteStream = if memory.is_empty() {
        Box::pin(stream::empty())
    } else {
        Box::pin(stream::once(async move { Ok(memory.freeze()) }))
    };
    let spilled: ByteStream = match file {
        Some(file) => replay(file),
        None => Box::pin(stream::empty()),
    };
    let rest: ByteStream = if ended {
        Box::pin(stream::empty())
    } else {
        stream
    };
    let replayed = head.chain(spilled).chain(rest);
    let body = match known {
        KnownSize::Exact(size) => Body::from_sized_stream(replayed, size),
        KnownSize::MoreThan(_) => Body::from_stream(replayed),
    };
    Ok((known, body))
}

/// Streams a spooled file from its start, a chunk at a time; the file is
/// anonymous, so it disappears when the stream is dropped.
fn replay(file: std::fs::File) -> ByteStream {
    let start = stream::once(async move {
        tokio::task::spawn_blocking(move || {
            let mut file = file;
            file.seek(SeekFrom::Start(0)).map(|_| file)
        })
        .await
        .map_err(|err| Error::new(ErrorKind::Other, "spooling did not complete").with_source(err))?
        .map_err(io_error)
    });
    Box::pin(
        start
            .map_ok(|file| {
                stream::try_unfold(file, |file| async move {
                    let (file, chunk) = tokio::task::spawn_blocking(move || {
                        let mut file = file;
                        let mut chunk = Vec::with_capacity(REPLAY_CHUNK);
                        (&mut file)
                            .take(REPLAY_CHUNK as u64)
                            .read_to_end(&mut chunk)
                            .map(|_| (file, chunk))
                    })
                    .await
                    .map_err(|err| {
                        Error::new(ErrorKind::Other, "spooling did not complete").with_source(err)
                    })?
                    .map_err(io_error)?;
                    if chunk.is_empty() {
                        Ok(None)
                    } else {
                        Ok(Some((Bytes::from(chunk), file)))
                    }
                })
            })
            .try_flatten(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::collect_stream;

    fn chunks(count: usize, size: usize) -> Body {
        Body::from_stream(stream::iter(
            (0..count).map(move |i| Ok(Bytes::from(vec![i as u8; size]))),
        ))
    }

    #[tokio::test]
    async fn a_short_stream_is_measured_exactly_in_memory() {
        let (known, body) = measure(chunks(3, 10), 1000).await.unwrap();
        assert_eq!(known, KnownSize::Exact(30));
        assert_eq!(body.size_hint(), Some(30));
        assert_eq!(collect_stream(body.into_stream()).await.unwrap().len(), 30);
    }

    #[tokio::test]
    async fn a_long_stream_spills_and_replays_every_byte_in_order() {
        let (known, body) = measure(chunks(40, 1 << 20), 20 << 20).await.unwrap();
        assert_eq!(known, KnownSize::MoreThan(20 << 20));
        let bytes = collect_stream(body.into_stream()).await.unwrap();
        assert_eq!(bytes.len(), 40 << 20);
        for (i, chunk) in bytes.chunks(1 << 20).enumerate() {
            assert!(
                chunk.iter().all(|&b| b == i as u8),
                "chunk {i} is out of place"
            );
        }
    }

    #[tokio::test]
    async fn a_stream_that_ends_after_spilling_is_exact() {
        let (known, body) = measure(chunks(12, 1 << 20), 100 << 20).await.unwrap();
        assert_eq!(known, KnownSize::Exact(12 << 20));
        assert_eq!(
            collect_stream(body.into_stream()).await.unwrap().len(),
            12 << 20
        );
    }
}
