//! What goes in (a [`Body`]) and what comes out (a [`GetResult`]).

use std::fmt;
use std::ops::Range;
use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt, TryStreamExt, stream};

use crate::error::{Error, ErrorKind, Result};
use crate::object::ObjectMeta;

/// A stream of chunks: the shape of every large transfer.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send + 'static>>;

/// The content of a put.
///
/// Either bytes already in memory (cheap to clone, so a retry can send
/// them again) or a stream of chunks that is read once, so a 5 GiB upload
/// never sits in memory.
///
/// ```
/// use storage_core::Body;
/// use bytes::Bytes;
///
/// let small = Body::from("hello");
/// assert_eq!(small.size_hint(), Some(5));
///
/// let chunks = futures::stream::iter([Ok(Bytes::from("a")), Ok(Bytes::from("b"))]);
/// let large = Body::from_stream(chunks);
/// assert_eq!(large.size_hint(), None);
/// ```
pub enum Body {
    /// Bytes in memory.
    Bytes(Bytes),
    /// A one-shot stream of chunks, and its length if the caller knows it.
    Stream {
        /// The chunks.
        stream: ByteStream,
        /// The total length, if known. A backend may use it to choose a
        /// single request over a multipart upload; a stream that ends at
        /// another length fails the put with `InvalidInput`.
        size: Option<u64>,
    },
}

impl Body {
    /// A body from a stream of chunks of unknown total length.
    pub fn from_stream<S>(stream: S) -> Self
    where
        S: Stream<Item = Result<Bytes>> + Send + 'static,
    {
        Body::Stream {
            stream: Box::pin(stream),
            size: None,
        }
    }

    /// A body from a stream of chunks whose total length is `size`.
    pub fn from_sized_stream<S>(stream: S, size: u64) -> Self
    where
        S: Stream<Item = Result<Bytes>> + Send + 'static,
    {
        Body::Stream {
            stream: Box::pin(stream),
            size: Some(size),
        }
    }

    /// An empty body.
    pub fn empty() -> Self {
        Body::Bytes(Bytes::new())
    }

    /// The length, if known before reading.
    pub fn size_hint(&self) -> Option<u64> {
        match self {
            Body::Bytes(bytes) => Some(bytes.len() as u64),
            Body::Stream { size, .. } => *size,
        }
    }

    /// Whether the body can be sent again (it is in memory).
    pub fn is_replayable(&self) -> bool {
        matches!(self, Body::Bytes(_))
    }

    /// The body as a stream of chunks. A stream with a declared size is
    /// checked: ending early or running long yields `InvalidInput`.
    pub fn into_stream(self) -> ByteStream {
        match self {
            Body::Bytes(bytes) if bytes.is_empty() => Box::pin(stream::empty()),
            Body::Bytes(bytes) => Box::pin(stream::once(async move { Ok(bytes) })),
            Body::Stream { stream, size: None } => stream,
            Body::Stream {
                stream,
                size: Some(size),
            } => Box::pin(check_length(stream, size)),
        }
    }

    /// Reads the whole body into memory. Meant for small bodies and tests.
    pub async fn collect(self) -> Result<Bytes> {
        match self {
            Body::Bytes(bytes) => Ok(bytes),
            body => collect_stream(body.into_stream()).await,
        }
    }
}

fn check_length(stream: ByteStream, expected: u64) -> impl Stream<Item = Result<Bytes>> + Send {
    let mut seen = 0u64;
    let mut finished = false;
    stream
        .map(Some)
        .chain(stream::once(async { None }))
        .filter_map(move |item| {
            let out = match item {
                Some(Ok(chunk)) => {
                    seen += chunk.len() as u64;
                    if seen > expected {
                        finished = true;
                        Some(Err(length_mismatch(expected, seen, "more")))
                    } else {
                        Some(Ok(chunk))
                    }
                }
                Some(Err(err)) => Some(Err(err)),
                None if !finished && seen != expected => {
                    Some(Err(length_mismatch(expected, seen, "fewer")))
                }
                None => None,
            };
            async move { out }
        })
}

fn length_mismatch(expected: u64, seen: u64, which: &str) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!("the body declared {expected} bytes but yielded {which} ({seen} so far)"),
    )
}

/// The first `limit` bytes of `stream`; the rest of it is dropped unread.
/// A stream that ends before `limit` bytes yields `Corruption` (an object
/// shorter than its declared size), never a silent short read.
///
/// Backends that fetch a large object in parallel ranges use it to read
/// only the first range from the answer that told them the object's size.
pub fn take_prefix(stream: ByteStream, limit: u64) -> ByteStream {
    Box::pin(stream::unfold(
        (stream, limit),
        |(mut stream, remaining)| async move {
            if remaining == 0 {
                return None;
            }
            match stream.try_next().await {
                Ok(Some(chunk)) => {
                    let take = (chunk.len() as u64).min(remaining) as usize;
                    Some((Ok(chunk.slice(..take)), (stream, remaining - take as u64)))
                }
                Ok(None) => Some((
                    Err(Error::new(
                        ErrorKind::Corruption,
                        "the object ended before its declared size",
                    )),
                    (stream, 0),
                )),
                Err(err) => Some((Err(err), (stream, 0))),
            }
        },
    ))
}

/// A whole object read as its first answer's first `chunk` bytes, then
/// `parts` (the ranged requests for the rest, in order), with up to
/// `concurrency` transfers at once, the first answer counted. Each part is
/// the chunks its answer arrived in (see [`collect_part`]), handed on as
/// they are: no part is copied into a buffer of its own, so a download
/// makes no large allocations (freed, they stayed in the allocator's
/// arenas and made a 2 GiB download's peak memory jump by a part's size
/// now and then).
///
/// The parts' requests start when the body is first polled, not once the
/// first chunk has been read: on a network where each request waits for
/// its first byte, that wait overlaps the first chunk's transfer instead
/// of following it. At most `concurrency` parts are held or in flight
/// (the first answer, while it streams, is one of them, and so is a part
/// until its last chunk is handed on), so memory stays at about
/// `concurrency × chunk` whatever the object's size. A first
/// answer that ends before `chunk` bytes yields `Corruption`, as
/// [`take_prefix`]; a part's error ends the body.
pub fn prefix_then_parts<P, F>(
    first: ByteStream,
    chunk: u64,
    parts: P,
    concurrency: usize,
) -> ByteStream
where
    P: Iterator<Item = F> + Send + 'static,
    F: std::future::Future<Output = Result<Vec<Bytes>>> + Send + 'static,
{
    Box::pin(PrefixThenParts {
        first: Some(take_prefix(first, chunk)),
        parts: Box::new(parts.map(|part| Box::pin(part) as PartFuture).enumerate()),
        running: futures::stream::FuturesUnordered::new(),
        finished: std::collections::BTreeMap::new(),
        draining: Vec::new().into_iter(),
        next: 0,
        concurrency: concurrency.max(1),
        ended: false,
    })
}

type PartFuture = Pin<Box<dyn std::future::Future<Output = Result<Vec<Bytes>>> + Send>>;
type NumberedPart = Pin<Box<dyn std::future::Future<Output = (usize, Result<Vec<Bytes>>)> + Send>>;

/// The stream [`prefix_then_parts`] returns.
struct PrefixThenParts {
    /// The first answer, while it still streams.
    first: Option<ByteStream>,
    /// The parts not yet requested, numbered in order.
    parts: Box<dyn Iterator<Item = (usize, PartFuture)> + Send>,
    /// The parts requested and not finished.
    running: futures::stream::FuturesUnordered<NumberedPart>,
    /// Finished parts waiting for their turn, by number.
    finished: std::collections::BTreeMap<usize, Result<Vec<Bytes>>>,
    /// The chunks of the part being handed on, not yet yielded.
    draining: std::vec::IntoIter<Bytes>,
    /// The number of the part to yield next.
    next: usize,
    concurrency: usize,
    /// Every part was yielded, or one failed.
    ended: bool,
}

impl PrefixThenParts {
    /// Requests parts until `concurrency` transfers are held or running.
    fn top_up(&mut self) {
        let first = usize::from(self.first.is_some());
        let draining = usize::from(self.draining.len() > 0);
        while self.running.len() + self.finished.len() + first + draining < self.concurrency {
            let Some((number, part)) = self.parts.next() else {
                break;
            };
            self.running
                .push(Box::pin(async move { (number, part.await) }));
        }
    }

    /// Moves every running part forward, keeping those that finish.
    fn drive(&mut self, cx: &mut std::task::Context<'_>) {
        while let std::task::Poll::Ready(Some((number, result))) = self.running.poll_next_unpin(cx)
        {
            self.finished.insert(number, result);
        }
    }
}

impl Stream for PrefixThenParts {
    type Item = Result<Bytes>;

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        // The parts move on while the first answer streams.
        this.top_up();
        this.drive(cx);
        if let Some(first) = this.first.as_mut() {
            match first.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(bytes))) => return Poll::Ready(Some(Ok(bytes))),
                Poll::Ready(Some(Err(err))) => {
                    this.ended = true;
                    return Poll::Ready(Some(Err(err)));
                }
                Poll::Ready(None) => {
                    this.first = None;
                    this.top_up();
                    this.drive(cx);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        loop {
            if let Some(chunk) = this.draining.next() {
                return Poll::Ready(Some(Ok(chunk)));
            }
            match this.finished.remove(&this.next) {
                Some(Ok(chunks)) => {
                    this.next += 1;
                    this.draining = chunks.into_iter();
                    // The part drained last may have made room.
                    this.top_up();
                    this.drive(cx);
                }
                Some(Err(err)) => {
                    this.ended = true;
                    return Poll::Ready(Some(Err(err)));
                }
                None if this.running.is_empty() => {
                    // Nothing running and the next part not finished:
                    // every part was yielded.
                    this.ended = true;
                    return Poll::Ready(None);
                }
                None => return Poll::Pending,
            }
        }
    }
}

/// The chunks of a ranged answer of `len` bytes, as they arrived (none
/// copied), for [`prefix_then_parts`]. An answer with more or fewer bytes
/// is `Corruption`, retryable: a connection cut short, or a server that
/// ignored the range.
pub async fn collect_part(mut stream: ByteStream, len: u64) -> Result<Vec<Bytes>> {
    let short_or_long = |which: &str| {
        Error::new(
            ErrorKind::Corruption,
            format!("a ranged read of {len} bytes answered with {which} bytes"),
        )
        .with_retryable(true)
    };
    let mut chunks = Vec::new();
    let mut received = 0u64;
    while let Some(chunk) = stream.try_next().await? {
        received += chunk.len() as u64;
        if received > len {
            return Err(short_or_long("more"));
        }
        if !chunk.is_empty() {
            chunks.push(chunk);
        }
    }
    if received != len {
        return Err(short_or_long("fewer"));
    }
    Ok(chunks)
}

/// Reads a body stream in pieces of an exact size: what chunked and
/// resumable uploads send. Pieces that fill a chunk alone are handed on
/// without copying.
///
/// ```
/// # tokio_test_block_on(async {
/// use storage_core::{Body, ChunkReader};
///
/// let mut chunks = ChunkReader::new(Body::from("abcdefghij").into_stream());
/// assert_eq!(&chunks.next_chunk(4).await?[..], b"abcd");
/// assert_eq!(&chunks.next_chunk(4).await?[..], b"efgh");
/// assert_eq!(&chunks.next_chunk(4).await?[..], b"ij");
/// assert!(chunks.next_chunk(4).await?.is_empty());
/// # Ok::<(), storage_core::Error>(())
/// # }).unwrap();
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
pub struct ChunkReader {
    stream: ByteStream,
    carry: Option<Bytes>,
    ended: bool,
}

impl fmt::Debug for ChunkReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkReader")
            .field("carried", &self.carry.as_ref().map_or(0, Bytes::len))
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl ChunkReader {
    /// Reads `stream`.
    pub fn new(stream: ByteStream) -> Self {
        Self {
            stream,
            carry: None,
            ended: false,
        }
    }

    /// The next `size` bytes; fewer only when the stream ended, empty at
    /// its end.
    pub async fn next_chunk(&mut self, size: usize) -> Result<Bytes> {
        let mut chunk = BytesMut::new();
        loop {
            let piece = match self.carry.take() {
                Some(piece) => piece,
                None if self.ended => break,
                None => match self.stream.try_next().await? {
                    Some(piece) => piece,
                    None => {
                        self.ended = true;
                        break;
                    }
                },
            };
            let wanted = size - chunk.len();
            if piece.len() > wanted {
                // Zero-copy when the piece alone fills the chunk.
                if chunk.is_empty() {
                    self.carry = Some(piece.slice(wanted..));
                    return Ok(piece.slice(..wanted));
                }
                chunk.extend_from_slice(&piece[..wanted]);
                self.carry = Some(piece.slice(wanted..));
            } else if chunk.is_empty() && piece.len() == wanted {
                return Ok(piece);
            } else {
                if chunk.capacity() == 0 {
                    chunk.reserve(size);
                }
                chunk.extend_from_slice(&piece);
            }
            if chunk.len() == size {
                break;
            }
        }
        Ok(chunk.freeze())
    }
}

/// Reads a stream of chunks into one buffer.
pub async fn collect_stream(stream: ByteStream) -> Result<Bytes> {
    collect_with_len(stream, 0).await
}

/// [`collect_stream`] for a body of `expected` bytes: a body of several
/// chunks is copied into one buffer allocated once at that size, not
/// grown by doubling (a 64 KiB answer in 16 KiB chunks was copied and
/// reallocated twice over). `expected` only sizes the buffer; what the
/// stream yields is what is returned.
async fn collect_with_len(mut stream: ByteStream, expected: u64) -> Result<Bytes> {
    let mut first: Option<Bytes> = None;
    let mut buffer = BytesMut::new();
    while let Some(chunk) = stream.try_next().await? {
        match first.take() {
            None if buffer.is_empty() => first = Some(chunk),
            None => buffer.extend_from_slice(&chunk),
            Some(previous) => {
                let at_least = previous.len() + chunk.len();
                buffer.reserve(usize::try_from(expected).unwrap_or(0).max(at_least));
                buffer.extend_from_slice(&previous);
                buffer.extend_from_slice(&chunk);
            }
        }
    }
    Ok(first.unwrap_or_else(|| buffer.freeze()))
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Bytes(bytes) => f.debug_tuple("Bytes").field(&bytes.len()).finish(),
            Body::Stream { size, .. } => f.debug_struct("Stream").field("size", size).finish(),
        }
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Body::Bytes(bytes)
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Body::Bytes(bytes.into())
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Body::Bytes(text.into())
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Self {
        Body::Bytes(Bytes::from_static(text.as_bytes()))
    }
}

impl From<&'static [u8]> for Body {
    fn from(bytes: &'static [u8]) -> Self {
        Body::Bytes(Bytes::from_static(bytes))
    }
}

/// The answer to a get: the object's metadata and a stream of its bytes.
///
/// The stream yields exactly the bytes of [`range`](GetResult::range); it
/// is not buffered as a whole by any backend. Drop it to stop the
/// transfer.
pub struct GetResult {
    /// The whole object's metadata (its `size` is the whole object's, not
    /// the range's).
    pub meta: ObjectMeta,
    /// The byte range of the object that `body` yields.
    pub range: Range<u64>,
    /// The bytes.
    pub body: ByteStream,
}

impl GetResult {
    /// Reads the whole body into memory. Meant for small objects.
    pub async fn bytes(self) -> Result<Bytes> {
        let expected = self.len();
        collect_with_len(self.body, expected).await
    }

    /// The number of bytes the body yields.
    pub fn len(&self) -> u64 {
        self.range.end - self.range.start
    }

    /// Whether the body yields no bytes.
    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }
}

impl fmt::Debug for GetResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetResult")
            .field("meta", &self.meta)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Parts `e`, `f`, ... of `len` bytes each, which count how many have
    /// started (`started`) and how many the consumer holds or awaits
    /// (`live`, decremented by the test as it receives them).
    fn counted_parts(
        count: usize,
        len: usize,
        started: Arc<AtomicUsize>,
        live: Arc<AtomicUsize>,
        max_live: Arc<AtomicUsize>,
    ) -> impl Iterator<Item = impl std::future::Future<Output = Result<Vec<Bytes>>>> + Send + 'static
    {
        (0..count).map(move |i| {
            let (started, live, max_live) = (started.clone(), live.clone(), max_live.clone());
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                let now = live.fetch_add(1, Ordering::SeqCst) + 1;
                max_live.fetch_max(now, Ordering::SeqCst);
                Ok(vec![Bytes::from(vec![b'e' + i as u8; len])])
            }
        })
    }

    fn first_answer(pieces: &[&'static [u8]]) -> ByteStream {
        let pieces: Vec<Result<Bytes>> = pieces.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        stream::iter(pieces).boxed()
    }

    #[tokio::test]
    async fn bytes_of_several_chunks_is_what_the_stream_yields_in_one_buffer() {
        let meta = ObjectMeta::new(crate::Key::new("k").unwrap(), 10);
        let result = |pieces: &[&'static [u8]], len: u64| GetResult {
            meta: meta.clone(),
            range: 0..len,
            body: first_answer(pieces),
        };
        let whole = result(&[b"abcd", b"efg", b"hij"], 10)
            .bytes()
            .await
            .unwrap();
        assert_eq!(whole, "abcdefghij");
        // The expected length only sizes the buffer.
        let short = result(&[b"ab", b"cd"], 10).bytes().await.unwrap();
        assert_eq!(short, "abcd");
        let long = result(&[b"abcd", b"efgh"], 2).bytes().await.unwrap();
        assert_eq!(long, "abcdefgh");
        let one = result(&[b"abcdefghij"], 10).bytes().await.unwrap();
        assert_eq!(one, "abcdefghij");
    }

    #[tokio::test]
    async fn parts_start_while_the_first_answer_streams_and_arrive_in_order() {
        let (started, live, max_live) = Default::default();
        let parts = counted_parts(
            5,
            2,
            Arc::clone(&started),
            Arc::clone(&live),
            Arc::clone(&max_live),
        );
        let mut body = prefix_then_parts(first_answer(&[b"ab", b"cd", b"xx"]), 4, parts, 3);
        assert_eq!(body.try_next().await.unwrap().unwrap(), "ab");
        // The first answer is one of the three transfers: two parts have
        // started, the third waits for room.
        assert_eq!(started.load(Ordering::SeqCst), 2);
        let mut rest = Vec::new();
        while let Some(chunk) = body.try_next().await.unwrap() {
            if chunk[0] >= b'e' {
                live.fetch_sub(1, Ordering::SeqCst);
            }
            rest.extend_from_slice(&chunk);
        }
        assert_eq!(rest, b"cdeeffgghhii");
        assert_eq!(started.load(Ordering::SeqCst), 5);
        assert!(
            max_live.load(Ordering::SeqCst) <= 3,
            "more parts held than allowed"
        );
    }

    #[tokio::test]
    async fn at_most_concurrency_parts_are_held_or_in_flight() {
        let (started, live, max_live) = Default::default();
        let parts = counted_parts(40, 1, started, Arc::clone(&live), Arc::clone(&max_live));
        let mut body = prefix_then_parts(first_answer(&[b"abcd"]), 4, parts, 4);
        let mut total = 0;
        while let Some(chunk) = body.try_next().await.unwrap() {
            if chunk[0] >= b'e' {
                live.fetch_sub(1, Ordering::SeqCst);
            }
            total += chunk.len();
        }
        assert_eq!(total, 44);
        assert_eq!(max_live.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_short_first_answer_is_corruption_and_a_failed_part_ends_the_body() {
        let parts = std::iter::empty::<futures::future::Ready<Result<Vec<Bytes>>>>();
        let mut short = prefix_then_parts(first_answer(&[b"ab"]), 4, parts, 2);
        assert_eq!(short.try_next().await.unwrap().unwrap(), "ab");
        let err = short.try_next().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corruption);
        assert!(short.try_next().await.unwrap().is_none());

        let parts = [
            futures::future::ready(Ok(vec![Bytes::from_static(b"ef")])),
            futures::future::ready(Err(Error::new(ErrorKind::PreconditionFailed, "replaced"))),
            futures::future::ready(Ok(vec![Bytes::from_static(b"ij")])),
        ];
        let mut failing = prefix_then_parts(first_answer(&[b"abcd"]), 4, parts.into_iter(), 2);
        assert_eq!(failing.try_next().await.unwrap().unwrap(), "abcd");
        assert_eq!(failing.try_next().await.unwrap().unwrap(), "ef");
        let err = failing.try_next().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PreconditionFailed);
        assert!(
            failing.try_next().await.unwrap().is_none(),
            "the body went on after a failed part"
        );
    }

    #[tokio::test]
    async fn a_part_is_handed_on_in_the_chunks_it_arrived_in_uncopied() {
        let arrived = [Bytes::from_static(b"ef"), Bytes::from_static(b"gh")];
        let parts = [
            futures::future::ready(Ok(arrived.to_vec())),
            futures::future::ready(Ok(vec![Bytes::from_static(b"ij")])),
        ];
        let mut body = prefix_then_parts(first_answer(&[b"abcd"]), 4, parts.into_iter(), 2);
        assert_eq!(body.try_next().await.unwrap().unwrap(), "abcd");
        for expected in &arrived {
            let chunk = body.try_next().await.unwrap().unwrap();
            assert_eq!(chunk, expected);
            assert_eq!(chunk.as_ptr(), expected.as_ptr(), "the part was copied");
        }
        assert_eq!(body.try_next().await.unwrap().unwrap(), "ij");
        assert!(body.try_next().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn collect_part_keeps_the_chunks_and_refuses_a_wrong_length() {
        let chunks = collect_part(first_answer(&[b"ab", b"", b"cde"]), 5)
            .await
            .unwrap();
        assert_eq!(chunks, [&b"ab"[..], b"cde"]);
        for (pieces, which) in [
            (&[&b"ab"[..], b"cd"][..], "fewer"),
            (&[&b"abc"[..], b"def"][..], "more"),
        ] {
            let err = collect_part(first_answer(pieces), 5).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Corruption);
            assert!(err.is_retryable(), "a cut answer is worth another try");
            assert!(err.to_string().contains(which), "{err}");
        }
    }

    #[tokio::test]
    async fn chunk_reader_cuts_exact_sizes_until_the_end() {
        let items: Vec<Result<Bytes>> = [&b"abc"[..], b"defgh", b"i", b"", b"jk"]
            .iter()
            .map(|p| Ok(Bytes::copy_from_slice(p)))
            .collect();
        let mut chunks = ChunkReader::new(Box::pin(stream::iter(items)));
        assert_eq!(&chunks.next_chunk(4).await.unwrap()[..], b"abcd");
        assert_eq!(&chunks.next_chunk(4).await.unwrap()[..], b"efgh");
        assert_eq!(&chunks.next_chunk(4).await.unwrap()[..], b"ijk");
        assert!(chunks.next_chunk(4).await.unwrap().is_empty());
        assert!(chunks.next_chunk(4).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn chunk_reader_returns_the_streams_error() {
        let items: Vec<Result<Bytes>> = vec![
            Ok(Bytes::from_static(b"ab")),
            Err(Error::new(ErrorKind::Other, "boom")),
        ];
        let mut chunks = ChunkReader::new(Box::pin(stream::iter(items)));
        assert!(chunks.next_chunk(4).await.is_err());
    }

    fn chunks(parts: &[&'static str]) -> ByteStream {
        let items: Vec<Result<Bytes>> = parts.iter().map(|p| Ok(Bytes::from(*p))).collect();
        Box::pin(stream::iter(items))
    }

    #[tokio::test]
    async fn a_stream_collects_in_order() {
        let body = Body::from_stream(chunks(&["ab", "", "cd", "e"]));
        assert_eq!(body.collect().await.unwrap(), Bytes::from("abcde"));
    }

    #[tokio::test]
    async fn a_sized_stream_that_ends_early_is_an_invalid_input() {
        let body = Body::Stream {
            stream: chunks(&["ab"]),
            size: Some(3),
        };
        let err = body.collect().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn a_sized_stream_that_runs_long_is_an_invalid_input() {
        let body = Body::Stream {
            stream: chunks(&["ab", "cd"]),
            size: Some(3),
        };
        let err = body.collect().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
}
