//! Ordered listing of the folder tree.
//!
//! Keys come out in byte order without reading the whole tree first: each
//! folder's entries are sorted by the key text they stand for (an object
//! by its key, a folder by its key prefix ending in `/`), and folders are
//! walked depth-first in that order. Sorting a folder by `name/` is exact
//! because every key under it starts with `name/` and no sibling name
//! contains `/`. Long segments split into continuation folders are merged
//! into their parent's entries before sorting, so the order holds for
//! them too.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use cap_std::fs::Dir;
use storage_core::{Error, ErrorKind, Key, ListEntry, ListOptions, Prefix, Result};

use crate::error::from_io;
use crate::format::StoredMeta;
use crate::layout::{self, EntryName};

/// One entry of a folder, named by the key text it stands for.
#[derive(Debug)]
enum Item {
    Object { key: String, path: PathBuf },
    Folder { prefix: String, path: PathBuf },
}

impl Item {
    fn name(&self) -> &str {
        match self {
            Item::Object { key, .. } => key,
            Item::Folder { prefix, .. } => prefix,
        }
    }
}

/// Walks the objects under a prefix, in key order.
pub(crate) struct Walker<'a> {
    dir: &'a Dir,
    prefix: String,
    delimiter: bool,
    start_after: Option<String>,
    stack: Vec<VecDeque<Item>>,
    started: bool,
}

impl<'a> Walker<'a> {
    pub(crate) fn new(dir: &'a Dir, prefix: &Prefix, options: &ListOptions) -> Self {
        Self {
            dir,
            prefix: prefix.as_str().to_owned(),
            delimiter: options.delimiter,
            start_after: options.start_after.as_ref().map(|k| k.as_str().to_owned()),
            stack: Vec::new(),
            started: false,
        }
    }

    fn start(&mut self) -> Result<()> {
        // The full segments of the prefix name a folder; the rest filters
        // that folder's entries.
        let (folders, folder_text) = match self.prefix.rfind('/') {
            Some(slash) => (&self.prefix[..slash], &self.prefix[..=slash]),
            None => ("", ""),
        };
        let path = if folders.is_empty() {
            PathBuf::new()
        } else {
            layout::directory_path(folders.split('/'))
        };
        let mut items = read_folder(self.dir, &path, folder_text)?;
        let prefix = self.prefix.clone();
        items.retain(|item| item.name().starts_with(&prefix));
        self.stack.push(items.into());
        Ok(())
    }

    /// Whether everything under a folder named `prefix` sorts at or before
    /// `start_after`, so the folder can be skipped unread.
    fn wholly_before_start(&self, prefix: &str) -> bool {
        match &self.start_after {
            Some(after) => prefix <= after.as_str() && !after.starts_with(prefix),
            None => false,
        }
    }

    fn after_start(&self, name: &str) -> bool {
        self.start_after.as_deref().is_none_or(|after| name > after)
    }

    fn next_entry(&mut self) -> Result<Option<ListEntry>> {
        if !self.started {
            self.started = true;
            self.start()?;
        }
        loop {
            let Some(level) = self.stack.last_mut() else {
                return Ok(None);
            };
            let Some(item) = level.pop_front() else {
                self.stack.pop();
                continue;
            };
            match item {
                Item::Object { key, path } => {
                    if !self.after_start(&key) {
                        continue;
                    }
                    if let Some(meta) = read_object(self.dir, &path, &key)? {
                        return Ok(Some(ListEntry::Object(meta)));
                    }
                }
                Item::Folder { prefix, path } => {
                    if self.wholly_before_start(&prefix) {
                        continue;
                    }
                    if self.delimiter {
                        if self.after_start(&prefix) && holds_an_object(self.dir, &path)? {
                            return Ok(Some(ListEntry::Prefix(prefix)));
                        }
                        continue;
                    }
                    let items = read_folder(self.dir, &path, &prefix)?;
                    self.stack.push(items.into());
                }
            }
        }
    }
}

impl Iterator for Walker<'_> {
    type Item = Result<ListEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_entry() {
            Ok(Some(entry)) => Some(Ok(entry)),
            Ok(None) => None,
            Err(err) => {
                // End the walk after an error.
                self.stack.clear();
                Some(Err(err))
            }
        }
    }
}

/// The entries of the folder at `path`, whose keys start with `text`,
/// sorted by key text. A missing folder has no entries.
fn read_folder(dir: &Dir, path: &Path, text: &str) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    collect_folder(dir, path, text, &mut items)?;
    items.sort_unstable_by(|a, b| a.name().cmp(b.name()));
    Ok(items)
}

fn collect_folder(dir: &Dir, path: &Path, text: &str, items: &mut Vec<Item>) -> Result<()> {
    let entries = match open_folder(dir, path) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotADirectory => return Ok(()),
        Err(err) => return Err(from_io(err)),
    };
    for entry in entries {
        let entry = entry.map_err(from_io)?;
        // Never follow or list symlinks: this backend writes none.
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_symlink() {
            continue;
        }
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str() else {
            continue;
        };
        let child = path.join(name);
        match layout::classify(name) {
            Some(EntryName::Object(piece)) if file_type.is_file() => items.push(Item::Object {
                key: format!("{text}{piece}"),
                path: child,
            }),
            Some(EntryName::Directory(segment)) if file_type.is_dir() => items.push(Item::Folder {
                prefix: format!("{text}{segment}/"),
                path: child,
            }),
            Some(EntryName::Continuation(piece)) if file_type.is_dir() => {
                collect_folder(dir, &child, &format!("{text}{piece}"), items)?
            }
            None if file_type.is_file() && layout::is_temp(name) => remove_if_stale(dir, &child),
            _ => {}
        }
    }
    Ok(())
}

/// Removes a temporary file left by a crash: one untouched for
/// [`layout::STALE_TEMP`] (a write in flight touches its file with every
/// chunk). Temporary files live beside their objects, so listings are
/// where leftovers are met; best effort, so that listing a read-only
/// folder still works.
fn remove_if_stale(dir: &Dir, path: &Path) {
    let stale = dir
        .metadata(path)
        .and_then(|meta| meta.modified())
        .map(|modified| {
            SystemTime::now()
                .duration_since(modified.into_std())
                .unwrap_or_default()
                > layout::STALE_TEMP
        })
        .unwrap_or(false);
    if stale && dir.remove_file(path).is_ok() {
        tracing::debug!("removed a temporary file left by a crash");
    }
}

fn open_folder(dir: &Dir, path: &Path) -> io::Result<cap_std::fs::ReadDir> {
    if path.as_os_str().is_empty() {
        dir.entries()
    } else {
        dir.read_dir(path)
    }
}

/// Whether any object lives under the folder at `path`, at any depth.
fn holds_an_object(dir: &Dir, path: &Path) -> Result<bool> {
    let entries = match open_folder(dir, path) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(err) => return Err(from_io(err)),
    };
    for entry in entries {
        let entry = entry.map_err(from_io)?;
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str() else {
            continue;
        };
        match layout::classify(name) {
            Some(EntryName::Object(_)) if file_type.is_file() => return Ok(true),
            Some(EntryName::Directory(_) | EntryName::Continuation(_))
                if file_type.is_dir() && holds_an_object(dir, &path.join(name))? =>
            {
                return Ok(true);
            }
            _ => {}
        }
    }
    Ok(false)
}

/// Reads a listed object's metadata. An object deleted since the folder
/// was read is skipped; a file that is not a valid object is skipped with
/// a warning rather than failing the whole listing.
fn read_object(dir: &Dir, path: &Path, key: &str) -> Result<Option<storage_core::ObjectMeta>> {
    let file = match dir.open(path) {
        Ok(file) => file.into_std(),
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(from_io(err)),
    };
    let len = file.metadata().map_err(from_io)?.len();
    let meta = match StoredMeta::read_from(&file, len) {
        Ok(meta) => meta,
        Err(err) if err.kind() == ErrorKind::Corruption => {
            tracing::warn!(key, error = %err, "skipping a file that is not a valid object");
            return Ok(None);
        }
        Err(err) => return Err(err),
    };
    let key = Key::new(key).map_err(|err| {
        Error::new(
            ErrorKind::Corruption,
            "a file name decodes to an invalid key",
        )
        .with_source(err)
    })?;
    Ok(Some(meta.into_object_meta(key)))
}
