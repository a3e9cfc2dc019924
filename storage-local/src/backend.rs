//! [`LocalStorage`]: the contract over a folder.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cap_std::ambient_authority;
use cap_std::fs::{Dir, MetadataExt, OpenOptions, OpenOptionsExt};
use futures::{TryStreamExt, stream};
use storage_core::{
    Body, ByteStream, Capabilities, Error, ErrorKind, GetOptions, GetResult, Key, ListEntry,
    ListOptions, ListStream, ObjectMeta, Operation, Prefix, PresignMethod, PresignOptions,
    PresignedRequest, PutOptions, PutResult, Result, Storage, WriteMode, async_trait,
};
use tokio::sync::mpsc;

use crate::cached::{self, Lookup};
use crate::config::LocalConfig;
use crate::error::{from_io, from_join};
use crate::format::{StoredMeta, now_ms, read_exact_at};
use crate::layout;
use crate::list::Walker;
use crate::presign::UrlSigner;
use crate::stream::FileStream;
use crate::unnamed;
use crate::writeback::{self, WriteBehind};

/// Chunks of a streamed put buffered ahead of the writer thread.
const WRITE_AHEAD: usize = 4;
/// Files up to this size are read whole, in one system call.
const SMALL_FILE: u64 = 256 * 1024;
/// How often a write retries when a concurrent delete removed the folder
/// it was about to publish into.
const PUBLISH_ATTEMPTS: usize = 16;

/// Objects in a local folder: the embedded default backend.
///
/// - Keys map to paths inside the root (see the crate docs for the
///   layout); every file operation goes through a capability handle of the
///   root (`cap-std`), so neither a key nor a symlink planted in the folder
///   can reach outside it.
/// - Writes go to a file without a name (Linux `O_TMPFILE`; elsewhere a
///   temporary file beside the object), are flushed (`fsync`) and then
///   linked or renamed into place: a reader or a crash sees the old object
///   or the new one, never part of one. The folder is flushed after, so a
///   returned put survives a power loss.
/// - Content and metadata (content type, user metadata, etag, CRC-32C) are
///   one file, so they are published together.
/// - Reads stream in 1 MiB chunks, read ahead on a blocking thread into
///   recycled buffers; small objects are read in one system call, on the
///   calling task when the kernel has them cached (see
///   [`LocalConfig::cached_reads`]).
/// - Conditional writes are race-free, across processes too: create-only
///   publishes with `link(2)`, which fails if the name exists; replacements
///   and deletes hold an exclusive `flock` on the current object.
///
/// Cloning is cheap and shares the folder handle.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: LocalConfig,
    dir: Dir,
    signer: Option<UrlSigner>,
    /// Whether puts write unnamed files (see [`crate::unnamed`]): the
    /// configuration allows it and a probe at opening succeeded.
    unnamed_temps: bool,
}

/// A put's file before it is published: unnamed (see [`crate::unnamed`])
/// or under a temporary name in the folder its object will be published
/// in, which it removes unless published.
struct TempFile {
    slot: ObjectSlot,
    /// The object file's path under the root: an unnamed file holds no
    /// place in its folder, so a concurrent delete may prune the folder
    /// before the file is linked, and the folder is then found again.
    path: PathBuf,
    /// The temporary name in the slot's folder; `None` for an unnamed file.
    name: Option<String>,
    file: File,
    write_behind: WriteBehind,
    published: bool,
}

impl TempFile {
    /// Appends `bytes`, starting the write-out of each finished window
    /// when the put will `fsync` (see [`crate::writeback`]).
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        for window in bytes.chunks(writeback::WINDOW as usize) {
            self.file.write_all(window).map_err(from_io)?;
            self.write_behind.after_write(&self.file, window.len());
        }
        Ok(())
    }

    /// Publishes the file under the object's name if that name is free,
    /// with `link(2)`, which fails with `AlreadyExists` if it is not. A
    /// named file keeps its temporary name too, until dropped.
    fn link_as_object(&self) -> io::Result<()> {
        let slot = &self.slot;
        match &self.name {
            Some(name) => slot.folder.hard_link(name, &slot.folder, &slot.name),
            None => unnamed::link(&self.file, &slot.folder, &slot.name),
        }
    }

    /// Publishes the file over the object's name with `rename(2)`. An
    /// unnamed file is first linked under a temporary name, since
    /// `link(2)` cannot replace a name.
    fn rename_over_object(&self) -> io::Result<()> {
        let slot = &self.slot;
        match &self.name {
            Some(name) => slot.folder.rename(name, &slot.folder, &slot.name),
            None => {
                let name = loop {
                    let name = layout::temp_name();
                    match unnamed::link(&self.file, &slot.folder, name.as_ref()) {
                        Ok(()) => break name,
                        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                        Err(err) => return Err(err),
                    }
                };
                slot.folder
                    .rename(&name, &slot.folder, &slot.name)
                    .inspect_err(|_| {
                        let _ = slot.folder.remove_file(&name);
                    })
            }
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // An unnamed file is freed with its handle.
        if !self.published
            && let Some(name) = &self.name
        {
            let _ = self.slot.folder.remove_file(name);
        }
    }
}

/// What a put has written (or holds to write) before publishing.
struct Written {
    temp: TempFile,
    /// Content not yet in the file: a small body is written together with
    /// the metadata trailer, in one vectored write.
    unwritten: Bytes,
    size: u64,
    crc32c: u32,
}

/// The folder an object file lives in, open for reading (so it can be
/// flushed), and the file's name in it: operations on the file resolve
/// one name, not the whole path.
struct ObjectSlot {
    folder: Dir,
    name: std::ffi::OsString,
}

impl ObjectSlot {
    /// Flushes the folder, making the names published in it durable.
    fn sync_folder(&self) -> Result<()> {
        rustix::fs::fsync(&self.folder).map_err(|err| from_io(err.into()))
    }
}

impl LocalStorage {
    /// Opens (and by default creates) the folder at `root`, with default
    /// settings and no presigning.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        Self::open(LocalConfig::new(root))
    }

    /// Opens the folder a configuration names.
    ///
    /// Fails with `InvalidConfig` if the root cannot be created or opened,
    /// or if presigning is half configured (a public URL without a secret,
    /// or the reverse).
    pub fn open(config: LocalConfig) -> Result<Self> {
        let name = config.name.clone();
        let fail = |err: Error| err.context(Operation::Open, &name, None);
        let root_error = |what: &str, err: io::Error| {
            fail(
                Error::new(
                    ErrorKind::InvalidConfig,
                    format!("cannot {what} the root folder {:?}: {err}", config.root),
                )
                .with_source(err),
            )
        };
        if config.create_root {
            std::fs::create_dir_all(&config.root).map_err(|err| root_error("create", err))?;
        }
        let dir = Dir::open_ambient_dir(&config.root, ambient_authority())
            .map_err(|err| root_error("open", err))?;
        // Fail now, not at the first put, if the folder is not writable.
        let probe = layout::temp_name();
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        dir.open_with(&probe, &options)
            .and_then(|_| dir.remove_file(&probe))
            .map_err(|err| root_error("write to", err))?;
        let signer = match (&config.public_url, &config.signing_secret) {
            (Some(url), Some(secret)) => {
                Some(UrlSigner::new(url.clone(), secret.clone()).map_err(fail)?)
            }
            (None, None) => None,
            (Some(_), None) => {
                return Err(fail(Error::new(
                    ErrorKind::InvalidConfig,
                    "public_url is set but signing_secret is missing",
                )));
            }
            (None, Some(_)) => {
                return Err(fail(Error::new(
                    ErrorKind::InvalidConfig,
                    "signing_secret is set but public_url is missing",
                )));
            }
        };
        let unnamed_temps = config.unnamed_temp_files && unnamed_temps_work(&dir);
        let inner = Arc::new(Inner {
            config,
            dir,
            signer,
            unnamed_temps,
        });
        Ok(Self { inner })
    }

    /// The configuration this store was opened with.
    pub fn config(&self) -> &LocalConfig {
        &self.inner.config
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.inner.config.root
    }

    /// The URL signer, if presigning is configured.
    pub fn signer(&self) -> Option<&UrlSigner> {
        self.inner.signer.as_ref()
    }

    /// Adds the provider, `operation` and `key` to an error (borrowing:
    /// nothing is allocated unless there is an error).
    fn ctx<'a>(&'a self, operation: Operation, key: &'a Key) -> impl Fn(Error) -> Error + 'a {
        move |err| err.context(operation, &self.inner.config.name, Some(key.as_str()))
    }

    /// Runs blocking file-system work off the async threads.
    async fn blocking<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Arc<Inner>) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(from_join)?
    }

    /// Streams `body` into a temporary file on a blocking thread, with a
    /// few chunks of buffering; memory stays flat whatever the size.
    async fn write_stream(&self, body: ByteStream, path: PathBuf) -> Result<Written> {
        let (sender, mut receiver) = mpsc::channel::<Bytes>(WRITE_AHEAD);
        let inner = self.inner.clone();
        // The writer thread only writes; the checksum is computed here, on
        // the async side, so hashing and writing overlap on two cores.
        let writer = tokio::task::spawn_blocking(move || -> Result<TempFile> {
            let mut temp = inner.create_temp(&path)?;
            while let Some(chunk) = receiver.blocking_recv() {
                temp.write(&chunk)?;
            }
            Ok(temp)
        });
        let mut body = body;
        let mut source_error = None;
        let mut size = 0u64;
        let mut crc = 0u32;
        loop {
            match body.try_next().await {
                Ok(Some(chunk)) if chunk.is_empty() => {}
                Ok(Some(chunk)) => {
                    crc = crc32c::crc32c_append(crc, &chunk);
                    size += chunk.len() as u64;
                    if sender.send(chunk).await.is_err() {
                        // The writer stopped: its own error says why.
                        break;
                    }
                }
                Ok(None) => break,
                Err(err) => {
                    source_error = Some(err);
                    break;
                }
            }
        }
        drop(sender);
        let temp = writer.await.map_err(from_join)?;
        match source_error {
            // Dropping the temporary file removes it.
            Some(err) => Err(err),
            None => Ok(Written {
                temp: temp?,
                unwritten: Bytes::new(),
                size,
                crc32c: crc,
            }),
        }
    }
}

impl Inner {
    /// Creates a put's file for the object file at `path`, unnamed where
    /// the store can, else under a temporary name in the object's folder;
    /// creates the folder if needed.
    fn create_temp(&self, path: &Path) -> Result<TempFile> {
        let mut attempt = 0;
        loop {
            let slot = self.open_slot(path, true)?.ok_or_else(not_found)?;
            match self.create_temp_in(&slot.folder) {
                Ok((name, file)) => {
                    return Ok(TempFile {
                        slot,
                        path: path.to_owned(),
                        name,
                        file,
                        write_behind: WriteBehind::new(self.config.fsync),
                        published: false,
                    });
                }
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                // The folder was pruned by a concurrent delete between
                // opening and creating: open (and create) it again. A
                // named file then holds its place until it is renamed.
                Err(err) if err.kind() == io::ErrorKind::NotFound && attempt < PUBLISH_ATTEMPTS => {
                    attempt += 1;
                }
                Err(err) => return Err(from_io(err)),
            }
        }
    }

    /// An unnamed file on `folder`'s file system if the store uses them
    /// and that file system has them, else a file under a fresh temporary
    /// name in `folder`, with that name.
    fn create_temp_in(&self, folder: &Dir) -> io::Result<(Option<String>, File)> {
        if self.unnamed_temps
            && let Some(file) = unnamed::create(folder)?
        {
            return Ok((None, file));
        }
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        let name = layout::temp_name();
        let file = folder.open_with(&name, &options)?;
        Ok((Some(name), file.into_std()))
    }

    /// Opens the object file at `path` and reads its length; `None` if
    /// there is none. Anything but a regular file there (a folder, a FIFO:
    /// only reachable through files this backend did not write) is no
    /// object.
    fn open_object(&self, path: &Path) -> Result<Option<(File, u64)>> {
        let file = match self.dir.open_with(path, &read_options()) {
            Ok(file) => file.into_std(),
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) if err.kind() == io::ErrorKind::IsADirectory => return Ok(None),
            Err(err) => return Err(from_io(err)),
        };
        let meta = file.metadata().map_err(from_io)?;
        Ok(meta.is_file().then_some((file, meta.len())))
    }

    /// Opens the object at `path` for `get` and reads it whole if it is
    /// small (content and metadata in one read), else reads its metadata.
    fn open_for_get(&self, path: &Path, options: &GetOptions, verify: bool) -> Result<Opened> {
        let (file, file_len) = self.open_object(path)?.ok_or_else(not_found)?;
        if file_len <= SMALL_FILE {
            let mut whole = vec![0u8; file_len as usize];
            read_exact_at(&file, &mut whole, 0)?;
            return read_small(whole, options, verify);
        }
        let meta = StoredMeta::read_from(&file, file_len)?;
        streamed(meta, file, options)
    }

    /// [`open_for_get`](Self::open_for_get) from the kernel's caches:
    /// `None` if that would have waited for the disk.
    fn open_for_get_cached(
        &self,
        path: &Path,
        options: &GetOptions,
        verify: bool,
    ) -> Result<Option<Opened>> {
        let (file, file_len) = match cached::open(&self.dir, path, false).map_err(from_io)? {
            Lookup::Found(file, len) => (file, len),
            Lookup::Absent => return Err(not_found()),
            Lookup::Miss => return Ok(None),
        };
        if file_len <= SMALL_FILE {
            let mut whole = vec![0u8; file_len as usize];
            if !cached::read_exact_at(&file, &mut whole, 0).map_err(from_io)? {
                return Ok(None);
            }
            return read_small(whole, options, verify).map(Some);
        }
        let read =
            |buf: &mut [u8], offset| cached::read_exact_at(&file, buf, offset).map_err(from_io);
        match StoredMeta::read_with(file_len, read)? {
            Some(meta) => streamed(meta, file, options).map(Some),
            None => Ok(None),
        }
    }

    /// The metadata of the object at `path` from the kernel's caches:
    /// `None` if that would have waited for the disk.
    fn read_meta_cached(&self, path: &Path) -> Result<Option<StoredMeta>> {
        let (file, file_len) = match cached::open(&self.dir, path, false).map_err(from_io)? {
            Lookup::Found(file, len) => (file, len),
            Lookup::Absent => return Err(not_found()),
            Lookup::Miss => return Ok(None),
        };
        StoredMeta::read_with(file_len, |buf, offset| {
            cached::read_exact_at(&file, buf, offset).map_err(from_io)
        })
    }

    fn read_meta(file: &File) -> Result<StoredMeta> {
        let len = file.metadata().map_err(from_io)?.len();
        StoredMeta::read_from(file, len)
    }

    /// Opens the folder of the object file at `path` for reading, creating
    /// it if missing when `create`; `None` if it is missing otherwise.
    /// Operations on the file then resolve one name. Reading, because a
    /// handle that only resolves paths (`O_PATH`, what `Dir::open_dir`
    /// gives) cannot be flushed: `fsync` fails with `EBADF`.
    fn open_slot(&self, path: &Path, create: bool) -> Result<Option<ObjectSlot>> {
        let name = path
            .file_name()
            .ok_or_else(|| Error::new(ErrorKind::Other, "an object path without a file name"))?;
        let folder = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut options = OpenOptions::new();
        options.read(true);
        let open = || {
            self.dir.open_with(folder, &options).map(|file| {
                Some(ObjectSlot {
                    folder: Dir::from_std_file(file.into_std()),
                    name: name.to_owned(),
                })
            })
        };
        match open() {
            Err(err) if err.kind() == io::ErrorKind::NotFound && create => {
                self.dir.create_dir_all(folder).map_err(from_io)?;
                open().map_err(from_io)
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            other => other.map_err(from_io),
        }
    }

    /// Runs `work` while holding an exclusive lock on the object file
    /// currently in `slot` (if any), so that replacements and deletes of
    /// one key are serialised across threads and processes. `work` gets
    /// the locked file.
    fn with_object_lock<T>(
        slot: &ObjectSlot,
        work: impl FnOnce(Option<&File>) -> Result<T>,
    ) -> Result<T> {
        loop {
            let file = match slot.folder.open_with(&slot.name, &read_options()) {
                Ok(file) => file.into_std(),
                Err(err) if err.kind() == io::ErrorKind::NotFound => return work(None),
                // A directory of that name means "no object" (only
                // reachable through files this backend did not write).
                Err(err) if err.kind() == io::ErrorKind::IsADirectory => return work(None),
                Err(err) => return Err(from_io(err)),
            };
            file.lock().map_err(from_io)?;
            // The name may have moved to a newer file while we waited.
            let locked = rustix::fs::fstat(&file).map_err(|err| from_io(err.into()))?;
            // One `fstatat` for one name; a symlink (a foreign file) is
            // compared by what it points to, as it was opened.
            let current = match slot.folder.symlink_metadata(&slot.name) {
                Ok(meta) if meta.is_symlink() => slot.folder.metadata(&slot.name),
                other => other,
            };
            match current {
                Ok(current)
                    if current.ino() == locked.st_ino && current.dev() == locked.st_dev as u64 =>
                {
                    return work(Some(&file));
                }
                Ok(_) => continue,
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(from_io(err)),
            }
        }
    }

    /// Appends the metadata, flushes, and publishes the put's file under
    /// its object's name as `mode` allows (see
    /// [`publish_as`](Self::publish_as)), then flushes the folder.
    fn publish(&self, written: Written, options: PutOptions) -> Result<PutResult> {
        let Written {
            mut temp,
            unwritten,
            size,
            crc32c,
        } = written;
        let meta = StoredMeta {
            size,
            etag: new_etag(crc32c),
            crc32c,
            modified_ms: now_ms(),
            content_type: options.content_type,
            cache_control: options.cache_control,
            user_metadata: options.user_metadata,
        };
        write_all_vectored(&mut temp.file, &unwritten, &meta.encode()?).map_err(from_io)?;
        if self.config.fsync {
            temp.file.sync_all().map_err(from_io)?;
        }
        let mut attempt = 0;
        while let Err(err) = Self::publish_as(&mut temp, &options.mode) {
            // An unnamed file holds no place in its folder, so a
            // concurrent delete may have pruned the folder: find (and
            // create) it again.
            if temp.name.is_none()
                && err.kind() == ErrorKind::NotFound
                && attempt < PUBLISH_ATTEMPTS
            {
                attempt += 1;
                temp.slot = self.open_slot(&temp.path, true)?.ok_or_else(not_found)?;
            } else {
                return Err(err);
            }
        }
        if self.config.fsync && self.config.fsync_folder {
            temp.slot.sync_folder()?;
        }
        let mut result = PutResult::new(size, Some(meta.etag));
        result.checksum = Some(storage_core::Checksum::Crc32c(crc32c));
        Ok(result)
    }

    /// Publishes `temp` under its object's name as `mode` allows: a link
    /// where the name must be free (create-only, or an unnamed file where
    /// there is no object yet), else a rename over the object.
    fn publish_as(temp: &mut TempFile, mode: &WriteMode) -> Result<()> {
        match mode {
            WriteMode::CreateNew => match temp.link_as_object() {
                // link(2) fails atomically on an existing name, so of
                // racing writers one wins.
                Ok(()) => Ok(()),
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Err(Error::new(
                    ErrorKind::AlreadyExists,
                    "an object already exists at this key",
                )),
                Err(err) => Err(from_io(err)),
            },
            WriteMode::Overwrite => {
                // An unnamed file tries the link first: where there is no
                // object yet, there is nothing to lock (the loop below
                // links unlocked too when it finds none) and link(2)
                // decides atomically. That saves a new object's put the
                // lookup of its name; a replacement pays a failed link.
                if temp.name.is_none() {
                    match temp.link_as_object() {
                        Ok(()) => {
                            temp.published = true;
                            return Ok(());
                        }
                        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                        Err(err) => return Err(from_io(err)),
                    }
                }
                loop {
                    let published = Self::with_object_lock(&temp.slot, |current| {
                        if current.is_none() && temp.name.is_none() {
                            // Nothing to replace: link. If a concurrent put
                            // got there first, replace its object, under
                            // its lock, on the next turn.
                            return match temp.link_as_object() {
                                Ok(()) => Ok(true),
                                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(false),
                                Err(err) => Err(from_io(err)),
                            };
                        }
                        temp.rename_over_object().map_err(from_io)?;
                        Ok(true)
                    })?;
                    if published {
                        break;
                    }
                }
                temp.published = true;
                Ok(())
            }
            WriteMode::UpdateIfMatch(expected) => {
                Self::with_object_lock(&temp.slot, |current| {
                    let Some(current) = current else {
                        return Err(Error::new(
                            ErrorKind::PreconditionFailed,
                            "no object exists at this key to update",
                        ));
                    };
                    if &Self::read_meta(current)?.etag != expected {
                        return Err(Error::new(
                            ErrorKind::PreconditionFailed,
                            "the object's etag does not match",
                        ));
                    }
                    temp.rename_over_object().map_err(from_io)
                })?;
                temp.published = true;
                Ok(())
            }
            _ => Err(Error::unsupported("this write mode")),
        }
    }

    /// Renames `from` over `to`, creating `to`'s folders; retried when a
    /// concurrent delete prunes a folder in between.
    fn rename_into(&self, from: &Path, to: &Path) -> Result<()> {
        let mut attempt = 0;
        loop {
            if let Some(parent) = to.parent().filter(|p| !p.as_os_str().is_empty()) {
                self.dir.create_dir_all(parent).map_err(from_io)?;
            }
            match self.dir.rename(from, &self.dir, to) {
                Ok(()) => return Ok(()),
                Err(err) if err.kind() == io::ErrorKind::NotFound && attempt < PUBLISH_ATTEMPTS => {
                    attempt += 1;
                }
                Err(err) => return Err(from_io(err)),
            }
        }
    }

    /// Makes a rename durable by flushing the folder that holds it.
    fn sync_parent(&self, path: &Path) -> Result<()> {
        self.open_slot(path, false)?
            .ok_or_else(|| Error::new(ErrorKind::NotFound, "the object's folder is gone"))?
            .sync_folder()
    }

    /// Removes the now-empty folders above `path`, deepest first, so that
    /// a listing never shows a common prefix with nothing under it.
    ///
    /// Called after every delete, it simply tries: `rmdir` fails on a
    /// folder that still holds an entry, and its own test (on ext4) stops
    /// at the first entry it finds. Reading the folder first to skip the
    /// attempt cost more than it saved: ext4 answers `getdents64` in hash
    /// order, hashing every name of a block per call, so deletes in a
    /// folder of 10,000 objects, 16 at a time, ran at 19,700 a second with
    /// that look and 27,400 without (100 folders of 200: 19,300 and
    /// 26,000; only folders of four objects were a few percent faster with
    /// it).
    fn prune_empty_parents(&self, path: &Path) {
        let mut current = path.parent();
        while let Some(folder) = current.filter(|p| !p.as_os_str().is_empty()) {
            if self.dir.remove_dir(folder).is_err() {
                break;
            }
            current = folder.parent();
        }
    }
}

/// Writes `first` then `second` to `file`, in one `writev` unless the
/// kernel takes less than all of it.
fn write_all_vectored(file: &mut impl Write, first: &[u8], second: &[u8]) -> io::Result<()> {
    let mut slices = [io::IoSlice::new(first), io::IoSlice::new(second)];
    let mut remaining = &mut slices[..];
    while !remaining.is_empty() {
        match file.write_vectored(remaining) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => io::IoSlice::advance_slices(&mut remaining, written),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Options that open an object file for reading without waiting: a FIFO
/// planted under an object's name (only possible through files this
/// backend did not write) would otherwise hold the open until a writer
/// came. Reads of regular files ignore the flag.
fn read_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    options
}

/// Whether an unnamed file can be created in `dir` and linked under a
/// name (see [`crate::unnamed`]): tried once, when the store opens, with a
/// probe file linked and removed.
fn unnamed_temps_work(dir: &Dir) -> bool {
    let file = match unnamed::create(dir) {
        Ok(Some(file)) => file,
        Ok(None) => {
            tracing::debug!("no unnamed files here; puts use named temporary files");
            return false;
        }
        Err(err) => {
            tracing::debug!(error = %err, "cannot create an unnamed file; puts use named temporary files");
            return false;
        }
    };
    let probe = layout::temp_name();
    match unnamed::link(&file, dir, probe.as_ref()) {
        Ok(()) => {
            let _ = dir.remove_file(&probe);
            true
        }
        Err(err) => {
            tracing::debug!(error = %err, "cannot link an unnamed file; puts use named temporary files");
            false
        }
    }
}

fn new_etag(crc32c: u32) -> String {
    format!("\"{crc32c:08x}{:016x}\"", fastrand::u64(..))
}

pub(crate) fn corruption(expected: u32, actual: u32) -> Error {
    Error::new(
        ErrorKind::Corruption,
        format!("the content's CRC-32C is {actual:08x}, {expected:08x} was stored"),
    )
}

fn not_found() -> Error {
    Error::new(ErrorKind::NotFound, "no object at this key")
}

/// The answer to a get of a small object file read whole: content and
/// metadata came in one read.
fn read_small(mut whole: Vec<u8>, options: &GetOptions, verify: bool) -> Result<Opened> {
    let file_len = whole.len() as u64;
    let (meta, _) = StoredMeta::decode_tail(&whole, file_len)?;
    options.check_conditions(Some(&meta.etag))?;
    let range = resolve(options, meta.size)?;
    if verify {
        let actual = crc32c::crc32c(&whole[..meta.size as usize]);
        if actual != meta.crc32c {
            return Err(corruption(meta.crc32c, actual));
        }
    }
    whole.truncate(range.end as usize);
    let content = Bytes::from(whole).slice(range.start as usize..);
    Ok(Opened::Read(meta, range, content))
}

/// The answer to a get of a large object file: streamed from `file`.
fn streamed(meta: StoredMeta, file: File, options: &GetOptions) -> Result<Opened> {
    options.check_conditions(Some(&meta.etag))?;
    let range = resolve(options, meta.size)?;
    Ok(Opened::Stream(meta, range, file))
}

/// What a get found before streaming.
enum Opened {
    /// A small range, already read.
    Read(StoredMeta, std::ops::Range<u64>, Bytes),
    /// A large range, to stream from the open file.
    Stream(StoredMeta, std::ops::Range<u64>, File),
}

#[async_trait]
impl Storage for LocalStorage {
    fn name(&self) -> &str {
        &self.inner.config.name
    }

    fn capabilities(&self) -> Capabilities {
        // Presigning is a capability of the backend; a store opened without
        // public_url and signing_secret answers presign with InvalidConfig.
        Capabilities::all()
    }

    async fn put(&self, key: &Key, body: Body, options: PutOptions) -> Result<PutResult> {
        let ctx = self.ctx(Operation::Put, key);
        let path = layout::object_path(key);
        if options.mode == WriteMode::CreateNew {
            // Fail before reading a large body; link(2) decides for real.
            let probe = path.clone();
            let taken = self
                .blocking(move |inner| Ok(inner.dir.metadata(&probe).is_ok()))
                .await
                .map_err(&ctx)?;
            if taken {
                return Err(ctx(Error::new(
                    ErrorKind::AlreadyExists,
                    "an object already exists at this key",
                )));
            }
        }
        match body {
            Body::Bytes(bytes) => self
                .blocking(move |inner| {
                    let mut temp = inner.create_temp(&path)?;
                    let size = bytes.len() as u64;
                    let crc32c = crc32c::crc32c(&bytes);
                    // A body that fills no write-back window goes to the
                    // file with the trailer, in one system call.
                    let unwritten = if size < writeback::WINDOW {
                        bytes
                    } else {
                        temp.write(&bytes)?;
                        Bytes::new()
                    };
                    let written = Written {
                        temp,
                        unwritten,
                        size,
                        crc32c,
                    };
                    inner.publish(written, options)
                })
                .await
                .map_err(&ctx),
            body => {
                let written = self
                    .write_stream(body.into_stream(), path)
                    .await
                    .map_err(&ctx)?;
                self.blocking(move |inner| inner.publish(written, options))
                    .await
                    .map_err(&ctx)
            }
        }
    }

    async fn get(&self, key: &Key, options: GetOptions) -> Result<GetResult> {
        let ctx = self.ctx(Operation::Get, key);
        let path = layout::object_path(key);
        let verify = self.inner.config.verify_checksums;
        let cached_reads = self.inner.config.cached_reads;
        let cached = if cached_reads {
            self.inner
                .open_for_get_cached(&path, &options, verify)
                .map_err(&ctx)?
        } else {
            None
        };
        let opened = match cached {
            Some(opened) => opened,
            None => self
                .blocking(move |inner| inner.open_for_get(&path, &options, verify))
                .await
                .map_err(&ctx)?,
        };
        let (meta, range, body): (StoredMeta, _, ByteStream) = match opened {
            Opened::Read(meta, range, content) => {
                let body: ByteStream = if content.is_empty() {
                    Box::pin(stream::empty())
                } else {
                    Box::pin(stream::once(async move { Ok(content) }))
                };
                (meta, range, body)
            }
            Opened::Stream(meta, range, file) => {
                let whole = range.start == 0 && range.end == meta.size;
                let expected = (verify && whole).then_some(meta.crc32c);
                let stream = FileStream::start(file, range.clone(), expected, cached_reads);
                let name = self.inner.config.name.clone();
                let key_text = key.as_str().to_owned();
                let body =
                    stream.map_err(move |err| err.context(Operation::Get, &name, Some(&key_text)));
                (meta, range, Box::pin(body) as ByteStream)
            }
        };
        Ok(GetResult {
            meta: meta.into_object_meta(key.clone()),
            range,
            body,
        })
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        let ctx = self.ctx(Operation::Head, key);
        let path = layout::object_path(key);
        let cached = if self.inner.config.cached_reads {
            self.inner.read_meta_cached(&path).map_err(&ctx)?
        } else {
            None
        };
        let stored = match cached {
            Some(stored) => stored,
            None => self
                .blocking(move |inner| {
                    let (file, len) = inner.open_object(&path)?.ok_or_else(not_found)?;
                    StoredMeta::read_from(&file, len)
                })
                .await
                .map_err(ctx)?,
        };
        Ok(stored.into_object_meta(key.clone()))
    }

    async fn exists(&self, key: &Key) -> Result<bool> {
        let ctx = self.ctx(Operation::Head, key);
        let path = layout::object_path(key);
        if self.inner.config.cached_reads {
            match cached::open(&self.inner.dir, &path, true).map_err(|err| ctx(from_io(err)))? {
                Lookup::Found(..) => return Ok(true),
                Lookup::Absent => return Ok(false),
                Lookup::Miss => {}
            }
        }
        self.blocking(move |inner| match inner.dir.metadata(&path) {
            Ok(meta) => Ok(meta.is_file()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(from_io(err)),
        })
        .await
        .map_err(ctx)
    }

    async fn delete(&self, key: &Key) -> Result<bool> {
        let ctx = self.ctx(Operation::Delete, key);
        let path = layout::object_path(key);
        self.blocking(move |inner| {
            let Some(slot) = inner.open_slot(&path, false)? else {
                return Ok(false);
            };
            let removed = Inner::with_object_lock(&slot, |current| {
                if current.is_none() {
                    return Ok(false);
                }
                match slot.folder.remove_file(&slot.name) {
                    Ok(()) => Ok(true),
                    Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
                    Err(err) => Err(from_io(err)),
                }
            })?;
            if removed {
                drop(slot);
                inner.prune_empty_parents(&path);
            }
            Ok(removed)
        })
        .await
        .map_err(ctx)
    }

    fn list(&self, prefix: &Prefix, options: ListOptions) -> ListStream {
        let (sender, receiver) = mpsc::channel::<Result<ListEntry>>(256);
        let inner = self.inner.clone();
        let prefix = prefix.clone();
        tokio::task::spawn_blocking(move || {
            let name = inner.config.name.clone();
            let prefix_text = prefix.as_str().to_owned();
            let walker = Walker::new(&inner.dir, &prefix, &options);
            for item in walker {
                let item =
                    item.map_err(|err| err.context(Operation::List, &name, Some(&prefix_text)));
                let failed = item.is_err();
                if sender.blocking_send(item).is_err() || failed {
                    return;
                }
            }
        });
        Box::pin(stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|item| (item, receiver))
        }))
    }

    async fn copy(&self, from: &Key, to: &Key) -> Result<PutResult> {
        let ctx = self.ctx(Operation::Copy, from);
        let source = layout::object_path(from);
        let target = layout::object_path(to);
        self.blocking(move |inner| {
            let (file, len) = inner
                .open_object(&source)?
                .ok_or_else(|| Error::new(ErrorKind::NotFound, "no object at the source key"))?;
            let meta = StoredMeta::read_from(&file, len)?;
            let mut temp = inner.create_temp(&target)?;
            // std::io::copy uses copy_file_range(2): no bytes pass through
            // user space, and reflinks where the file system has them.
            let copied = io::copy(&mut (&file).take(meta.size), &mut temp.file).map_err(from_io)?;
            if copied != meta.size {
                return Err(Error::new(
                    ErrorKind::Corruption,
                    "the source object file ended early",
                ));
            }
            let mut options = PutOptions::default();
            options.content_type = meta.content_type;
            options.cache_control = meta.cache_control;
            options.user_metadata = meta.user_metadata;
            let written = Written {
                temp,
                unwritten: Bytes::new(),
                size: meta.size,
                crc32c: meta.crc32c,
            };
            inner.publish(written, options)
        })
        .await
        .map_err(ctx)
    }

    async fn rename(&self, from: &Key, to: &Key) -> Result<()> {
        let ctx = self.ctx(Operation::Rename, from);
        let source = layout::object_path(from);
        let target = layout::object_path(to);
        let same = from == to;
        self.blocking(move |inner| {
            let slot = inner
                .open_slot(&source, false)?
                .ok_or_else(|| Error::new(ErrorKind::NotFound, "no object at the source key"))?;
            Inner::with_object_lock(&slot, |current| {
                if current.is_none() {
                    return Err(Error::new(
                        ErrorKind::NotFound,
                        "no object at the source key",
                    ));
                }
                if same {
                    return Ok(());
                }
                inner.rename_into(&source, &target)
            })?;
            if !same {
                if inner.config.fsync && inner.config.fsync_folder {
                    inner.sync_parent(&target)?;
                }
                drop(slot);
                inner.prune_empty_parents(&source);
            }
            Ok(())
        })
        .await
        .map_err(ctx)
    }

    async fn presign(
        &self,
        method: PresignMethod,
        key: &Key,
        expires_in: Duration,
        options: PresignOptions,
    ) -> Result<PresignedRequest> {
        let ctx = self.ctx(Operation::Presign, key);
        let Some(signer) = &self.inner.signer else {
            return Err(ctx(Error::new(
                ErrorKind::InvalidConfig,
                "presigning needs public_url and signing_secret in the local provider's configuration",
            )));
        };
        let max = self.inner.config.max_presign_expiry();
        if expires_in > max || expires_in.is_zero() {
            return Err(ctx(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "a presigned URL may live between 1 second and {} seconds; {} were asked",
                    max.as_secs(),
                    expires_in.as_secs()
                ),
            )));
        }
        signer.sign(method, key, expires_in, &options).map_err(ctx)
    }
}

fn resolve(options: &GetOptions, size: u64) -> Result<std::ops::Range<u64>> {
    match options.range {
        Some(range) => range.resolve(size),
        None => Ok(0..size),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail by panicking.
mod tests {
    use super::*;

    /// A rename is durable only once its folder is flushed; the folder
    /// handle must allow that (an `O_PATH` one fails with `EBADF`, which
    /// went unnoticed while the result was ignored).
    #[test]
    fn the_folders_of_objects_can_be_flushed() {
        let folder = tempfile::tempdir().unwrap();
        let store = LocalStorage::new(folder.path()).unwrap();
        for key in ["top", "nested/deeper/object"] {
            let path = layout::object_path(&Key::new(key).unwrap());
            if let Some(parent) = path.parent() {
                store.inner.dir.create_dir_all(parent).unwrap();
            }
            store.inner.sync_parent(&path).unwrap();
        }
    }

    /// A writer that takes at most three bytes a call and is interrupted
    /// every other call, as a slow pipe or a signal would make it.
    struct Trickle {
        written: Vec<u8>,
        calls: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls.is_multiple_of(2) {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let take = buf.len().min(3);
            self.written.extend_from_slice(&buf[..take]);
            Ok(take)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_vectored_write_taken_in_pieces_writes_everything_in_order() {
        for (first, second) in [
            (&b"content"[..], &b"{trailer}"[..]),
            (b"", b"{trailer}"),
            (b"ab", b"c"),
        ] {
            let mut sink = Trickle {
                written: Vec::new(),
                calls: 0,
            };
            write_all_vectored(&mut sink, first, second).unwrap();
            assert_eq!(sink.written, [first, second].concat());
        }
    }
}
