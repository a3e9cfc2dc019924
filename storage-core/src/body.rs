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

/// A whole object read as its first answer's first `chunk` bytes (the
/// rest of that answer is dropped unread), then the rest as ranged
/// requests of `chunk` bytes (the last one shorter), `size` bytes in all,
/// made by `request` for a range of the object and yielded in order, with
/// up to `concurrency` transfers at once, the first answer counted.
///
/// The parts' requests start when the body is first polled, not once the
/// first chunk has been read: on a network where each request waits for
/// its first byte, that wait overlaps the first chunk's transfer instead
/// of following it. A part counts as a transfer from its request until its
/// last byte is handed on.
///
/// Every part in flight is read as its answer arrives, and handed on in
/// the chunks it arrived in, none copied: the part whose turn it is as
/// they come, the parts whose turn has not come once it has. So a part
/// never waits in its connection for a slow consumer, and the process
/// holds up to `concurrency × chunk` bytes
/// whatever the object's size (a held chunk keeps the HTTP client's read
/// buffer alive, so resident memory runs to about one and a half times
/// that). Reading a waiting part only part of the way, leaving the rest in
/// its connection, halves what is held, but where each connection's
/// throughput is the limit (as it is against S3 and GCS) the rest of each
/// part then moves only in its turn, on one connection at a time: through
/// a proxy capping each connection, four transfers reading half a chunk
/// ahead reached 2.4–3.2 × one request, and 3.9 × reading whole parts.
///
/// A part (the first answer's chunk too) whose request or answer fails
/// with a retryable error (a connection cut or reset, an answer that ends
/// early, a request timed out) is requested again from the first byte it has
/// not delivered: as often as each answer makes progress, and once after
/// an answer that delivered nothing. A ranged answer with more bytes than
/// its range (a server that ignored the range) is `Corruption`, retryable
/// for a caller that starts the read over. Any other error of a part ends
/// the body when the part's turn comes.
pub fn prefix_then_parts<R, F>(
    first: ByteStream,
    chunk: u64,
    size: u64,
    request: R,
    concurrency: usize,
) -> ByteStream
where
    R: Fn(Range<u64>) -> F + Send + 'static,
    F: std::future::Future<Output = Result<ByteStream>> + Send + 'static,
{
    let chunk = chunk.max(1);
    // The first answer is part 0, already answered; it carries the whole
    // object, so what it sends past the part is cut off.
    let mut first = Part::new(0..chunk.min(size), Box::pin(async move { Ok(first) }));
    first.cut_excess = true;
    Box::pin(PrefixThenParts {
        request: Box::new(move |range| Box::pin(request(range)) as PartAnswer),
        in_flight: std::collections::BTreeMap::from([(0, first)]),
        requested: 1,
        next: 0,
        chunk,
        size,
        concurrency: concurrency.max(1),
        ended: false,
    })
}

type PartAnswer = Pin<Box<dyn std::future::Future<Output = Result<ByteStream>> + Send>>;
type PartRequest = Box<dyn Fn(Range<u64>) -> PartAnswer + Send>;

/// The stream [`prefix_then_parts`] returns.
struct PrefixThenParts {
    request: PartRequest,
    /// The parts requested and not yet handed on to their last byte, by
    /// number (part 0 is the first answer's chunk).
    in_flight: std::collections::BTreeMap<usize, Part>,
    /// How many parts have been requested.
    requested: usize,
    /// The number of the part whose turn it is.
    next: usize,
    chunk: u64,
    size: u64,
    concurrency: usize,
    /// Every part was handed on, or one failed.
    ended: bool,
}

impl PrefixThenParts {
    /// The range of part `number`, empty past the end of the object.
    fn range(&self, number: usize) -> Range<u64> {
        let start = self.chunk.saturating_mul(number as u64).min(self.size);
        start..start.saturating_add(self.chunk).min(self.size)
    }

    /// Requests parts until `concurrency` transfers are in flight.
    fn top_up(&mut self) {
        while self.in_flight.len() < self.concurrency {
            let range = self.range(self.requested);
            if range.is_empty() {
                break;
            }
            let answer = (self.request)(range.clone());
            self.in_flight
                .insert(self.requested, Part::new(range, answer));
            self.requested += 1;
        }
    }

    /// Moves every part in flight as far as it may go.
    fn drive(&mut self, cx: &mut std::task::Context<'_>) {
        for part in self.in_flight.values_mut() {
            part.advance(cx, &self.request);
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
        // The later parts move on while the first answer streams.
        this.top_up();
        this.drive(cx);
        loop {
            let Some(part) = this.in_flight.get_mut(&this.next) else {
                // Parts are requested in order and kept until handed on,
                // so the next one missing means every part was.
                this.ended = true;
                return Poll::Ready(None);
            };
            match part.take() {
                Some(Ok(chunk)) => {
                    // Read on, which also asks to be woken when more
                    // arrives.
                    part.advance(cx, &this.request);
                    return Poll::Ready(Some(Ok(chunk)));
                }
                Some(Err(err)) => {
                    this.ended = true;
                    return Poll::Ready(Some(Err(err)));
                }
                // Nothing read and the part still coming: `drive` polled
                // it, so what it waits for wakes this task.
                None if !part.done() => return Poll::Pending,
                None => {
                    this.in_flight.remove(&this.next);
                    this.next += 1;
                    this.top_up();
                    this.drive(cx);
                }
            }
        }
    }
}

/// A part in flight: its request or its answer's body, and what has been
/// read of it and not yet handed on.
struct Part {
    /// The bytes of the part not yet received.
    rest: Range<u64>,
    /// The request, until its answer comes.
    answer: Option<PartAnswer>,
    /// The answer's body, until it ends or fails.
    body: Option<ByteStream>,
    /// Whether the answer carries more than the part (the first answer,
    /// which is for the whole object): the excess is cut off, not an error.
    cut_excess: bool,
    /// Whether the current answer has delivered a byte, and whether it
    /// was asked for after an answer that delivered none: a part is asked
    /// for again after a failure with progress, or once after one without
    /// (a request that timed out while the reader was away), never forever.
    progressed: bool,
    retried_without_progress: bool,
    /// Read and not yet handed on, in order; an error comes last.
    read: std::collections::VecDeque<Result<Bytes>>,
}

impl Part {
    fn new(range: Range<u64>, answer: PartAnswer) -> Self {
        Part {
            rest: range,
            answer: Some(answer),
            body: None,
            cut_excess: false,
            progressed: false,
            retried_without_progress: false,
            read: std::collections::VecDeque::new(),
        }
    }

    /// Waits for the answer, then reads its body as far as it has come.
    fn advance(&mut self, cx: &mut std::task::Context<'_>, request: &PartRequest) {
        use std::task::Poll;
        loop {
            if let Some(answer) = self.answer.as_mut() {
                let Poll::Ready(answer) = answer.as_mut().poll(cx) else {
                    return;
                };
                self.answer = None;
                match answer {
                    Ok(body) => self.body = Some(body),
                    Err(err) => self.fail(err, request),
                }
                continue;
            }
            let Some(body) = self.body.as_mut() else {
                return;
            };
            let Poll::Ready(item) = body.poll_next_unpin(cx) else {
                return;
            };
            match item {
                Some(Ok(chunk))
                    if self.cut_excess && chunk.len() as u64 >= self.rest.end - self.rest.start =>
                {
                    let take = (self.rest.end - self.rest.start) as usize;
                    self.rest.start = self.rest.end;
                    self.read.push_back(Ok(chunk.slice(..take)));
                    // The rest of the object is not read: dropping the
                    // answer closes its connection.
                    self.body = None;
                }
                Some(Ok(chunk)) if chunk.len() as u64 > self.rest.end - self.rest.start => {
                    let err = Error::new(
                        ErrorKind::Corruption,
                        "a ranged read answered with more bytes than its range",
                    )
                    .with_retryable(true);
                    self.body = None;
                    self.read.push_back(Err(err));
                }
                Some(Ok(chunk)) => {
                    if !chunk.is_empty() {
                        self.rest.start += chunk.len() as u64;
                        self.progressed = true;
                        self.read.push_back(Ok(chunk));
                    }
                }
                Some(Err(err)) => self.fail(err, request),
                None if self.rest.is_empty() => self.body = None,
                None => {
                    let err = Error::new(
                        ErrorKind::Corruption,
                        format!(
                            "a ranged read ended {} bytes early",
                            self.rest.end - self.rest.start
                        ),
                    )
                    .with_retryable(true);
                    self.fail(err, request);
                }
            }
        }
    }

    /// After a failed request or body: the rest of the part requested
    /// again if the failure is retryable and the answer made progress (or
    /// is the first without), else the error, handed on in the part's
    /// turn.
    fn fail(&mut self, err: Error, request: &PartRequest) {
        self.body = None;
        let may_retry = self.progressed || !self.retried_without_progress;
        if err.is_retryable() && may_retry && !self.rest.is_empty() {
            self.retried_without_progress = !self.progressed;
            self.progressed = false;
            // A ranged answer must hold exactly the rest.
            self.cut_excess = false;
            self.answer = Some(request(self.rest.clone()));
        } else {
            self.read.push_back(Err(err));
        }
    }

    /// The next piece read, if any.
    fn take(&mut self) -> Option<Result<Bytes>> {
        self.read.pop_front()
    }

    /// Whether everything the part will deliver has been taken.
    fn done(&self) -> bool {
        self.answer.is_none() && self.body.is_none() && self.read.is_empty()
    }
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

    /// Requests for the parts of an object whose first chunk is
    /// `first_len` bytes and whose parts are `len` bytes of `e`, `f`, ...;
    /// they count how many have started (`started`) and how many the
    /// consumer holds or awaits (`live`, decremented by the test as it
    /// receives them).
    fn counted_requests(
        first_len: u64,
        len: u64,
        started: Arc<AtomicUsize>,
        live: Arc<AtomicUsize>,
        max_live: Arc<AtomicUsize>,
    ) -> impl Fn(Range<u64>) -> futures::future::Ready<Result<ByteStream>> + Send + 'static {
        move |range| {
            started.fetch_add(1, Ordering::SeqCst);
            let now = live.fetch_add(1, Ordering::SeqCst) + 1;
            max_live.fetch_max(now, Ordering::SeqCst);
            let letter = b'e' + ((range.start - first_len) / len) as u8;
            let body = vec![letter; (range.end - range.start) as usize];
            futures::future::ready(Ok(answer(vec![Bytes::from(body)])))
        }
    }

    /// The ranges a test's requests were asked for, in order.
    type Asked = Arc<std::sync::Mutex<Vec<Range<u64>>>>;

    /// Requests answered from a table of range starts (the first entry
    /// for a start answers first), which records the ranges asked for.
    fn scripted_requests(
        answers: Vec<(u64, Result<ByteStream>)>,
    ) -> (
        impl Fn(Range<u64>) -> futures::future::Ready<Result<ByteStream>> + Send + 'static,
        Asked,
    ) {
        let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
        let script = std::sync::Mutex::new(answers);
        let record = Arc::clone(&asked);
        let request = move |range: Range<u64>| {
            record.lock().unwrap().push(range.clone());
            let mut script = script.lock().unwrap();
            let at = script
                .iter()
                .position(|(start, _)| *start == range.start)
                .expect("a range the test did not expect");
            futures::future::ready(script.remove(at).1)
        };
        (request, asked)
    }

    /// An answer's body made of `chunks`.
    fn answer(chunks: Vec<Bytes>) -> ByteStream {
        stream::iter(chunks.into_iter().map(Ok)).boxed()
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
        let parts = counted_requests(
            2,
            2,
            Arc::clone(&started),
            Arc::clone(&live),
            Arc::clone(&max_live),
        );
        let mut body = prefix_then_parts(first_answer(&[b"a", b"b", b"xx"]), 2, 12, parts, 3);
        assert_eq!(body.try_next().await.unwrap().unwrap(), "a");
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
        assert_eq!(rest, b"beeffgghhii");
        assert_eq!(started.load(Ordering::SeqCst), 5);
        assert!(
            max_live.load(Ordering::SeqCst) <= 3,
            "more parts held than allowed"
        );
    }

    #[tokio::test]
    async fn at_most_concurrency_parts_are_held_or_in_flight() {
        let (started, live, max_live) = Default::default();
        let parts = counted_requests(1, 1, started, Arc::clone(&live), Arc::clone(&max_live));
        let mut body = prefix_then_parts(first_answer(&[b"a"]), 1, 41, parts, 4);
        let mut total = 0;
        while let Some(chunk) = body.try_next().await.unwrap() {
            if chunk[0] >= b'e' {
                live.fetch_sub(1, Ordering::SeqCst);
            }
            total += chunk.len();
        }
        assert_eq!(total, 41);
        assert_eq!(max_live.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_failed_part_ends_the_body_in_its_turn() {
        // The first answer ends early: the rest of its chunk is asked for,
        // and that answer's error ends the body.
        let (parts, asked) = scripted_requests(vec![
            (4, Ok(answer(vec![Bytes::from_static(b"efgh")]))),
            (
                2,
                Err(Error::new(ErrorKind::PreconditionFailed, "replaced")),
            ),
        ]);
        let mut short = prefix_then_parts(first_answer(&[b"ab"]), 4, 8, parts, 2);
        assert_eq!(short.try_next().await.unwrap().unwrap(), "ab");
        let err = short.try_next().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PreconditionFailed);
        assert!(short.try_next().await.unwrap().is_none());
        assert_eq!(*asked.lock().unwrap(), [4..8, 2..4]);

        let (parts, _) = scripted_requests(vec![
            (2, Ok(answer(vec![Bytes::from_static(b"ef")]))),
            (
                4,
                Err(Error::new(ErrorKind::PreconditionFailed, "replaced")),
            ),
            (6, Ok(answer(vec![Bytes::from_static(b"ij")]))),
        ]);
        let mut failing = prefix_then_parts(first_answer(&[b"ab"]), 2, 8, parts, 2);
        assert_eq!(failing.try_next().await.unwrap().unwrap(), "ab");
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
        let (parts, asked) = scripted_requests(vec![
            (4, Ok(answer(arrived.to_vec()))),
            (8, Ok(answer(vec![Bytes::from_static(b"ij")]))),
        ]);
        let mut body = prefix_then_parts(first_answer(&[b"abcd"]), 4, 10, parts, 2);
        assert_eq!(body.try_next().await.unwrap().unwrap(), "abcd");
        for expected in &arrived {
            let chunk = body.try_next().await.unwrap().unwrap();
            assert_eq!(chunk, expected);
            assert_eq!(chunk.as_ptr(), expected.as_ptr(), "the part was copied");
        }
        assert_eq!(body.try_next().await.unwrap().unwrap(), "ij");
        assert!(body.try_next().await.unwrap().is_none());
        assert_eq!(*asked.lock().unwrap(), [4..8, 8..10]);
    }

    #[tokio::test]
    async fn a_part_cut_short_is_requested_again_from_where_it_stopped() {
        let (parts, asked) = scripted_requests(vec![
            (4, Ok(answer(vec![Bytes::from_static(b"ef")]))),
            (6, Ok(answer(vec![Bytes::from_static(b"gh")]))),
        ]);
        let body = prefix_then_parts(first_answer(&[b"abcd"]), 4, 8, parts, 2);
        let whole: Vec<Bytes> = body.try_collect().await.unwrap();
        assert_eq!(whole.concat(), b"abcdefgh");
        assert_eq!(*asked.lock().unwrap(), [4..8, 6..8]);
    }

    #[tokio::test]
    async fn a_first_answer_cut_short_is_asked_for_again_from_where_it_stopped() {
        let (parts, asked) = scripted_requests(vec![
            (4, Ok(answer(vec![Bytes::from_static(b"efgh")]))),
            (2, Ok(answer(vec![Bytes::from_static(b"cd")]))),
        ]);
        let body = prefix_then_parts(first_answer(&[b"ab"]), 4, 8, parts, 2);
        let whole: Vec<Bytes> = body.try_collect().await.unwrap();
        assert_eq!(whole.concat(), b"abcdefgh");
        assert_eq!(*asked.lock().unwrap(), [4..8, 2..4]);
    }

    #[tokio::test]
    async fn a_part_that_fails_twice_without_progress_or_runs_long_ends_the_body() {
        let reset = || Err(Error::new(ErrorKind::Unavailable, "reset").with_retryable(true));
        let long = Ok(answer(vec![Bytes::from_static(b"efghi")]));
        for (answers, kind) in [
            (vec![(4, reset()), (4, reset())], ErrorKind::Unavailable),
            (vec![(4, long)], ErrorKind::Corruption),
        ] {
            let attempts = answers.len();
            let (parts, asked) = scripted_requests(answers);
            let mut body = prefix_then_parts(first_answer(&[b"abcd"]), 4, 8, parts, 2);
            assert_eq!(body.try_next().await.unwrap().unwrap(), "abcd");
            let err = body.try_next().await.unwrap_err();
            assert_eq!(err.kind(), kind);
            assert!(body.try_next().await.unwrap().is_none());
            let asked = asked.lock().unwrap();
            assert_eq!(asked.len(), attempts, "{asked:?}");
            assert!(asked.iter().all(|range| *range == (4..8)), "{asked:?}");
        }
    }

    /// The part whose turn it is streams as it arrives; a part whose turn
    /// has not come is read whole ahead of it, and no part beyond the
    /// transfers allowed is asked for meanwhile.
    #[tokio::test]
    async fn the_current_part_streams_and_later_parts_are_read_whole_ahead() {
        let pulled = Arc::new(AtomicUsize::new(0));
        // Part 0 sends one byte, then stalls; part 1 has eight ready.
        let stalled: ByteStream = stream::iter([Ok(Bytes::from_static(b"i"))])
            .chain(stream::pending())
            .boxed();
        let counter = Arc::clone(&pulled);
        let ready: ByteStream = stream::iter((0..8).map(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(Bytes::from_static(b"j"))
        }))
        .boxed();
        let (parts, asked) = scripted_requests(vec![(8, Ok(stalled)), (16, Ok(ready))]);
        let mut body = prefix_then_parts(first_answer(&[b"abcdefgh"]), 8, 32, parts, 2);
        assert_eq!(body.try_next().await.unwrap().unwrap(), "abcdefgh");
        assert_eq!(
            body.try_next().await.unwrap().unwrap(),
            "i",
            "the current part waited to be whole"
        );
        assert!(futures::poll!(body.next()).is_pending());
        assert_eq!(
            pulled.load(Ordering::SeqCst),
            8,
            "a waiting part was not read whole"
        );
        assert_eq!(
            *asked.lock().unwrap(),
            [8..16, 16..24],
            "a part was asked for beyond the transfers allowed"
        );
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
