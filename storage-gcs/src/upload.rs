//! Writes: one `uploadType=multipart` request for bodies up to a chunk,
//! resumable uploads in chunks for anything longer or of unknown length.
//!
//! A resumable upload keeps at most two chunks in memory: the one on the
//! wire and the next, read while the first is sent. A stream that ends on
//! a chunk boundary is finalized by an empty request stating the total
//! (`Content-Range: bytes */TOTAL`). When a chunk fails on a
//! dropped connection, a timeout or a 5xx, the session is asked how much it
//! holds (`Content-Range: bytes */*`) and the chunk is resent from there, so
//! a broken connection costs at most one chunk, never the whole upload. An
//! upload that fails or is dropped cancels its session, so no object
//! appears and the previous one stays.

use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};
use reqwest::{Method, Response, StatusCode};
use storage_core::layers::RetryConfig;
use storage_core::{Error, ErrorKind, Result};

use crate::client::{Client, error_of, header, read_json};
use crate::resource::{NewObject, ObjectResource};

/// The preconditions of a write, as the JSON API's query parameters.
pub(crate) fn generation_condition(
    if_generation_match: Option<u64>,
) -> Vec<(&'static str, String)> {
    if_generation_match
        .map(|generation| vec![("ifGenerationMatch", generation.to_string())])
        .unwrap_or_default()
}

/// One `uploadType=multipart` request: metadata and bytes together. The
/// bytes go out as they are, between the two part headers, not copied
/// into one buffer with them.
pub(crate) async fn multipart(
    client: &Client,
    object: &NewObject<'_>,
    data: Bytes,
    if_generation_match: Option<u64>,
) -> Result<ObjectResource> {
    let metadata = serde_json::to_string(object).map_err(|err| {
        Error::new(ErrorKind::Other, "cannot encode the object's metadata").with_source(err)
    })?;
    let boundary = boundary_for(&data);
    let media_type = object.content_type.unwrap_or("application/octet-stream");
    let body = MultipartBody::new([
        Bytes::from(format!(
            "--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{metadata}\r\n--{boundary}\r\nContent-Type: {media_type}\r\n\r\n"
        )),
        data,
        Bytes::from(format!("\r\n--{boundary}--\r\n")),
    ]);
    let mut query = vec![("uploadType", "multipart".to_owned())];
    query.extend(generation_condition(if_generation_match));
    let request = client
        .request(Method::POST, &client.upload_url())
        .query(&query)
        .header(
            CONTENT_TYPE,
            format!("multipart/related; boundary={boundary}"),
        )
        .body(reqwest::Body::wrap(body));
    client.send_json(request).await
}

/// A multipart boundary that does not occur in `data`. Found with
/// `memmem`: a naive scan of every window cost 3 ms of CPU per MiB.
fn boundary_for(data: &[u8]) -> String {
    loop {
        let boundary = format!(
            "storage-gcs-{:016x}{:016x}",
            fastrand::u64(..),
            fastrand::u64(..)
        );
        if memchr::memmem::find(data, boundary.as_bytes()).is_none() {
            return boundary;
        }
    }
}

/// A request body sent as its parts, one after another, with its length
/// known (so the request states `Content-Length` rather than being sent
/// in chunked encoding).
struct MultipartBody {
    parts: std::collections::VecDeque<Bytes>,
    remaining: u64,
}

impl MultipartBody {
    fn new(parts: impl IntoIterator<Item = Bytes>) -> Self {
        let parts: std::collections::VecDeque<Bytes> =
            parts.into_iter().filter(|part| !part.is_empty()).collect();
        let remaining = parts.iter().map(|part| part.len() as u64).sum();
        Self { parts, remaining }
    }
}

impl http_body::Body for MultipartBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<std::result::Result<http_body::Frame<Bytes>, Self::Error>>> {
        let part = self.parts.pop_front();
        if let Some(part) = &part {
            self.remaining -= part.len() as u64;
        }
        std::task::Poll::Ready(part.map(|part| Ok(http_body::Frame::data(part))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }
}

/// A resumable upload session; cancelled on the server if dropped before
/// it finished.
pub(crate) struct ResumableUpload<'a> {
    client: &'a Client,
    session: Option<String>,
    resume_attempts: usize,
    /// Bytes the server holds.
    persisted: u64,
}

/// What the session says after a chunk or a status query.
enum SessionState {
    /// It holds this many bytes and waits for more.
    Holds(u64),
    /// The object is written.
    Done(Box<ObjectResource>),
}

impl<'a> ResumableUpload<'a> {
    /// Starts a session for `object` (one POST; the bytes follow).
    pub(crate) async fn start(
        client: &'a Client,
        object: &NewObject<'_>,
        if_generation_match: Option<u64>,
        resume_attempts: usize,
    ) -> Result<Self> {
        let mut query = vec![("uploadType", "resumable".to_owned())];
        query.extend(generation_condition(if_generation_match));
        let mut request = client
            .request(Method::POST, &client.upload_url())
            .query(&query)
            .json(object);
        if let Some(content_type) = object.content_type {
            request = request.header("x-upload-content-type", content_type);
        }
        let response = client.send(request).await?;
        let session = header(response.headers(), LOCATION.as_str())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Other,
                    "GCS started a resumable upload without a session URL (no Location header)",
                )
            })?
            .to_owned();
        Ok(Self {
            client,
            session: Some(session),
            resume_attempts,
            persisted: 0,
        })
    }

    fn session(&self) -> Result<&str> {
        self.session
            .as_deref()
            .ok_or_else(|| Error::new(ErrorKind::Other, "the resumable upload already ended"))
    }

    /// Sends `chunk`, which starts at the server's offset. `last` tells
    /// whether it ends the object (an empty last chunk only finalizes).
    /// Returns the object when `last`.
    pub(crate) async fn send_chunk(
        &mut self,
        chunk: Bytes,
        last: bool,
    ) -> Result<Option<ObjectResource>> {
        let start = self.persisted;
        let end = start + chunk.len() as u64;
        let total = last.then_some(end);
        let mut failures = 0;
        loop {
            let offset = (self.persisted - start) as usize;
            let attempt = self
                .put_bytes(chunk.slice(offset..), self.persisted, total)
                .await;
            let failure = match attempt {
                Ok(SessionState::Done(object)) => return self.finished(*object, last).map(Some),
                Ok(SessionState::Holds(held)) if held == end && !last => {
                    self.persisted = held;
                    return Ok(None);
                }
                Ok(SessionState::Holds(held)) if held > self.persisted && held <= end => {
                    // The server kept part of the chunk (it may): send the
                    // rest, which is progress, not a failure.
                    self.persisted = held;
                    continue;
                }
                Ok(SessionState::Holds(held)) => Error::new(
                    ErrorKind::Unavailable,
                    format!("GCS holds {held} bytes of the upload after a chunk ending at {end}"),
                )
                .with_retryable(true),
                Err(err) if err.is_retryable() => err,
                Err(err) => return Err(err),
            };
            failures += 1;
            if failures > self.resume_attempts {
                return Err(failure);
            }
            tracing::debug!(error = %failure, attempt = failures, "a resumable upload chunk failed; asking the session where it stands");
            tokio::time::sleep(
                RetryConfig::default().delay(failures as u32, failure.retry_after()),
            )
            .await;
            match self.query().await {
                Ok(SessionState::Done(object)) => return self.finished(*object, last).map(Some),
                Ok(SessionState::Holds(held)) if (start..=end).contains(&held) => {
                    self.persisted = held;
                }
                Ok(SessionState::Holds(held)) => {
                    return Err(Error::new(
                        ErrorKind::Other,
                        format!(
                            "GCS holds {held} bytes of the upload, outside the chunk {start}..{end} this backend still has"
                        ),
                    ));
                }
                // The next attempt tries again (and queries again).
                Err(err) if err.is_retryable() => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// The session says the object is written: right only after the last
    /// chunk.
    fn finished(&mut self, object: ObjectResource, last: bool) -> Result<ObjectResource> {
        if !last {
            return Err(Error::new(
                ErrorKind::Other,
                "GCS finished the upload before its last chunk",
            ));
        }
        self.session = None;
        Ok(object)
    }

    /// One PUT of `data` at `offset`.
    async fn put_bytes(
        &self,
        data: Bytes,
        offset: u64,
        total: Option<u64>,
    ) -> Result<SessionState> {
        let range = if data.is_empty() {
            format!(
                "bytes */{}",
                total.map_or("*".to_owned(), |t| t.to_string())
            )
        } else {
            format!(
                "bytes {offset}-{}/{}",
                offset + data.len() as u64 - 1,
                total.map_or("*".to_owned(), |t| t.to_string())
            )
        };
        let request = self
            .client
            .request(Method::PUT, self.session()?)
            .header(CONTENT_RANGE, range)
            .header(CONTENT_LENGTH, data.len().to_string())
            .body(data);
        let response = self.client.send_raw(request).await?;
        session_state(response).await
    }

    /// Asks the session how much it holds.
    async fn query(&self) -> Result<SessionState> {
        let request = self
            .client
            .request(Method::PUT, self.session()?)
            .header(CONTENT_RANGE, "bytes */*")
            .header(CONTENT_LENGTH, "0");
        let response = self.client.send_raw(request).await?;
        session_state(response).await
    }

    /// Cancels the session (the object is not written).
    pub(crate) async fn cancel(mut self) {
        if let Some(session) = self.session.take() {
            cancel_session(self.client, &session).await;
        }
    }
}

impl Drop for ResumableUpload<'_> {
    fn drop(&mut self) {
        // Dropped mid-way (the put was cancelled): cancel on the server in
        // the background. The session URL is its own credential (GCS
        // accepts requests to it without a token), so the request needs
        // nothing that lives in this borrow.
        if let Some(session) = self.session.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let request = self.client.request(Method::DELETE, &session);
            runtime.spawn(async move {
                if let Err(err) = request.send().await {
                    tracing::warn!(error = %err.without_url(), "could not cancel a dropped resumable upload");
                }
            });
        }
    }
}

async fn cancel_session(client: &Client, session: &str) {
    let request = client.request(Method::DELETE, session);
    match client.send_raw(request).await {
        // GCS answers 499 to a cancelled session; emulators 200 or 204.
        Ok(response) if response.status().as_u16() == 499 || response.status().is_success() => {}
        Ok(response) => {
            tracing::warn!(status = %response.status(), "cancelling a resumable upload was refused");
        }
        Err(err) => tracing::warn!(error = %err, "could not cancel a resumable upload"),
    }
}

/// Reads the answer to a chunk or a status query.
async fn session_state(response: Response) -> Result<SessionState> {
    match response.status() {
        StatusCode::PERMANENT_REDIRECT => {
            // `Range: bytes=0-N` means N + 1 bytes are held; no Range, none.
            let held = match header(response.headers(), RANGE.as_str()) {
                Some(range) => range
                    .trim()
                    .strip_prefix("bytes=0-")
                    .and_then(|last| last.parse::<u64>().ok())
                    .map(|last| last + 1)
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::Other,
                            format!("GCS sent an unreadable upload Range: {range:?}"),
                        )
                    })?,
                None => 0,
            };
            Ok(SessionState::Holds(held))
        }
        status if status.is_success() => {
            Ok(SessionState::Done(Box::new(read_json(response).await?)))
        }
        // The session is gone (expired, cancelled): nothing to resume.
        StatusCode::NOT_FOUND | StatusCode::GONE => Err(Error::new(
            ErrorKind::Other,
            "the resumable upload session no longer exists",
        )),
        _ => Err(error_of(response).await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn the_boundary_never_occurs_in_the_data() {
        let data = b"--storage-gcs-0000";
        let boundary = boundary_for(data);
        assert!(memchr::memmem::find(data, boundary.as_bytes()).is_none());
        assert!(boundary.starts_with("storage-gcs-"));
    }

    /// Accepts one request on `listener`; its head (lower case) and as
    /// much body as the head states (none without `Content-Length`, so a
    /// chunked request fails the caller's checks instead of hanging).
    async fn one_request(listener: tokio::net::TcpListener) -> (String, Vec<u8>) {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buffer = [0u8; 4096];
        let head_len = loop {
            if let Some(at) = memchr::memmem::find(&request, b"\r\n\r\n") {
                break at + 4;
            }
            let read = socket.read(&mut buffer).await.unwrap();
            assert_ne!(read, 0, "the request ended in its head");
            request.extend_from_slice(&buffer[..read]);
        };
        let head = String::from_utf8(request[..head_len].to_vec())
            .unwrap()
            .to_lowercase();
        let stated = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length: "))
            .map_or(0, |len| len.trim().parse::<usize>().unwrap());
        while request.len() < head_len + stated {
            let read = socket.read(&mut buffer).await.unwrap();
            assert_ne!(read, 0, "the request ended in its body");
            request.extend_from_slice(&buffer[..read]);
        }
        socket
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        (head, request[head_len..].to_vec())
    }

    #[tokio::test]
    async fn a_multipart_body_goes_out_whole_with_its_length_not_chunked() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/upload", listener.local_addr().unwrap());
        let server = tokio::spawn(one_request(listener));
        let data = Bytes::from(vec![7u8; 100_000]);
        let body = MultipartBody::new([
            Bytes::from_static(b"head "),
            data.clone(),
            Bytes::new(),
            Bytes::from_static(b" tail"),
        ]);
        let sent = reqwest::Client::new()
            .post(&url)
            .body(reqwest::Body::wrap(body))
            .send()
            .await;
        assert!(sent.unwrap().status().is_success());
        let (head, received) = server.await.unwrap();
        assert!(head.contains("content-length: 100010\r\n"), "{head}");
        assert!(!head.contains("transfer-encoding"), "{head}");
        assert_eq!(&received[..5], b"head ");
        assert_eq!(&received[5..100_005], &data[..]);
        assert_eq!(&received[100_005..], b" tail");
    }
}
