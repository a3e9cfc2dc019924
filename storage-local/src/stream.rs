//! [`FileStream`]: the body of a streamed get.
//!
//! While the file's pages are in the page cache, chunks are read on the
//! consumer's task with non-waiting reads (see [`crate::cached`]): a read
//! is then a copy from memory, and handing each chunk across threads
//! would cost more than the copy's share of the time. At the first read
//! that would wait for the disk, the rest of the range goes to a blocking
//! thread that reads ahead of the consumer. Either way chunks are filled
//! into recycled buffers ([`BufferPool`]), so memory stays flat and the
//! buffer being filled is usually still in the CPU's caches.

use std::fs::File;
use std::io::{self, Read, Seek};
use std::ops::Range;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use storage_core::{ByteStream, Error, ErrorKind, Result};
use tokio::sync::mpsc;

use crate::backend::corruption;
use crate::buffers::BufferPool;
use crate::cached;
use crate::error::from_io;

/// Chunk size of streamed reads: large enough that a chunk's fixed costs
/// (a system call, a buffer from the pool, and on the blocking path a
/// hand-off) are a few percent of copying it, small enough that recycled
/// buffers stay in the CPU's caches and a chunk copied on the consumer's
/// task takes tens of microseconds.
pub(crate) const READ_CHUNK: usize = 1 << 20;
/// Chunks the blocking reader reads ahead of the consumer.
pub(crate) const READ_AHEAD: usize = 4;

/// A range of an object file as a stream of chunks.
pub(crate) struct FileStream {
    /// The file, while chunks are read on the consumer's task.
    file: Option<File>,
    position: u64,
    end: u64,
    buffer_len: usize,
    pool: BufferPool,
    crc: Crc,
    /// The blocking reader, once a read would have waited.
    reader: Option<mpsc::Receiver<Result<Bytes>>>,
    finished: bool,
    /// Chunks read on the consumer's task before acting as if the next
    /// read would wait: lets tests cross from one path to the other at a
    /// chosen chunk, which the page cache does not do on demand.
    #[cfg(test)]
    cached_chunks_left: usize,
}

/// The running CRC-32C of a whole-object read, checked at its end.
#[derive(Clone, Copy)]
struct Crc {
    expected: Option<u32>,
    actual: u32,
}

impl Crc {
    fn update(&mut self, chunk: &[u8]) {
        if self.expected.is_some() {
            self.actual = crc32c::crc32c_append(self.actual, chunk);
        }
    }

    /// `Corruption` if the content read does not match what was stored.
    fn check(&self) -> Result<()> {
        match self.expected {
            Some(expected) if expected != self.actual => Err(corruption(expected, self.actual)),
            _ => Ok(()),
        }
    }
}

impl FileStream {
    /// Streams `range` of `file`. With `expected_crc`, the whole content
    /// is checked and a mismatch ends the stream with `Corruption`. With
    /// `cached_reads` off, every chunk is read on a blocking thread.
    pub(crate) fn start(
        file: File,
        range: Range<u64>,
        expected_crc: Option<u32>,
        cached_reads: bool,
    ) -> ByteStream {
        Box::pin(Self::new(file, range, expected_crc, cached_reads))
    }

    fn new(file: File, range: Range<u64>, expected_crc: Option<u32>, cached_reads: bool) -> Self {
        let mut stream = Self {
            file: Some(file),
            position: range.start,
            end: range.end,
            buffer_len: (range.end - range.start).min(READ_CHUNK as u64) as usize,
            pool: BufferPool::new(),
            crc: Crc {
                expected: expected_crc,
                actual: 0,
            },
            reader: None,
            finished: false,
            #[cfg(test)]
            cached_chunks_left: usize::MAX,
        };
        if !cached_reads {
            stream.hand_to_reader();
        }
        stream
    }

    /// Moves the rest of the range to a blocking thread that reads ahead.
    fn hand_to_reader(&mut self) {
        let Some(file) = self.file.take() else {
            return;
        };
        let (sender, receiver) = mpsc::channel(READ_AHEAD);
        let (range, buffer_len, pool, crc) = (
            self.position..self.end,
            self.buffer_len,
            self.pool.clone(),
            self.crc,
        );
        tokio::task::spawn_blocking(move || {
            read_ahead(file, range, buffer_len, &pool, crc, sender)
        });
        self.reader = Some(receiver);
    }

    /// The next chunk read on this task, or `None` if that would wait.
    fn read_cached(&mut self) -> Option<Result<Bytes>> {
        #[cfg(test)]
        {
            self.cached_chunks_left = self.cached_chunks_left.checked_sub(1)?;
        }
        let file = self.file.as_ref()?;
        let want = (self.end - self.position).min(READ_CHUNK as u64) as usize;
        let mut buffer = self.pool.take(self.buffer_len);
        match cached::read_exact_at(file, &mut buffer[..want], self.position) {
            Ok(true) => {
                self.position += want as u64;
                self.crc.update(&buffer[..want]);
                Some(Ok(self.pool.chunk(buffer, want)))
            }
            Ok(false) => {
                self.pool.give_back(buffer);
                None
            }
            Err(err) => Some(Err(read_error(err))),
        }
    }
}

impl Stream for FileStream {
    type Item = Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(reader) = &mut this.reader {
            return reader.poll_recv(cx);
        }
        if this.finished {
            return Poll::Ready(None);
        }
        if this.position >= this.end {
            this.finished = true;
            return Poll::Ready(this.crc.check().err().map(Err));
        }
        match this.read_cached() {
            Some(item) => {
                this.finished = item.is_err();
                Poll::Ready(Some(item))
            }
            None => {
                this.hand_to_reader();
                match &mut this.reader {
                    Some(reader) => reader.poll_recv(cx),
                    None => Poll::Ready(None),
                }
            }
        }
    }
}

/// The blocking reader: `range` of `file` in chunks, at most `READ_AHEAD`
/// ahead of the consumer, then the CRC check.
fn read_ahead(
    mut file: File,
    range: Range<u64>,
    buffer_len: usize,
    pool: &BufferPool,
    mut crc: Crc,
    sender: mpsc::Sender<Result<Bytes>>,
) {
    if let Err(err) = file.seek(io::SeekFrom::Start(range.start)) {
        let _ = sender.blocking_send(Err(from_io(err)));
        return;
    }
    let mut remaining = range.end - range.start;
    while remaining > 0 {
        let want = remaining.min(READ_CHUNK as u64) as usize;
        let mut buffer = pool.take(buffer_len);
        let item = match file.read_exact(&mut buffer[..want]).map_err(read_error) {
            Ok(()) => {
                remaining -= want as u64;
                crc.update(&buffer[..want]);
                Ok(pool.chunk(buffer, want))
            }
            Err(err) => Err(err),
        };
        let failed = item.is_err();
        if sender.blocking_send(item).is_err() || failed {
            return;
        }
    }
    if let Err(err) = crc.check() {
        let _ = sender.blocking_send(Err(err));
    }
}

/// A read error; a file that ended early is `Corruption`.
fn read_error(err: io::Error) -> Error {
    if err.kind() == io::ErrorKind::UnexpectedEof {
        Error::new(ErrorKind::Corruption, "the object file ended early")
    } else {
        from_io(err)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail by panicking.
mod tests {
    use futures::StreamExt;

    use super::*;
    use crate::scratch_folder;

    /// A file of `len` patterned bytes, flushed so its pages are clean.
    fn file_of(len: usize) -> (tempfile::TempDir, File, Vec<u8>) {
        let folder = scratch_folder();
        let path = folder.path().join("object");
        let content: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        (folder, File::open(&path).unwrap(), content)
    }

    async fn drain(stream: &mut FileStream) -> (Vec<u8>, Option<Error>) {
        let mut out = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(chunk) => out.extend_from_slice(&chunk),
                Err(err) => return (out, Some(err)),
            }
        }
        (out, None)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cached_pages_are_read_on_the_consumers_task() {
        let (_folder, file, content) = file_of(3 * READ_CHUNK + 17);
        let crc = crc32c::crc32c(&content);
        let mut stream = FileStream::new(file, 0..content.len() as u64, Some(crc), true);
        let (read, err) = drain(&mut stream).await;
        assert!(err.is_none(), "{err:?}");
        assert!(read == content, "the content differs");
        assert!(stream.reader.is_none(), "a blocking reader was started");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_that_would_wait_hands_the_rest_to_a_reader() {
        let (_folder, file, content) = file_of(5 * READ_CHUNK + 3);
        let crc = crc32c::crc32c(&content);
        let mut stream = FileStream::new(file, 0..content.len() as u64, Some(crc), true);
        stream.cached_chunks_left = 2;
        let (read, err) = drain(&mut stream).await;
        assert!(
            err.is_none(),
            "the checksum across both paths failed: {err:?}"
        );
        assert!(read == content, "the content differs across the hand-over");
        assert!(stream.reader.is_some(), "no blocking reader took over");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_range_crosses_the_hand_over_exactly() {
        let (_folder, file, content) = file_of(4 * READ_CHUNK);
        let range = 12_345..(3 * READ_CHUNK + 999) as u64;
        let mut stream = FileStream::new(file, range.clone(), None, true);
        stream.cached_chunks_left = 1;
        let (read, err) = drain(&mut stream).await;
        assert!(err.is_none(), "{err:?}");
        assert!(read == content[range.start as usize..range.end as usize]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_checksum_mismatch_ends_the_stream_on_either_path() {
        for cached_chunks in [usize::MAX, 1, 0] {
            let (_folder, file, content) = file_of(2 * READ_CHUNK + 5);
            let wrong = crc32c::crc32c(&content) ^ 1;
            let mut stream = FileStream::new(file, 0..content.len() as u64, Some(wrong), true);
            stream.cached_chunks_left = cached_chunks;
            let (read, err) = drain(&mut stream).await;
            assert_eq!(read.len(), content.len());
            let err = err.expect("no corruption reported");
            assert_eq!(err.kind(), ErrorKind::Corruption, "{err}");
            assert!(
                stream.next().await.is_none(),
                "the stream went on after an error"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_cached_reads_off_every_chunk_comes_from_the_reader() {
        let (_folder, file, content) = file_of(2 * READ_CHUNK + 1);
        let mut stream = FileStream::new(file, 0..content.len() as u64, None, false);
        assert!(stream.reader.is_some());
        let (read, err) = drain(&mut stream).await;
        assert!(err.is_none(), "{err:?}");
        assert!(read == content);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_shorter_than_its_range_is_corruption() {
        // On the consumer's task and on the blocking reader alike.
        for cached_reads in [true, false] {
            let (_folder, file, content) = file_of(READ_CHUNK + 10);
            let range = 0..content.len() as u64 + 100;
            let mut stream = FileStream::new(file, range, None, cached_reads);
            let (_, err) = drain(&mut stream).await;
            assert_eq!(err.expect("no error").kind(), ErrorKind::Corruption);
        }
    }
}
