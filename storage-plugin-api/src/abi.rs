//! The types that cross the library boundary, all `#[repr(C)]`.
//!
//! Nothing here is a Rust trait object, a `String`, a `Vec` or a Rust enum
//! discriminant: the host and the plugin may be built by different
//! compilers, and only the C layout is shared. The rules:
//!
//! - A [`FfiStr`] is borrowed: valid for the duration of the call it is
//!   passed to, never kept.
//! - A [`FfiBytes`] is owned and carries its own release function, so
//!   memory is always freed by the library that allocated it and chunks
//!   cross without being copied.
//! - Errors are a `u32` code ([`error_code`]) and a message; a code this
//!   side does not know reads as `Other`.
//! - Option and result are `#[repr(C, u8)]` enums ([`FfiOption`],
//!   [`FfiResult`]), whose layout C defines.
//! - Structures that will gain fields ([`ProviderVTable`],
//!   [`HostServices`], [`PluginDeclaration`]) start with their size and
//!   only ever grow at their end; options carry an `extension` JSON object
//!   for options added later.
//!
//! Versioning: [`ABI_VERSION`] is the major version and is part of the
//! exported symbol's name ([`DECLARATION_SYMBOL`]). Adding fields at the
//! end of a sized structure is a minor change; anything else is a new
//! major version.

use std::ffi::c_void;
use std::marker::PhantomData;

use async_ffi::{FfiContext, FfiFuture, FfiPoll};

/// The major version of this ABI. It is in the exported symbol's name and
/// in the declaration; the host refuses any other.
pub const ABI_VERSION: u32 = 1;

/// The first eight bytes of every [`PluginDeclaration`].
pub const MAGIC: [u8; 8] = *b"STORPLUG";

/// The one symbol a plugin exports: an `extern "C" fn() -> *const
/// PluginDeclaration` (see [`DeclarationFn`]).
pub const DECLARATION_SYMBOL: &str = "storage_plugin_declaration_v1";

/// The signature of [`DECLARATION_SYMBOL`].
pub type DeclarationFn = unsafe extern "C" fn() -> *const PluginDeclaration;

/// A borrowed UTF-8 string: valid only during the call it is passed to.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct FfiStr<'a> {
    ptr: *const u8,
    len: usize,
    _borrow: PhantomData<&'a str>,
}

// SAFETY: an FfiStr is a shared borrow of immutable bytes, like &str.
unsafe impl Send for FfiStr<'_> {}
// SAFETY: as above.
unsafe impl Sync for FfiStr<'_> {}

impl<'a> FfiStr<'a> {
    /// Borrows `text`.
    pub const fn new(text: &'a str) -> Self {
        Self {
            ptr: text.as_ptr(),
            len: text.len(),
            _borrow: PhantomData,
        }
    }

    /// The bytes, which the other side promised are UTF-8 but which are
    /// checked before use ([`as_str`](Self::as_str)). A null pointer reads
    /// as no bytes.
    ///
    /// # Safety
    ///
    /// `ptr` and `len` must describe readable memory for `'a` (what the
    /// other side of the boundary promises).
    pub unsafe fn as_bytes(&self) -> &'a [u8] {
        if self.len == 0 || self.ptr.is_null() {
            return &[];
        }
        // SAFETY: the caller promises ptr..ptr+len is readable for 'a.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The string, or `None` if it is not UTF-8.
    ///
    /// # Safety
    ///
    /// As [`as_bytes`](Self::as_bytes).
    pub unsafe fn as_str(&self) -> Option<&'a str> {
        if self.ptr.is_null() && self.len != 0 {
            return None;
        }
        // SAFETY: forwarded to the caller.
        std::str::from_utf8(unsafe { self.as_bytes() }).ok()
    }
}

/// An owned byte buffer that frees itself with the function of the
/// library that allocated it.
///
/// Built from [`bytes::Bytes`] without copying (see
/// [`buffer`](crate::buffer)); turned back into `Bytes` without copying
/// on the other side, where dropping the `Bytes` calls `release`.
#[repr(C)]
#[derive(Debug)]
pub struct FfiBytes {
    /// The first byte.
    pub ptr: *const u8,
    /// The number of bytes.
    pub len: usize,
    /// What `release` needs to free the buffer.
    pub owner: *mut c_void,
    /// Frees the buffer; called exactly once, by whoever holds it last.
    pub release: unsafe extern "C" fn(owner: *mut c_void),
}

impl Drop for FfiBytes {
    fn drop(&mut self) {
        // SAFETY: `release` and `owner` come from the buffer's creator, and
        // a buffer is dropped (released) exactly once.
        unsafe { (self.release)(self.owner) }
    }
}

// SAFETY: the buffer is immutable while shared and the release functions
// this crate installs are thread-safe (they drop a `Bytes`); foreign
// plugins must uphold the same, as the ABI documentation says.
unsafe impl Send for FfiBytes {}
// SAFETY: as above; no interior mutability is reachable through &FfiBytes.
unsafe impl Sync for FfiBytes {}

/// `Option<T>` with a C layout.
#[repr(C, u8)]
#[derive(Debug)]
pub enum FfiOption<T> {
    /// No value.
    None,
    /// A value.
    Some(T),
}

impl<T> From<Option<T>> for FfiOption<T> {
    fn from(value: Option<T>) -> Self {
        match value {
            Some(value) => FfiOption::Some(value),
            None => FfiOption::None,
        }
    }
}

impl<T> From<FfiOption<T>> for Option<T> {
    fn from(value: FfiOption<T>) -> Self {
        match value {
            FfiOption::Some(value) => Some(value),
            FfiOption::None => None,
        }
    }
}

/// `Result<T, FfiError>` with a C layout.
#[repr(C, u8)]
#[derive(Debug)]
pub enum FfiResult<T> {
    /// Success.
    Ok(T),
    /// Failure.
    Err(FfiError),
}

/// An error: a stable code, whether a retry may help, and a message.
#[repr(C)]
#[derive(Debug)]
pub struct FfiError {
    /// One of [`error_code`]'s values; unknown values read as `Other`.
    pub code: u32,
    /// Whether retrying may succeed.
    pub retryable: bool,
    /// How long the backend asked to wait before a retry, in milliseconds.
    pub retry_after_ms: FfiOption<u64>,
    /// A UTF-8 message, without the provider, operation or key (the host
    /// adds those).
    pub message: FfiBytes,
}

/// The stable error codes of [`FfiError::code`]. They never change
/// meaning; new kinds get new numbers, and a number this side does not
/// know reads as `Other`.
pub mod error_code {
    /// Anything else.
    pub const OTHER: u32 = 0;
    /// The object does not exist.
    pub const NOT_FOUND: u32 = 1;
    /// A create-only write found an object.
    pub const ALREADY_EXISTS: u32 = 2;
    /// An if-match condition failed.
    pub const PRECONDITION_FAILED: u32 = 3;
    /// An if-none-match condition matched.
    pub const NOT_MODIFIED: u32 = 4;
    /// The range starts at or past the end.
    pub const RANGE_NOT_SATISFIABLE: u32 = 5;
    /// Credentials do not allow it.
    pub const PERMISSION_DENIED: u32 = 6;
    /// Out of space or over a quota.
    pub const QUOTA_EXCEEDED: u32 = 7;
    /// A transient failure.
    pub const UNAVAILABLE: u32 = 8;
    /// Out of time.
    pub const TIMEOUT: u32 = 9;
    /// Data does not match its checksum.
    pub const CORRUPTION: u32 = 10;
    /// The key broke a key rule.
    pub const INVALID_KEY: u32 = 11;
    /// The configuration is wrong.
    pub const INVALID_CONFIG: u32 = 12;
    /// Another argument is wrong.
    pub const INVALID_INPUT: u32 = 13;
    /// The backend cannot do this.
    pub const UNSUPPORTED: u32 = 14;
    /// The plugin panicked; the message says where.
    pub const PLUGIN_PANICKED: u32 = 100;
}

/// How a put treats an existing object: [`WRITE_OVERWRITE`],
/// [`WRITE_CREATE_NEW`] or [`WRITE_UPDATE_IF_MATCH`].
pub type WriteModeCode = u8;
/// Replace whatever is there.
pub const WRITE_OVERWRITE: WriteModeCode = 0;
/// Only if nothing is there.
pub const WRITE_CREATE_NEW: WriteModeCode = 1;
/// Only if the current etag is [`FfiPutOptions::if_match`].
pub const WRITE_UPDATE_IF_MATCH: WriteModeCode = 2;

/// Options of a put. Borrowed for the call.
#[repr(C)]
#[derive(Debug)]
pub struct FfiPutOptions<'a> {
    /// The content type to store.
    pub content_type: FfiOption<FfiStr<'a>>,
    /// The cache control to store.
    pub cache_control: FfiOption<FfiStr<'a>>,
    /// User metadata, a JSON object of strings.
    pub user_metadata_json: FfiStr<'a>,
    /// A [`WriteModeCode`].
    pub mode: WriteModeCode,
    /// The etag for [`WRITE_UPDATE_IF_MATCH`].
    pub if_match: FfiOption<FfiStr<'a>>,
    /// A JSON object of options added after ABI 1.0 (`{}` today).
    pub extension_json: FfiStr<'a>,
}

/// A byte range: [`RANGE_BOUNDED`], [`RANGE_FROM`] or [`RANGE_SUFFIX`].
pub type RangeCode = u8;
/// Bytes `a..b`.
pub const RANGE_BOUNDED: RangeCode = 0;
/// Bytes from `a` to the end.
pub const RANGE_FROM: RangeCode = 1;
/// The last `a` bytes.
pub const RANGE_SUFFIX: RangeCode = 2;

/// A byte range of a get.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct FfiRange {
    /// A [`RangeCode`].
    pub kind: RangeCode,
    /// The start, or the suffix length.
    pub a: u64,
    /// The end (exclusive), for bounded ranges.
    pub b: u64,
}

/// Options of a get. Borrowed for the call.
#[repr(C)]
#[derive(Debug)]
pub struct FfiGetOptions<'a> {
    /// Read only these bytes.
    pub range: FfiOption<FfiRange>,
    /// Fail unless the etag is this.
    pub if_match: FfiOption<FfiStr<'a>>,
    /// Fail with not-modified if the etag is this.
    pub if_none_match: FfiOption<FfiStr<'a>>,
    /// A JSON object of options added after ABI 1.0.
    pub extension_json: FfiStr<'a>,
}

/// Options of a list. Borrowed for the call.
#[repr(C)]
#[derive(Debug)]
pub struct FfiListOptions<'a> {
    /// Fold keys past a `/` into common prefixes.
    pub delimiter: bool,
    /// Only names after this key.
    pub start_after: FfiOption<FfiStr<'a>>,
    /// A JSON object of options added after ABI 1.0.
    pub extension_json: FfiStr<'a>,
}

/// Options of a presign. Borrowed for the call.
#[repr(C)]
#[derive(Debug)]
pub struct FfiPresignOptions<'a> {
    /// The content type a PUT must carry.
    pub content_type: FfiOption<FfiStr<'a>>,
    /// A JSON object of options added after ABI 1.0.
    pub extension_json: FfiStr<'a>,
}

/// A point in time: seconds and nanoseconds since the Unix epoch.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct FfiTime {
    /// Whole seconds since 1970-01-01 UTC.
    pub secs: u64,
    /// Nanoseconds within the second.
    pub nanos: u32,
}

/// An object's metadata. Owned.
#[repr(C)]
#[derive(Debug)]
pub struct FfiObjectMeta {
    /// The key.
    pub key: FfiBytes,
    /// The whole object's size.
    pub size: u64,
    /// The content type.
    pub content_type: FfiOption<FfiBytes>,
    /// The cache control.
    pub cache_control: FfiOption<FfiBytes>,
    /// The etag.
    pub etag: FfiOption<FfiBytes>,
    /// The version.
    pub version: FfiOption<FfiBytes>,
    /// When it was last written.
    pub last_modified: FfiOption<FfiTime>,
    /// User metadata, a JSON object of strings.
    pub user_metadata_json: FfiBytes,
    /// The checksum as `algorithm:hex` (`crc32c:1a2b3c4d`), if known.
    pub checksum: FfiOption<FfiBytes>,
}

/// What a write stored. Owned.
#[repr(C)]
#[derive(Debug)]
pub struct FfiPutResult {
    /// Bytes stored.
    pub size: u64,
    /// The new etag.
    pub etag: FfiOption<FfiBytes>,
    /// The new version.
    pub version: FfiOption<FfiBytes>,
    /// The checksum as `algorithm:hex`.
    pub checksum: FfiOption<FfiBytes>,
}

/// A stream crossing the boundary, polled by the other side.
///
/// `poll_next` answers `Ready(Some(item))`, `Ready(None)` at the end,
/// `Pending` (the waker in the context will be woken) or `Panicked`.
/// `release` frees the stream, whether or not it was read to the end;
/// it is called exactly once. Whoever created the stream enters its own
/// runtime inside both.
#[repr(C)]
pub struct FfiStream<T> {
    /// The creator's state.
    pub state: *mut c_void,
    /// Polls for the next item.
    pub poll_next:
        unsafe extern "C" fn(state: *mut c_void, cx: *mut FfiContext<'_>) -> FfiPoll<FfiOption<T>>,
    /// Frees the stream.
    pub release: unsafe extern "C" fn(state: *mut c_void),
}

impl<T> Drop for FfiStream<T> {
    fn drop(&mut self) {
        // SAFETY: `release` and `state` come from the stream's creator, and
        // a stream is dropped (released) exactly once.
        unsafe { (self.release)(self.state) }
    }
}

impl<T> std::fmt::Debug for FfiStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FfiStream").finish_non_exhaustive()
    }
}

// SAFETY: streams are created from `Send` Rust streams (see
// `stream::export_stream`) and polled through `&mut`, one caller at a time.
unsafe impl<T> Send for FfiStream<T> {}

/// A stream of byte chunks, each owned.
pub type FfiByteStream = FfiStream<FfiResult<FfiBytes>>;

/// The body of a put. Owned by the callee.
#[repr(C, u8)]
#[derive(Debug)]
pub enum FfiBody {
    /// Bytes in memory.
    Bytes(FfiBytes),
    /// A stream of chunks and, if known, its total length.
    Stream {
        /// The chunks.
        stream: FfiByteStream,
        /// The total length, if known.
        size: FfiOption<u64>,
    },
}

/// The answer to a get. Owned.
#[repr(C)]
#[derive(Debug)]
pub struct FfiGetResult {
    /// The whole object's metadata.
    pub meta: FfiObjectMeta,
    /// The first byte `body` yields.
    pub range_start: u64,
    /// One past the last byte `body` yields.
    pub range_end: u64,
    /// The bytes.
    pub body: FfiByteStream,
}

/// One listing entry. Owned.
// A C layout cannot box the larger variant; entries are moved one at a time.
#[allow(clippy::large_enum_variant)]
#[repr(C, u8)]
#[derive(Debug)]
pub enum FfiListEntry {
    /// An object.
    Object(FfiObjectMeta),
    /// A common prefix, ending in `/`.
    Prefix(FfiBytes),
}

/// A presigned request. Owned.
#[repr(C)]
#[derive(Debug)]
pub struct FfiPresignedRequest {
    /// `0` GET, `1` PUT.
    pub method: u8,
    /// The URL.
    pub url: FfiBytes,
    /// The headers to send, a JSON array of `[name, value]` pairs.
    pub headers_json: FfiBytes,
    /// When the URL stops working.
    pub expires_at: FfiTime,
}

/// The bits of [`ProviderVTable::capabilities`]; bits this side does not
/// know are ignored.
pub mod capability_bits {
    /// Create-only writes.
    pub const CREATE_NEW: u64 = 1 << 0;
    /// Replace-if-match writes.
    pub const UPDATE_IF_MATCH: u64 = 1 << 1;
    /// if-match on get.
    pub const GET_IF_MATCH: u64 = 1 << 2;
    /// if-none-match on get.
    pub const GET_IF_NONE_MATCH: u64 = 1 << 3;
    /// User metadata.
    pub const USER_METADATA: u64 = 1 << 4;
    /// Cache control.
    pub const CACHE_CONTROL: u64 = 1 << 5;
    /// Listing with a delimiter.
    pub const LIST_DELIMITER: u64 = 1 << 6;
    /// Server-side copy.
    pub const COPY: u64 = 1 << 7;
    /// Server-side rename.
    pub const RENAME: u64 = 1 << 8;
    /// Presigned URLs.
    pub const PRESIGN: u64 = 1 << 9;
    /// Presigned PUT URLs.
    pub const PRESIGN_PUT: u64 = 1 << 10;
    /// Presigned PUT URLs live as long as asked.
    pub const PRESIGN_PUT_CHOSEN_EXPIRY: u64 = 1 << 11;
    /// Presigned PUT URLs bind the content type.
    pub const PRESIGN_PUT_CONTENT_TYPE: u64 = 1 << 12;
}

/// A future crossing the boundary (from the `async-ffi` crate): the
/// creator's runtime is entered on every poll.
pub type PluginFuture<T> = FfiFuture<FfiResult<T>>;

/// The operations of one provider instance, called by the host.
///
/// Every function takes the provider's `this` pointer; borrowed arguments
/// are valid for the call only (the plugin copies what its future needs).
/// Functions are never null. The table only grows at its end: the host
/// reads `size` first and treats operations past it as missing.
#[repr(C)]
#[derive(Debug)]
pub struct ProviderVTable {
    /// `size_of::<ProviderVTable>()` as the plugin was built.
    pub size: usize,
    /// Frees the provider. Called once, when the host drops it.
    pub release: unsafe extern "C" fn(this: *const c_void),
    /// [`capability_bits`].
    pub capabilities: unsafe extern "C" fn(this: *const c_void) -> u64,
    /// Storage::put.
    pub put: unsafe extern "C" fn(
        this: *const c_void,
        key: FfiStr<'_>,
        body: FfiBody,
        options: &FfiPutOptions<'_>,
    ) -> PluginFuture<FfiPutResult>,
    /// Storage::get.
    pub get: unsafe extern "C" fn(
        this: *const c_void,
        key: FfiStr<'_>,
        options: &FfiGetOptions<'_>,
    ) -> PluginFuture<FfiGetResult>,
    /// Storage::head.
    pub head:
        unsafe extern "C" fn(this: *const c_void, key: FfiStr<'_>) -> PluginFuture<FfiObjectMeta>,
    /// Storage::exists.
    pub exists: unsafe extern "C" fn(this: *const c_void, key: FfiStr<'_>) -> PluginFuture<bool>,
    /// Storage::delete; `true` if an object was removed.
    pub delete: unsafe extern "C" fn(this: *const c_void, key: FfiStr<'_>) -> PluginFuture<bool>,
    /// Storage::list.
    pub list: unsafe extern "C" fn(
        this: *const c_void,
        prefix: FfiStr<'_>,
        options: &FfiListOptions<'_>,
    ) -> FfiStream<FfiResult<FfiListEntry>>,
    /// Storage::copy.
    pub copy: unsafe extern "C" fn(
        this: *const c_void,
        from: FfiStr<'_>,
        to: FfiStr<'_>,
    ) -> PluginFuture<FfiPutResult>,
    /// Storage::rename; the `bool` is meaningless.
    pub rename: unsafe extern "C" fn(
        this: *const c_void,
        from: FfiStr<'_>,
        to: FfiStr<'_>,
    ) -> PluginFuture<bool>,
    /// Storage::presign; `method` 0 GET, 1 PUT.
    pub presign: unsafe extern "C" fn(
        this: *const c_void,
        method: u8,
        key: FfiStr<'_>,
        expires_in_ms: u64,
        options: &FfiPresignOptions<'_>,
    ) -> PluginFuture<FfiPresignedRequest>,
    /// Storage::health; the `bool` is meaningless.
    pub health: unsafe extern "C" fn(this: *const c_void) -> PluginFuture<bool>,
}

/// A provider instance: its state and its operations.
#[repr(C)]
#[derive(Debug)]
pub struct FfiProvider {
    /// The plugin's state, passed back to every operation.
    pub this: *const c_void,
    /// The operations.
    pub vtable: *const ProviderVTable,
}

// SAFETY: the state behind `this` is a `Send + Sync` provider
// (`export::ExportedProvider`), used only through `&`.
unsafe impl Send for FfiProvider {}
// SAFETY: as above.
unsafe impl Sync for FfiProvider {}

/// Log levels of [`HostServices::log`].
pub type LogLevel = u32;
/// Errors.
pub const LOG_ERROR: LogLevel = 1;
/// Warnings.
pub const LOG_WARN: LogLevel = 2;
/// Information.
pub const LOG_INFO: LogLevel = 3;
/// Debugging.
pub const LOG_DEBUG: LogLevel = 4;
/// Tracing.
pub const LOG_TRACE: LogLevel = 5;

/// What the host offers a plugin, passed to `create`. Lives as long as
/// the host process.
#[repr(C)]
#[derive(Debug)]
pub struct HostServices {
    /// `size_of::<HostServices>()` as the host was built.
    pub size: usize,
    /// The most verbose [`LogLevel`] the host records now (0: none); the
    /// plugin skips the rest.
    pub max_log_level: unsafe extern "C" fn() -> LogLevel,
    /// Records one log line in the host's `tracing`, tagged with the
    /// plugin's target (a module path).
    pub log: unsafe extern "C" fn(level: LogLevel, target: FfiStr<'_>, message: FfiStr<'_>),
}

/// Builds a provider from its type name, configured name and the JSON of
/// its table. `host` lives as long as the process.
pub type CreateFn = unsafe extern "C" fn(
    provider_type: FfiStr<'_>,
    provider_name: FfiStr<'_>,
    config_json: FfiStr<'_>,
    host: *const HostServices,
) -> PluginFuture<FfiProvider>;

/// What a plugin declares about itself. The first three fields never move:
/// the host checks them before reading anything else.
#[repr(C)]
#[derive(Debug)]
pub struct PluginDeclaration {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`ABI_VERSION`].
    pub abi_version: u32,
    /// `size_of::<PluginDeclaration>()` as the plugin was built.
    pub size: u32,
    /// The plugin's name (its crate name).
    pub plugin_name: FfiStr<'static>,
    /// The plugin's version.
    pub plugin_version: FfiStr<'static>,
    /// The version of `storage-plugin-api` it was built with.
    pub api_version: FfiStr<'static>,
    /// The provider types it offers, `provider_types_len` of them.
    pub provider_types: *const FfiStr<'static>,
    /// How many provider types.
    pub provider_types_len: usize,
    /// Whether it was built with `panic = "unwind"`. A plugin built with
    /// `panic = "abort"` would take the host down with any panic, so the
    /// host refuses it.
    pub panic_unwind: bool,
    /// Builds a provider. Never null in a working plugin; a null one is
    /// refused at load (it is an `Option` so that reading it is defined).
    pub create: Option<CreateFn>,
}

// SAFETY: a declaration is a static of immutable data.
unsafe impl Sync for PluginDeclaration {}
