//! The GCS backend against fake-gcs-server, the emulator `cargo xtask
//! bench gcs` starts. Run it with `cargo xtask bench gcs`.
//!
//! - 1,000 objects of 64 KiB, 16 at a time: put all, then get all.
//! - 16 objects of 8 MiB, 4 at a time: each put in one request
//!   (`uploadType=multipart`, the path of every object up to a chunk).
//! - One 64 MiB object read through a proxy that caps each connection at
//!   32 MB/s ([`CappedProxy`]),
//!   where a connection's throughput, not loopback's, is the limit, as it
//!   is against GCS: parallel ranged requests against one request, ours
//!   and object_store's.
//! - Puts report the client's CPU time too: against an emulator on the
//!   same machine it is the client's own cost, whatever the server's speed.
//! - One 256 MiB object: a streamed put of unknown length (resumable,
//!   8 MiB chunks) and a whole-object get (parallel ranged requests).
//!
//! Writes have no anchor to compare with here: object_store's GCS client
//! speaks only the XML API, whose uploads no emulator accepts. Reads do:
//! object_store reads the same objects (XML API GET), in the same run,
//! rounds alternating which side goes first; the best of three is
//! reported, with the ratio ours / object_store (above 1 = slower).
//!
//! With `--memory GIB` it does only this instead: stream one object of that
//! many GiB of unknown length up and down through storage-gcs, and report
//! the process's peak resident memory (VmHWM). It uses 16 MiB chunks, twice
//! the default, so the bound it shows holds for the default too. Every GCS
//! emulator here rewrites the whole object on each resumable chunk (each
//! chunk takes longer than the one before), so 2 GiB takes minutes there;
//! real GCS does not.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use object_store::ObjectStoreExt;
use object_store::gcp::{GoogleCloudStorage, GoogleCloudStorageBuilder};
use object_store::path::Path;
use storage::{Body, Bytes, GetOptions, Key, PutOptions, Storage};
use storage_examples::capped_proxy::CappedProxy;
use storage_examples::{
    best, chunk_of, cpu_time, peak_mib, read_all, read_all_object_store, stream_up,
};
use storage_gcs::{GcsConfig, GcsStorage};

const SMALL_COUNT: usize = 1000;
const SMALL_SIZE: usize = 64 * 1024;
const CONCURRENCY: usize = 16;
const MEDIUM_COUNT: usize = 16;
const MEDIUM_SIZE: usize = 8 << 20;
const MEDIUM_CONCURRENCY: usize = 4;
const LARGE_SIZE: usize = 256 << 20;
const CAPPED_SIZE: usize = 64 << 20;
/// Bytes a second each connection carries through the capping proxy.
const CAPPED_RATE: f64 = 32e6;
const ROUNDS: usize = 3;

fn var(name: &str) -> Result<String, String> {
    std::env::var(name)
        .map_err(|_| format!("{name} is not set; run this through `cargo xtask bench gcs`"))
}

fn numbered_keys(prefix: &str, count: usize) -> Result<Vec<Key>, storage::Error> {
    (0..count)
        .map(|i| Key::new(format!("{prefix}/{i:05}")).map_err(storage::Error::from))
        .collect()
}

/// Puts `body` under every key, `concurrency` at a time; the time and
/// the client CPU time it took.
async fn put_all(
    store: &GcsStorage,
    keys: &[Key],
    body: &Bytes,
    concurrency: usize,
) -> storage::Result<(Duration, Duration)> {
    let (start, cpu) = (Instant::now(), cpu_time());
    stream::iter(keys)
        .map(|key| store.put(key, Body::Bytes(body.clone()), PutOptions::default()))
        .buffer_unordered(concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    Ok((start.elapsed(), cpu_time() - cpu))
}

async fn get_small_ours(store: &GcsStorage, keys: &[Key]) -> storage::Result<Duration> {
    let start = Instant::now();
    stream::iter(keys)
        .map(|key| async move { store.get(key, GetOptions::default()).await?.bytes().await })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(start.elapsed())
}

async fn get_small_theirs(
    store: &GoogleCloudStorage,
    keys: &[Key],
) -> Result<Duration, object_store::Error> {
    let start = Instant::now();
    stream::iter(keys)
        .map(|key| async move { store.get(&Path::from(key.as_str())).await?.bytes().await })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(start.elapsed())
}

/// object_store's GCS client against the emulator at `emulator`, reached
/// at `address` (itself, or a proxy in front of it): no OAuth. The `Host`
/// is the emulator's, which fake-gcs-server needs to take a request for
/// its XML API.
fn object_store_at(
    bucket: &str,
    emulator: &str,
    address: &str,
) -> Result<GoogleCloudStorage, Box<dyn std::error::Error>> {
    let mut headers = object_store::HeaderMap::new();
    headers.insert("host", emulator.trim_start_matches("http://").parse()?);
    Ok(GoogleCloudStorageBuilder::new()
        .with_bucket_name(bucket)
        .with_service_account_key(
            r#"{"disable_oauth":true,"client_email":"","private_key":"","private_key_id":""}"#,
        )
        .with_base_url(address)
        .with_client_options(
            object_store::ClientOptions::new()
                .with_allow_http(true)
                .with_default_headers(headers),
        )
        .build()?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = var("STORAGE_TEST_FAKE_GCS_ENDPOINT")?;
    let bucket = var("STORAGE_TEST_GCS_BUCKET")?;
    let ours = GcsStorage::new(GcsConfig::new(&bucket).with_base_url(&endpoint).anonymous())?;
    let chunk = chunk_of(1 << 20, 2);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let memory = args
        .iter()
        .position(|a| a == "--memory")
        .and_then(|i| args.get(i + 1))
        .map(|g| g.parse::<usize>())
        .transpose()?;
    if let Some(gib) = memory {
        // Alone in this process, so the peak is this transfer's.
        let mut config = GcsConfig::new(&bucket).with_base_url(&endpoint).anonymous();
        config.chunk_size = storage::config::ByteSize(16 << 20);
        return memory_check(&GcsStorage::new(config)?, &chunk, gib).await;
    }
    let theirs = object_store_at(&bucket, &endpoint, &endpoint)?;
    let small = chunk_of(SMALL_SIZE, 1);
    let medium = chunk_of(MEDIUM_SIZE, 3);
    let (mut puts, mut put_cpu, mut large_puts) = (vec![], vec![], vec![]);
    let (mut medium_puts, mut medium_cpu) = (vec![], vec![]);
    let (mut ours_gets, mut theirs_gets, mut ours_large, mut theirs_large) =
        (vec![], vec![], vec![], vec![]);
    // The same backend reading large objects in one request, to show what
    // the parallel ranges cost or gain on this machine.
    let single_stream = {
        let mut config = GcsConfig::new(&bucket).with_base_url(&endpoint).anonymous();
        config.download_chunk_size = storage::config::ByteSize(u64::MAX);
        GcsStorage::new(config)?
    };
    let mut single_large = vec![];
    let large_key = Key::new("bench/large")?;
    for round in 0..ROUNDS {
        let keys = numbered_keys(&format!("bench/round-{round}"), SMALL_COUNT)?;
        let (time, cpu) = put_all(&ours, &keys, &small, CONCURRENCY).await?;
        puts.push(time);
        put_cpu.push(cpu);
        let medium_keys = numbered_keys(&format!("bench/medium-{round}"), MEDIUM_COUNT)?;
        let (time, cpu) = put_all(&ours, &medium_keys, &medium, MEDIUM_CONCURRENCY).await?;
        medium_puts.push(time);
        medium_cpu.push(cpu);
        large_puts.push(stream_up(&ours, &large_key, &chunk, LARGE_SIZE).await?);
        let ours_first = round % 2 == 0;
        for side in [ours_first, !ours_first] {
            if side {
                ours_gets.push(get_small_ours(&ours, &keys).await?);
                ours_large.push(read_all(&ours, &large_key, LARGE_SIZE).await?);
                single_large.push(read_all(&single_stream, &large_key, LARGE_SIZE).await?);
            } else {
                theirs_gets.push(get_small_theirs(&theirs, &keys).await?);
                theirs_large.push(read_all_object_store(&theirs, &large_key, LARGE_SIZE).await?);
            }
        }
        ours.delete_many(&keys)
            .await
            .into_iter()
            .chain(ours.delete_many(&medium_keys).await)
            .collect::<storage::Result<Vec<()>>>()?;
    }
    // Reads where each connection's throughput is the limit.
    let capped_key = Key::new("bench/capped")?;
    ours.put(
        &capped_key,
        Body::Bytes(chunk_of(CAPPED_SIZE, 5)),
        PutOptions::default(),
    )
    .await?;
    let proxy = CappedProxy::start(&endpoint, CAPPED_RATE).await?;
    let capped = GcsStorage::new(
        GcsConfig::new(&bucket)
            .with_base_url(&proxy.url)
            .anonymous(),
    )?;
    let capped_single = {
        let mut config = GcsConfig::new(&bucket)
            .with_base_url(&proxy.url)
            .anonymous();
        config.download_chunk_size = storage::config::ByteSize(u64::MAX);
        GcsStorage::new(config)?
    };
    let capped_theirs = object_store_at(&bucket, &endpoint, &proxy.url)?;
    let (mut capped_ours, mut capped_one, mut capped_object_store) = (vec![], vec![], vec![]);
    for round in 0..ROUNDS {
        for side in 0..3 {
            match (round + side) % 3 {
                0 => capped_ours.push(read_all(&capped, &capped_key, CAPPED_SIZE).await?),
                1 => capped_one.push(read_all(&capped_single, &capped_key, CAPPED_SIZE).await?),
                _ => capped_object_store
                    .push(read_all_object_store(&capped_theirs, &capped_key, CAPPED_SIZE).await?),
            }
        }
    }
    ours.delete(&capped_key).await?;
    let mib_s = |size: usize, time: Duration| size as f64 / (1 << 20) as f64 / time.as_secs_f64();
    println!(
        "| GCS (fake-gcs-server on 127.0.0.1), best of {ROUNDS} | storage-gcs | object_store | ratio |"
    );
    println!("|---|---|---|---|");
    println!(
        "| 1,000 x 64 KiB put, 16 at a time | {:.3} s ({:.0} objects/s; client CPU {:.2} s) | (no JSON API uploads) | |",
        best(&puts).as_secs_f64(),
        SMALL_COUNT as f64 / best(&puts).as_secs_f64(),
        best(&put_cpu).as_secs_f64()
    );
    println!(
        "| 16 x 8 MiB put, one request each, 4 at a time | {:.3} s ({:.0} MiB/s; client CPU {:.2} s) | (no JSON API uploads) | |",
        best(&medium_puts).as_secs_f64(),
        mib_s(MEDIUM_COUNT * MEDIUM_SIZE, best(&medium_puts)),
        best(&medium_cpu).as_secs_f64()
    );
    for (name, ours_time, theirs_time) in [
        (
            "1,000 x 64 KiB get, 16 at a time",
            best(&ours_gets),
            best(&theirs_gets),
        ),
        (
            "256 MiB get, parallel 8 MiB ranges (default)",
            best(&ours_large),
            best(&theirs_large),
        ),
        (
            "256 MiB get, one request",
            best(&single_large),
            best(&theirs_large),
        ),
        (
            "64 MiB get, each connection capped at 32 MB/s, parallel 8 MiB ranges (default)",
            best(&capped_ours),
            best(&capped_object_store),
        ),
        (
            "64 MiB get, each connection capped at 32 MB/s, one request",
            best(&capped_one),
            best(&capped_object_store),
        ),
    ] {
        println!(
            "| {name} | {:.3} s | {:.3} s | {:.2} |",
            ours_time.as_secs_f64(),
            theirs_time.as_secs_f64(),
            ours_time.as_secs_f64() / theirs_time.as_secs_f64()
        );
    }
    println!(
        "| 256 MiB streamed put (resumable, unknown length) | {:.3} s ({:.0} MiB/s) | (no JSON API uploads) | |",
        best(&large_puts).as_secs_f64(),
        mib_s(LARGE_SIZE, best(&large_puts))
    );
    Ok(())
}

async fn memory_check(
    store: &GcsStorage,
    chunk: &Bytes,
    gib: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let key = Key::new("bench/memory-check")?;
    let up = stream_up(store, &key, chunk, gib << 30).await?;
    let down = read_all(store, &key, gib << 30).await?;
    store.delete(&key).await?;
    println!(
        "\n{gib} GiB stream of unknown length through storage-gcs: up {:.1} s, down {:.1} s, peak resident memory {:.1} MiB",
        up.as_secs_f64(),
        down.as_secs_f64(),
        peak_mib()
    );
    Ok(())
}
