//! The one place where file-system errors become contract errors.

use std::io;

use storage_core::{Error, ErrorKind};

/// Maps an I/O error to the contract's kinds. The source is kept; the
/// message never contains a path outside the key (the root is
/// configuration, not data for an error message).
pub(crate) fn from_io(err: io::Error) -> Error {
    use io::ErrorKind as Io;
    let (kind, retryable) = match err.kind() {
        Io::NotFound => (ErrorKind::NotFound, false),
        Io::AlreadyExists => (ErrorKind::AlreadyExists, false),
        Io::PermissionDenied | Io::ReadOnlyFilesystem => (ErrorKind::PermissionDenied, false),
        Io::StorageFull | Io::QuotaExceeded | Io::FileTooLarge => (ErrorKind::QuotaExceeded, false),
        Io::TimedOut => (ErrorKind::Timeout, true),
        Io::Interrupted | Io::WouldBlock | Io::ResourceBusy => (ErrorKind::Unavailable, true),
        Io::InvalidFilename => (ErrorKind::InvalidKey, false),
        _ => (ErrorKind::Other, false),
    };
    let message = match kind {
        ErrorKind::NotFound => "no object at this key".to_owned(),
        _ => format!("file system error: {err}"),
    };
    Error::new(kind, message)
        .with_retryable(retryable)
        .with_source(err)
}

/// An error for a blocking task that panicked or was cancelled.
pub(crate) fn from_join(err: tokio::task::JoinError) -> Error {
    Error::new(ErrorKind::Other, "a file-system task did not complete").with_source(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_io_kind_maps_to_the_contract_kind() {
        let cases = [
            (io::ErrorKind::NotFound, ErrorKind::NotFound, false),
            (
                io::ErrorKind::PermissionDenied,
                ErrorKind::PermissionDenied,
                false,
            ),
            (io::ErrorKind::StorageFull, ErrorKind::QuotaExceeded, false),
            (io::ErrorKind::Interrupted, ErrorKind::Unavailable, true),
            (io::ErrorKind::TimedOut, ErrorKind::Timeout, true),
            (io::ErrorKind::InvalidData, ErrorKind::Other, false),
        ];
        for (io_kind, kind, retryable) in cases {
            let err = from_io(io::Error::from(io_kind));
            assert_eq!(err.kind(), kind, "{io_kind:?}");
            assert_eq!(err.is_retryable(), retryable, "{io_kind:?}");
        }
    }
}
