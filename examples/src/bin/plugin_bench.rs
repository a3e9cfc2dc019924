//! The plugin boundary, measured: the same providers linked statically
//! and loaded from their dynamic library, in one run. Run it with
//! `cargo xtask bench plugin`, which builds the plugins in release first.
//!
//! - Per-call overhead: `exists` of a missing key, one at a time, on the
//!   in-memory store (where the call itself costs almost nothing, so what
//!   is left is the boundary: argument lending, an FFI future, entering
//!   the plugin's runtime).
//! - Throughput of 1 MiB objects, put then get, one at a time, on the
//!   in-memory store and on the encrypted store over a local folder
//!   (fsync off, on tmpfs where there is one, so the disk's writeback does
//!   not land on one side or the other).
//!
//! The two sides take turns object by object (alternating which goes
//! first), so a shared machine's noise falls on both; totals over all
//! rounds are reported, the per-call figures as the best of the rounds.
//! The ratio is plugin / static throughput (1.00 = equal).

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use storage::plugins::open_plugin;
use storage::{Body, Key, MemoryStorage, PutOptions, Storage};
use storage_examples::{best, chunk_of, read_all};
use storage_local::{LocalConfig, LocalStorage};
use storage_plugin_encrypted::{EncryptedStorage, MasterKey};

const TINY_CALLS: usize = 20_000;
const OBJECTS: usize = 128;
const OBJECT_SIZE: usize = 1 << 20;
const ROUNDS: usize = 7;
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

async fn tiny(store: &dyn Storage) -> storage::Result<Duration> {
    let missing = Key::new("bench/missing")?;
    let start = Instant::now();
    for _ in 0..TINY_CALLS {
        if store.exists(&missing).await? {
            return Err(storage::Error::new(
                storage::ErrorKind::Other,
                "a missing key exists",
            ));
        }
    }
    Ok(start.elapsed())
}

/// Total time of each side, measured object by object in turns, so both
/// sides run under the same conditions (a shared machine's noise moves
/// both, not one).
#[derive(Default)]
struct Totals {
    put: [Duration; 2],
    get: [Duration; 2],
}

async fn timed<T>(work: impl Future<Output = storage::Result<T>>) -> storage::Result<Duration> {
    let start = Instant::now();
    work.await?;
    Ok(start.elapsed())
}

async fn interleaved(sides: [&dyn Storage; 2], totals: &mut Totals) -> storage::Result<()> {
    let chunk = chunk_of(OBJECT_SIZE, 9);
    for i in 0..OBJECTS {
        let key = Key::new(format!("bench/object-{i}"))?;
        // Alternate which side goes first.
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            let body = Body::Bytes(chunk.clone());
            totals.put[side] += timed(sides[side].put(&key, body, PutOptions::default())).await?;
        }
        for side in order {
            totals.get[side] += timed(read_all(sides[side], &key, OBJECT_SIZE)).await?;
        }
        for side in sides {
            side.delete(&key).await?;
        }
    }
    Ok(())
}

fn mib_per_s(time: Duration) -> f64 {
    (ROUNDS * OBJECTS * OBJECT_SIZE) as f64 / (1 << 20) as f64 / time.as_secs_f64()
}

async fn compare(
    what: &str,
    linked: Arc<dyn Storage>,
    loaded: Arc<dyn Storage>,
    per_call: bool,
) -> storage::Result<()> {
    let sides = [linked.as_ref(), loaded.as_ref()];
    // One unmeasured round: files, pools and caches warm on both sides.
    interleaved(sides, &mut Totals::default()).await?;
    let mut totals = Totals::default();
    let mut tiny_times = [Vec::new(), Vec::new()];
    for r in 0..ROUNDS {
        if per_call {
            for side in if r % 2 == 0 { [0, 1] } else { [1, 0] } {
                tiny_times[side].push(tiny(sides[side]).await?);
            }
        }
        interleaved(sides, &mut totals).await?;
    }
    if per_call {
        let ns = |t: Duration| t.as_secs_f64() * 1e9 / TINY_CALLS as f64;
        let (s, p) = (ns(best(&tiny_times[0])), ns(best(&tiny_times[1])));
        println!(
            "| {what}: `exists`, one call | {s:.0} ns | {p:.0} ns | +{:.0} ns per call |",
            p - s
        );
    }
    for (label, [s, p]) in [("put", totals.put), ("get", totals.get)] {
        if per_call {
            // The in-memory store moves no bytes (chunks are shared, not
            // copied): what a 1 MiB call costs is the call itself.
            let us = |t: Duration| t.as_secs_f64() * 1e6 / (ROUNDS * OBJECTS) as f64;
            let (s, p) = (us(s), us(p));
            println!(
                "| {what}: 1 MiB {label}, one call | {s:.2} µs | {p:.2} µs | +{:.2} µs per call |",
                p - s
            );
        } else {
            let (s, p) = (mib_per_s(s), mib_per_s(p));
            println!(
                "| {what}: {} × 1 MiB {label} | {s:.0} MiB/s | {p:.0} MiB/s | {:.3} |",
                ROUNDS * OBJECTS,
                p / s
            );
        }
    }
    Ok(())
}

fn plugin_dir() -> PathBuf {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--plugins"
            && let Some(dir) = args.next()
        {
            return PathBuf::from(dir);
        }
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = plugin_dir();
    println!("plugins from {}\n", dir.display());
    println!("| workload | linked statically | loaded plugin | plugin / static |");
    println!("|---|---|---|---|");

    let memory = open_plugin(
        &dir.join("storage_test_plugin_faulty"),
        Some("memory"),
        "memory",
        &json!({}),
    )
    .await?;
    compare(
        "memory",
        Arc::new(MemoryStorage::with_name("memory")),
        memory,
        true,
    )
    .await?;

    // In memory (tmpfs) where there is one: the disk's writeback would
    // otherwise land on one side or the other at random.
    let shm = std::path::Path::new("/dev/shm");
    let folders = if shm.is_dir() {
        tempfile::tempdir_in(shm)?
    } else {
        tempfile::tempdir()?
    };
    let key = MasterKey::from_base64(KEY)?;
    let local = LocalStorage::open(
        LocalConfig::new(folders.path().join("linked"))
            .with_name("vault")
            .with_fsync(false),
    )?;
    let linked = Arc::new(EncryptedStorage::new(Arc::new(local), key));
    let settings = json!({ "root": folders.path().join("loaded"), "key": KEY, "fsync": false });
    let loaded = open_plugin(
        &dir.join("storage_plugin_encrypted"),
        None,
        "vault",
        &settings,
    )
    .await?;
    compare("encrypted local folder", linked, loaded, false).await?;
    Ok(())
}
