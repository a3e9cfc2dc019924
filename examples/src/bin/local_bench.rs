//! The local backend's benchmark, next to the physical limit measured in
//! the same run. Run it with `cargo xtask bench` (a release build).
//!
//! ```text
//! local_bench [--size BYTES] [--small N] [--dir DIR] [--large-only]
//! local_bench --memory GIB [--dir DIR]
//! ```
//!
//! - Large object: `--size` bytes (default 1 GiB) streamed into the store
//!   in 4 MiB chunks and read back as a stream, next to a raw write (4 MiB
//!   writes, then fsync) and a raw read (2 MiB reads) of a plain file of
//!   the same bytes on the same disk, warm (just written) and cold (both
//!   files' pages dropped with `posix_fadvise`); and the process's peak
//!   resident memory (VmHWM) after the large phase. Four rounds; raw and
//!   store alternate which goes first; warm reads run three times a round.
//!   The best of each is compared (`BENCH_VERBOSE=1` prints every round).
//! - Small objects: `--small` objects of 4 KiB (default 10,000, as issue 8
//!   asks) put, get,
//!   head and delete one at a time and 16 at a time (16 tasks, each taking
//!   the next key when done), as operations per second, at three
//!   durability settings (file and folder flushed, our default; the file
//!   only, as OpenDAL; nothing, as object_store), each next to plain files
//!   of the same names written (and flushed alike), read, stat'ed and
//!   removed with plain system calls (on as many threads). Puts are five
//!   rounds, each writing the next fifth of the objects, in which raw
//!   puts, raw atomic puts (temporary file, rename) into a folder of their
//!   own, and the store take turns; gets and heads go over the objects
//!   thirty times, in five rounds in which raw and
//!   store take turns (six passes each); deletes are five rounds, each
//!   deleting the next fifth of every side's objects; each side's median
//!   round is shown, and the ratio is the median of the five rounds'
//!   ratios, with their range. Gets are also set next to raw reads of plain files as
//!   large as the store's object files (content and metadata trailer),
//!   read in the same rounds: what the store adds to reading its files.
//!   Every setting's puts run before any setting's reads and deletes, in
//!   new folders, so no put meets inodes freed moments before (see
//!   `main`).
//! - The same large and small workloads through object_store's
//!   `LocalFileSystem` on the same disk, as an anchor. It never fsyncs, so
//!   its small objects run in the rounds of ours without fsync (a fourth
//!   writer and a third reader), and its large put is set next to a raw
//!   write that does fsync, as the table says. Its deletes are measured
//!   twice: as it comes, leaving emptied folders behind, and with
//!   `with_automatic_cleanup(true)`, which removes them as ours does (on a
//!   second copy of the objects, written untimed after the put rounds).
//!
//! - With `--memory GIB`, only this: one object of that many GiB of
//!   unknown length streamed into the store (with fsync, the default) and
//!   read back, and the process's peak resident memory (VmHWM), alone in
//!   its process as the other backends' memory checks are.
//!
//! Absolute figures drift on shared machines; compare the ratios.

use std::io::{Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use storage_core::{Body, Bytes, GetOptions, Key, PutOptions, Storage};
use storage_examples::{best, chunk_of, peak_mib, read_all, settle, stream_up};
use storage_local::{LocalConfig, LocalStorage};

const WRITE_CHUNK: usize = 4 << 20;
const READ_CHUNK: usize = 2 << 20;
/// Where the large object's file is under the store's root (the local
/// backend's layout: the key's segments as folders, `~` after the name).
const OBJECT_FILE: &str = "bench/large.bin~";
/// The first small object's file under the small store's root (the same
/// layout), whose size is that of every small object's file.
const FIRST_SMALL_FILE: &str = "small/000/000000~";
/// Rounds of each large-object measurement; the best is reported.
const ROUNDS: usize = 4;
/// Warm reads of each side per round.
const WARM_READS: usize = 3;
/// The small-object workloads run one at a time, then this many at a time.
const CONCURRENCY: [usize; 2] = [1, 16];
/// Gets and heads go over the objects this many times: one pass of 2,000
/// took about 7 ms, and ten passes still moved ±15% between runs (with
/// 2,000 objects, the default before the issue's 10,000).
const READ_PASSES: usize = 30;
/// Rounds the small reads are split into, raw and store taking turns.
const READ_ROUNDS: usize = 5;
/// Passes over the objects per side and round.
const PASSES_PER_ROUND: usize = READ_PASSES / READ_ROUNDS;
/// Rounds the small puts are split into, each writing the next part of
/// the objects, raw, raw atomic and store taking turns. Put rates moved
/// threefold from one phase to the next (ext4's inode allocation after
/// deletes), so sides measured a phase apart did not compare.
const PUT_ROUNDS: usize = 5;
/// Rounds the small deletes are split into, each deleting the next part of
/// the objects, raw, store and anchors taking turns. Measured in one phase
/// a side, as at first, the store's deletes moved from 0.60 to 0.73 of
/// object_store's between runs.
const DELETE_ROUNDS: usize = 5;

/// The part of `count` objects that round `round` of `rounds` works on.
fn round_part(round: usize, rounds: usize, count: usize) -> Range<usize> {
    round * count / rounds..(round + 1) * count / rounds
}

fn at_a_time(concurrency: usize) -> String {
    match concurrency {
        1 => "one at a time".to_owned(),
        n => format!("{n} at a time"),
    }
}

/// Operations per second of `operation` on items `0..count`, run by
/// `concurrency` spawned tasks that each take the next item when done with
/// one, as the raw baseline's threads do (and as a server's requests are
/// tasks of their own). Each call gets a clone of `context`.
async fn ops_per_s<C, Fut, E>(
    context: C,
    count: usize,
    concurrency: usize,
    operation: fn(C, usize) -> Fut,
) -> Result<f64, Box<dyn std::error::Error>>
where
    C: Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), E>> + Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    settle();
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (context, next) = (context.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let item = next.fetch_add(1, Ordering::Relaxed);
                if item >= count {
                    return Ok::<(), E>(());
                }
                operation(context.clone(), item).await?;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(count as f64 / start.elapsed().as_secs_f64())
}

struct Args {
    size: u64,
    small: usize,
    dir: PathBuf,
    large_only: bool,
    memory_gib: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        size: 1 << 30,
        small: 10_000,
        dir: PathBuf::from("target/bench-data"),
        large_only: false,
        memory_gib: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--size" => args.size = parse_size(&value("--size")?)?,
            "--small" => {
                args.small = value("--small")?
                    .parse()
                    .map_err(|e| format!("--small: {e}"))?
            }
            "--dir" => args.dir = PathBuf::from(value("--dir")?),
            "--large-only" => args.large_only = true,
            "--memory" => {
                args.memory_gib = Some(
                    value("--memory")?
                        .parse()
                        .map_err(|e| format!("--memory: {e}"))?,
                )
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

fn parse_size(text: &str) -> Result<u64, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map(|i| text.split_at(i))
        .unwrap_or((text, ""));
    let n: u64 = number.parse().map_err(|e| format!("size {text:?}: {e}"))?;
    let scale = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?}")),
    };
    Ok(n * scale)
}

fn mib_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / elapsed.as_secs_f64()
}

/// One 4 MiB buffer of non-repeating-looking bytes, shared by every chunk.
fn source_chunk() -> Bytes {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut out = Vec::with_capacity(WRITE_CHUNK);
    while out.len() < WRITE_CHUNK {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    Bytes::from(out)
}

fn chunks_of(size: u64, chunk: &Bytes) -> impl Iterator<Item = Bytes> + use<> {
    let chunk = chunk.clone();
    let full = size / chunk.len() as u64;
    let rest = (size % chunk.len() as u64) as usize;
    (0..full)
        .map(move |_| chunk.clone())
        .chain((rest > 0).then(|| Bytes::from(vec![1u8; rest])))
}

fn raw_write(path: &Path, size: u64, chunk: &Bytes) -> std::io::Result<Duration> {
    settle();
    let start = Instant::now();
    let mut file = std::fs::File::create(path)?;
    for piece in chunks_of(size, chunk) {
        file.write_all(&piece)?;
    }
    file.sync_all()?;
    Ok(start.elapsed())
}

/// Drops `path`'s pages from the page cache, so that the next read comes
/// from the disk (the file must be flushed: dirty pages stay).
fn evict(path: &Path) -> std::io::Result<()> {
    let file = std::fs::File::open(path)?;
    rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed)?;
    Ok(())
}

/// The time of a raw read of `path`, checked to return `size` bytes.
fn raw_read_checked(path: &Path, size: u64) -> std::io::Result<Duration> {
    let (elapsed, read_bytes) = raw_read(path)?;
    assert_eq!(read_bytes, size, "the raw read returned the wrong length");
    Ok(elapsed)
}

fn raw_read(path: &Path) -> std::io::Result<(Duration, u64)> {
    let start = Instant::now();
    let mut file = std::fs::File::open(path)?;
    let mut buffer = vec![0u8; READ_CHUNK];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    Ok((start.elapsed(), total))
}

struct Row {
    name: String,
    value: String,
    ratio: String,
}

async fn large(args: &Args, rows: &mut Vec<Row>) -> Result<(), Box<dyn std::error::Error>> {
    let chunk = source_chunk();
    let raw_path = args.dir.join("raw.bin");
    let store = LocalStorage::open(LocalConfig::new(args.dir.join("store")))?;
    let key = Key::new("bench/large.bin")?;

    // Alternate raw and store rounds so that page-cache and write-back
    // effects fall on both alike; report the best of each.
    let (mut raw_writes, mut puts, mut raw_reads, mut gets) = (vec![], vec![], vec![], vec![]);
    let (mut cold_raw_reads, mut cold_gets) = (vec![], vec![]);
    for round in 0..ROUNDS {
        // Odd rounds run the store first, so neither side always follows
        // the other's write-back.
        let store_first = round % 2 == 1;
        if !store_first {
            raw_writes.push(raw_write(&raw_path, args.size, &chunk)?);
        }
        settle();
        let start = Instant::now();
        let body = Body::from_sized_stream(
            futures::stream::iter(chunks_of(args.size, &chunk).map(Ok)),
            args.size,
        );
        store.put(&key, body, PutOptions::default()).await?;
        puts.push(start.elapsed());
        if store_first {
            raw_writes.push(raw_write(&raw_path, args.size, &chunk)?);
        }

        // Reads are quick and this machine's read speed swings between
        // runs: several of each, alternating which goes first.
        for repeat in 0..WARM_READS {
            for side in if (round + repeat) % 2 == 1 {
                [1, 0]
            } else {
                [0, 1]
            } {
                if side == 0 {
                    raw_reads.push(raw_read_checked(&raw_path, args.size)?);
                } else {
                    gets.push(read_all(&store, &key, args.size as usize).await?);
                }
            }
        }

        std::fs::remove_file(&raw_path)?;
        store.delete(&key).await?;
    }
    // Cold: the same reads with both files' pages dropped first, so they
    // come from the disk; rounds of their own, so that the warm rounds
    // above keep the page cache as a writer leaves it.
    raw_write(&raw_path, args.size, &chunk)?;
    let body = Body::from_sized_stream(
        futures::stream::iter(chunks_of(args.size, &chunk).map(Ok)),
        args.size,
    );
    store.put(&key, body, PutOptions::default()).await?;
    let object_file = store.root().join(OBJECT_FILE);
    for round in 0..ROUNDS {
        for side in if round % 2 == 1 { [1, 0] } else { [0, 1] } {
            settle();
            if side == 0 {
                evict(&raw_path)?;
                cold_raw_reads.push(raw_read_checked(&raw_path, args.size)?);
            } else {
                evict(&object_file)?;
                cold_gets.push(read_all(&store, &key, args.size as usize).await?);
            }
        }
    }
    std::fs::remove_file(&raw_path)?;
    store.delete(&key).await?;
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        eprintln!(
            "raw writes {raw_writes:?}\nputs {puts:?}\nraw reads {raw_reads:?}\ngets {gets:?}\n\
             cold raw reads {cold_raw_reads:?}\ncold gets {cold_gets:?}"
        );
    }
    let (raw_write_time, put_time) = (best(&raw_writes), best(&puts));
    let (raw_read_time, get_time) = (best(&raw_reads), best(&gets));

    let size = format!("{:.2} GiB", args.size as f64 / (1u64 << 30) as f64);
    let raw_w = mib_per_s(args.size, raw_write_time);
    let raw_r = mib_per_s(args.size, raw_read_time);
    let put = mib_per_s(args.size, put_time);
    let get = mib_per_s(args.size, get_time);
    rows.push(Row {
        name: format!("raw write + fsync, {size}, best of {ROUNDS}"),
        value: format!("{raw_w:.0} MiB/s"),
        ratio: "1.00".into(),
    });
    rows.push(Row {
        name: format!("local put (stream, fsync), {size}, best of {ROUNDS}"),
        value: format!("{put:.0} MiB/s"),
        ratio: format!("{:.2} of raw write", put / raw_w),
    });
    rows.push(Row {
        name: format!("raw read, {size}, best of {}", ROUNDS * WARM_READS),
        value: format!("{raw_r:.0} MiB/s"),
        ratio: "1.00".into(),
    });
    rows.push(Row {
        name: format!(
            "local get (stream), {size}, best of {}",
            ROUNDS * WARM_READS
        ),
        value: format!("{get:.0} MiB/s"),
        ratio: format!("{:.2} of raw read", get / raw_r),
    });
    let cold_raw = mib_per_s(args.size, best(&cold_raw_reads));
    let cold_get = mib_per_s(args.size, best(&cold_gets));
    rows.push(Row {
        name: format!("raw read, cold cache, {size}, best of {ROUNDS}"),
        value: format!("{cold_raw:.0} MiB/s"),
        ratio: "1.00".into(),
    });
    rows.push(Row {
        name: format!("local get (stream), cold cache, {size}, best of {ROUNDS}"),
        value: format!("{cold_get:.0} MiB/s"),
        ratio: format!("{:.2} of raw read, cold", cold_get / cold_raw),
    });
    let peak = peak_mib();
    if peak > 0.0 {
        rows.push(Row {
            name: "peak resident memory after the large phase".into(),
            value: format!("{peak:.1} MiB"),
            ratio: String::new(),
        });
    }
    Ok(())
}

/// How much of a put is flushed before it returns: the store's setting and
/// the raw baseline's calls, alike.
#[derive(Clone, Copy, PartialEq)]
enum Durability {
    /// The file and its folder (`fsync` and `fsync_folder`, our default):
    /// the new name survives a power loss too.
    FileAndFolder,
    /// The file only (`fsync_folder = false`): OpenDAL's fs service.
    File,
    /// Nothing (`fsync = false`): object_store's LocalFileSystem.
    Nothing,
}

impl Durability {
    fn label(self) -> &'static str {
        match self {
            Durability::FileAndFolder => "fsync file + folder",
            Durability::File => "fsync file only",
            Durability::Nothing => "no fsync",
        }
    }
}

/// The median of `values` and their range.
fn median_and_range(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let median = values.get(values.len() / 2).copied().unwrap_or(0.0);
    let low = values.first().copied().unwrap_or(0.0);
    let high = values.last().copied().unwrap_or(0.0);
    (median, low, high)
}

/// A workload measured in rounds that alternate a raw baseline and the
/// store (or another baseline): each side's operations per second in
/// every round.
#[derive(Default)]
struct PairedRounds {
    raw: Vec<f64>,
    ours: Vec<f64>,
}

impl PairedRounds {
    /// Raw's and ours' median rate, and the median and range of the
    /// rounds' ratios (ours / raw).
    fn summary(&self) -> (f64, f64, (f64, f64, f64)) {
        let ratios = self
            .ours
            .iter()
            .zip(&self.raw)
            .map(|(ours, raw)| ours / raw)
            .collect();
        (
            median_and_range(self.raw.clone()).0,
            median_and_range(self.ours.clone()).0,
            median_and_range(ratios),
        )
    }
}

/// The writers of the paired put rounds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Writer {
    Raw,
    RawAtomic,
    Store,
    ObjectStore,
}

/// The deleters of the paired delete rounds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Deleter {
    Raw,
    Store,
    ObjectStore,
    ObjectStorePruning,
}

/// The readers of the paired read rounds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reader {
    Raw,
    Store,
    ObjectStore,
}

/// object_store's `LocalFileSystem` on the small workload, in the same
/// rounds as ours and the raw files (only beside ours without fsync: it
/// never flushes). Measured a phase apart, as at first, its puts met a
/// different state of the file system than ours did.
///
/// By default it leaves a folder behind when its last object is deleted;
/// ours removes it, so a listing shows no prefix with nothing under it.
/// Its `with_automatic_cleanup(true)` does what ours does (it tries
/// `rmdir` on the folder after each delete), so its deletes are also
/// measured that way, on a second copy of the objects.
struct ObjectStoreSmall {
    folder: PathBuf,
    store: Arc<object_store::local::LocalFileSystem>,
    /// Another folder, with the same objects once [`fill_pruning`] has
    /// run, whose deletes remove emptied folders.
    ///
    /// [`fill_pruning`]: Self::fill_pruning
    pruning: Arc<object_store::local::LocalFileSystem>,
    paths: Arc<[object_store::path::Path]>,
}

impl ObjectStoreSmall {
    /// The anchor on a new folder, with the names local_bench uses.
    fn new(folder: &Path, count: usize) -> Result<Self, Box<dyn std::error::Error>> {
        let pruning = folder.join("pruning");
        std::fs::create_dir_all(&pruning)?;
        Ok(Self {
            folder: folder.to_owned(),
            store: Arc::new(object_store::local::LocalFileSystem::new_with_prefix(
                folder,
            )?),
            pruning: Arc::new(
                object_store::local::LocalFileSystem::new_with_prefix(&pruning)?
                    .with_automatic_cleanup(true),
            ),
            paths: (0..count)
                .map(|i| object_store::path::Path::from(format!("small/{:03}/{i:06}", i % 100)))
                .collect(),
        })
    }

    /// Puts of the objects of `part`.
    async fn put(
        &self,
        concurrency: usize,
        part: Range<usize>,
        body: &Bytes,
    ) -> Result<f64, Box<dyn std::error::Error>> {
        use object_store::{ObjectStoreExt, PutPayload};
        let paths: Arc<[object_store::path::Path]> = self.paths[part.clone()].into();
        ops_per_s(
            (self.store.clone(), paths, body.clone()),
            part.len(),
            concurrency,
            |(store, paths, body), i| async move {
                store.put(&paths[i], PutPayload::from(body)).await.map(drop)
            },
        )
        .await
    }

    /// One round of gets: every object read whole, `PASSES_PER_ROUND` times.
    async fn get(&self, concurrency: usize) -> Result<f64, Box<dyn std::error::Error>> {
        use object_store::ObjectStoreExt;
        ops_per_s(
            (self.store.clone(), self.paths.clone()),
            self.paths.len() * PASSES_PER_ROUND,
            concurrency,
            |(store, paths), i| async move {
                let bytes = store.get(&paths[i % paths.len()]).await?.bytes().await?;
                assert_eq!(bytes.len(), 4096);
                Ok::<(), object_store::Error>(())
            },
        )
        .await
    }

    /// One round of heads, as [`get`](Self::get).
    async fn head(&self, concurrency: usize) -> Result<f64, Box<dyn std::error::Error>> {
        use object_store::ObjectStoreExt;
        ops_per_s(
            (self.store.clone(), self.paths.clone()),
            self.paths.len() * PASSES_PER_ROUND,
            concurrency,
            |(store, paths), i| async move { store.head(&paths[i % paths.len()]).await.map(drop) },
        )
        .await
    }

    /// Writes the objects into the pruning store, untimed.
    async fn fill_pruning(
        &self,
        concurrency: usize,
        body: &Bytes,
    ) -> Result<(), Box<dyn std::error::Error>> {
        use object_store::{ObjectStoreExt, PutPayload};
        ops_per_s(
            (self.pruning.clone(), self.paths.clone(), body.clone()),
            self.paths.len(),
            concurrency,
            |(store, paths, body), i| async move {
                store.put(&paths[i], PutPayload::from(body)).await.map(drop)
            },
        )
        .await
        .map(drop)
    }

    /// Deletes the objects of `part`, from the pruning store if `pruning`.
    async fn delete(
        &self,
        concurrency: usize,
        part: Range<usize>,
        pruning: bool,
    ) -> Result<f64, Box<dyn std::error::Error>> {
        use object_store::ObjectStoreExt;
        let store = if pruning { &self.pruning } else { &self.store };
        let paths: Arc<[object_store::path::Path]> = self.paths[part.clone()].into();
        ops_per_s(
            (store.clone(), paths),
            part.len(),
            concurrency,
            |(store, paths), i| async move { store.delete(&paths[i]).await.map(drop) },
        )
        .await
    }

    fn remove(&self) -> std::io::Result<()> {
        std::fs::remove_dir_all(&self.folder)
    }
}

/// One small-object workload (a durability setting and a concurrency)
/// between its puts and the rest of it: the stores holding its objects,
/// and the put rounds' rates.
struct SmallPhase {
    /// The objects' keys, each written with `body`.
    keys: Arc<[Key]>,
    body: Bytes,
    durability: Durability,
    concurrency: usize,
    /// The folder holding everything the phase wrote.
    base: PathBuf,
    store: LocalStorage,
    raw: RawFiles,
    atomic: RawFiles,
    anchor: Option<ObjectStoreSmall>,
    raw_puts: PairedRounds,
    atomic_puts: PairedRounds,
    anchor_puts: PairedRounds,
}

/// The keys every small-object phase writes (each with a 4 KiB body).
fn small_keys(args: &Args) -> Result<Arc<[Key]>, Box<dyn std::error::Error>> {
    let keys = (0..args.small)
        .map(|i| Key::new(format!("small/{:03}/{i:06}", i % 100)))
        .collect::<Result<_, _>>()?;
    Ok(keys)
}

/// The puts of a small-object phase, into new folders under `base`: five
/// paired rounds, each writing the next fifth of the objects, the writers
/// taking turns at going first.
async fn small_puts(
    args: &Args,
    base: PathBuf,
    durability: Durability,
    concurrency: usize,
) -> Result<SmallPhase, Box<dyn std::error::Error>> {
    let (keys, body) = (small_keys(args)?, Bytes::from(vec![42u8; 4096]));
    let config = LocalConfig::new(base.join("ours"))
        .with_fsync(durability != Durability::Nothing)
        .with_fsync_folder(durability == Durability::FileAndFolder);
    let store = LocalStorage::open(config)?;
    let raw = RawFiles::new(&base.join("raw"), args.small, durability, 4096)?;
    let atomic = RawFiles::new(&base.join("raw-atomic"), args.small, durability, 4096)?;
    let anchor = if durability == Durability::Nothing {
        Some(ObjectStoreSmall::new(
            &base.join("object-store"),
            args.small,
        )?)
    } else {
        None
    };
    let (mut raw_puts, mut atomic_puts) = (PairedRounds::default(), PairedRounds::default());
    let mut anchor_puts = PairedRounds::default();
    for round in 0..PUT_ROUNDS {
        let part = round_part(round, PUT_ROUNDS, keys.len());
        let mut order = vec![Writer::Raw, Writer::RawAtomic, Writer::Store];
        if anchor.is_some() {
            order.push(Writer::ObjectStore);
        }
        let writers = order.len();
        order.rotate_left(round % writers);
        let mut store_rate = 0.0;
        for writer in order {
            match writer {
                Writer::ObjectStore => {
                    if let Some(anchor) = &anchor {
                        let rate = anchor.put(concurrency, part.clone(), &body).await?;
                        anchor_puts.raw.push(rate);
                    }
                }
                Writer::Raw => raw_puts.raw.push(raw.put(concurrency, part.clone())?),
                Writer::RawAtomic => atomic_puts
                    .raw
                    .push(atomic.atomic_put(concurrency, part.clone())?),
                Writer::Store => {
                    let part_keys: Arc<[Key]> = keys[part.clone()].into();
                    store_rate = ops_per_s(
                        (store.clone(), part_keys, body.clone()),
                        part.len(),
                        concurrency,
                        |(store, keys, body), i| async move {
                            let body = Body::Bytes(body);
                            store
                                .put(&keys[i], body, PutOptions::default())
                                .await
                                .map(drop)
                        },
                    )
                    .await?;
                }
            }
        }
        raw_puts.ours.push(store_rate);
        atomic_puts.ours.push(store_rate);
        anchor_puts.ours.push(store_rate);
    }
    if let Some(anchor) = &anchor {
        anchor.fill_pruning(concurrency, &body).await?;
    }
    Ok(SmallPhase {
        keys,
        body,
        durability,
        concurrency,
        base,
        store,
        raw,
        atomic,
        anchor,
        raw_puts,
        atomic_puts,
        anchor_puts,
    })
}

/// The deletes of a small-object phase: five paired rounds, each deleting
/// the next fifth of every side's objects, the sides taking turns at going
/// first. Returns the store against raw files, against object_store, and
/// against object_store removing emptied folders (the last two empty
/// without the anchor).
async fn small_deletes(
    keys: &Arc<[Key]>,
    concurrency: usize,
    store: &LocalStorage,
    raw: &RawFiles,
    anchor: Option<&ObjectStoreSmall>,
) -> Result<(PairedRounds, PairedRounds, PairedRounds), Box<dyn std::error::Error>> {
    let mut deletes = PairedRounds::default();
    let mut anchor_deletes = PairedRounds::default();
    let mut pruning_deletes = PairedRounds::default();
    for round in 0..DELETE_ROUNDS {
        let part = round_part(round, DELETE_ROUNDS, keys.len());
        let mut order = vec![Deleter::Raw, Deleter::Store];
        if anchor.is_some() {
            order.extend([Deleter::ObjectStore, Deleter::ObjectStorePruning]);
        }
        let deleters = order.len();
        order.rotate_left(round % deleters);
        let mut store_rate = 0.0;
        for deleter in order {
            match (deleter, anchor) {
                (Deleter::Raw, _) => deletes.raw.push(raw.delete(concurrency, part.clone())?),
                (Deleter::Store, _) => {
                    let part_keys: Arc<[Key]> = keys[part.clone()].into();
                    store_rate = ops_per_s(
                        (store.clone(), part_keys),
                        part.len(),
                        concurrency,
                        |(store, keys), i| async move { store.delete(&keys[i]).await.map(drop) },
                    )
                    .await?;
                }
                (Deleter::ObjectStore, Some(anchor)) => anchor_deletes
                    .raw
                    .push(anchor.delete(concurrency, part.clone(), false).await?),
                (Deleter::ObjectStorePruning, Some(anchor)) => pruning_deletes
                    .raw
                    .push(anchor.delete(concurrency, part.clone(), true).await?),
                (_, None) => {}
            }
        }
        deletes.ours.push(store_rate);
        if anchor.is_some() {
            anchor_deletes.ours.push(store_rate);
            pruning_deletes.ours.push(store_rate);
        }
    }
    Ok((deletes, anchor_deletes, pruning_deletes))
}

/// The rest of a small-object phase, after every phase's puts: reads in
/// paired rounds, deletes, and the phase's rows.
async fn small_reads_and_deletes(
    args: &Args,
    phase: SmallPhase,
    rows: &mut Vec<Row>,
) -> Result<(), Box<dyn std::error::Error>> {
    let SmallPhase {
        keys,
        body,
        durability,
        concurrency,
        base,
        store,
        raw,
        atomic,
        anchor,
        raw_puts,
        atomic_puts,
        anchor_puts,
    } = phase;
    let label = durability.label();
    let folder = base.join("ours");
    let context = (store.clone(), keys.clone(), body.clone());
    atomic.remove()?;
    // Plain files as large as ours (content and metadata trailer), so
    // the get rows also show what the store adds to reading its own
    // files: the trailer makes a 4 KiB object's file two pages.
    let stored_len = std::fs::metadata(folder.join(FIRST_SMALL_FILE))?.len() as usize;
    let sized = RawFiles::new(
        &base.join("raw-sized"),
        args.small,
        Durability::Nothing,
        stored_len,
    )?;
    sized.put(concurrency, 0..args.small)?;
    // Reads take turns with raw's, round by round, so both meet the
    // same machine: read one after the other, a phase apart, raw gets
    // of the same files moved by 20% between phases.
    let (mut gets, mut heads) = (PairedRounds::default(), PairedRounds::default());
    let mut sized_gets = Vec::new();
    let (mut anchor_gets, mut anchor_heads) = (PairedRounds::default(), PairedRounds::default());
    for round in 0..READ_ROUNDS {
        let mut order = vec![Reader::Raw, Reader::Store];
        if anchor.is_some() {
            order.push(Reader::ObjectStore);
        }
        let readers = order.len();
        order.rotate_left(round % readers);
        for reader in order {
            match reader {
                Reader::Raw => {
                    gets.raw.push(raw.get(concurrency)?);
                    sized_gets.push(sized.get(concurrency)?);
                    heads.raw.push(raw.head(concurrency)?);
                }
                Reader::ObjectStore => {
                    if let Some(anchor) = &anchor {
                        anchor_gets.raw.push(anchor.get(concurrency).await?);
                        anchor_heads.raw.push(anchor.head(concurrency).await?);
                    }
                }
                Reader::Store => {
                    gets.ours.push(
                        ops_per_s(
                            context.clone(),
                            keys.len() * PASSES_PER_ROUND,
                            concurrency,
                            |(store, keys, _), i| async move {
                                let bytes = store
                                    .get(&keys[i % keys.len()], GetOptions::default())
                                    .await?
                                    .bytes()
                                    .await?;
                                assert_eq!(bytes.len(), 4096);
                                Ok::<(), storage_core::Error>(())
                            },
                        )
                        .await?,
                    );
                    heads.ours.push(
                        ops_per_s(
                            context.clone(),
                            keys.len() * PASSES_PER_ROUND,
                            concurrency,
                            |(store, keys, _), i| async move {
                                store.head(&keys[i % keys.len()]).await.map(drop)
                            },
                        )
                        .await?,
                    );
                }
            }
        }
    }
    anchor_gets.ours = gets.ours.clone();
    anchor_heads.ours = heads.ours.clone();
    let (deletes, anchor_deletes, pruning_deletes) =
        small_deletes(&keys, concurrency, &store, &raw, anchor.as_ref()).await?;
    let at = at_a_time(concurrency);
    let mut row = |name: String, value: f64, ratio: String| {
        rows.push(Row {
            name,
            value: format!("{value:.0} ops/s"),
            ratio,
        })
    };
    let (raw_put, put, (ratio, low, high)) = raw_puts.summary();
    let (raw_atomic_put, _, (atomic_ratio, atomic_low, atomic_high)) = atomic_puts.summary();
    let atomic_to_raw = PairedRounds {
        raw: raw_puts.raw.clone(),
        ours: atomic_puts.raw.clone(),
    }
    .summary()
    .2;
    row(
        format!("raw 4 KiB put ({label}), {at}, median of {PUT_ROUNDS} rounds"),
        raw_put,
        "1.00".into(),
    );
    row(
        format!(
            "raw 4 KiB atomic put: temp, rename ({label}), {at}, median of {PUT_ROUNDS} rounds"
        ),
        raw_atomic_put,
        format!(
            "{:.2} of raw put (rounds: {:.2}–{:.2})",
            atomic_to_raw.0, atomic_to_raw.1, atomic_to_raw.2
        ),
    );
    row(
        format!("4 KiB put ({label}), {at}, median of {PUT_ROUNDS} rounds"),
        put,
        format!(
            "{ratio:.2} of raw put (rounds: {low:.2}–{high:.2}), {atomic_ratio:.2} of raw atomic put ({atomic_low:.2}–{atomic_high:.2})"
        ),
    );
    for (op, reads) in [("get", &gets), ("head", &heads)] {
        let (raw_rate, our_rate, (ratio, low, high)) = reads.summary();
        row(
            format!("raw 4 KiB {op} ({label}), {at}, median of {READ_ROUNDS} rounds"),
            raw_rate,
            "1.00".into(),
        );
        row(
            format!("4 KiB {op} ({label}), {at}, median of {READ_ROUNDS} rounds"),
            our_rate,
            format!("{ratio:.2} of raw (rounds: {low:.2}–{high:.2})"),
        );
    }
    let against_sized = PairedRounds {
        raw: sized_gets,
        ours: gets.ours.clone(),
    };
    let (sized_rate, _, (ratio, low, high)) = against_sized.summary();
    row(
        format!(
            "raw read of files as large as ours ({stored_len} bytes), {at}, median of {READ_ROUNDS} rounds"
        ),
        sized_rate,
        format!("our 4 KiB get: {ratio:.2} of it (rounds: {low:.2}–{high:.2})"),
    );
    sized.remove()?;
    let (raw_delete, delete, (ratio, low, high)) = deletes.summary();
    row(
        format!("raw 4 KiB delete ({label}), {at}, median of {DELETE_ROUNDS} rounds"),
        raw_delete,
        "1.00".into(),
    );
    row(
        format!("4 KiB delete ({label}), {at}, median of {DELETE_ROUNDS} rounds"),
        delete,
        format!("{ratio:.2} of raw (rounds: {low:.2}–{high:.2})"),
    );
    if let Some(anchor) = &anchor {
        for (op, rounds, count) in [
            ("put", &anchor_puts, PUT_ROUNDS),
            ("get", &anchor_gets, READ_ROUNDS),
            ("head", &anchor_heads, READ_ROUNDS),
            ("delete", &anchor_deletes, DELETE_ROUNDS),
        ] {
            let (rate, _, (ratio, low, high)) = rounds.summary();
            row(
                format!(
                    "object_store LocalFileSystem 4 KiB {op} ({label}), {at}, median of {count} rounds"
                ),
                rate,
                format!("ours: {ratio:.2} of it (rounds: {low:.2}–{high:.2})"),
            );
        }
        let (rate, _, (ratio, low, high)) = pruning_deletes.summary();
        row(
            format!(
                "object_store LocalFileSystem with automatic cleanup (removes emptied folders, as ours does) 4 KiB delete ({label}), {at}, median of {DELETE_ROUNDS} rounds"
            ),
            rate,
            format!("ours: {ratio:.2} of it (rounds: {low:.2}–{high:.2})"),
        );
        anchor.remove()?;
    }
    raw.remove()?;
    drop(store);
    std::fs::remove_dir_all(&base)?;
    Ok(())
}

/// The physical limit for small objects: plain files of the same names,
/// written (then flushed as `durability` says), read, stat'ed and removed
/// with plain system calls, on as many threads as the store has tasks.
struct RawFiles {
    folder: PathBuf,
    paths: Vec<PathBuf>,
    durability: Durability,
    body: Vec<u8>,
}

impl RawFiles {
    /// Plain files of `len` bytes each (not yet written).
    fn new(
        folder: &Path,
        count: usize,
        durability: Durability,
        len: usize,
    ) -> std::io::Result<Self> {
        let paths: Vec<PathBuf> = (0..count)
            .map(|i| folder.join(format!("small/{:03}/{i:06}", i % 100)))
            .collect();
        for path in &paths {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
        }
        Ok(RawFiles {
            folder: folder.to_owned(),
            paths,
            durability,
            body: vec![42u8; len],
        })
    }

    /// Operations per second of `work` over the files, `passes` times, on
    /// `concurrency` threads. Work is handed out as `ops_per_s` hands it
    /// to the store's tasks: each thread takes the next item of one shared
    /// sequence, so raw and store sweep the same files in the same order.
    /// (Giving each thread its own slice instead kept each core on a few
    /// hundred files and made raw reads a quarter faster from CPU caches
    /// alone.)
    fn run(
        &self,
        paths: &[PathBuf],
        passes: usize,
        concurrency: usize,
        work: &(dyn Fn(&Path) -> std::io::Result<()> + Sync),
    ) -> std::io::Result<f64> {
        let count = paths.len();
        let total = count * passes;
        let next = AtomicUsize::new(0);
        settle();
        let start = Instant::now();
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..concurrency)
                .map(|_| {
                    scope.spawn(|| {
                        loop {
                            let item = next.fetch_add(1, Ordering::Relaxed);
                            if item >= total {
                                return Ok(());
                            }
                            work(&paths[item % count])?;
                        }
                    })
                })
                .collect();
            workers.into_iter().try_for_each(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("a worker panicked")))
            })
        })?;
        Ok(total as f64 / start.elapsed().as_secs_f64())
    }

    /// Flushes as the durability setting says: the file, then its folder.
    fn flush(&self, file: &std::fs::File, path: &Path) -> std::io::Result<()> {
        if self.durability != Durability::Nothing {
            file.sync_all()?;
        }
        if self.durability == Durability::FileAndFolder
            && let Some(parent) = path.parent()
        {
            std::fs::File::open(parent)?.sync_all()?;
        }
        Ok(())
    }

    /// Creates (or replaces in place) the files of `part`.
    fn put(&self, concurrency: usize, part: Range<usize>) -> std::io::Result<f64> {
        self.run(&self.paths[part], 1, concurrency, &|path| {
            let mut file = std::fs::File::create(path)?;
            file.write_all(&self.body)?;
            self.flush(&file, path)
        })
    }

    /// What an atomic put needs at the least: a temporary file beside the
    /// target, flushed, renamed over it, and the folder flushed after the
    /// rename (a second flush, where the plain put's folder flush finds
    /// nothing left to write).
    fn atomic_put(&self, concurrency: usize, part: Range<usize>) -> std::io::Result<f64> {
        self.run(&self.paths[part], 1, concurrency, &|path| {
            let temp = path.with_extension("tmp");
            let mut file = std::fs::File::create(&temp)?;
            file.write_all(&self.body)?;
            if self.durability != Durability::Nothing {
                file.sync_all()?;
            }
            std::fs::rename(&temp, path)?;
            if self.durability == Durability::FileAndFolder
                && let Some(parent) = path.parent()
            {
                std::fs::File::open(parent)?.sync_all()?;
            }
            Ok(())
        })
    }

    /// One round of reads: every file read whole, `PASSES_PER_ROUND` times.
    fn get(&self, concurrency: usize) -> std::io::Result<f64> {
        self.run(&self.paths, PASSES_PER_ROUND, concurrency, &|path| {
            let mut buffer = Vec::with_capacity(4096);
            std::fs::File::open(path)?.read_to_end(&mut buffer)?;
            if buffer.len() == self.body.len() {
                Ok(())
            } else {
                Err(std::io::Error::other("a raw file has the wrong length"))
            }
        })
    }

    /// One round of `stat`s, `PASSES_PER_ROUND` times over the files.
    fn head(&self, concurrency: usize) -> std::io::Result<f64> {
        self.run(&self.paths, PASSES_PER_ROUND, concurrency, &|path| {
            std::fs::metadata(path).map(drop)
        })
    }

    /// Removes the files of `part`.
    fn delete(&self, concurrency: usize, part: Range<usize>) -> std::io::Result<f64> {
        self.run(&self.paths[part], 1, concurrency, &|path| {
            std::fs::remove_file(path)
        })
    }

    fn remove(&self) -> std::io::Result<()> {
        std::fs::remove_dir_all(&self.folder)
    }
}

/// The anchor: object_store's `LocalFileSystem`, the large object (its
/// small objects are measured with ours, in `small`).
async fn object_store_large(
    args: &Args,
    rows: &mut Vec<Row>,
) -> Result<(), Box<dyn std::error::Error>> {
    use object_store::local::LocalFileSystem;
    use object_store::path::Path as StorePath;
    use object_store::{ObjectStoreExt, WriteMultipart};

    let folder = args.dir.join("object-store");
    std::fs::create_dir_all(&folder)?;
    let store = Arc::new(LocalFileSystem::new_with_prefix(&folder)?);
    let chunk = source_chunk();
    let raw_path = args.dir.join("raw-anchor.bin");
    let location = StorePath::from("bench/large.bin");
    let (mut raw_writes, mut puts, mut raw_reads, mut gets) = (vec![], vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        raw_writes.push(raw_write(&raw_path, args.size, &chunk)?);
        settle();
        let start = Instant::now();
        let mut writer =
            WriteMultipart::new_with_chunk_size(store.put_multipart(&location).await?, WRITE_CHUNK);
        for piece in chunks_of(args.size, &chunk) {
            writer.write(&piece);
        }
        writer.finish().await?;
        puts.push(start.elapsed());
        let start = Instant::now();
        let mut stream = store.get(&location).await?.into_stream();
        let mut read_bytes = 0u64;
        while let Some(piece) = stream.try_next().await? {
            read_bytes += piece.len() as u64;
        }
        gets.push(start.elapsed());
        assert_eq!(
            read_bytes, args.size,
            "object_store returned the wrong length"
        );
        raw_reads.push(raw_read(&raw_path)?.0);
        std::fs::remove_file(&raw_path)?;
        store.delete(&location).await?;
    }
    let size = format!("{:.2} GiB", args.size as f64 / (1u64 << 30) as f64);
    let (raw_w, put) = (
        mib_per_s(args.size, best(&raw_writes)),
        mib_per_s(args.size, best(&puts)),
    );
    let (raw_r, get) = (
        mib_per_s(args.size, best(&raw_reads)),
        mib_per_s(args.size, best(&gets)),
    );
    rows.push(Row {
        name: format!("object_store LocalFileSystem put (stream, no fsync), {size}"),
        value: format!("{put:.0} MiB/s"),
        ratio: format!("{:.2} of raw write + fsync", put / raw_w),
    });
    rows.push(Row {
        name: format!("object_store LocalFileSystem get (stream), {size}"),
        value: format!("{get:.0} MiB/s"),
        ratio: format!("{:.2} of raw read", get / raw_r),
    });
    std::fs::remove_dir_all(&folder)?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args().map_err(|e| {
        format!(
            "{e}\nusage: local_bench [--size BYTES] [--small N] [--dir DIR] [--large-only]\n       local_bench --memory GIB [--dir DIR]"
        )
    })?;
    std::fs::create_dir_all(&args.dir)?;
    if let Some(gib) = args.memory_gib {
        return memory_check(&args.dir, gib).await;
    }
    let mut rows = Vec::new();
    large(&args, &mut rows).await?;
    if !args.large_only {
        // Every phase's puts come before any phase deletes: on ext4
        // without a journal, a new inode is searched for past every inode
        // of its group freed in the last minute or more
        // (`recently_deleted`), so puts made after a phase's deletes spent
        // most of their time in that search (65% of the CPU of a put
        // phase, perf), whoever made them.
        let mut phases = Vec::new();
        for durability in [
            Durability::FileAndFolder,
            Durability::File,
            Durability::Nothing,
        ] {
            for concurrency in CONCURRENCY {
                let base = args.dir.join(format!("small-{}", phases.len()));
                phases.push(small_puts(&args, base, durability, concurrency).await?);
            }
        }
        for phase in phases {
            small_reads_and_deletes(&args, phase, &mut rows).await?;
        }
    }
    object_store_large(&args, &mut rows).await?;
    println!("| measurement | result | ratio |");
    println!("|---|---|---|");
    for row in rows {
        println!("| {} | {} | {} |", row.name, row.value, row.ratio);
    }
    Ok(())
}

/// Streams `gib` GiB of unknown length into a store under `dir` and back,
/// and prints the time each way and the process's peak resident memory.
async fn memory_check(dir: &Path, gib: usize) -> Result<(), Box<dyn std::error::Error>> {
    let root = dir.join("memory-check");
    let store = LocalStorage::new(&root)?;
    let key = Key::new("bench/memory-check")?;
    let chunk = chunk_of(1 << 20, 4);
    let up = stream_up(&store, &key, &chunk, gib << 30).await?;
    let down = read_all(&store, &key, gib << 30).await?;
    store.delete(&key).await?;
    std::fs::remove_dir_all(&root)?;
    println!(
        "\n{gib} GiB stream of unknown length through storage-local (fsync on): up {:.1} s, down {:.1} s, peak resident memory {:.1} MiB",
        up.as_secs_f64(),
        down.as_secs_f64(),
        peak_mib()
    );
    Ok(())
}
