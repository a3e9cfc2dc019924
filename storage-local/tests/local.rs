//! Behaviour of the local backend beyond the shared kit: the sandbox, the
//! on-disk layout, crash safety, corruption detection and configuration
//! errors.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use futures::TryStreamExt;
use proptest::prelude::*;
use storage_core::conformance::pattern;
use storage_core::{
    Body, Bytes, ErrorKind, GetOptions, Key, ListEntry, ListOptions, Prefix, PresignMethod,
    PutOptions, Storage,
};
use storage_local::{LocalConfig, LocalStorage};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Every file and folder under `dir`, relative to it.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).expect("readable folder") {
            let entry = entry.expect("an entry");
            let path = entry.path();
            out.push(path.strip_prefix(dir).expect("inside").to_path_buf());
            if entry.file_type().expect("a type").is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

async fn names(store: &LocalStorage, prefix: &str, options: ListOptions) -> Vec<String> {
    let prefix = Prefix::new(prefix).expect("a prefix");
    let entries: Vec<ListEntry> = store
        .list(&prefix, options)
        .try_collect()
        .await
        .expect("the listing");
    entries.iter().map(|e| e.name().to_owned()).collect()
}

/// An independent list of hostile keys: traversal in many encodings,
/// absolute paths, control characters, over-long keys.
const HOSTILE: &[&str] = &[
    "..",
    "../",
    "../etc/passwd",
    "a/../../b",
    "a/./b",
    "./a",
    "/etc/passwd",
    "//server/share",
    "\\\\server\\share",
    "..\\..\\windows",
    "a\\b",
    "C:\\Windows\\win.ini",
    "C:/Windows/win.ini",
    "c:",
    "%2e%2e/etc",
    "%2E%2E%2Fetc",
    "..%2fetc",
    "..%2Fetc",
    "%2e%2e%5cetc",
    "..%5c..%5cetc",
    "%252e%252e/etc",
    "%252e%252e%252fetc",
    "%25252e%25252e/etc",
    "%c0%ae%c0%ae/etc",
    "%c0%af",
    "%e0%80%ae%e0%80%ae/etc",
    "%uff0e%uff0e/etc",
    "\u{FF0E}\u{FF0E}/etc",
    "\u{FF0E}\u{FF0E}\u{FF0F}etc",
    "a\u{2215}..\u{2215}b",
    "a\0b",
    "a%00b",
    "a\nb",
    "a\rb",
    "a\tb",
    "\u{7f}",
    "a\u{85}b",
    "a\u{9b}b",
    "a/",
    "a//b",
    "",
];

#[test]
fn hostile_keys_are_refused_and_nothing_lands_outside_the_root() {
    let folder = tempfile::tempdir().expect("a folder");
    let root = folder.path().join("root");
    let store = LocalStorage::new(&root).expect("the store opens");
    let too_long = "k".repeat(1025);
    let mut refused = 0;
    for raw in HOSTILE.iter().copied().chain([too_long.as_str()]) {
        // `%uff0e` is not a valid escape and decodes to nothing: it is an
        // ordinary (odd) key, and it must stay inside the root.
        if let Ok(key) = Key::new(raw) {
            assert_eq!(raw, "%uff0e%uff0e/etc", "hostile key {raw:?} was accepted");
            runtime()
                .block_on(store.put(&key, "x".into(), PutOptions::default()))
                .expect("an odd key is stored inside the root");
            continue;
        }
        refused += 1;
    }
    assert_eq!(refused, HOSTILE.len());
    // Keys that merely look like traversal are ordinary keys, inside the root.
    let runtime = runtime();
    for raw in [
        "..a", "a..", "...", "a/..b/c", ".../x", "~", "~tmp/x", "a~", "x.meta", "%", "%7E",
    ] {
        let key = Key::new(raw).expect("a valid key");
        runtime
            .block_on(store.put(&key, raw.into(), PutOptions::default()))
            .expect("stored");
        let got = runtime
            .block_on(async { store.get(&key, GetOptions::default()).await?.bytes().await })
            .expect("read back");
        assert_eq!(&got[..], raw.as_bytes());
    }
    let outside: Vec<PathBuf> = tree(folder.path())
        .into_iter()
        .filter(|p| !p.starts_with("root"))
        .collect();
    assert!(outside.is_empty(), "written outside the root: {outside:?}");
}

#[test]
fn a_symlink_planted_in_the_root_cannot_lead_outside() {
    // Both read paths: the one answered from the kernel's caches on the
    // calling task, and the one on the blocking pool.
    for cached_reads in [true, false] {
        symlinks_cannot_lead_outside(cached_reads);
    }
}

fn symlinks_cannot_lead_outside(cached_reads: bool) {
    let folder = tempfile::tempdir().expect("a folder");
    let root = folder.path().join("root");
    let outside = folder.path().join("outside");
    std::fs::create_dir_all(&outside).expect("outside folder");
    std::fs::write(outside.join("secret~"), b"top secret").expect("a secret");
    let config = LocalConfig::new(&root).with_cached_reads(cached_reads);
    let store = LocalStorage::open(config).expect("the store opens");
    // The folder for keys `evil/...` and the object file for key `link`.
    std::os::unix::fs::symlink(&outside, root.join("evil")).expect("a symlink");
    std::os::unix::fs::symlink(outside.join("secret~"), root.join("link~")).expect("a symlink");
    let runtime = runtime();
    runtime.block_on(async {
        for key in ["evil/secret", "link"] {
            let key = Key::new(key).unwrap();
            let read = store.get(&key, GetOptions::default()).await;
            assert!(read.is_err(), "read through a symlink: {key}");
            let head = store.head(&key).await;
            assert!(head.is_err(), "head through a symlink: {key}");
            let exists = store.exists(&key).await;
            assert!(
                !matches!(exists, Ok(true)),
                "exists through a symlink: {key}"
            );
        }
        let write = store
            .put(
                &Key::new("evil/planted").unwrap(),
                "x".into(),
                PutOptions::default(),
            )
            .await;
        let err = write.expect_err("a write through a symlinked folder succeeded");
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
        assert!(names(&store, "", ListOptions::default()).await.is_empty());
    });
    let escaped: Vec<PathBuf> = tree(&outside);
    assert_eq!(
        escaped,
        [PathBuf::from("secret~")],
        "something was written outside"
    );
}

#[test]
fn temporary_and_foreign_files_are_never_listed() {
    let folder = tempfile::tempdir().expect("a folder");
    let store = LocalStorage::new(folder.path()).expect("the store opens");
    // Writes in flight, beside their objects: in the root, and alone in a
    // folder (which must not show as a common prefix).
    std::fs::write(folder.path().join("0123.~tmp"), b"half").expect("a temp file");
    std::fs::create_dir_all(folder.path().join("pending")).expect("a folder");
    std::fs::write(folder.path().join("pending/4567.~tmp"), b"half").expect("a temp file");
    std::fs::write(folder.path().join("notes.txt"), b"by hand").expect("a foreign file");
    std::fs::create_dir_all(folder.path().join("empty")).expect("an empty folder");
    let runtime = runtime();
    runtime.block_on(async {
        store
            .put(
                &Key::new("real").unwrap(),
                "x".into(),
                PutOptions::default(),
            )
            .await
            .expect("a put");
        assert_eq!(names(&store, "", ListOptions::default()).await, ["real"]);
        let delimited = names(&store, "", ListOptions::default().with_delimiter()).await;
        assert_eq!(
            delimited,
            ["real"],
            "an empty folder or a folder of temporary files was listed"
        );
    });
    assert!(
        folder.path().join("0123.~tmp").exists(),
        "a fresh temporary file (a write in flight) was removed"
    );
}

#[test]
fn deletes_and_renames_remove_the_folders_they_empty_and_no_others() {
    let folder = tempfile::tempdir().expect("a folder");
    let store = LocalStorage::new(folder.path()).expect("the store opens");
    let key = |text: &str| Key::new(text).unwrap();
    let exists = |path: &str| folder.path().join(path).exists();
    runtime().block_on(async {
        for name in ["a/b/1", "a/b/2", "a/c/3"] {
            store
                .put(&key(name), "x".into(), PutOptions::default())
                .await
                .expect("a put");
        }
        assert!(store.delete(&key("a/b/1")).await.expect("a delete"));
        assert!(
            exists("a/b"),
            "a folder still holding an object was removed"
        );
        assert!(store.delete(&key("a/b/2")).await.expect("a delete"));
        assert!(!exists("a/b"), "the folder a delete emptied is still there");
        assert!(exists("a/c"), "a sibling folder was removed");
        store
            .rename(&key("a/c/3"), &key("top"))
            .await
            .expect("a rename");
        assert!(!exists("a"), "the folders a rename emptied are still there");
        assert!(exists("top~"));
    });
}

#[test]
fn concurrent_deletes_leave_no_empty_folder_behind() {
    // Each delete checks its own folder after its own unlink, so whichever
    // removes a folder's last object finds it empty, however deletes in
    // one folder interleave.
    let folder = tempfile::tempdir().expect("a folder");
    let store = LocalStorage::new(folder.path()).expect("the store opens");
    let keys: Vec<Key> = (0..400)
        .map(|i| Key::new(format!("f/{:02}/{i:03}", i % 8)).unwrap())
        .collect();
    runtime().block_on(async {
        for key in &keys {
            store
                .put(key, "x".into(), PutOptions::default())
                .await
                .expect("a put");
        }
        let mut tasks = tokio::task::JoinSet::new();
        for part in keys.chunks(25) {
            let (store, part) = (store.clone(), part.to_vec());
            tasks.spawn(async move {
                for key in part {
                    assert!(store.delete(&key).await.expect("a delete"));
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("a delete task");
        }
    });
    assert_eq!(tree(folder.path()), Vec::<PathBuf>::new());
}

#[test]
fn conditional_increments_from_many_tasks_lose_no_update() {
    // Compare-and-swap on one key: each task reads the counter and writes
    // it back plus one if its etag still matches, retrying when it lost.
    // A replacement that slipped between another's check and its rename
    // would lose an increment. The counter is created by a plain put, the
    // path that links a new object without taking the lock.
    let folder = tempfile::tempdir().expect("a folder");
    let store = LocalStorage::open(LocalConfig::new(folder.path()).with_fsync(false))
        .expect("the store opens");
    let key = Key::new("counters/hits").unwrap();
    const TASKS: u32 = 8;
    const EACH: u32 = 25;
    runtime().block_on(async {
        store
            .put(&key, "0".into(), PutOptions::default())
            .await
            .expect("the counter is created");
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..TASKS {
            let (store, key) = (store.clone(), key.clone());
            tasks.spawn(async move {
                let mut done = 0;
                while done < EACH {
                    let read = store.get(&key, GetOptions::default()).await.expect("a get");
                    let etag = read.meta.etag.clone().expect("an etag");
                    let text = read.bytes().await.expect("the counter's bytes");
                    let value: u32 = std::str::from_utf8(&text).unwrap().parse().unwrap();
                    let next = (value + 1).to_string();
                    match store
                        .put(&key, next.into(), PutOptions::default().if_match(etag))
                        .await
                    {
                        Ok(_) => done += 1,
                        Err(err) if err.kind() == ErrorKind::PreconditionFailed => {}
                        Err(err) => panic!("an update failed: {err}"),
                    }
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("an incrementing task");
        }
        let total = store.get(&key, GetOptions::default()).await.unwrap();
        let total = total.bytes().await.unwrap();
        assert_eq!(&total[..], (TASKS * EACH).to_string().as_bytes());
    });
}

/// A fresh store holding one object, `docs/a`, and a runtime.
fn store_with_docs_a() -> (
    tempfile::TempDir,
    LocalStorage,
    tokio::runtime::Runtime,
    Key,
) {
    let folder = tempfile::tempdir().expect("a folder");
    let store = LocalStorage::new(folder.path()).expect("the store opens");
    let runtime = runtime();
    let key = Key::new("docs/a").unwrap();
    runtime
        .block_on(store.put(&key, "x".into(), PutOptions::default()))
        .expect("a put");
    (folder, store, runtime, key)
}

#[test]
fn stale_temporary_files_are_swept_by_listings() {
    let (folder, store, runtime, _) = store_with_docs_a();
    let stale = folder.path().join("docs/0000000000000001.~tmp");
    let fresh = folder.path().join("docs/0000000000000002.~tmp");
    std::fs::write(&stale, b"left by a crash").expect("stale");
    std::fs::write(&fresh, b"in flight").expect("fresh");
    let old = SystemTime::now() - Duration::from_secs(2 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .and_then(|f| f.set_modified(old))
        .expect("an old mtime");
    let listed = runtime.block_on(names(&store, "", ListOptions::default()));
    assert_eq!(listed, ["docs/a"]);
    assert!(!stale.exists(), "a stale temporary file survived a listing");
    assert!(fresh.exists(), "a write in flight lost its temporary file");
}

#[test]
fn a_failed_write_leaves_no_temporary_file() {
    let (folder, store, runtime, key) = store_with_docs_a();
    let refused = runtime.block_on(store.put(&key, "y".into(), PutOptions::default().create_new()));
    assert_eq!(
        refused.expect_err("create-only over an object").kind(),
        ErrorKind::AlreadyExists
    );
    let failing = futures::stream::iter([
        Ok(storage_core::Bytes::from_static(b"partial")),
        Err(storage_core::Error::new(
            ErrorKind::Other,
            "the source broke",
        )),
    ]);
    let broken =
        runtime.block_on(store.put(&key, Body::from_stream(failing), PutOptions::default()));
    assert!(broken.is_err(), "a broken stream was published");
    let left = tree(folder.path());
    assert_eq!(left, [PathBuf::from("docs"), PathBuf::from("docs/a~")]);
}

/// A folder on the disk the tests were built on (beside the test binary),
/// where unnamed files work, whatever file system `/tmp` is.
fn folder_on_the_build_disk() -> tempfile::TempDir {
    let exe = std::env::current_exe().expect("the test binary");
    tempfile::tempdir_in(exe.parent().expect("its folder")).expect("a folder")
}

/// The file a put in flight is writing under `folder`, found among this
/// process's open files (`/proc/self/fd` shows an unnamed file as
/// `<folder>/#<inode> (deleted)`); waits for it to be created.
#[cfg(target_os = "linux")]
fn file_being_written(folder: &Path) -> String {
    let inside = format!("{}/", folder.display());
    for _ in 0..2000 {
        for entry in std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd") {
            let Ok(target) = std::fs::read_link(entry.expect("an open file").path()) else {
                continue;
            };
            let target = target.to_string_lossy().into_owned();
            if target.starts_with(&inside)
                && (target.ends_with(".~tmp") || target.ends_with(" (deleted)"))
            {
                return target;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("no put started writing under {folder:?}");
}

/// A put in flight writes an unnamed file, which holds no place in its
/// folder: a delete of the folder's last object prunes the folder, and
/// the put then lands in the folder made again. With unnamed files off,
/// the put's temporary name keeps the folder.
#[cfg(target_os = "linux")]
#[test]
fn a_put_in_flight_lands_after_a_delete_prunes_its_folder() {
    for unnamed in [true, false] {
        let folder = folder_on_the_build_disk();
        let root = folder.path().canonicalize().expect("the root");
        let config = LocalConfig::new(&root).with_unnamed_temp_files(unnamed);
        let store = LocalStorage::open(config).expect("the store opens");
        let runtime = runtime();
        let (old, new) = (Key::new("docs/old").unwrap(), Key::new("docs/new").unwrap());
        runtime
            .block_on(store.put(&old, "x".into(), PutOptions::default()))
            .expect("a put");
        let (chunks, body) = futures::channel::mpsc::unbounded();
        let put = runtime.spawn({
            let (store, new) = (store.clone(), new.clone());
            async move {
                store
                    .put(&new, Body::from_stream(body), PutOptions::default())
                    .await
            }
        });
        chunks
            .unbounded_send(Ok(Bytes::from_static(b"written before, ")))
            .expect("the put reads");
        let writing = file_being_written(&root.join("docs"));
        let suffix = if unnamed { " (deleted)" } else { ".~tmp" };
        assert!(writing.ends_with(suffix), "unnamed {unnamed}: {writing}");
        assert!(runtime.block_on(store.delete(&old)).expect("a delete"));
        assert_eq!(
            root.join("docs").exists(),
            !unnamed,
            "unnamed {unnamed}: the folder after its last object's delete"
        );
        chunks
            .unbounded_send(Ok(Bytes::from_static(b"and after")))
            .expect("the put reads");
        drop(chunks);
        runtime
            .block_on(put)
            .expect("the put task")
            .expect("the put lands");
        let content = runtime
            .block_on(async { store.get(&new, GetOptions::default()).await?.bytes().await })
            .expect("the object reads");
        assert_eq!(&content[..], b"written before, and after");
        assert_eq!(
            tree(&root),
            [PathBuf::from("docs"), PathBuf::from("docs/new~")]
        );
    }
}

/// A FIFO planted under an object's file name (possible only by writing
/// into the folder behind the store's back) is no object, and stalls
/// nothing: opening one for reading would wait for a writer, on an async
/// thread when reads are answered from the caches.
#[cfg(target_os = "linux")]
#[test]
fn a_fifo_under_an_object_name_is_no_object_and_stalls_nothing() {
    use rustix::fs::{CWD, FileType, Mode};
    for cached_reads in [true, false] {
        let folder = folder_on_the_build_disk();
        let config = LocalConfig::new(folder.path()).with_cached_reads(cached_reads);
        let store = LocalStorage::open(config).expect("the store opens");
        std::fs::create_dir(folder.path().join("docs")).expect("a folder");
        let fifo = folder.path().join("docs/a~");
        rustix::fs::mknodat(CWD, &fifo, FileType::Fifo, Mode::from_raw_mode(0o644), 0)
            .expect("a FIFO");
        let key = Key::new("docs/a").unwrap();
        let (done, finished) = std::sync::mpsc::channel();
        let worker = std::thread::spawn({
            let (store, key) = (store.clone(), key.clone());
            move || {
                let runtime = runtime();
                let get = runtime.block_on(store.get(&key, GetOptions::default()));
                let head = runtime.block_on(store.head(&key));
                let put = runtime.block_on(store.put(&key, "x".into(), PutOptions::default()));
                let read = runtime.block_on(async {
                    store.get(&key, GetOptions::default()).await?.bytes().await
                });
                done.send((
                    get.map(drop).map_err(|err| err.kind()),
                    head.map(drop).map_err(|err| err.kind()),
                    put.map(drop).map_err(|err| err.kind()),
                    read.map_err(|err| err.kind()),
                ))
                .expect("the test waits");
            }
        });
        let (get, head, put, read) = finished
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("cached_reads {cached_reads}: an operation stalled"));
        worker.join().expect("the worker");
        assert_eq!(get, Err(ErrorKind::NotFound), "cached_reads {cached_reads}");
        assert_eq!(
            head,
            Err(ErrorKind::NotFound),
            "cached_reads {cached_reads}"
        );
        assert_eq!(put, Ok(()), "a put replaces the FIFO");
        assert_eq!(read.as_deref(), Ok(&b"x"[..]));
    }
}

/// Puts racing to create one key all succeed, one of them wins whole, and
/// no temporary file is left: with unnamed files, the losers of the race
/// to link the free name replace the winner's object instead.
#[test]
fn racing_puts_of_a_new_key_leave_one_whole_object() {
    for unnamed in [true, false] {
        let folder = folder_on_the_build_disk();
        let config = LocalConfig::new(folder.path()).with_unnamed_temp_files(unnamed);
        let store = LocalStorage::open(config).expect("the store opens");
        runtime().block_on(async {
            for round in 0..40 {
                let key = Key::new(format!("race/{round}")).unwrap();
                let mut tasks = tokio::task::JoinSet::new();
                for writer in 0..4u8 {
                    let (store, key) = (store.clone(), key.clone());
                    tasks.spawn(async move {
                        let body = Body::from(vec![writer; 1000]);
                        store.put(&key, body, PutOptions::default()).await
                    });
                }
                while let Some(done) = tasks.join_next().await {
                    done.expect("a put task").expect("a racing put");
                }
                let content = store
                    .get(&key, GetOptions::default())
                    .await
                    .expect("the object")
                    .bytes()
                    .await
                    .expect("its bytes");
                assert_eq!(content.len(), 1000, "unnamed {unnamed}");
                assert!(content.iter().all(|b| *b == content[0] && *b < 4));
            }
        });
        let files = tree(&folder.path().join("race"));
        assert_eq!(files.len(), 40, "unnamed {unnamed}: {files:?}");
    }
}

fn flip_a_content_byte(root: &Path, file_name: &str, at: u64) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::options()
        .read(true)
        .write(true)
        .open(root.join(file_name))
        .expect("the object file");
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, at).expect("a byte");
    file.write_all_at(&[byte[0] ^ 0xff], at).expect("flipped");
}

#[test]
fn a_damaged_object_fails_with_corruption_when_checksums_are_verified() {
    let folder = tempfile::tempdir().expect("a folder");
    let config = LocalConfig::new(folder.path()).with_verify_checksums(true);
    let store = LocalStorage::open(config).expect("the store opens");
    let runtime = runtime();
    runtime.block_on(async {
        for (name, len) in [("small", 1000usize), ("large", 5 << 20)] {
            let key = Key::new(name).unwrap();
            store
                .put(&key, pattern(1, len).into(), PutOptions::default())
                .await
                .expect("a put");
            flip_a_content_byte(folder.path(), &format!("{name}~"), (len / 2) as u64);
            let read = async { store.get(&key, GetOptions::default()).await?.bytes().await };
            let err = read
                .await
                .expect_err("a damaged object was read without error");
            assert_eq!(err.kind(), ErrorKind::Corruption, "{name}: {err}");
            assert_eq!(err.key(), Some(name));
        }
    });
}

#[test]
fn presigning_without_a_secret_is_a_configuration_error() {
    let folder = tempfile::tempdir().expect("a folder");
    let store = LocalStorage::new(folder.path()).expect("the store opens");
    let key = Key::new("k").unwrap();
    let err = runtime()
        .block_on(store.presign(
            PresignMethod::Get,
            &key,
            Duration::from_secs(60),
            Default::default(),
        ))
        .expect_err("presigned without a secret");
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("signing_secret"), "{err}");

    let url = "http://127.0.0.1/files".parse().unwrap();
    let mut half = LocalConfig::new(folder.path());
    half.public_url = Some(url);
    let err = LocalStorage::open(half).expect_err("opened half configured");
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(
        err.to_string().contains("signing_secret is missing"),
        "{err}"
    );
}

#[test]
fn an_expiry_beyond_the_maximum_is_refused() {
    let folder = tempfile::tempdir().expect("a folder");
    let url = "http://127.0.0.1/files".parse().unwrap();
    let config = LocalConfig::new(folder.path()).with_presign(url, "0123456789abcdef");
    let store = LocalStorage::open(config).expect("the store opens");
    let key = Key::new("k").unwrap();
    let eight_days = Duration::from_secs(8 * 24 * 3600);
    let err = runtime()
        .block_on(store.presign(PresignMethod::Get, &key, eight_days, Default::default()))
        .expect_err("an eight-day URL");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn an_unwritable_root_is_a_configuration_error_naming_it() {
    let folder = tempfile::tempdir().expect("a folder");
    let file = folder.path().join("a-file");
    std::fs::write(&file, b"x").expect("a file");
    let mut config = LocalConfig::new(file.join("root"));
    config.name = "uploads".into();
    let err = LocalStorage::open(config).expect_err("opened a root under a file");
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    let text = err.to_string();
    assert!(
        text.contains("uploads") && text.contains("a-file"),
        "{text}"
    );
}

/// Keys with long segments (split into continuation folders on disk), and
/// names that sort around `/`, list in exact byte order.
fn listing_key() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        4 => "[a-c]{1,3}",
        1 => "[-.0/]".prop_map(|s| format!("x{s}")).prop_filter("no slash", |s| !s.contains('/')),
        1 => "[ab~%]{150,400}",
    ];
    prop::collection::vec(segment, 1..4)
        .prop_map(|segments| segments.join("/"))
        .prop_filter("a valid key", |k| Key::new(k.clone()).is_ok())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn listings_match_a_sorted_model(keys in prop::collection::btree_set(listing_key(), 1..25)) {
        let folder = tempfile::tempdir().expect("a folder");
        let store = LocalStorage::open(LocalConfig::new(folder.path()).with_fsync(false)).expect("opens");
        let runtime = runtime();
        runtime.block_on(async {
            for key in &keys {
                store.put(&Key::new(key.clone()).unwrap(), Body::from(key.clone()), PutOptions::default())
                    .await.expect("a put");
            }
            let listed = names(&store, "", ListOptions::default()).await;
            let expected: Vec<String> = keys.iter().cloned().collect();
            assert_eq!(listed, expected);

            let delimited = names(&store, "", ListOptions::default().with_delimiter()).await;
            let model: BTreeSet<String> = keys
                .iter()
                .map(|k| match k.find('/') {
                    Some(i) => k[..=i].to_owned(),
                    None => k.clone(),
                })
                .collect();
            assert_eq!(delimited, model.into_iter().collect::<Vec<_>>());

            let first = keys.iter().next().cloned().unwrap_or_default();
            let after = names(
                &store,
                "",
                ListOptions::default().with_start_after(Key::new(first.clone()).unwrap()),
            )
            .await;
            let expected_after: Vec<String> = keys.iter().filter(|k| **k > first).cloned().collect();
            assert_eq!(after, expected_after);
        });
    }
}

// ---------------------------------------------------------------------------
// Crash safety: a writer process killed with SIGKILL at random moments.

const CRASH_ROOT_VAR: &str = "STORAGE_LOCAL_CRASH_ROOT";

/// An object's content describes itself: its length and the seed of the
/// pattern that follows, so a torn object is detected without a model.
fn self_describing(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + len);
    out.extend_from_slice(&(len as u64).to_le_bytes());
    out.extend_from_slice(&seed.to_le_bytes());
    out.extend_from_slice(&pattern(seed, len));
    out
}

fn is_whole(content: &[u8]) -> bool {
    if content.len() < 16 {
        return false;
    }
    let len = u64::from_le_bytes(content[..8].try_into().unwrap()) as usize;
    let seed = u64::from_le_bytes(content[8..16].try_into().unwrap());
    content.len() == 16 + len && content[16..] == pattern(seed, len)[..]
}

/// Writes self-describing objects (overwrites, creates, streamed bodies,
/// renames and deletes) into `root`, for at most `iterations`.
async fn write_objects(root: &Path, iterations: u64) {
    let store = LocalStorage::new(root).expect("the store opens");
    for i in 0..iterations {
        let key = Key::new(format!("objects/{}", i % 6)).unwrap();
        let len = (i as usize * 7919) % (3 << 20);
        let content = self_describing(i, len);
        let body = if i % 2 == 0 {
            Body::from(content)
        } else {
            let chunks: Vec<storage_core::Result<storage_core::Bytes>> = content
                .chunks(100_000)
                .map(|c| Ok(storage_core::Bytes::copy_from_slice(c)))
                .collect();
            Body::from_stream(futures::stream::iter(chunks))
        };
        store
            .put(&key, body, PutOptions::default())
            .await
            .expect("a put");
        if i % 5 == 0 {
            let to = Key::new(format!("moved/{}", i % 3)).unwrap();
            store.rename(&key, &to).await.expect("a rename");
        }
        if i % 7 == 0 {
            store
                .delete(&Key::new(format!("moved/{}", i % 3)).unwrap())
                .await
                .expect("a delete");
        }
    }
}

async fn assert_only_whole_objects(root: &Path) -> usize {
    let store = LocalStorage::new(root).expect("the store reopens");
    let entries: Vec<ListEntry> = store
        .list(&Prefix::all(), ListOptions::default())
        .try_collect()
        .await
        .expect("the listing");
    for entry in &entries {
        let meta = entry.as_object().expect("only objects");
        assert!(
            !meta.key.ends_with(".~tmp"),
            "a temporary file was listed: {}",
            meta.key
        );
        let content = store
            .get(&meta.key, GetOptions::default())
            .await
            .expect("a listed object reads")
            .bytes()
            .await
            .expect("its bytes");
        assert_eq!(content.len() as u64, meta.size);
        assert!(
            is_whole(&content),
            "{} is torn ({} bytes)",
            meta.key,
            content.len()
        );
    }
    entries.len()
}

/// The child half of the crash test: writes until killed. Without the
/// variable it runs a short in-process round and checks it, so it is a
/// real test either way.
#[test]
fn crash_writer_child() {
    let runtime = runtime();
    match std::env::var_os(CRASH_ROOT_VAR) {
        Some(root) => runtime.block_on(write_objects(Path::new(&root), 100_000)),
        None => {
            let folder = tempfile::tempdir().expect("a folder");
            runtime.block_on(write_objects(folder.path(), 12));
            let count = runtime.block_on(assert_only_whole_objects(folder.path()));
            assert!(count > 0);
        }
    }
}

#[test]
fn killing_a_writer_at_any_moment_leaves_only_whole_objects() {
    let folder = tempfile::tempdir().expect("a folder");
    let exe = std::env::current_exe().expect("the test binary");
    let runtime = runtime();
    let mut seen_objects = 0;
    for round in 0..10u64 {
        let mut child = std::process::Command::new(&exe)
            .args([
                "--exact",
                "crash_writer_child",
                "--test-threads=1",
                "--nocapture",
            ])
            .env(CRASH_ROOT_VAR, folder.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the writer starts");
        // Let it run for a varying while, then SIGKILL it mid-write.
        std::thread::sleep(Duration::from_millis(150 + (round * 137) % 600));
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        seen_objects += runtime.block_on(assert_only_whole_objects(folder.path()));
    }
    assert!(seen_objects > 0, "the writer never published an object");
}

/// Puts with fsync start the write-out of each finished 8 MiB while the
/// rest is written (src/writeback.rs); objects spanning several windows,
/// with chunks that end inside them, arrive whole, from a stream and from
/// one large buffer.
#[test]
fn puts_that_span_several_write_out_windows_round_trip() {
    let folder = tempfile::tempdir().expect("a folder");
    let config = LocalConfig::new(folder.path()).with_verify_checksums(true);
    let store = LocalStorage::open(config).expect("the store opens");
    assert!(store.config().fsync, "write-out starts only with fsync");
    let data = pattern(3, (25 << 20) + 4_321);
    runtime().block_on(async {
        let streamed = Key::new("windows/streamed").unwrap();
        let chunks: Vec<_> = data
            .chunks((3 << 20) + 1)
            .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
            .collect();
        let body = Body::from_stream(futures::stream::iter(chunks));
        let put = store
            .put(&streamed, body, PutOptions::default())
            .await
            .expect("a streamed put");
        assert_eq!(put.size, data.len() as u64);
        let whole = Key::new("windows/whole").unwrap();
        store
            .put(&whole, data.clone().into(), PutOptions::default())
            .await
            .expect("a put from memory");
        for key in [&streamed, &whole] {
            let read = store
                .get(key, GetOptions::default())
                .await
                .expect("a get")
                .bytes()
                .await
                .expect("the content");
            assert!(read == data, "{key}: the content differs");
        }
    });
}
