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
//! it over the object.
//!
//! A file is linked by its handle alone (`AT_EMPTY_PATH`) where the kernel
//! allows it: since Linux 6.10, for a file the process opened itself with
//! its current credentials; before, only with `CAP_DAC_READ_SEARCH`.
//! Elsewhere it is linked through `/proc/self/fd`, as `open(2)` documents,
//! which needs `/proc` mounted and walks it on every put (on ext4, an
//! unnamed 4 KiB file created, written and linked took 25–27 µs of CPU
//! through `/proc` and 22–24 µs by handle; the whole put's rate moved less
//! than its noise). Where neither works (another system, a file system
//! without `O_TMPFILE`, no `/proc` on an older kernel), the store finds
//! out once when it opens and uses named temporary files throughout.

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
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Set once a link by handle was refused where one through `/proc`
    /// then succeeded: this process may not link by handle, and stops
    /// trying. (A refusal reads `ENOENT`, which a removed folder gives
    /// too; only the second attempt tells them apart.)
    static THROUGH_PROC: AtomicBool = AtomicBool::new(false);

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
        if !THROUGH_PROC.load(Ordering::Relaxed) {
            match by_handle(file, folder, name) {
                Err(Errno::NOENT) => {}
                other => return other.map_err(io::Error::from),
            }
        }
        through_proc(file, folder, name)
            .inspect(|()| THROUGH_PROC.store(true, Ordering::Relaxed))
            .map_err(io::Error::from)
    }

    fn by_handle(file: &File, folder: &Dir, name: &OsStr) -> rustix::io::Result<()> {
        rustix::fs::linkat(file, "", folder, name, AtFlags::EMPTY_PATH)
    }

    fn through_proc(file: &File, folder: &Dir, name: &OsStr) -> rustix::io::Result<()> {
        let source = format!("/proc/self/fd/{}", file.as_raw_fd());
        rustix::fs::linkat(CWD, source.as_str(), folder, name, AtFlags::SYMLINK_FOLLOW)
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use std::io::{Read, Write};

        type Way = fn(&File, &Dir, &OsStr) -> io::Result<()>;

        /// Links an unnamed file with `link_with` as `object~` and reads it
        /// back; then checks that a taken name is refused, and that a
        /// removed folder gives `NotFound` (which is why a refused link by
        /// handle, `ENOENT` too, is tried again through `/proc`).
        fn check(way: &str, link_with: Way) {
            let root = tempfile::tempdir().unwrap();
            let folder = Dir::open_ambient_dir(root.path(), cap_std::ambient_authority()).unwrap();
            let mut file = create(&folder)
                .unwrap()
                .expect("O_TMPFILE on the test folder");
            file.write_all(b"unnamed until linked").unwrap();
            link_with(&file, &folder, OsStr::new("object~"))
                .unwrap_or_else(|err| panic!("{way}: {err}"));
            let mut linked = String::new();
            folder
                .open("object~")
                .unwrap()
                .read_to_string(&mut linked)
                .unwrap();
            assert_eq!(linked, "unnamed until linked", "{way}");

            let second = create(&folder).unwrap().unwrap();
            let taken = link_with(&second, &folder, OsStr::new("object~")).unwrap_err();
            assert_eq!(taken.kind(), io::ErrorKind::AlreadyExists, "{way}");

            folder.create_dir("gone").unwrap();
            let gone = folder.open_dir("gone").unwrap();
            folder.remove_dir("gone").unwrap();
            let removed = link_with(&second, &gone, OsStr::new("object~")).unwrap_err();
            assert_eq!(removed.kind(), io::ErrorKind::NotFound, "{way}");
        }

        #[test]
        fn links_publish_the_file_and_refuse_taken_names() {
            check("link", link);
            check("through /proc", |file, folder, name| {
                through_proc(file, folder, name).map_err(io::Error::from)
            });
        }

        /// Since Linux 6.10 a process may link a file it opened itself by
        /// its handle; before, only with `CAP_DAC_READ_SEARCH`, and the
        /// refusal is `ENOENT`. Where it is allowed it must publish as the
        /// `/proc` way does.
        #[test]
        fn a_link_by_handle_publishes_the_file_where_the_kernel_allows_it() {
            let root = tempfile::tempdir().unwrap();
            let folder = Dir::open_ambient_dir(root.path(), cap_std::ambient_authority()).unwrap();
            let file = create(&folder).unwrap().unwrap();
            match by_handle(&file, &folder, OsStr::new("probe~")) {
                Ok(()) => check("by handle", |file, folder, name| {
                    by_handle(file, folder, name).map_err(io::Error::from)
                }),
                Err(err) => assert_eq!(err, Errno::NOENT, "a refusal reads ENOENT"),
            }
        }
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
