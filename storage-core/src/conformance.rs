//! The conformance kit: one suite of behaviour tests every backend runs
//! unchanged (feature `conformance`).
//!
//! A backend's `tests/conformance.rs` is one macro call. It expands to one
//! `#[test]` per case, named after the case, so `cargo test` lists each
//! behaviour and a failure names what broke:
//!
//! ```
//! use storage_core::{MemoryStorage, conformance::Fixture};
//!
//! storage_core::conformance_suite!(|| async { Fixture::new(MemoryStorage::new()) });
//! # fn main() {}
//! ```
//!
//! The setup expression is called once per case and returns a
//! [`Fixture`]: the provider and anything that must live as long as the
//! test (a temporary folder, a test server). Every case works under its own
//! random prefix, so cases may share one bucket and run in parallel.
//!
//! A case whose capability the backend does not declare (see
//! [`Capabilities`]) checks instead that the operation fails with
//! `Unsupported` and changes nothing: a backend may lack a feature, never
//! answer it wrongly.
//!
//! Presign cases fetch the signed URLs with a real HTTP client (reqwest),
//! so the fixture of a backend that presigns must make its URLs reachable
//! (the local backend's fixture starts its axum handler on 127.0.0.1).

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};

use crate::{
    Body, ByteRange, Capabilities, Error, ErrorKind, GetOptions, Key, KeyRule, ListEntry,
    ListOptions, Prefix, PresignMethod, PresignOptions, PresignedRequest, PutOptions, Result,
    Storage,
};

/// A provider under test and what must outlive the test.
pub struct Fixture {
    storage: Arc<dyn Storage>,
    guards: Vec<Box<dyn Any + Send>>,
}

impl Fixture {
    /// A fixture for `storage`.
    pub fn new(storage: impl Storage) -> Self {
        Self::from_arc(Arc::new(storage))
    }

    /// A fixture for a shared provider.
    pub fn from_arc(storage: Arc<dyn Storage>) -> Self {
        Self {
            storage,
            guards: Vec::new(),
        }
    }

    /// Wraps the provider (in layers, say), keeping the guards: the kit
    /// then checks the stack as a whole.
    pub fn map_storage(mut self, wrap: impl FnOnce(Arc<dyn Storage>) -> Arc<dyn Storage>) -> Self {
        self.storage = wrap(self.storage);
        self
    }

    /// Keeps `guard` (a temporary folder, a server handle) alive until the
    /// case ends.
    pub fn with_guard(mut self, guard: impl Any + Send) -> Self {
        self.guards.push(Box::new(guard));
        self
    }
}

impl fmt::Debug for Fixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fixture")
            .field("storage", &self.storage)
            .field("guards", &self.guards.len())
            .finish()
    }
}

/// What a case gets: the provider, its capabilities and a unique prefix.
#[derive(Debug)]
pub struct Harness {
    fixture: Fixture,
    caps: Capabilities,
    root: String,
}

impl Harness {
    /// Wraps a fixture, choosing a fresh random prefix for this case.
    pub fn new(fixture: Fixture) -> Self {
        let caps = fixture.storage.capabilities();
        let root = format!("conformance-{:016x}/", random_u64());
        Self {
            fixture,
            caps,
            root,
        }
    }

    /// The provider under test.
    pub fn storage(&self) -> &dyn Storage {
        &*self.fixture.storage
    }

    /// The provider's declared capabilities.
    pub fn caps(&self) -> Capabilities {
        self.caps
    }

    /// A key under this case's prefix.
    pub fn key(&self, name: &str) -> Key {
        match Key::new(format!("{}{name}", self.root)) {
            Ok(key) => key,
            Err(err) => panic!("the kit built an invalid key: {err}"),
        }
    }

    /// This case's prefix, or a prefix under it.
    pub fn prefix(&self, rest: &str) -> Prefix {
        match Prefix::new(format!("{}{rest}", self.root)) {
            Ok(prefix) => prefix,
            Err(err) => panic!("the kit built an invalid prefix: {err}"),
        }
    }

    /// Strips this case's prefix from a listed name.
    fn relative<'a>(&self, name: &'a str) -> &'a str {
        name.strip_prefix(&self.root).unwrap_or(name)
    }
}

/// Runs one case on a fresh multi-threaded runtime: what each test the
/// [`conformance_suite!`](crate::conformance_suite) macro generates does.
pub fn run<Setup, Case>(setup: Setup, case: Case)
where
    Setup: AsyncFnOnce() -> Fixture,
    Case: AsyncFnOnce(&Harness),
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => panic!("cannot start a tokio runtime: {err}"),
    };
    runtime.block_on(async move {
        let harness = Harness::new(setup().await);
        case(&harness).await;
    });
}

/// Expands to one `#[test]` per conformance case, each running
/// [`run`](crate::conformance::run) with the given setup.
///
/// The setup is an expression callable as an async function that returns a
/// [`Fixture`](crate::conformance::Fixture), for example
/// `|| async { Fixture::new(MemoryStorage::new()) }` or the path of an
/// `async fn`.
///
/// A test server that lacks something the backend supports (an emulator
/// that does not verify signatures, say) lists the cases it fails as
/// known gaps, each with its reason:
///
/// ```no_run
/// # use storage_core::{MemoryStorage, conformance::Fixture, conformance_suite};
/// # async fn setup() -> Fixture {
/// #     Fixture::new(MemoryStorage::new())
/// # }
/// conformance_suite!(setup, gaps = [
///     ("tampered_presigned_url_is_refused", "moto accepts any signature"),
/// ]);
/// # fn main() {}
/// ```
///
/// A gap's test still runs and passes only while the case fails, so a
/// server that gains the feature shows up at once (remove the gap), and
/// nothing real is hidden behind a gap. A reason that starts with `race:`
/// marks a gap that shows only when a race goes one way (a server whose
/// conditional write is not atomic): its case may pass by luck, so it is
/// run and its outcome reported, not asserted. Gaps belong to a test server, not
/// to the backend: what the backend lacks is declared in its
/// [`Capabilities`].
#[macro_export]
macro_rules! conformance_suite {
    ($setup:expr) => {
        $crate::conformance_suite!($setup, gaps = []);
    };
    ($setup:expr, gaps = [$(($gap:literal, $reason:literal)),* $(,)?]) => {
        const CONFORMANCE_GAPS: &[(&str, &str)] = &[$(($gap, $reason)),*];

        #[test]
        fn every_known_gap_names_a_case() {
            $crate::conformance::check_gaps(CONFORMANCE_GAPS);
        }

        $crate::__conformance_cases!(
            $setup;
            empty_object_round_trips,
            one_byte_object_round_trips,
            five_mib_object_round_trips,
            stream_of_unknown_length_round_trips,
            stream_that_fails_midway_writes_nothing,
            stream_that_fails_midway_keeps_the_previous_object,
            sized_stream_that_ends_early_writes_nothing,
            get_streams_large_objects_in_several_chunks,
            put_result_agrees_with_head,
            content_type_and_cache_control_round_trip,
            user_metadata_round_trips,
            head_of_missing_key_is_not_found,
            get_of_missing_key_is_not_found,
            exists_tells_present_from_missing,
            delete_removes_the_object_and_says_so,
            delete_of_missing_key_succeeds_and_says_nothing_was_removed,
            delete_leaves_children_and_siblings,
            overwrite_replaces_content_metadata_and_etag,
            create_new_on_missing_key_writes,
            create_new_on_existing_key_fails_with_already_exists,
            update_if_match_with_current_etag_replaces,
            update_if_match_with_stale_etag_fails_with_precondition_failed,
            update_if_match_on_missing_key_fails_with_precondition_failed,
            get_if_match_with_other_etag_fails_with_precondition_failed,
            get_if_none_match_with_current_etag_is_not_modified,
            bounded_range_returns_exactly_those_bytes,
            bounded_range_past_the_end_is_cut_at_the_end,
            open_range_returns_the_rest,
            suffix_range_returns_the_last_bytes,
            suffix_range_longer_than_the_object_returns_it_all,
            range_starting_at_the_end_is_not_satisfiable,
            list_by_prefix_returns_matching_keys_in_byte_order,
            list_with_delimiter_folds_common_prefixes_once,
            list_of_1500_keys_is_complete_and_ordered,
            list_start_after_resumes_after_that_key,
            object_and_folder_of_the_same_name_coexist,
            nested_write_creates_no_parent_object,
            keys_with_special_characters_round_trip_and_list_exactly,
            hostile_keys_are_refused_before_any_io,
            copy_duplicates_content_and_metadata,
            copy_of_missing_source_is_not_found,
            rename_moves_content_and_metadata,
            rename_of_missing_source_is_not_found,
            presigned_get_downloads_the_object,
            presigned_get_serves_a_range,
            presigned_put_uploads_the_object,
            tampered_presigned_url_is_refused,
            expired_presigned_url_is_refused,
            presigned_url_used_with_another_method_is_refused,
            presigned_put_with_another_content_type_is_refused,
            concurrent_writers_leave_one_complete_object,
            concurrent_create_new_has_exactly_one_winner,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($setup:expr; $($case:ident),* $(,)?) => {
        #[test]
        fn the_suite_runs_every_case() {
            assert_eq!(&[$(stringify!($case)),*][..], $crate::conformance::CASES);
        }

        $(
            #[test]
            fn $case() {
                $crate::conformance::run_case(
                    stringify!($case),
                    CONFORMANCE_GAPS,
                    $setup,
                    $crate::conformance::cases::$case,
                );
            }
        )*
    };
}

/// Every case's name, as the tests are named.
pub const CASES: &[&str] = &[
    "empty_object_round_trips",
    "one_byte_object_round_trips",
    "five_mib_object_round_trips",
    "stream_of_unknown_length_round_trips",
    "stream_that_fails_midway_writes_nothing",
    "stream_that_fails_midway_keeps_the_previous_object",
    "sized_stream_that_ends_early_writes_nothing",
    "get_streams_large_objects_in_several_chunks",
    "put_result_agrees_with_head",
    "content_type_and_cache_control_round_trip",
    "user_metadata_round_trips",
    "head_of_missing_key_is_not_found",
    "get_of_missing_key_is_not_found",
    "exists_tells_present_from_missing",
    "delete_removes_the_object_and_says_so",
    "delete_of_missing_key_succeeds_and_says_nothing_was_removed",
    "delete_leaves_children_and_siblings",
    "overwrite_replaces_content_metadata_and_etag",
    "create_new_on_missing_key_writes",
    "create_new_on_existing_key_fails_with_already_exists",
    "update_if_match_with_current_etag_replaces",
    "update_if_match_with_stale_etag_fails_with_precondition_failed",
    "update_if_match_on_missing_key_fails_with_precondition_failed",
    "get_if_match_with_other_etag_fails_with_precondition_failed",
    "get_if_none_match_with_current_etag_is_not_modified",
    "bounded_range_returns_exactly_those_bytes",
    "bounded_range_past_the_end_is_cut_at_the_end",
    "open_range_returns_the_rest",
    "suffix_range_returns_the_last_bytes",
    "suffix_range_longer_than_the_object_returns_it_all",
    "range_starting_at_the_end_is_not_satisfiable",
    "list_by_prefix_returns_matching_keys_in_byte_order",
    "list_with_delimiter_folds_common_prefixes_once",
    "list_of_1500_keys_is_complete_and_ordered",
    "list_start_after_resumes_after_that_key",
    "object_and_folder_of_the_same_name_coexist",
    "nested_write_creates_no_parent_object",
    "keys_with_special_characters_round_trip_and_list_exactly",
    "hostile_keys_are_refused_before_any_io",
    "copy_duplicates_content_and_metadata",
    "copy_of_missing_source_is_not_found",
    "rename_moves_content_and_metadata",
    "rename_of_missing_source_is_not_found",
    "presigned_get_downloads_the_object",
    "presigned_get_serves_a_range",
    "presigned_put_uploads_the_object",
    "tampered_presigned_url_is_refused",
    "expired_presigned_url_is_refused",
    "presigned_url_used_with_another_method_is_refused",
    "presigned_put_with_another_content_type_is_refused",
    "concurrent_writers_leave_one_complete_object",
    "concurrent_create_new_has_exactly_one_winner",
];

/// Checks that every gap names a real case (a typo would otherwise leave
/// a case running unexcused, or hide nothing while looking like it does).
pub fn check_gaps(gaps: &[(&str, &str)]) {
    for (name, reason) in gaps {
        assert!(
            CASES.contains(name),
            "the gap {name:?} names no conformance case"
        );
        assert!(
            !reason.trim().is_empty(),
            "the gap {name:?} gives no reason"
        );
    }
}

/// Runs one case; if the test server lists it as a known gap, the case
/// must fail (and the test passes), so a gap that closes is noticed.
pub fn run_case<Setup, Case>(name: &str, gaps: &[(&str, &str)], setup: Setup, case: Case)
where
    Setup: AsyncFnOnce() -> Fixture,
    Case: AsyncFnOnce(&Harness),
{
    let Some((_, reason)) = gaps.iter().find(|(gap, _)| *gap == name) else {
        return run(setup, case);
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(setup, case)));
    match outcome {
        Err(_) => eprintln!("known gap of this test server, failed as expected: {reason}"),
        Ok(()) if reason.starts_with("race:") => {
            eprintln!("known racy gap of this test server, passed this time: {reason}")
        }
        Ok(()) => panic!(
            "{name} is listed as a known gap ({reason}) but passed: the server now supports it; remove the gap"
        ),
    }
}

/// `data` as a stream of unknown length in pieces of `chunk` bytes (the
/// last one shorter): what a backend's chunked upload path must handle.
pub fn chunked(data: Bytes, chunk: usize) -> Body {
    let chunks: Vec<Result<Bytes>> = (0..data.len())
        .step_by(chunk.max(1))
        .map(|start| Ok(data.slice(start..(start + chunk).min(data.len()))))
        .collect();
    Body::from_stream(stream::iter(chunks))
}

/// A deterministic pseudo-random byte pattern, so a wrong byte anywhere is
/// caught and a misplaced chunk cannot repeat its neighbour.
pub fn pattern(seed: u64, len: usize) -> Bytes {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    hasher.finish()
}

/// Asserts that `result` failed with `kind`, showing what came instead.
#[track_caller]
fn assert_kind<T: fmt::Debug>(result: Result<T>, kind: ErrorKind) -> Error {
    match result {
        Ok(value) => panic!("expected a {kind:?} error, got Ok({value:?})"),
        Err(err) => {
            assert_eq!(err.kind(), kind, "expected {kind:?}, got: {err}");
            err
        }
    }
}

#[track_caller]
fn ok<T>(result: Result<T>) -> T {
    match result {
        Ok(value) => value,
        Err(err) => panic!("operation failed: {err} ({err:?})"),
    }
}

/// The cases, one `async fn` each. Backends do not call these directly;
/// [`conformance_suite!`](crate::conformance_suite) does.
pub mod cases {
    use super::*;

    async fn put(h: &Harness, key: &Key, body: impl Into<Body>) -> crate::PutResult {
        ok(h.storage()
            .put(key, body.into(), PutOptions::default())
            .await)
    }

    async fn read(h: &Harness, key: &Key) -> Bytes {
        read_with(h, key, GetOptions::default()).await
    }

    async fn read_with(h: &Harness, key: &Key, options: GetOptions) -> Bytes {
        let result = ok(h.storage().get(key, options).await);
        let expected = result.len();
        let bytes = ok(result.bytes().await);
        assert_eq!(
            bytes.len() as u64,
            expected,
            "the body's length differs from the range the get reported"
        );
        bytes
    }

    async fn list_names(h: &Harness, prefix: &Prefix, options: ListOptions) -> Vec<String> {
        let entries: Vec<ListEntry> = ok(h.storage().list(prefix, options).try_collect().await);
        entries
            .iter()
            .map(|entry| match entry {
                ListEntry::Object(meta) => h.relative(meta.key.as_str()).to_owned(),
                ListEntry::Prefix(p) => format!("{}[prefix]", h.relative(p)),
            })
            .collect()
    }

    async fn missing(h: &Harness, key: &Key) {
        assert!(
            !ok(h.storage().exists(key).await),
            "{key} exists but nothing should have been written"
        );
    }

    async fn round_trip(h: &Harness, name: &str, data: Bytes) {
        let key = h.key(name);
        let written = put(h, &key, data.clone()).await;
        assert_eq!(written.size, data.len() as u64);
        let read_back = read(h, &key).await;
        assert!(read_back == data, "the content read back differs");
        assert_eq!(ok(h.storage().head(&key).await).size, data.len() as u64);
    }

    /// A zero-byte object is stored and read back as zero bytes.
    pub async fn empty_object_round_trips(h: &Harness) {
        round_trip(h, "empty", Bytes::new()).await;
    }

    /// A one-byte object round-trips.
    pub async fn one_byte_object_round_trips(h: &Harness) {
        round_trip(h, "one", Bytes::from_static(b"x")).await;
    }

    /// A 5 MiB object from memory round-trips byte for byte.
    pub async fn five_mib_object_round_trips(h: &Harness) {
        round_trip(h, "five-mib", pattern(5, 5 << 20)).await;
    }

    /// A stream of odd-sized chunks of unknown total length round-trips.
    pub async fn stream_of_unknown_length_round_trips(h: &Harness) {
        let data = pattern(7, (3 << 20) + 12_345);
        let key = h.key("streamed");
        let written = ok(h
            .storage()
            .put(&key, chunked(data.clone(), 65_537), PutOptions::default())
            .await);
        assert_eq!(written.size, data.len() as u64);
        assert!(read(h, &key).await == data, "the streamed content differs");
    }

    fn failing_body(good: Bytes) -> Body {
        let items = vec![
            Ok(good),
            Err(Error::new(ErrorKind::Other, "the source broke")),
        ];
        Body::from_stream(stream::iter(items))
    }

    /// A put whose stream fails midway fails and leaves no object.
    pub async fn stream_that_fails_midway_writes_nothing(h: &Harness) {
        let key = h.key("broken");
        let result = h
            .storage()
            .put(
                &key,
                failing_body(pattern(1, 100_000)),
                PutOptions::default(),
            )
            .await;
        assert!(result.is_err(), "a put whose body failed succeeded");
        missing(h, &key).await;
        let names = list_names(h, &h.prefix(""), ListOptions::default()).await;
        assert!(names.is_empty(), "a failed put left {names:?}");
    }

    /// A put whose stream fails midway leaves the previous object intact.
    pub async fn stream_that_fails_midway_keeps_the_previous_object(h: &Harness) {
        let key = h.key("kept");
        let old = pattern(2, 10_000);
        put(h, &key, old.clone()).await;
        let result = h
            .storage()
            .put(
                &key,
                failing_body(pattern(3, 100_000)),
                PutOptions::default(),
            )
            .await;
        assert!(result.is_err(), "a put whose body failed succeeded");
        assert!(
            read(h, &key).await == old,
            "the previous object was damaged"
        );
    }

    /// A stream that declares more bytes than it yields fails the put.
    pub async fn sized_stream_that_ends_early_writes_nothing(h: &Harness) {
        let key = h.key("short");
        let body = Body::from_sized_stream(stream::iter([Ok(Bytes::from_static(b"abc"))]), 10);
        let err = assert_kind(
            h.storage().put(&key, body, PutOptions::default()).await,
            ErrorKind::InvalidInput,
        );
        assert_eq!(
            err.key(),
            Some(key.as_str()),
            "the error does not name the key"
        );
        missing(h, &key).await;
    }

    /// A get of a large object streams it in more than one chunk, in order.
    pub async fn get_streams_large_objects_in_several_chunks(h: &Harness) {
        let key = h.key("chunks");
        let data = pattern(11, 9 << 20);
        put(h, &key, data.clone()).await;
        let result = ok(h.storage().get(&key, GetOptions::default()).await);
        let chunks: Vec<Bytes> = ok(result.body.try_collect().await);
        assert!(chunks.len() > 1, "a 9 MiB object arrived as one chunk");
        let joined: Vec<u8> = chunks.concat();
        assert!(joined == data, "the chunks do not reassemble the object");
    }

    /// The put result's size and etag are the ones head reports.
    pub async fn put_result_agrees_with_head(h: &Harness) {
        let key = h.key("agree");
        let written = put(h, &key, pattern(4, 1234)).await;
        let meta = ok(h.storage().head(&key).await);
        assert_eq!(meta.key, key);
        assert_eq!(meta.size, 1234);
        assert_eq!(written.etag, meta.etag, "put and head disagree on the etag");
        assert!(meta.etag.is_some(), "head reports no etag");
        assert!(
            meta.last_modified.is_some(),
            "head reports no last-modified time"
        );
        if let (Some(a), Some(b)) = (written.checksum, meta.checksum) {
            assert_eq!(a, b, "put and head disagree on the checksum");
        }
    }

    /// Content type and cache control are stored and returned by head and get.
    pub async fn content_type_and_cache_control_round_trip(h: &Harness) {
        let key = h.key("typed.png");
        let options = PutOptions::default()
            .with_content_type("image/png")
            .with_cache_control("public, max-age=60");
        ok(h.storage().put(&key, pattern(5, 100).into(), options).await);
        let meta = ok(h.storage().head(&key).await);
        assert_eq!(meta.content_type.as_deref(), Some("image/png"));
        let got = ok(h.storage().get(&key, GetOptions::default()).await);
        assert_eq!(got.meta.content_type.as_deref(), Some("image/png"));
        if h.caps().cache_control {
            assert_eq!(meta.cache_control.as_deref(), Some("public, max-age=60"));
            assert_eq!(
                got.meta.cache_control.as_deref(),
                Some("public, max-age=60")
            );
        }
    }

    /// User metadata is stored and returned by head and get.
    pub async fn user_metadata_round_trips(h: &Harness) {
        let key = h.key("with-metadata");
        let options = PutOptions::default()
            .with_metadata("board", "42")
            .with_metadata("artifact-type", "video");
        let result = h.storage().put(&key, "x".into(), options).await;
        if !h.caps().user_metadata {
            assert_kind(result, ErrorKind::Unsupported);
            missing(h, &key).await;
            return;
        }
        ok(result);
        let meta = ok(h.storage().head(&key).await);
        assert_eq!(
            meta.user_metadata.get("board").map(String::as_str),
            Some("42")
        );
        assert_eq!(
            meta.user_metadata.get("artifact-type").map(String::as_str),
            Some("video")
        );
        let got = ok(h.storage().get(&key, GetOptions::default()).await);
        assert_eq!(got.meta.user_metadata, meta.user_metadata);
    }

    /// Head of a missing key is `NotFound`, naming the key.
    pub async fn head_of_missing_key_is_not_found(h: &Harness) {
        let key = h.key("nothing-here");
        let err = assert_kind(h.storage().head(&key).await, ErrorKind::NotFound);
        assert_eq!(err.key(), Some(key.as_str()));
        assert_eq!(err.provider(), Some(h.storage().name()));
        assert!(!err.is_retryable());
    }

    /// Get of a missing key is `NotFound`, naming the key.
    pub async fn get_of_missing_key_is_not_found(h: &Harness) {
        let key = h.key("nothing-here");
        let err = assert_kind(
            h.storage().get(&key, GetOptions::default()).await,
            ErrorKind::NotFound,
        );
        assert_eq!(err.key(), Some(key.as_str()));
    }

    /// Exists is true for a stored key and false for a missing one.
    pub async fn exists_tells_present_from_missing(h: &Harness) {
        let key = h.key("present");
        put(h, &key, "x").await;
        assert!(ok(h.storage().exists(&key).await));
        assert!(!ok(h.storage().exists(&h.key("absent")).await));
    }

    /// Delete removes the object and returns `true`.
    pub async fn delete_removes_the_object_and_says_so(h: &Harness) {
        let key = h.key("doomed");
        put(h, &key, "x").await;
        assert!(
            ok(h.storage().delete(&key).await),
            "delete said nothing was removed"
        );
        missing(h, &key).await;
        assert_kind(h.storage().head(&key).await, ErrorKind::NotFound);
    }

    /// Deleting a missing key succeeds and returns `false`.
    pub async fn delete_of_missing_key_succeeds_and_says_nothing_was_removed(h: &Harness) {
        let removed = ok(h.storage().delete(&h.key("never-written")).await);
        assert!(
            !removed,
            "delete of a missing key said it removed something"
        );
    }

    /// Deleting `a` leaves `a/b` and `ab` alone.
    pub async fn delete_leaves_children_and_siblings(h: &Harness) {
        for name in ["a", "a/b", "ab"] {
            put(h, &h.key(name), name.to_owned()).await;
        }
        assert!(ok(h.storage().delete(&h.key("a")).await));
        assert_eq!(&read(h, &h.key("a/b")).await[..], b"a/b");
        assert_eq!(&read(h, &h.key("ab")).await[..], b"ab");
        let names = list_names(h, &h.prefix(""), ListOptions::default()).await;
        assert_eq!(names, ["a/b", "ab"]);
    }

    /// An overwrite replaces the content, drops the old metadata and changes
    /// the etag.
    pub async fn overwrite_replaces_content_metadata_and_etag(h: &Harness) {
        let key = h.key("replaced");
        let first = ok(h
            .storage()
            .put(
                &key,
                "first version".into(),
                PutOptions::default().with_content_type("text/plain"),
            )
            .await);
        let second = put(h, &key, "second").await;
        assert_eq!(&read(h, &key).await[..], b"second");
        let meta = ok(h.storage().head(&key).await);
        assert_eq!(meta.size, 6);
        assert_ne!(meta.content_type.as_deref(), Some("text/plain"));
        assert_ne!(first.etag, second.etag, "the etag did not change");
    }

    /// Create-only on a free key writes.
    pub async fn create_new_on_missing_key_writes(h: &Harness) {
        let key = h.key("fresh");
        let result = h
            .storage()
            .put(&key, "new".into(), PutOptions::default().create_new())
            .await;
        if !h.caps().create_new {
            assert_kind(result, ErrorKind::Unsupported);
            missing(h, &key).await;
            return;
        }
        ok(result);
        assert_eq!(&read(h, &key).await[..], b"new");
    }

    /// Create-only on a taken key fails with `AlreadyExists` and changes
    /// nothing.
    pub async fn create_new_on_existing_key_fails_with_already_exists(h: &Harness) {
        let key = h.key("taken");
        put(h, &key, "original").await;
        let result = h
            .storage()
            .put(&key, "intruder".into(), PutOptions::default().create_new())
            .await;
        let expected = if h.caps().create_new {
            ErrorKind::AlreadyExists
        } else {
            ErrorKind::Unsupported
        };
        assert_kind(result, expected);
        assert_eq!(&read(h, &key).await[..], b"original");
    }

    /// Replace-if-match with the current etag replaces.
    pub async fn update_if_match_with_current_etag_replaces(h: &Harness) {
        let key = h.key("cas");
        let first = put(h, &key, "v1").await;
        let etag = first.etag.unwrap_or_default();
        let result = h
            .storage()
            .put(&key, "v2".into(), PutOptions::default().if_match(etag))
            .await;
        if !h.caps().update_if_match {
            assert_kind(result, ErrorKind::Unsupported);
            assert_eq!(&read(h, &key).await[..], b"v1");
            return;
        }
        ok(result);
        assert_eq!(&read(h, &key).await[..], b"v2");
    }

    /// Replace-if-match with a stale etag fails with `PreconditionFailed`
    /// and changes nothing.
    pub async fn update_if_match_with_stale_etag_fails_with_precondition_failed(h: &Harness) {
        let key = h.key("cas-stale");
        let first = put(h, &key, "v1").await;
        put(h, &key, "v2").await;
        let stale = first.etag.unwrap_or_default();
        let result = h
            .storage()
            .put(&key, "v3".into(), PutOptions::default().if_match(stale))
            .await;
        let expected = if h.caps().update_if_match {
            ErrorKind::PreconditionFailed
        } else {
            ErrorKind::Unsupported
        };
        assert_kind(result, expected);
        assert_eq!(&read(h, &key).await[..], b"v2");
    }

    /// Replace-if-match on a missing key fails with `PreconditionFailed`
    /// and creates nothing.
    pub async fn update_if_match_on_missing_key_fails_with_precondition_failed(h: &Harness) {
        let key = h.key("cas-missing");
        let result = h
            .storage()
            .put(
                &key,
                "v".into(),
                PutOptions::default().if_match("\"whatever\""),
            )
            .await;
        let expected = if h.caps().update_if_match {
            ErrorKind::PreconditionFailed
        } else {
            ErrorKind::Unsupported
        };
        assert_kind(result, expected);
        missing(h, &key).await;
    }

    /// Get with `if_match` of another etag fails with `PreconditionFailed`.
    pub async fn get_if_match_with_other_etag_fails_with_precondition_failed(h: &Harness) {
        let key = h.key("get-if-match");
        let written = put(h, &key, "content").await;
        let result = h
            .storage()
            .get(
                &key,
                GetOptions::default().with_if_match("\"not-the-etag\""),
            )
            .await;
        if !h.caps().get_if_match {
            assert_kind(result, ErrorKind::Unsupported);
            return;
        }
        assert_kind(result, ErrorKind::PreconditionFailed);
        let etag = written.etag.unwrap_or_default();
        let same = read_with(h, &key, GetOptions::default().with_if_match(etag)).await;
        assert_eq!(&same[..], b"content");
    }

    /// Get with `if_none_match` of the current etag is `NotModified`.
    pub async fn get_if_none_match_with_current_etag_is_not_modified(h: &Harness) {
        let key = h.key("get-if-none-match");
        let written = put(h, &key, "content").await;
        let etag = written.etag.unwrap_or_default();
        let result = h
            .storage()
            .get(&key, GetOptions::default().with_if_none_match(etag))
            .await;
        if !h.caps().get_if_none_match {
            assert_kind(result, ErrorKind::Unsupported);
            return;
        }
        assert_kind(result, ErrorKind::NotModified);
        let other = GetOptions::default().with_if_none_match("\"other\"");
        assert_eq!(&read_with(h, &key, other).await[..], b"content");
    }

    async fn ranged(h: &Harness, range: ByteRange) -> (Bytes, Bytes) {
        let key = h.key("ranged");
        let data = pattern(9, 10_000);
        put(h, &key, data.clone()).await;
        let result = ok(h
            .storage()
            .get(&key, GetOptions::default().with_range(range))
            .await);
        assert_eq!(
            result.meta.size, 10_000,
            "a ranged get must report the object's size"
        );
        let span = result.range.clone();
        let bytes = ok(result.bytes().await);
        assert_eq!(bytes.len() as u64, span.end - span.start);
        (data, bytes)
    }

    /// A bounded range returns exactly its bytes.
    pub async fn bounded_range_returns_exactly_those_bytes(h: &Harness) {
        let (data, bytes) = ranged(h, ByteRange::bounded(100..1100)).await;
        assert!(bytes == data.slice(100..1100), "wrong bytes for 100..1100");
    }

    /// A bounded range reaching past the end is cut at the end.
    pub async fn bounded_range_past_the_end_is_cut_at_the_end(h: &Harness) {
        let (data, bytes) = ranged(h, ByteRange::bounded(9_000..20_000)).await;
        assert!(bytes == data.slice(9_000..), "wrong bytes for 9000..20000");
    }

    /// An open range returns everything from its start.
    pub async fn open_range_returns_the_rest(h: &Harness) {
        let (data, bytes) = ranged(h, ByteRange::From(9_999)).await;
        assert!(bytes == data.slice(9_999..), "wrong bytes for 9999..");
    }

    /// A suffix range returns the last bytes.
    pub async fn suffix_range_returns_the_last_bytes(h: &Harness) {
        let (data, bytes) = ranged(h, ByteRange::Suffix(500)).await;
        assert!(bytes == data.slice(9_500..), "wrong bytes for the last 500");
    }

    /// A suffix longer than the object returns the whole object.
    pub async fn suffix_range_longer_than_the_object_returns_it_all(h: &Harness) {
        let (data, bytes) = ranged(h, ByteRange::Suffix(50_000)).await;
        assert!(
            bytes == data,
            "a long suffix did not return the whole object"
        );
    }

    /// A range starting at the end is `RangeNotSatisfiable`.
    pub async fn range_starting_at_the_end_is_not_satisfiable(h: &Harness) {
        let key = h.key("short-range");
        put(h, &key, pattern(1, 10)).await;
        let result = h
            .storage()
            .get(&key, GetOptions::default().with_range(ByteRange::From(10)))
            .await;
        assert_kind(result, ErrorKind::RangeNotSatisfiable);
        let result = h
            .storage()
            .get(
                &key,
                GetOptions::default().with_range(ByteRange::bounded(50..60)),
            )
            .await;
        assert_kind(result, ErrorKind::RangeNotSatisfiable);
    }

    /// A prefix lists exactly the keys that start with it, in byte order,
    /// at every depth.
    pub async fn list_by_prefix_returns_matching_keys_in_byte_order(h: &Harness) {
        for name in [
            "img/b.png",
            "img/a.png",
            "img/sub/c.png",
            "imgx",
            "im",
            "doc/x",
        ] {
            put(h, &h.key(name), "x").await;
        }
        let names = list_names(h, &h.prefix("img"), ListOptions::default()).await;
        assert_eq!(names, ["img/a.png", "img/b.png", "img/sub/c.png", "imgx"]);
        let names = list_names(h, &h.prefix("img/"), ListOptions::default()).await;
        assert_eq!(names, ["img/a.png", "img/b.png", "img/sub/c.png"]);
        let all: Vec<ListEntry> = ok(h
            .storage()
            .list(&h.prefix(""), ListOptions::default())
            .try_collect()
            .await);
        for entry in &all {
            let meta = entry.as_object().map(|m| m.size);
            assert_eq!(
                meta,
                Some(1),
                "a listed object has the wrong size: {entry:?}"
            );
        }
        assert_eq!(all.len(), 6);
    }

    /// With a delimiter, deeper keys fold into common prefixes that end
    /// with `/`, appear once and sort among the objects.
    pub async fn list_with_delimiter_folds_common_prefixes_once(h: &Harness) {
        for name in ["a", "a-b", "a/x", "a/y/z", "b/c", "b/d", "c"] {
            put(h, &h.key(name), "x").await;
        }
        let result: Result<Vec<ListEntry>> = h
            .storage()
            .list(&h.prefix(""), ListOptions::default().with_delimiter())
            .try_collect()
            .await;
        if !h.caps().list_delimiter {
            assert_kind(result, ErrorKind::Unsupported);
            return;
        }
        ok(result);
        let names = list_names(h, &h.prefix(""), ListOptions::default().with_delimiter()).await;
        assert_eq!(names, ["a", "a-b", "a/[prefix]", "b/[prefix]", "c"]);
        let names = list_names(h, &h.prefix("a/"), ListOptions::default().with_delimiter()).await;
        assert_eq!(names, ["a/x", "a/y/[prefix]"]);
    }

    /// 1,500 keys (more than one page on every backend) list completely,
    /// once each, in order.
    pub async fn list_of_1500_keys_is_complete_and_ordered(h: &Harness) {
        let storage = h.storage();
        let keys: Vec<Key> = (0..1500).map(|i| h.key(&format!("many/{i:05}"))).collect();
        let writes = stream::iter(keys.iter())
            .map(|key| storage.put(key, Body::from("x"), PutOptions::default()))
            .buffer_unordered(32);
        let written: Vec<crate::PutResult> = ok(writes.try_collect().await);
        assert_eq!(written.len(), 1500);
        let names = list_names(h, &h.prefix("many/"), ListOptions::default()).await;
        let expected: Vec<String> = (0..1500).map(|i| format!("many/{i:05}")).collect();
        assert_eq!(
            names.len(),
            1500,
            "the listing is incomplete or repeats keys"
        );
        assert!(names == expected, "the listing is out of order");
    }

    /// `start_after` lists only names after the given key.
    pub async fn list_start_after_resumes_after_that_key(h: &Harness) {
        for name in ["k1", "k2", "k3", "k4"] {
            put(h, &h.key(name), "x").await;
        }
        let options = ListOptions::default().with_start_after(h.key("k2"));
        let names = list_names(h, &h.prefix(""), options).await;
        assert_eq!(names, ["k3", "k4"]);
    }

    /// `a` and `a/b` are both objects, and either survives the other's
    /// deletion.
    pub async fn object_and_folder_of_the_same_name_coexist(h: &Harness) {
        put(h, &h.key("both"), "file").await;
        put(h, &h.key("both/inner"), "nested").await;
        assert_eq!(&read(h, &h.key("both")).await[..], b"file");
        assert_eq!(&read(h, &h.key("both/inner")).await[..], b"nested");
        let names = list_names(h, &h.prefix(""), ListOptions::default()).await;
        assert_eq!(names, ["both", "both/inner"]);
        assert!(ok(h.storage().delete(&h.key("both/inner")).await));
        assert_eq!(&read(h, &h.key("both")).await[..], b"file");
        put(h, &h.key("both/again"), "x").await;
        assert!(ok(h.storage().delete(&h.key("both")).await));
        assert_eq!(&read(h, &h.key("both/again")).await[..], b"x");
    }

    /// Writing `p/q/r` creates no object `p`, `p/` or `p/q`.
    pub async fn nested_write_creates_no_parent_object(h: &Harness) {
        put(h, &h.key("p/q/r"), "x").await;
        missing(h, &h.key("p")).await;
        missing(h, &h.key("p/q")).await;
        let names = list_names(h, &h.prefix(""), ListOptions::default()).await;
        assert_eq!(names, ["p/q/r"]);
        assert!(ok(h.storage().delete(&h.key("p/q/r")).await));
        let names = list_names(h, &h.prefix(""), ListOptions::default().with_delimiter()).await;
        assert!(
            names.is_empty() || !h.caps().list_delimiter,
            "left behind: {names:?}"
        );
    }

    /// Keys with spaces, unicode, `+`, `%`, `#`, `?`, `=` and friends are
    /// stored, read and listed exactly as given.
    pub async fn keys_with_special_characters_round_trip_and_list_exactly(h: &Harness) {
        let mut names = vec![
            "with space.txt",
            "plus+sign",
            "percent%20literal",
            "100%",
            "hash#fragment",
            "question?mark",
            "equals=sign&amp",
            "tilde~and*star",
            "unicodé/文件/ファイル.png",
            "emoji-😀",
            "quote'\"",
            "brackets[]{}()",
            "comma,semi;colon:",
            "at@dollar$bang!",
            ".leading-dot",
            "trailing-dot.",
            "...",
        ];
        names.sort();
        for (i, name) in names.iter().enumerate() {
            put(h, &h.key(name), format!("content {i}")).await;
        }
        for (i, name) in names.iter().enumerate() {
            let key = h.key(name);
            assert_eq!(
                read(h, &key).await,
                format!("content {i}").as_bytes(),
                "{name}"
            );
            assert_eq!(ok(h.storage().head(&key).await).key, key);
        }
        let mut expected: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        expected.sort();
        let listed = list_names(h, &h.prefix(""), ListOptions::default()).await;
        assert_eq!(listed, expected);
    }

    /// Hostile keys never become a [`Key`], so they never reach a provider;
    /// the store is left empty.
    pub async fn hostile_keys_are_refused_before_any_io(h: &Harness) {
        let hostile = [
            ("../escape", KeyRule::DotSegment),
            ("a/../../etc/passwd", KeyRule::DotSegment),
            ("/etc/passwd", KeyRule::LeadingSlash),
            ("a\\..\\b", KeyRule::Backslash),
            ("a\0b", KeyRule::ControlCharacter),
            ("line\nbreak", KeyRule::ControlCharacter),
            ("%2e%2e/x", KeyRule::EncodedTraversal),
            ("..%2fx", KeyRule::EncodedTraversal),
            ("%252e%252e/x", KeyRule::EncodedTraversal),
            ("C:/Windows", KeyRule::DrivePrefix),
            ("a//b", KeyRule::EmptySegment),
            ("", KeyRule::Empty),
        ];
        for (input, rule) in hostile {
            match Key::new(input) {
                Ok(key) => panic!("hostile key {key:?} was accepted"),
                Err(err) => {
                    assert_eq!(err.rule(), rule, "{input:?}");
                    let err: Error = err.into();
                    assert_eq!(err.kind(), ErrorKind::InvalidKey);
                }
            }
            if !input.is_empty() && !input.starts_with('/') && !input.starts_with("C:") {
                let nested = format!("{}{input}", h.root);
                assert!(
                    Key::new(nested).is_err(),
                    "{input:?} under a prefix was accepted"
                );
            }
        }
        assert!(Key::new("a".repeat(1025)).is_err());
        let names = list_names(h, &h.prefix(""), ListOptions::default()).await;
        assert!(names.is_empty());
    }

    async fn expect_unsupported_copy(h: &Harness, result: Result<impl fmt::Debug>, to: &Key) {
        assert_kind(result, ErrorKind::Unsupported);
        missing(h, to).await;
    }

    /// Copy duplicates content and metadata; the source stays.
    pub async fn copy_duplicates_content_and_metadata(h: &Harness) {
        let from = h.key("original.txt");
        let to = h.key("copies/duplicate.txt");
        let options = PutOptions::default()
            .with_content_type("text/plain")
            .with_metadata("origin", "conformance");
        let options = if h.caps().user_metadata {
            options
        } else {
            PutOptions::default().with_content_type("text/plain")
        };
        ok(h.storage()
            .put(&from, pattern(3, 70_000).into(), options)
            .await);
        let result = h.storage().copy(&from, &to).await;
        if !h.caps().copy {
            return expect_unsupported_copy(h, result, &to).await;
        }
        let written = ok(result);
        assert_eq!(written.size, 70_000);
        assert!(read(h, &to).await == pattern(3, 70_000));
        assert!(
            read(h, &from).await == pattern(3, 70_000),
            "the source changed"
        );
        let meta = ok(h.storage().head(&to).await);
        assert_eq!(meta.content_type.as_deref(), Some("text/plain"));
        if h.caps().user_metadata {
            let origin = meta.user_metadata.get("origin").map(String::as_str);
            assert_eq!(origin, Some("conformance"));
        }
    }

    /// Copy from a missing key is `NotFound` and writes nothing.
    pub async fn copy_of_missing_source_is_not_found(h: &Harness) {
        let to = h.key("copy-target");
        let result = h.storage().copy(&h.key("no-source"), &to).await;
        if !h.caps().copy {
            return expect_unsupported_copy(h, result, &to).await;
        }
        assert_kind(result, ErrorKind::NotFound);
        missing(h, &to).await;
    }

    /// Rename moves content and metadata and removes the source.
    pub async fn rename_moves_content_and_metadata(h: &Harness) {
        let from = h.key("before");
        let to = h.key("after/moved");
        let options = PutOptions::default().with_content_type("application/json");
        ok(h.storage().put(&from, "{}".into(), options).await);
        put(h, &to, "to be replaced").await;
        let result = h.storage().rename(&from, &to).await;
        if !h.caps().rename {
            assert_kind(result, ErrorKind::Unsupported);
            assert_eq!(&read(h, &from).await[..], b"{}");
            return;
        }
        ok(result);
        missing(h, &from).await;
        assert_eq!(&read(h, &to).await[..], b"{}");
        let meta = ok(h.storage().head(&to).await);
        assert_eq!(meta.content_type.as_deref(), Some("application/json"));
    }

    /// Rename from a missing key is `NotFound` and writes nothing.
    pub async fn rename_of_missing_source_is_not_found(h: &Harness) {
        let to = h.key("rename-target");
        let result = h.storage().rename(&h.key("no-source"), &to).await;
        let expected = if h.caps().rename {
            ErrorKind::NotFound
        } else {
            ErrorKind::Unsupported
        };
        assert_kind(result, expected);
        missing(h, &to).await;
    }

    fn http() -> reqwest::Client {
        match reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .no_proxy()
            .build()
        {
            Ok(client) => client,
            Err(err) => panic!("cannot build an HTTP client: {err}"),
        }
    }

    fn request(
        client: &reqwest::Client,
        method: &str,
        url: &str,
        presigned: &PresignedRequest,
    ) -> reqwest::RequestBuilder {
        let method = match reqwest::Method::from_bytes(method.as_bytes()) {
            Ok(method) => method,
            Err(err) => panic!("bad method {method}: {err}"),
        };
        let mut builder = client.request(method, url);
        for (name, value) in &presigned.headers {
            builder = builder.header(name, value);
        }
        builder
    }

    async fn send(builder: reqwest::RequestBuilder) -> reqwest::Response {
        match builder.send().await {
            Ok(response) => response,
            Err(err) => panic!("the presigned request did not complete: {err}"),
        }
    }

    /// Presigns, or checks that an unsupported backend says so.
    async fn presign(
        h: &Harness,
        method: PresignMethod,
        key: &Key,
        expires_in: Duration,
        options: PresignOptions,
    ) -> Option<PresignedRequest> {
        let result = h.storage().presign(method, key, expires_in, options).await;
        let caps = h.caps();
        if !caps.presign || (method == PresignMethod::Put && !caps.presign_put) {
            assert_kind(result, ErrorKind::Unsupported);
            return None;
        }
        let presigned = ok(result);
        assert_eq!(presigned.method, method);
        let remaining = presigned.remaining();
        if method == PresignMethod::Put && !caps.presign_put_chosen_expiry {
            // The server chose the lifetime: it must still be stated.
            assert!(
                remaining > Duration::ZERO && remaining <= Duration::from_secs(7 * 24 * 3600),
                "the URL's stated lifetime {remaining:?} is not a real one"
            );
        } else {
            assert!(
                remaining <= expires_in && remaining + Duration::from_secs(60) >= expires_in,
                "asked for {expires_in:?}, the URL lives {remaining:?}"
            );
        }
        Some(presigned)
    }

    /// A presigned GET downloads the object with a plain HTTP client.
    pub async fn presigned_get_downloads_the_object(h: &Harness) {
        let key = h.key("shared/photo 1+ü.jpg");
        let data = pattern(21, 300_000);
        put(h, &key, data.clone()).await;
        let Some(signed) = presign(
            h,
            PresignMethod::Get,
            &key,
            Duration::from_secs(600),
            Default::default(),
        )
        .await
        else {
            return;
        };
        let response = send(request(&http(), "GET", signed.url.as_str(), &signed)).await;
        assert_eq!(response.status().as_u16(), 200);
        let body = response.bytes().await.unwrap_or_default();
        assert!(
            body == data,
            "the presigned download differs from the object"
        );
    }

    /// A presigned GET honours a `Range` header.
    pub async fn presigned_get_serves_a_range(h: &Harness) {
        let key = h.key("shared/range");
        let data = pattern(22, 10_000);
        put(h, &key, data.clone()).await;
        let Some(signed) = presign(
            h,
            PresignMethod::Get,
            &key,
            Duration::from_secs(600),
            Default::default(),
        )
        .await
        else {
            return;
        };
        let builder =
            request(&http(), "GET", signed.url.as_str(), &signed).header("range", "bytes=10-19");
        let response = send(builder).await;
        assert_eq!(response.status().as_u16(), 206);
        let body = response.bytes().await.unwrap_or_default();
        assert!(body == data.slice(10..20), "the ranged download is wrong");
    }

    /// A presigned PUT uploads the object, with its signed content type.
    pub async fn presigned_put_uploads_the_object(h: &Harness) {
        let key = h.key("uploads/from browser.bin");
        let options = PresignOptions::default().with_content_type("application/octet-stream");
        let Some(signed) = presign(
            h,
            PresignMethod::Put,
            &key,
            Duration::from_secs(600),
            options,
        )
        .await
        else {
            return;
        };
        let data = pattern(23, 200_000);
        let builder = request(&http(), "PUT", signed.url.as_str(), &signed).body(data.clone());
        let response = send(builder).await;
        assert!(
            response.status().is_success(),
            "the presigned upload was refused: {}",
            response.status()
        );
        assert!(read(h, &key).await == data, "the uploaded content differs");
        let meta = ok(h.storage().head(&key).await);
        assert_eq!(
            meta.content_type.as_deref(),
            Some("application/octet-stream")
        );
    }

    fn tamper(url: &str) -> Vec<String> {
        let mut variants = Vec::new();
        // Change one character of the signature (the last query value).
        if let Some(last) = url.char_indices().last() {
            let flipped = if last.1 == '0' { '1' } else { '0' };
            variants.push(format!("{}{flipped}", &url[..last.0]));
        }
        // Point the same signature at another key.
        if let Some(q) = url.find('?') {
            let (path, query) = url.split_at(q);
            variants.push(format!("{path}-other{query}"));
        }
        variants
    }

    /// A presigned URL with one character changed, or pointed at another
    /// key, is refused and writes nothing.
    pub async fn tampered_presigned_url_is_refused(h: &Harness) {
        let key = h.key("tamper/target");
        put(h, &key, "secret content").await;
        let Some(get) = presign(
            h,
            PresignMethod::Get,
            &key,
            Duration::from_secs(600),
            Default::default(),
        )
        .await
        else {
            return;
        };
        for url in tamper(get.url.as_str()) {
            let response = send(request(&http(), "GET", &url, &get)).await;
            assert!(
                response.status().is_client_error(),
                "{url} gave {}",
                response.status()
            );
            let body = response.bytes().await.unwrap_or_default();
            assert!(
                !body.windows(14).any(|w| w == b"secret content"),
                "{url} leaked"
            );
        }
        let upload = h.key("tamper/upload");
        let put_signed = presign(
            h,
            PresignMethod::Put,
            &upload,
            Duration::from_secs(600),
            Default::default(),
        )
        .await;
        let Some(put_signed) = put_signed else { return };
        for url in tamper(put_signed.url.as_str()) {
            let builder = request(&http(), "PUT", &url, &put_signed).body("intruder");
            let response = send(builder).await;
            assert!(
                response.status().is_client_error(),
                "{url} gave {}",
                response.status()
            );
        }
        missing(h, &upload).await;
        let names = list_names(h, &h.prefix("tamper/"), ListOptions::default()).await;
        assert_eq!(
            names,
            ["tamper/target"],
            "a tampered upload wrote something"
        );
    }

    /// A presigned URL is refused after it expires.
    pub async fn expired_presigned_url_is_refused(h: &Harness) {
        let key = h.key("expiring");
        put(h, &key, "soon gone").await;
        let ttl = Duration::from_secs(1);
        let Some(get) = presign(h, PresignMethod::Get, &key, ttl, Default::default()).await else {
            return;
        };
        let upload = h.key("expiring-upload");
        // A PUT URL whose lifetime the server fixes cannot expire this soon.
        let put_signed = match h.caps().presign_put_chosen_expiry {
            true => presign(h, PresignMethod::Put, &upload, ttl, Default::default()).await,
            false => None,
        };
        // Wait past the expiry (and a clock tick of slack); no timing is
        // asserted, only the refusal.
        tokio::time::sleep(Duration::from_millis(2_100)).await;
        let response = send(request(&http(), "GET", get.url.as_str(), &get)).await;
        assert!(
            response.status().is_client_error(),
            "expired GET gave {}",
            response.status()
        );
        if let Some(put_signed) = put_signed {
            let builder = request(&http(), "PUT", put_signed.url.as_str(), &put_signed).body("x");
            let response = send(builder).await;
            assert!(
                response.status().is_client_error(),
                "expired PUT gave {}",
                response.status()
            );
            missing(h, &upload).await;
        }
    }

    /// A URL signed for GET is refused for PUT (and writes nothing), and
    /// one signed for PUT is refused for GET.
    pub async fn presigned_url_used_with_another_method_is_refused(h: &Harness) {
        let key = h.key("method-bound");
        put(h, &key, "original").await;
        let Some(get) = presign(
            h,
            PresignMethod::Get,
            &key,
            Duration::from_secs(600),
            Default::default(),
        )
        .await
        else {
            return;
        };
        let builder = request(&http(), "PUT", get.url.as_str(), &get).body("overwritten");
        let response = send(builder).await;
        assert!(
            response.status().is_client_error(),
            "PUT on a GET URL gave {}",
            response.status()
        );
        assert_eq!(&read(h, &key).await[..], b"original");
        let put_signed = presign(
            h,
            PresignMethod::Put,
            &key,
            Duration::from_secs(600),
            Default::default(),
        )
        .await;
        if let Some(put_signed) = put_signed {
            let response = send(request(
                &http(),
                "GET",
                put_signed.url.as_str(),
                &put_signed,
            ))
            .await;
            assert!(
                response.status().is_client_error(),
                "GET on a PUT URL gave {}",
                response.status()
            );
        }
    }

    /// A PUT signed for one content type is refused with another.
    pub async fn presigned_put_with_another_content_type_is_refused(h: &Harness) {
        let key = h.key("typed-upload");
        let options = PresignOptions::default().with_content_type("image/png");
        let Some(signed) = presign(
            h,
            PresignMethod::Put,
            &key,
            Duration::from_secs(600),
            options,
        )
        .await
        else {
            return;
        };
        if !h.caps().presign_put_content_type {
            // Nothing binds it; the request must still say what to send.
            assert!(
                signed
                    .headers
                    .iter()
                    .any(|(name, value)| name.eq_ignore_ascii_case("content-type")
                        && value == "image/png"),
                "the presigned request does not list the content type to send"
            );
            return;
        }
        let mut builder = http().put(signed.url.as_str()).body("not a png");
        for (name, value) in &signed.headers {
            if !name.eq_ignore_ascii_case("content-type") {
                builder = builder.header(name, value);
            }
        }
        let response = send(builder.header("content-type", "text/html")).await;
        assert!(
            response.status().is_client_error(),
            "got {}",
            response.status()
        );
        missing(h, &key).await;
    }

    /// Sixteen concurrent streamed writers to one key leave exactly one
    /// writer's complete content.
    pub async fn concurrent_writers_leave_one_complete_object(h: &Harness) {
        let key = h.key("contended");
        let len = 512 * 1024 + 3;
        let storage = h.storage();
        let writers = (0..16u64).map(|writer| {
            let key = key.clone();
            async move {
                let body = chunked(pattern(100 + writer, len), 16 * 1024 + writer as usize);
                storage.put(&key, body, PutOptions::default()).await
            }
        });
        let results = futures::future::join_all(writers).await;
        for result in results {
            ok(result);
        }
        let content = read(h, &key).await;
        let winner = (0..16u64).find(|&w| content == pattern(100 + w, len));
        assert!(
            winner.is_some(),
            "the object is not any one writer's complete content"
        );
        let names = list_names(h, &h.prefix(""), ListOptions::default()).await;
        assert_eq!(names, ["contended"], "concurrent writes left extra objects");
    }

    /// Of sixteen concurrent create-only writers exactly one succeeds; the
    /// rest get `AlreadyExists`.
    pub async fn concurrent_create_new_has_exactly_one_winner(h: &Harness) {
        let key = h.key("race");
        let storage = h.storage();
        let writers = (0..16u64).map(|writer| {
            let key = key.clone();
            async move {
                let body = Body::from(pattern(200 + writer, 100_000));
                let result = storage
                    .put(&key, body, PutOptions::default().create_new())
                    .await;
                (writer, result)
            }
        });
        let results = futures::future::join_all(writers).await;
        if !h.caps().create_new {
            for (_, result) in results {
                assert_kind(result, ErrorKind::Unsupported);
            }
            missing(h, &key).await;
            return;
        }
        let mut winners = Vec::new();
        for (writer, result) in results {
            match result {
                Ok(_) => winners.push(writer),
                Err(err) => assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}"),
            }
        }
        assert_eq!(winners.len(), 1, "winners: {winners:?}");
        let content = read(h, &key).await;
        assert!(
            content == pattern(200 + winners[0], 100_000),
            "the winner's content is not stored"
        );
    }
}
