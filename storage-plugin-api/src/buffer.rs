//! [`FfiBytes`] to and from [`Bytes`], without copying the bytes.
//!
//! Exporting boxes the `Bytes` handle (not its bytes) and hands out a
//! pointer into it; importing wraps the buffer in a `Bytes` whose drop
//! calls the exporter's release function. A buffer that comes back to the
//! library that exported it is unboxed into the original `Bytes`.

use std::ffi::c_void;
use std::mem::ManuallyDrop;

use bytes::Bytes;

use crate::abi::FfiBytes;

/// Lends `bytes` across the boundary without copying them.
pub fn export_bytes(bytes: Bytes) -> FfiBytes {
    let ptr = bytes.as_ptr();
    let len = bytes.len();
    FfiBytes {
        ptr,
        len,
        owner: Box::into_raw(Box::new(bytes)).cast::<c_void>(),
        release: release_boxed_bytes,
    }
}

/// Exports a string's bytes (its allocation moves; nothing is copied).
pub fn export_string(text: String) -> FfiBytes {
    export_bytes(Bytes::from(text))
}

unsafe extern "C" fn release_boxed_bytes(owner: *mut c_void) {
    // SAFETY: `owner` is the `Box<Bytes>` leaked by `export_bytes`, and
    // `FfiBytes::drop` releases it once. Dropping `Bytes` does not panic.
    drop(unsafe { Box::from_raw(owner.cast::<Bytes>()) });
}

/// Takes a buffer from the other side as `Bytes`, without copying: the
/// buffer is released when the last clone of the `Bytes` is dropped.
pub fn import_bytes(buffer: FfiBytes) -> Bytes {
    if std::ptr::fn_addr_eq(
        buffer.release,
        release_boxed_bytes as unsafe extern "C" fn(*mut c_void),
    ) {
        // Our own export coming back: unbox the original handle.
        let buffer = ManuallyDrop::new(buffer);
        // SAFETY: this release function is only ever paired with a
        // `Box<Bytes>` owner (see `export_bytes`), and ManuallyDrop stops
        // the buffer from releasing it a second time.
        return *unsafe { Box::from_raw(buffer.owner.cast::<Bytes>()) };
    }
    Bytes::from_owner(Imported(buffer))
}

/// Takes a buffer that must hold UTF-8, or says what it held.
pub fn import_string(buffer: FfiBytes) -> Result<String, String> {
    let bytes = import_bytes(buffer);
    match String::from_utf8(bytes.to_vec()) {
        Ok(text) => Ok(text),
        Err(_) => Err(format!(
            "{} bytes that are not UTF-8 where text was expected",
            bytes.len()
        )),
    }
}

/// A foreign buffer kept alive by a `Bytes`.
struct Imported(FfiBytes);

impl AsRef<[u8]> for Imported {
    fn as_ref(&self) -> &[u8] {
        if self.0.len == 0 {
            return &[];
        }
        // SAFETY: the exporter promises `ptr..ptr + len` stays readable
        // and unchanged until `release`, which only our drop calls.
        unsafe { std::slice::from_raw_parts(self.0.ptr, self.0.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C" fn release_vec(owner: *mut c_void) {
        // SAFETY: the test below leaks a Box<Vec<u8>> as the owner.
        drop(unsafe { Box::from_raw(owner.cast::<Vec<u8>>()) });
    }

    #[test]
    fn own_buffers_come_back_as_the_same_bytes() {
        let original = Bytes::from(vec![7u8; 1 << 20]);
        let address = original.as_ptr();
        let back = import_bytes(export_bytes(original.clone()));
        assert_eq!(back.as_ptr(), address, "the chunk was copied");
        assert_eq!(back, original);
    }

    #[test]
    fn foreign_buffers_are_wrapped_in_place_and_released_once() {
        let data = Box::new(vec![1u8, 2, 3]);
        let ptr = data.as_ptr();
        let buffer = FfiBytes {
            ptr,
            len: 3,
            owner: Box::into_raw(data).cast(),
            release: release_vec,
        };
        let bytes = import_bytes(buffer);
        assert_eq!(bytes.as_ptr(), ptr, "the chunk was copied");
        let slice = bytes.slice(1..);
        drop(bytes);
        assert_eq!(&slice[..], &[2, 3]);
    }

    #[test]
    fn text_must_be_utf8() {
        assert_eq!(
            import_string(export_string("ké".into())).as_deref(),
            Ok("ké")
        );
        let err = import_string(export_bytes(Bytes::from_static(&[0xff, 0xfe]))).unwrap_err();
        assert!(err.contains("not UTF-8"), "{err}");
    }
}
