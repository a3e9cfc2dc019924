//! File-system calls that answer from the kernel's caches or not at all.
//!
//! Handing a call to tokio's blocking pool costs two thread wake-ups,
//! 10–25 µs on a virtual machine, while opening and reading a small file
//! whose pages are cached takes 2–8 µs: for small objects the hand-off is
//! most of the time. Running file-system calls on an async thread is
//! unsafe in general (a cold disk or a network file system can stall it
//! for milliseconds), but Linux has calls that refuse to wait:
//!
//! - `openat2` with `RESOLVE_CACHED` (Linux 5.12) fails with `EAGAIN`
//!   unless every component of the path is in the dentry cache;
//! - `preadv2` with `RWF_NOWAIT` (Linux 4.14) fails with `EAGAIN` unless
//!   the pages are in the page cache (a partial read returns what is);
//! - `fstat` on an open file reads the in-memory inode.
//!
//! The backend tries these first for reads and, on a miss, starts the
//! operation over on the blocking pool. Elsewhere than Linux every call
//! misses. The path is resolved with `RESOLVE_BENEATH` and
//! `RESOLVE_NO_MAGICLINKS`, the same confinement `cap-std` applies, so
//! nothing opened here can be outside the root either.

use std::fs::File;
use std::io;
use std::path::Path;

use cap_std::fs::Dir;

/// What a cached lookup found.
pub(crate) enum Lookup {
    /// The file, opened for reading, and its length in bytes (from the
    /// same `fstat` that found it a regular file, so callers need not ask
    /// again).
    Found(File, u64),
    /// Nothing, or not a regular file: no object at this path.
    Absent,
    /// The kernel would have had to read the disk (or cannot say).
    Miss,
}

/// Opens `path` under `dir` for reading if the kernel can resolve it from
/// its caches. With `metadata_only`, the file is opened `O_PATH`: enough
/// to `fstat`, nothing else.
pub(crate) fn open(dir: &Dir, path: &Path, metadata_only: bool) -> io::Result<Lookup> {
    imp::open(dir, path, metadata_only)
}

/// Fills `buf` from `offset` of `file` if every byte is in the page cache:
/// `Ok(false)` on a miss. A file shorter than asked is `UnexpectedEof`.
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<bool> {
    imp::read_exact_at(file, buf, offset)
}

#[cfg(target_os = "linux")]
mod imp {
    use super::*;
    use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
    use rustix::io::{Errno, ReadWriteFlags};

    pub(super) fn open(dir: &Dir, path: &Path, metadata_only: bool) -> io::Result<Lookup> {
        // Non-blocking, so that a FIFO planted under an object's name
        // cannot hold the open (and the async thread) until a writer
        // comes; reads of regular files ignore the flag.
        let access = if metadata_only {
            OFlags::PATH
        } else {
            OFlags::RDONLY | OFlags::NONBLOCK
        };
        let resolve = ResolveFlags::CACHED | ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
        let fd = match rustix::fs::openat2(
            dir,
            path,
            access | OFlags::CLOEXEC,
            Mode::empty(),
            resolve,
        ) {
            Ok(fd) => fd,
            // A cached negative entry is an answer like a positive one.
            Err(Errno::NOENT) => return Ok(Lookup::Absent),
            // EAGAIN: not all in the cache. ENOSYS, EINVAL: a kernel
            // without openat2 or RESOLVE_CACHED. The rest (ENOTDIR from
            // foreign files, EXDEV from a symlink leading out): the
            // blocking path decides and reports them as it always does.
            Err(_) => return Ok(Lookup::Miss),
        };
        // `fstat`, not `File::metadata`: std asks `statx` for every field,
        // which costs more than the type and length needed here.
        let stat = rustix::fs::fstat(&fd)?;
        if FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile {
            Ok(Lookup::Found(File::from(fd), stat.st_size as u64))
        } else {
            Ok(Lookup::Absent)
        }
    }

    pub(super) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<bool> {
        let mut done = 0;
        while done < buf.len() {
            let mut slices = [io::IoSliceMut::new(&mut buf[done..])];
            match rustix::io::preadv2(
                file,
                &mut slices,
                offset + done as u64,
                ReadWriteFlags::NOWAIT,
            ) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(read) => done += read,
                Err(Errno::INTR) => {}
                // EAGAIN: pages not cached. EOPNOTSUPP: a file system
                // without non-waiting reads.
                Err(_) => return Ok(false),
            }
        }
        Ok(true)
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::*;

    pub(super) fn open(_: &Dir, _: &Path, _: bool) -> io::Result<Lookup> {
        Ok(Lookup::Miss)
    }

    pub(super) fn read_exact_at(_: &File, _: &mut [u8], _: u64) -> io::Result<bool> {
        Ok(false)
    }
}

#[cfg(all(test, target_os = "linux"))]
#[allow(clippy::unwrap_used)] // Tests fail by panicking.
mod tests {
    use cap_std::ambient_authority;

    use super::*;
    use crate::scratch_folder;

    fn folder_with_file() -> (tempfile::TempDir, Dir) {
        let folder = scratch_folder();
        std::fs::create_dir(folder.path().join("root")).unwrap();
        std::fs::write(folder.path().join("root/object~"), b"cached bytes").unwrap();
        std::fs::write(folder.path().join("outside~"), b"not yours").unwrap();
        let dir = Dir::open_ambient_dir(folder.path().join("root"), ambient_authority()).unwrap();
        (folder, dir)
    }

    #[test]
    fn a_file_just_written_is_found_and_read_from_the_cache() {
        let (_folder, dir) = folder_with_file();
        let Lookup::Found(file, _) = open(&dir, Path::new("object~"), false).unwrap() else {
            panic!("a file just written is not in the dentry cache");
        };
        let mut buf = [0u8; 5];
        assert!(read_exact_at(&file, &mut buf, 7).unwrap());
        assert_eq!(&buf, b"bytes");
    }

    #[test]
    fn missing_names_and_folders_are_absent() {
        let (folder, dir) = folder_with_file();
        // A failed lookup leaves a negative entry in the dentry cache,
        // which is an answer: absent, not a miss.
        assert!(!folder.path().join("root/nothing~").exists());
        assert!(matches!(
            open(&dir, Path::new("nothing~"), false).unwrap(),
            Lookup::Absent
        ));
        assert!(matches!(
            open(&dir, Path::new("."), true).unwrap(),
            Lookup::Absent
        ));
    }

    #[test]
    fn nothing_outside_the_root_is_ever_found() {
        let (folder, dir) = folder_with_file();
        let absolute = folder.path().join("outside~");
        for path in [Path::new("../outside~"), absolute.as_path()] {
            let found = open(&dir, path, false).unwrap();
            assert!(!matches!(found, Lookup::Found(..)), "{path:?} was opened");
        }
    }

    #[test]
    fn reading_past_the_end_is_an_error() {
        let (_folder, dir) = folder_with_file();
        let Lookup::Found(file, _) = open(&dir, Path::new("object~"), false).unwrap() else {
            panic!("a file just written is not in the dentry cache");
        };
        let mut buf = [0u8; 64];
        let err = read_exact_at(&file, &mut buf, 0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
