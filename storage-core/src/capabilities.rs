//! What a backend can do, declared up front.

/// The operations and options a backend supports.
///
/// Anything declared `false` fails with
/// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) and changes
/// nothing; the conformance kit checks both halves of that promise.
/// Everything not listed here (put, get, head, delete, list by prefix,
/// ranges) every backend supports.
///
/// Start from [`Capabilities::default`] (nothing optional) or
/// [`Capabilities::all`] and set fields:
///
/// ```
/// let mut caps = storage_core::Capabilities::all();
/// caps.presign = false;
/// assert!(caps.create_new && !caps.presign);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Capabilities {
    /// [`WriteMode::CreateNew`](crate::WriteMode::CreateNew), race-free.
    pub create_new: bool,
    /// [`WriteMode::UpdateIfMatch`](crate::WriteMode::UpdateIfMatch), atomic.
    pub update_if_match: bool,
    /// `if_match` on get.
    pub get_if_match: bool,
    /// `if_none_match` on get.
    pub get_if_none_match: bool,
    /// User metadata is stored and returned.
    pub user_metadata: bool,
    /// Cache control is stored and returned.
    pub cache_control: bool,
    /// Listing with a delimiter.
    pub list_delimiter: bool,
    /// Server-side copy.
    pub copy: bool,
    /// Server-side rename (move).
    pub rename: bool,
    /// Presigned GET URLs (and PUT URLs, unless `presign_put` is false).
    pub presign: bool,
    /// Presigned PUT URLs: uploads that never pass through this process.
    /// False where something must see every upload's bytes (the validation
    /// layer with size, type or scanner checks); meaningless without
    /// `presign`.
    pub presign_put: bool,
    /// Presigned PUT URLs live as long as asked. False where the server
    /// fixes their lifetime (Supabase Storage: 60 s unless configured);
    /// the [`PresignedRequest`](crate::PresignedRequest)'s `expires_at`
    /// then states the real one, which may be longer than asked.
    pub presign_put_chosen_expiry: bool,
    /// A presigned PUT binds its content type: an upload with another one
    /// is refused. False where the server's signature covers no headers
    /// (Supabase Storage); the request still lists the content type to
    /// send.
    pub presign_put_content_type: bool,
}

impl Capabilities {
    /// Every capability.
    pub fn all() -> Self {
        Self {
            create_new: true,
            update_if_match: true,
            get_if_match: true,
            get_if_none_match: true,
            user_metadata: true,
            cache_control: true,
            list_delimiter: true,
            copy: true,
            rename: true,
            presign: true,
            presign_put: true,
            presign_put_chosen_expiry: true,
            presign_put_content_type: true,
        }
    }
}
