//! The contract's types to and from their [`abi`](crate::abi) forms.
//!
//! Both sides use these functions (each with its own compiled copy), so a
//! value means the same thing on both. Whatever comes from the other side
//! is checked: text must be UTF-8, keys must pass [`Key`]'s rules, JSON
//! must parse; a value that fails becomes an error, never a panic.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use storage_core::{
    ByteRange, Capabilities, Checksum, Error, ErrorKind, GetOptions, Key, ListEntry, ListOptions,
    ObjectMeta, PresignMethod, PresignOptions, PresignedRequest, PutOptions, PutResult,
    UserMetadata, WriteMode,
};

use crate::abi::{
    FfiBytes, FfiError, FfiGetOptions, FfiListEntry, FfiListOptions, FfiObjectMeta, FfiOption,
    FfiPresignOptions, FfiPresignedRequest, FfiPutOptions, FfiPutResult, FfiRange, FfiResult,
    FfiStr, FfiTime, RANGE_BOUNDED, RANGE_FROM, RANGE_SUFFIX, WRITE_CREATE_NEW, WRITE_OVERWRITE,
    WRITE_UPDATE_IF_MATCH, capability_bits as bits, error_code as code,
};
use crate::buffer::{export_string, import_string};

/// What crossed the boundary was malformed: an `Other` error saying what.
pub fn malformed(what: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Other,
        format!("the plugin boundary carried a malformed value: {what}"),
    )
}

// ---------------------------------------------------------------- errors

fn kind_to_code(kind: ErrorKind) -> u32 {
    match kind {
        ErrorKind::NotFound => code::NOT_FOUND,
        ErrorKind::AlreadyExists => code::ALREADY_EXISTS,
        ErrorKind::PreconditionFailed => code::PRECONDITION_FAILED,
        ErrorKind::NotModified => code::NOT_MODIFIED,
        ErrorKind::RangeNotSatisfiable => code::RANGE_NOT_SATISFIABLE,
        ErrorKind::PermissionDenied => code::PERMISSION_DENIED,
        ErrorKind::QuotaExceeded => code::QUOTA_EXCEEDED,
        ErrorKind::Unavailable => code::UNAVAILABLE,
        ErrorKind::Timeout => code::TIMEOUT,
        ErrorKind::Corruption => code::CORRUPTION,
        ErrorKind::InvalidKey => code::INVALID_KEY,
        ErrorKind::InvalidConfig => code::INVALID_CONFIG,
        ErrorKind::InvalidInput => code::INVALID_INPUT,
        ErrorKind::Unsupported => code::UNSUPPORTED,
        _ => code::OTHER,
    }
}

fn code_to_kind(value: u32) -> ErrorKind {
    match value {
        code::NOT_FOUND => ErrorKind::NotFound,
        code::ALREADY_EXISTS => ErrorKind::AlreadyExists,
        code::PRECONDITION_FAILED => ErrorKind::PreconditionFailed,
        code::NOT_MODIFIED => ErrorKind::NotModified,
        code::RANGE_NOT_SATISFIABLE => ErrorKind::RangeNotSatisfiable,
        code::PERMISSION_DENIED => ErrorKind::PermissionDenied,
        code::QUOTA_EXCEEDED => ErrorKind::QuotaExceeded,
        code::UNAVAILABLE => ErrorKind::Unavailable,
        code::TIMEOUT => ErrorKind::Timeout,
        code::CORRUPTION => ErrorKind::Corruption,
        code::INVALID_KEY => ErrorKind::InvalidKey,
        code::INVALID_CONFIG => ErrorKind::InvalidConfig,
        code::INVALID_INPUT => ErrorKind::InvalidInput,
        code::UNSUPPORTED => ErrorKind::Unsupported,
        _ => ErrorKind::Other,
    }
}

/// An error for the other side: its kind, retry advice and message (the
/// receiver adds the provider, operation and key it knows).
pub fn export_error(err: &Error) -> FfiError {
    FfiError {
        code: kind_to_code(err.kind()),
        retryable: err.is_retryable(),
        retry_after_ms: err
            .retry_after()
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .into(),
        message: export_string(err.message().to_owned()),
    }
}

/// An error from the other side. A panic in the plugin reads as `Other`
/// with the panic's message.
pub fn import_error(err: FfiError) -> Error {
    let panicked = err.code == code::PLUGIN_PANICKED;
    let message = import_string(err.message).unwrap_or_else(|why| why);
    let message = if panicked {
        format!("the plugin {message}")
    } else {
        message
    };
    let mut imported = Error::new(code_to_kind(err.code), message).with_retryable(err.retryable);
    if let FfiOption::Some(ms) = err.retry_after_ms {
        imported = imported.with_retry_after(Duration::from_millis(ms));
    }
    imported
}

/// A result for the other side.
pub fn export_result<T, U>(
    result: storage_core::Result<T>,
    export: impl FnOnce(T) -> U,
) -> FfiResult<U> {
    match result {
        Ok(value) => FfiResult::Ok(export(value)),
        Err(err) => FfiResult::Err(export_error(&err)),
    }
}

/// A result from the other side.
pub fn import_result<T, U>(
    result: FfiResult<T>,
    import: impl FnOnce(T) -> storage_core::Result<U>,
) -> storage_core::Result<U> {
    match result {
        FfiResult::Ok(value) => import(value),
        FfiResult::Err(err) => Err(import_error(err)),
    }
}

// ---------------------------------------------------------------- scalars

/// Borrows `text` as an [`FfiStr`].
pub fn str_of(text: &str) -> FfiStr<'_> {
    FfiStr::new(text)
}

/// Reads a borrowed string from the other side.
///
/// # Safety
///
/// `text` must be valid for the current call, as the ABI requires.
pub unsafe fn read_str<'a>(text: &FfiStr<'a>, what: &str) -> storage_core::Result<&'a str> {
    // SAFETY: forwarded to the caller.
    unsafe { text.as_str() }.ok_or_else(|| malformed(format!("{what} is not UTF-8")))
}

/// Reads a borrowed key from the other side and checks it.
///
/// # Safety
///
/// As [`read_str`].
pub unsafe fn read_key(text: &FfiStr<'_>) -> storage_core::Result<Key> {
    // SAFETY: forwarded to the caller.
    let text = unsafe { read_str(text, "a key") }?;
    Ok(Key::new(text)?)
}

/// Reads an optional borrowed string.
///
/// # Safety
///
/// As [`read_str`].
pub unsafe fn read_opt_str(
    text: &FfiOption<FfiStr<'_>>,
    what: &str,
) -> storage_core::Result<Option<String>> {
    match text {
        // SAFETY: forwarded to the caller.
        FfiOption::Some(text) => unsafe { read_str(text, what) }.map(|s| Some(s.to_owned())),
        FfiOption::None => Ok(None),
    }
}

fn opt_string(value: Option<String>) -> FfiOption<FfiBytes> {
    value.map(export_string).into()
}

fn import_opt_string(
    value: FfiOption<FfiBytes>,
    what: &str,
) -> storage_core::Result<Option<String>> {
    match value {
        FfiOption::Some(bytes) => import_string(bytes)
            .map(Some)
            .map_err(|why| malformed(format!("{what}: {why}"))),
        FfiOption::None => Ok(None),
    }
}

fn export_time(time: SystemTime) -> FfiTime {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    FfiTime {
        secs: since.as_secs(),
        nanos: since.subsec_nanos(),
    }
}

fn import_time(time: FfiTime) -> storage_core::Result<SystemTime> {
    if time.nanos >= 1_000_000_000 {
        return Err(malformed("a time with more than a second of nanoseconds"));
    }
    UNIX_EPOCH
        .checked_add(Duration::new(time.secs, time.nanos))
        .ok_or_else(|| malformed("a time out of range"))
}

fn metadata_json(metadata: &UserMetadata) -> String {
    serde_json::to_string(metadata).unwrap_or_else(|_| "{}".to_owned())
}

fn parse_metadata(json: &str) -> storage_core::Result<UserMetadata> {
    if json.is_empty() {
        return Ok(UserMetadata::new());
    }
    serde_json::from_str::<BTreeMap<String, String>>(json).map_err(|err| {
        malformed(format!(
            "user metadata is not a JSON object of strings: {err}"
        ))
    })
}

fn parse_checksum(text: &str) -> Option<Checksum> {
    let (algorithm, hex) = text.split_once(':')?;
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()?;
    match algorithm {
        "crc32c" => Some(Checksum::Crc32c(u32::from_be_bytes(bytes.try_into().ok()?))),
        "md5" => Some(Checksum::Md5(bytes.try_into().ok()?)),
        "sha256" => Some(Checksum::Sha256(bytes.try_into().ok()?)),
        _ => None,
    }
}

// ---------------------------------------------------------------- metadata

/// Metadata for the other side.
pub fn export_meta(meta: ObjectMeta) -> FfiObjectMeta {
    FfiObjectMeta {
        user_metadata_json: export_string(metadata_json(&meta.user_metadata)),
        key: export_string(meta.key.as_str().to_owned()),
        size: meta.size,
        content_type: opt_string(meta.content_type),
        cache_control: opt_string(meta.cache_control),
        etag: opt_string(meta.etag),
        version: opt_string(meta.version),
        last_modified: meta.last_modified.map(export_time).into(),
        checksum: opt_string(meta.checksum.map(|c| c.to_string())),
    }
}

/// Metadata from the other side, checked.
pub fn import_meta(meta: FfiObjectMeta) -> storage_core::Result<ObjectMeta> {
    let key = import_string(meta.key).map_err(|why| malformed(format!("a key: {why}")))?;
    let mut imported = ObjectMeta::new(Key::new(key)?, meta.size);
    imported.content_type = import_opt_string(meta.content_type, "a content type")?;
    imported.cache_control = import_opt_string(meta.cache_control, "a cache control")?;
    imported.etag = import_opt_string(meta.etag, "an etag")?;
    imported.version = import_opt_string(meta.version, "a version")?;
    imported.last_modified = match meta.last_modified {
        FfiOption::Some(time) => Some(import_time(time)?),
        FfiOption::None => None,
    };
    let json = import_string(meta.user_metadata_json)
        .map_err(|why| malformed(format!("user metadata: {why}")))?;
    imported.user_metadata = parse_metadata(&json)?;
    imported.checksum = import_opt_string(meta.checksum, "a checksum")?
        .as_deref()
        .and_then(parse_checksum);
    Ok(imported)
}

/// A put result for the other side.
pub fn export_put_result(result: PutResult) -> FfiPutResult {
    FfiPutResult {
        size: result.size,
        etag: opt_string(result.etag),
        version: opt_string(result.version),
        checksum: opt_string(result.checksum.map(|c| c.to_string())),
    }
}

/// A put result from the other side.
pub fn import_put_result(result: FfiPutResult) -> storage_core::Result<PutResult> {
    let mut imported = PutResult::new(result.size, import_opt_string(result.etag, "an etag")?);
    imported.version = import_opt_string(result.version, "a version")?;
    imported.checksum = import_opt_string(result.checksum, "a checksum")?
        .as_deref()
        .and_then(parse_checksum);
    Ok(imported)
}

/// A listing entry for the other side.
pub fn export_list_entry(entry: ListEntry) -> FfiListEntry {
    match entry {
        ListEntry::Object(meta) => FfiListEntry::Object(export_meta(meta)),
        ListEntry::Prefix(prefix) => FfiListEntry::Prefix(export_string(prefix)),
    }
}

/// A listing entry from the other side.
pub fn import_list_entry(entry: FfiListEntry) -> storage_core::Result<ListEntry> {
    match entry {
        FfiListEntry::Object(meta) => import_meta(meta).map(ListEntry::Object),
        FfiListEntry::Prefix(prefix) => import_string(prefix)
            .map(ListEntry::Prefix)
            .map_err(|why| malformed(format!("a common prefix: {why}"))),
    }
}

// ---------------------------------------------------------------- options

/// The strings a borrowed options structure points into.
#[derive(Debug)]
pub struct OptionStrings {
    metadata_json: String,
}

/// Put options as owned strings, to borrow for a call with
/// [`put_options`].
pub fn put_option_strings(options: &PutOptions) -> OptionStrings {
    OptionStrings {
        metadata_json: metadata_json(&options.user_metadata),
    }
}

/// Borrows put options for a call.
pub fn put_options<'a>(options: &'a PutOptions, strings: &'a OptionStrings) -> FfiPutOptions<'a> {
    let (mode, if_match) = match &options.mode {
        WriteMode::CreateNew => (WRITE_CREATE_NEW, None),
        WriteMode::UpdateIfMatch(etag) => (WRITE_UPDATE_IF_MATCH, Some(str_of(etag))),
        _ => (WRITE_OVERWRITE, None),
    };
    FfiPutOptions {
        content_type: options.content_type.as_deref().map(str_of).into(),
        cache_control: options.cache_control.as_deref().map(str_of).into(),
        user_metadata_json: str_of(&strings.metadata_json),
        mode,
        if_match: if_match.into(),
        extension_json: str_of("{}"),
    }
}

/// Reads put options from the other side.
///
/// # Safety
///
/// `options` and what it borrows must be valid for the current call.
pub unsafe fn read_put_options(options: &FfiPutOptions<'_>) -> storage_core::Result<PutOptions> {
    let mut read = PutOptions::default();
    // SAFETY: the caller promises the borrows are valid.
    read.content_type = unsafe { read_opt_str(&options.content_type, "a content type") }?;
    // SAFETY: as above.
    read.cache_control = unsafe { read_opt_str(&options.cache_control, "a cache control") }?;
    // SAFETY: as above.
    let metadata = unsafe { read_str(&options.user_metadata_json, "user metadata") }?;
    read.user_metadata = parse_metadata(metadata)?;
    read.mode = match options.mode {
        WRITE_OVERWRITE => WriteMode::Overwrite,
        WRITE_CREATE_NEW => WriteMode::CreateNew,
        WRITE_UPDATE_IF_MATCH => {
            // SAFETY: as above.
            let etag = unsafe { read_opt_str(&options.if_match, "an etag") }?
                .ok_or_else(|| malformed("update-if-match without an etag"))?;
            WriteMode::UpdateIfMatch(etag)
        }
        other => return Err(malformed(format!("unknown write mode {other}"))),
    };
    Ok(read)
}

/// Borrows get options for a call.
pub fn get_options(options: &GetOptions) -> FfiGetOptions<'_> {
    FfiGetOptions {
        range: options
            .range
            .map(|range| match range {
                ByteRange::Bounded { start, end } => FfiRange {
                    kind: RANGE_BOUNDED,
                    a: start,
                    b: end,
                },
                ByteRange::From(start) => FfiRange {
                    kind: RANGE_FROM,
                    a: start,
                    b: 0,
                },
                ByteRange::Suffix(n) => FfiRange {
                    kind: RANGE_SUFFIX,
                    a: n,
                    b: 0,
                },
            })
            .into(),
        if_match: options.if_match.as_deref().map(str_of).into(),
        if_none_match: options.if_none_match.as_deref().map(str_of).into(),
        extension_json: str_of("{}"),
    }
}

/// Reads get options from the other side.
///
/// # Safety
///
/// As [`read_put_options`].
pub unsafe fn read_get_options(options: &FfiGetOptions<'_>) -> storage_core::Result<GetOptions> {
    let mut read = GetOptions::default();
    read.range = match options.range {
        FfiOption::Some(FfiRange {
            kind: RANGE_BOUNDED,
            a,
            b,
        }) => {
            if b <= a {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("empty range {a}..{b}"),
                ));
            }
            Some(ByteRange::bounded(a..b))
        }
        FfiOption::Some(FfiRange {
            kind: RANGE_FROM,
            a,
            ..
        }) => Some(ByteRange::From(a)),
        FfiOption::Some(FfiRange {
            kind: RANGE_SUFFIX,
            a,
            ..
        }) => Some(ByteRange::Suffix(a)),
        FfiOption::Some(FfiRange { kind, .. }) => {
            return Err(malformed(format!("unknown range kind {kind}")));
        }
        FfiOption::None => None,
    };
    // SAFETY: the caller promises the borrows are valid.
    read.if_match = unsafe { read_opt_str(&options.if_match, "an etag") }?;
    // SAFETY: as above.
    read.if_none_match = unsafe { read_opt_str(&options.if_none_match, "an etag") }?;
    Ok(read)
}

/// Borrows list options for a call.
pub fn list_options(options: &ListOptions) -> FfiListOptions<'_> {
    FfiListOptions {
        delimiter: options.delimiter,
        start_after: options
            .start_after
            .as_ref()
            .map(|k| str_of(k.as_str()))
            .into(),
        extension_json: str_of("{}"),
    }
}

/// Reads list options from the other side.
///
/// # Safety
///
/// As [`read_put_options`].
pub unsafe fn read_list_options(options: &FfiListOptions<'_>) -> storage_core::Result<ListOptions> {
    let mut read = ListOptions::default();
    read.delimiter = options.delimiter;
    read.start_after = match &options.start_after {
        // SAFETY: the caller promises the borrows are valid.
        FfiOption::Some(key) => Some(unsafe { read_key(key) }?),
        FfiOption::None => None,
    };
    Ok(read)
}

/// Borrows presign options for a call.
pub fn presign_options(options: &PresignOptions) -> FfiPresignOptions<'_> {
    FfiPresignOptions {
        content_type: options.content_type.as_deref().map(str_of).into(),
        extension_json: str_of("{}"),
    }
}

/// Reads presign options from the other side.
///
/// # Safety
///
/// As [`read_put_options`].
pub unsafe fn read_presign_options(
    options: &FfiPresignOptions<'_>,
) -> storage_core::Result<PresignOptions> {
    let mut read = PresignOptions::default();
    // SAFETY: the caller promises the borrows are valid.
    read.content_type = unsafe { read_opt_str(&options.content_type, "a content type") }?;
    Ok(read)
}

/// A presign method as its ABI code.
pub fn method_code(method: PresignMethod) -> u8 {
    match method {
        PresignMethod::Put => 1,
        _ => 0,
    }
}

/// A presign method from its ABI code.
pub fn method_of(code: u8) -> storage_core::Result<PresignMethod> {
    match code {
        0 => Ok(PresignMethod::Get),
        1 => Ok(PresignMethod::Put),
        other => Err(malformed(format!("unknown presign method {other}"))),
    }
}

/// A presigned request for the other side.
pub fn export_presigned(request: PresignedRequest) -> FfiPresignedRequest {
    FfiPresignedRequest {
        method: method_code(request.method),
        url: export_string(request.url.to_string()),
        headers_json: export_string(
            serde_json::to_string(&request.headers).unwrap_or_else(|_| "[]".to_owned()),
        ),
        expires_at: export_time(request.expires_at),
    }
}

/// A presigned request from the other side.
pub fn import_presigned(request: FfiPresignedRequest) -> storage_core::Result<PresignedRequest> {
    let method = method_of(request.method)?;
    let url = import_string(request.url).map_err(|why| malformed(format!("a URL: {why}")))?;
    let url = url::Url::parse(&url).map_err(|err| malformed(format!("a URL: {err}")))?;
    let headers =
        import_string(request.headers_json).map_err(|why| malformed(format!("headers: {why}")))?;
    let headers: Vec<(String, String)> =
        serde_json::from_str(&headers).map_err(|err| malformed(format!("headers: {err}")))?;
    let mut imported = PresignedRequest::new(method, url, import_time(request.expires_at)?);
    for (name, value) in headers {
        imported = imported.with_header(name, value);
    }
    Ok(imported)
}

// ---------------------------------------------------------------- capabilities

/// A capability's field.
type CapabilityField = fn(&mut Capabilities) -> &mut bool;

const CAPABILITY_BITS: [(u64, CapabilityField); 13] = [
    (bits::CREATE_NEW, |c| &mut c.create_new),
    (bits::UPDATE_IF_MATCH, |c| &mut c.update_if_match),
    (bits::GET_IF_MATCH, |c| &mut c.get_if_match),
    (bits::GET_IF_NONE_MATCH, |c| &mut c.get_if_none_match),
    (bits::USER_METADATA, |c| &mut c.user_metadata),
    (bits::CACHE_CONTROL, |c| &mut c.cache_control),
    (bits::LIST_DELIMITER, |c| &mut c.list_delimiter),
    (bits::COPY, |c| &mut c.copy),
    (bits::RENAME, |c| &mut c.rename),
    (bits::PRESIGN, |c| &mut c.presign),
    (bits::PRESIGN_PUT, |c| &mut c.presign_put),
    (bits::PRESIGN_PUT_CHOSEN_EXPIRY, |c| {
        &mut c.presign_put_chosen_expiry
    }),
    (bits::PRESIGN_PUT_CONTENT_TYPE, |c| {
        &mut c.presign_put_content_type
    }),
];

/// Capabilities as bits.
pub fn export_capabilities(caps: Capabilities) -> u64 {
    let mut caps = caps;
    CAPABILITY_BITS
        .iter()
        .filter(|(_, field)| *field(&mut caps))
        .fold(0, |acc, (bit, _)| acc | bit)
}

/// Capabilities from bits; unknown bits are ignored.
pub fn import_capabilities(value: u64) -> Capabilities {
    let mut caps = Capabilities::default();
    for (bit, field) in CAPABILITY_BITS {
        *field(&mut caps) = value & bit != 0;
    }
    caps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_survive_the_bits() {
        let mut caps = Capabilities::all();
        caps.presign = false;
        caps.rename = false;
        assert_eq!(import_capabilities(export_capabilities(caps)), caps);
        assert_eq!(
            import_capabilities(export_capabilities(Capabilities::all())),
            Capabilities::all()
        );
        assert_eq!(import_capabilities(1 << 63), Capabilities::default());
    }

    #[test]
    fn every_error_kind_survives_and_unknown_codes_read_as_other() {
        for kind in [
            ErrorKind::NotFound,
            ErrorKind::AlreadyExists,
            ErrorKind::PreconditionFailed,
            ErrorKind::NotModified,
            ErrorKind::RangeNotSatisfiable,
            ErrorKind::PermissionDenied,
            ErrorKind::QuotaExceeded,
            ErrorKind::Unavailable,
            ErrorKind::Timeout,
            ErrorKind::Corruption,
            ErrorKind::InvalidKey,
            ErrorKind::InvalidConfig,
            ErrorKind::InvalidInput,
            ErrorKind::Unsupported,
            ErrorKind::Other,
        ] {
            let err = Error::new(kind, "why").with_retry_after(Duration::from_millis(1500));
            let back = import_error(export_error(&err));
            assert_eq!(back.kind(), kind);
            assert_eq!(back.message(), "why");
            assert_eq!(back.retry_after(), Some(Duration::from_millis(1500)));
            assert_eq!(back.is_retryable(), err.is_retryable());
        }
        let unknown = FfiError {
            code: 77,
            retryable: false,
            retry_after_ms: FfiOption::None,
            message: export_string("new".into()),
        };
        assert_eq!(import_error(unknown).kind(), ErrorKind::Other);
    }

    #[test]
    fn metadata_survives_including_checksums() {
        let mut meta = ObjectMeta::new(Key::new("a/b c.txt").unwrap(), 42);
        meta.content_type = Some("text/plain".into());
        meta.etag = Some("\"e\"".into());
        meta.last_modified = Some(UNIX_EPOCH + Duration::new(1_700_000_000, 123));
        meta.user_metadata.insert("owner".into(), "zoë".into());
        for checksum in [
            Checksum::crc32c(b"abc"),
            Checksum::Md5([9; 16]),
            Checksum::Sha256([1; 32]),
        ] {
            meta.checksum = Some(checksum);
            assert_eq!(import_meta(export_meta(meta.clone())).unwrap(), meta);
        }
    }

    #[test]
    fn a_hostile_key_from_the_other_side_is_refused() {
        let mut meta = export_meta(ObjectMeta::new(Key::new("ok").unwrap(), 1));
        meta.key = export_string("../etc/passwd".into());
        assert_eq!(import_meta(meta).unwrap_err().kind(), ErrorKind::InvalidKey);
    }

    #[test]
    fn options_survive() {
        let put = PutOptions::default()
            .with_content_type("image/png")
            .with_metadata("k", "v")
            .if_match("\"x\"");
        let strings = put_option_strings(&put);
        // SAFETY: the options borrow locals that outlive the call.
        let read = unsafe { read_put_options(&put_options(&put, &strings)) }.unwrap();
        assert_eq!(read, put);

        for range in [
            ByteRange::bounded(1..5),
            ByteRange::From(3),
            ByteRange::Suffix(2),
        ] {
            let get = GetOptions::default()
                .with_range(range)
                .with_if_none_match("e");
            assert_eq!(
                // SAFETY: as above.
                unsafe { read_get_options(&get_options(&get)) }.unwrap(),
                get
            );
        }
        let list = ListOptions::default()
            .with_delimiter()
            .with_start_after(Key::new("m").unwrap());
        assert_eq!(
            // SAFETY: as above.
            unsafe { read_list_options(&list_options(&list)) }.unwrap(),
            list
        );
    }
}
