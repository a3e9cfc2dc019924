//! Write-behind: starting the disk writes of a large put while it is
//! still being written.
//!
//! A durable put ends in `fsync`, which waits for every dirty page of the
//! file to reach the disk. Left alone, the kernel starts writing a file's
//! pages only when they are old or memory runs short, so for a large
//! object nearly all of the disk work waits for that final `fsync`: the
//! put takes the time to copy the object into the page cache *plus* the
//! time to write it out. Asking for the write-out of each finished window
//! as soon as it is written overlaps the two, and the final `fsync` finds
//! most pages already on the disk (RocksDB's `bytes_per_sync` does the
//! same). It also keeps a large put from piling up a gigabyte of dirty
//! pages that later writes to the same disk would queue behind.
//!
//! Only puts that will `fsync` do this: without it the caller asked for
//! speed over durability, and the kernel's own timing is the better one.
//! Linux only; elsewhere the final `fsync` does all the writing, as before.

use std::fs::File;
use std::ops::Range;

/// How much of a file is written before its write-out is started.
pub(crate) const WINDOW: u64 = 8 * 1024 * 1024;

/// Which parts of a file being written should start their write-out.
#[derive(Debug)]
pub(crate) struct WriteBehind {
    enabled: bool,
    /// Where the next write-out starts: everything before it was asked for.
    started: u64,
    /// How much of the file is written.
    written: u64,
}

impl WriteBehind {
    /// Write-behind for a new file; `enabled` when the put will `fsync`.
    pub(crate) fn new(enabled: bool) -> Self {
        WriteBehind {
            enabled,
            started: 0,
            written: 0,
        }
    }

    /// Records `len` more bytes written, and returns the range whose
    /// write-out should start now: a whole number of windows, once at
    /// least one is complete. The tail (less than a window) is left for
    /// the final `fsync`.
    pub(crate) fn wrote(&mut self, len: usize) -> Option<Range<u64>> {
        self.written += len as u64;
        if !self.enabled {
            return None;
        }
        let ready = self.written - self.started;
        if ready < WINDOW {
            return None;
        }
        let end = self.started + ready / WINDOW * WINDOW;
        let range = self.started..end;
        self.started = end;
        Some(range)
    }

    /// Records `len` more bytes written to `file` and starts the write-out
    /// of any window that is complete.
    pub(crate) fn after_write(&mut self, file: &File, len: usize) {
        if let Some(range) = self.wrote(len) {
            // An error here is never the put's error: a file system that
            // cannot start write-out early (EINVAL, ENOSYS) writes at
            // `fsync` as it would have anyway, and a disk error (EIO) is
            // reported by that same `fsync`, which every enabled put makes.
            if let Err(err) = start_write_out(file, range) {
                tracing::debug!(error = %err, "could not start write-out early");
            }
        }
    }
}

/// Asks the kernel to start writing `range` of `file` to the disk, without
/// waiting for it: no metadata is flushed and nothing is made durable, it
/// only moves the work earlier.
///
/// This is `posix_fadvise(POSIX_FADV_DONTNEED)`, which on Linux starts the
/// write-back of the range's dirty pages (as `sync_file_range` with
/// `SYNC_FILE_RANGE_WRITE` would, which has no safe wrapper in the tree,
/// and this crate forbids `unsafe`) and then drops those of its pages that
/// are already clean. Pages still being written stay cached, so the
/// window just written does: a 1 GiB put written this way left all of its
/// pages in the page cache (`fincore`).
#[cfg(target_os = "linux")]
pub(crate) fn start_write_out(file: &File, range: Range<u64>) -> std::io::Result<()> {
    use std::num::NonZeroU64;

    // The kernel takes signed offsets: refuse what it would reject or
    // misread, rather than pass it on.
    let (Ok(_), Ok(_)) = (i64::try_from(range.start), i64::try_from(range.end)) else {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
    };
    // An empty range would mean "to the end of the file".
    let Some(len) = NonZeroU64::new(range.end.saturating_sub(range.start)) else {
        return Ok(());
    };
    rustix::fs::fadvise(file, range.start, Some(len), rustix::fs::Advice::DontNeed)
        .map_err(std::io::Error::from)
}

/// Elsewhere the advice does not start write-back (FreeBSD, for one, only
/// drops clean pages); the final `fsync` does all of it.
#[cfg(not(target_os = "linux"))]
pub(crate) fn start_write_out(_file: &File, _range: Range<u64>) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    #[test]
    fn whole_windows_start_as_they_complete_and_the_tail_waits() {
        let mut behind = WriteBehind::new(true);
        assert_eq!(behind.wrote(5 * MIB), None);
        assert_eq!(behind.wrote(5 * MIB), Some(0..WINDOW));
        assert_eq!(behind.wrote(MIB), None);
        // 27 MiB in one write: the two windows it completes go together.
        assert_eq!(behind.wrote(16 * MIB), Some(WINDOW..3 * WINDOW));
        assert_eq!(behind.wrote(3 * MIB), None);
        assert_eq!(behind.written, 30 * MIB as u64);
        assert_eq!(behind.started, 3 * WINDOW);
    }

    #[test]
    fn nothing_starts_when_the_put_will_not_fsync() {
        let mut behind = WriteBehind::new(false);
        for _ in 0..8 {
            assert_eq!(behind.wrote(8 * MIB), None);
        }
    }

    #[test]
    fn write_out_of_a_written_file_starts() -> std::io::Result<()> {
        use std::io::Write;

        let folder = tempfile::tempdir()?;
        let mut file = File::create(folder.path().join("object"))?;
        let window = vec![7u8; WINDOW as usize];
        file.write_all(&window)?;
        start_write_out(&file, 0..WINDOW)?;
        file.sync_all()?;
        assert_eq!(std::fs::read(folder.path().join("object"))?, window);
        Ok(())
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_range_past_what_the_kernel_takes_is_refused_not_truncated() {
        let folder = tempfile::tempdir().unwrap();
        let file = File::create(folder.path().join("object")).unwrap();
        let err = start_write_out(&file, 0..u64::MAX).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }
}
