//! Unnamed temporary files: a put's content before it has a name.
//!
//! A put writes its content to a temporary file, flushes it, and then
//! publishes it under the object's name. With a named temporary file
//! (`1234.~tmp`, renamed over the object), the folder is written twice:
//! once when the temporary name appears, flushed with the file, and again
//! for the rename. Linux can create a file with no name at all
//! (`open(2)` with `O_TMPFILE`, Linux 3.11) and give it one later with
//! `linkat(2)`:
//!
//! - the folder is written once, when the object's name appears. On ext4
//!   without a journal an atomic put then costs the disk what a plain
//!   in-place write does (6 device writes against 7 per 4 KiB put with
//!   both flushes, counted in `/proc/diskstats`); with a journal, an
//!   atomic put is two journal commits either way;
//! - a crash or a failed write while the content is being written leaves
//!   nothing behind: a file without a name is freed when its last handle
//!   closes, and never needs sweeping.
//!
//! `linkat` cannot replace a name, so an object that already exists is
//! still replaced by linking the file under a temporary name and renaming
//! it over the object. Linking an open file by its handle alone
//! (`AT_EMPTY_PATH`) needs a capability most processes lack, so the file
//! is linked through `/proc/self/fd`, as `open(2)` documents. Where any of
//! this is missing (another system, a file system without `O_TMPFILE`, no
//! `/proc`), the store finds out once when it opens and uses named
//! temporary files throughout.

use std::ffi::OsStr;
use std::fs::File;
use std::io;

use cap_std::fs::Dir;

/// Creates a file without a name on `folder`'s file system, open for
/// writing: `Ok(None)` if the system or the file system cannot.
pub(crate) fn create(folder: &Dir) -> io::Result<Option<File>> {
    imp::create(folder)
}

/// Gives `file` (from [`create`]) the name `name` in `folder`. Fails with
/// `AlreadyExists` if the name is taken, and with `NotFound` if `folder`
/// has been removed.
pub(crate) fn link(file: &File, folder: &Dir, name: &OsStr) -> io::Result<()> {
    imp::link(file, folder, name)
}

#[cfg(target_os = "linux")]
mod imp {
    use super::*;
    use rustix::fs::{AtFlags, CWD, Mode, OFlags};
    use rustix::io::Errno;
    use std::os::fd::AsRawFd;

    pub(super) fn create(folder: &Dir) -> io::Result<Option<File>> {
        let flags = OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC;
        // The mode named files get from `create_new` (before the umask).
        match rustix::fs::openat(folder, ".", flags, Mode::from_raw_mode(0o666)) {
            Ok(fd) => Ok(Some(File::from(fd))),
            // EOPNOTSUPP: a file system without it. EISDIR: a kernel that
            // predates it and saw only the O_DIRECTORY in O_TMPFILE.
            // EINVAL: either, on some kernels.
            Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    pub(super) fn link(file: &File, folder: &Dir, name: &OsStr) -> io::Result<()> {
        let source = format!("/proc/self/fd/{}", file.as_raw_fd());
        rustix::fs::linkat(CWD, source.as_str(), folder, name, AtFlags::SYMLINK_FOLLOW)
            .map_err(io::Error::from)
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::*;

    pub(super) fn create(_: &Dir) -> io::Result<Option<File>> {
        Ok(None)
    }

    pub(super) fn link(_: &File, _: &Dir, _: &OsStr) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
}
