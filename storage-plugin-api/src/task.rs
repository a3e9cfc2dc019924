//! Futures and streams across the boundary, each polled inside the
//! runtime of the library that created it.
//!
//! A plugin links its own copy of tokio, with its own thread-local
//! "current runtime". A plugin future polled by the host's executor would
//! find no reactor for its timers and sockets ("no reactor running"), so
//! whoever creates a future or stream records its runtime
//! ([`RuntimeScope`]) and enters it on every poll and on release. The
//! host does the same for the body streams it hands to a plugin, which
//! the plugin may poll from its own threads.
//!
//! Panics never cross: an exported poll catches them and answers an
//! error item or an error result, with the panic's message.

use std::any::Any;
use std::ffi::c_void;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use async_ffi::{ContextExt, FfiContext, FfiFuture, FfiPoll};
use futures::Stream;
use tokio::runtime::Handle;

use crate::abi::{FfiError, FfiOption, FfiResult, FfiStream, PluginFuture, error_code};
use crate::buffer::export_string;

/// The runtime a future or stream needs entered while it runs.
#[derive(Debug, Clone, Default)]
pub struct RuntimeScope(Option<Handle>);

impl RuntimeScope {
    /// The runtime of the calling thread, if it is inside one.
    pub fn current() -> Self {
        Self(Handle::try_current().ok())
    }

    /// A given runtime.
    pub fn of(handle: Handle) -> Self {
        Self(Some(handle))
    }

    pub(crate) fn enter(&self) -> Option<tokio::runtime::EnterGuard<'_>> {
        self.0.as_ref().map(Handle::enter)
    }
}

/// An error result describing a panic in `place`.
pub fn panic_error(place: &str, payload: Box<dyn Any + Send>) -> FfiError {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string payload".to_owned());
    // The payload's own drop could panic (rust-lang/rust#86027): forget it.
    std::mem::forget(payload);
    FfiError {
        code: error_code::PLUGIN_PANICKED,
        retryable: false,
        retry_after_ms: FfiOption::None,
        message: export_string(format!("panicked in {place}: {message}")),
    }
}

/// A future that enters its runtime when polled or dropped and turns a
/// panic into an error result.
struct Scoped<F> {
    scope: RuntimeScope,
    place: &'static str,
    future: std::mem::ManuallyDrop<F>,
    done: bool,
}

impl<F, T> Future for Scoped<F>
where
    F: Future<Output = FfiResult<T>>,
{
    type Output = FfiResult<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is structurally pinned: it is never moved out of
        // `Scoped` (only dropped in place in `drop`), and the other fields
        // are not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        if this.done {
            return Poll::Ready(FfiResult::Err(FfiError {
                code: error_code::OTHER,
                retryable: false,
                retry_after_ms: FfiOption::None,
                message: export_string(format!("{} polled after it failed", this.place)),
            }));
        }
        let _entered = this.scope.enter();
        // SAFETY: as above, `future` stays where it is.
        let future = unsafe { Pin::new_unchecked(&mut *this.future) };
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => {
                this.done = true;
                Poll::Ready(FfiResult::Err(panic_error(this.place, payload)))
            }
        }
    }
}

impl<F> Drop for Scoped<F> {
    fn drop(&mut self) {
        let _entered = self.scope.enter();
        // A panicking drop must not unwind into the other library.
        let future = &mut self.future;
        let _ = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: dropped once, here, and never used again.
            unsafe { std::mem::ManuallyDrop::drop(future) }
        }));
    }
}

/// Wraps `future` for the other side: polled inside `scope`, panics
/// answered as errors naming `place`.
pub fn export_future<F, T>(scope: RuntimeScope, place: &'static str, future: F) -> PluginFuture<T>
where
    F: Future<Output = FfiResult<T>> + Send + 'static,
    T: 'static,
{
    FfiFuture::new(Scoped {
        scope,
        place,
        future: std::mem::ManuallyDrop::new(future),
        done: false,
    })
}

/// Awaits a future from the other side. A foreign future that reports a
/// panic (async-ffi's `Panicked`) becomes an error result, not a panic.
pub async fn import_future<T>(future: PluginFuture<T>) -> FfiResult<T> {
    let mut future = future;
    std::future::poll_fn(move |cx| {
        match catch_unwind(AssertUnwindSafe(|| Pin::new(&mut future).poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => Poll::Ready(FfiResult::Err(panic_error("a plugin future", payload))),
        }
    })
    .await
}

/// A Rust stream behind an [`FfiStream`].
struct ExportedStream<S> {
    scope: RuntimeScope,
    place: &'static str,
    stream: Pin<Box<S>>,
    done: bool,
}

/// Lends `stream` to the other side, which polls it through the returned
/// [`FfiStream`]. Polls and the release run inside `scope`; a panic ends
/// the stream with an error item naming `place`.
pub fn export_stream<S, T>(
    scope: RuntimeScope,
    place: &'static str,
    stream: S,
) -> FfiStream<FfiResult<T>>
where
    S: Stream<Item = FfiResult<T>> + Send + 'static,
{
    let state = Box::new(ExportedStream {
        scope,
        place,
        stream: Box::pin(stream),
        done: false,
    });
    FfiStream {
        state: Box::into_raw(state).cast::<c_void>(),
        poll_next: poll_exported::<S, T>,
        release: release_exported::<S>,
    }
}

unsafe extern "C" fn poll_exported<S, T>(
    state: *mut c_void,
    cx: *mut FfiContext<'_>,
) -> FfiPoll<FfiOption<FfiResult<T>>>
where
    S: Stream<Item = FfiResult<T>>,
{
    // SAFETY: `state` is the Box<ExportedStream<S>> of `export_stream`,
    // polled through `&mut FfiStream`, so by one caller at a time.
    let exported = unsafe { &mut *state.cast::<ExportedStream<S>>() };
    if exported.done {
        return FfiPoll::Ready(FfiOption::None);
    }
    let _entered = exported.scope.enter();
    // SAFETY: the caller passes the context of its current poll.
    let cx = unsafe { &mut *cx };
    let polled = catch_unwind(AssertUnwindSafe(|| {
        cx.with_context(|cx| exported.stream.as_mut().poll_next(cx))
    }));
    match polled {
        Ok(Poll::Ready(item)) => FfiPoll::Ready(item.into()),
        Ok(Poll::Pending) => FfiPoll::Pending,
        Err(payload) => {
            exported.done = true;
            FfiPoll::Ready(FfiOption::Some(FfiResult::Err(panic_error(
                exported.place,
                payload,
            ))))
        }
    }
}

unsafe extern "C" fn release_exported<S>(state: *mut c_void) {
    // SAFETY: `state` is the Box<ExportedStream<S>> of `export_stream`,
    // released once by `FfiStream::drop`.
    let exported = unsafe { Box::from_raw(state.cast::<ExportedStream<S>>()) };
    let scope = exported.scope.clone();
    let _entered = scope.enter();
    let _ = catch_unwind(AssertUnwindSafe(move || drop(exported)));
}

/// A stream from the other side, as a Rust stream of results.
///
/// A foreign stream that reports a panic yields one error naming `place`
/// and then ends.
#[derive(Debug)]
pub struct ImportedStream<T> {
    stream: Option<FfiStream<FfiResult<T>>>,
    place: &'static str,
}

impl<T> ImportedStream<T> {
    /// Takes `stream`.
    pub fn new(place: &'static str, stream: FfiStream<FfiResult<T>>) -> Self {
        Self {
            stream: Some(stream),
            place,
        }
    }
}

impl<T> Stream for ImportedStream<T> {
    type Item = Result<T, FfiError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let Some(stream) = this.stream.as_mut() else {
            return Poll::Ready(None);
        };
        let (poll_next, state) = (stream.poll_next, stream.state);
        // SAFETY: the creator's poll function on its own state, with the
        // context of this poll; `&mut self` makes us the only caller.
        let polled = cx.with_ffi_context(|cx| unsafe { poll_next(state, cx) });
        match polled {
            FfiPoll::Ready(FfiOption::Some(FfiResult::Ok(item))) => Poll::Ready(Some(Ok(item))),
            FfiPoll::Ready(FfiOption::Some(FfiResult::Err(err))) => Poll::Ready(Some(Err(err))),
            FfiPoll::Ready(FfiOption::None) => {
                // Release at once: the other side's resources go back now.
                this.stream = None;
                Poll::Ready(None)
            }
            FfiPoll::Pending => Poll::Pending,
            FfiPoll::Panicked => {
                this.stream = None;
                Poll::Ready(Some(Err(FfiError {
                    code: error_code::PLUGIN_PANICKED,
                    retryable: false,
                    retry_after_ms: FfiOption::None,
                    message: export_string(format!("panicked in {}", this.place)),
                })))
            }
        }
    }
}
