//! The S3 backend next to `object_store` used directly, against the same
//! server in the same run. Run it with `cargo xtask bench s3`, which starts
//! the test servers (s3s-fs: a real server that checks signatures and keeps
//! objects on disk).
//!
//! - 1,000 objects of 64 KiB, 16 at a time: put all, then get all.
//! - One 256 MiB object: a streamed put (multipart, 8 MiB parts, 4 in
//!   flight) and a whole-object get.
//!
//! Rounds alternate which side goes first, and each measurement starts
//! after `sync` (the server keeps objects on disk, so one side's writes
//! would otherwise be flushed during the other's turn); the best of five
//! is reported, and the ratio ours / object_store (1.00 = equal; above 1 =
//! slower).
//!
//! With `--memory GIB` it does only this instead: stream one object of that
//! many GiB of unknown length up and down through storage-s3, and report
//! the process's peak resident memory (VmHWM).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use storage::{Body, Bytes, GetOptions, Key, PutOptions, Storage};
use storage_examples::{best, chunk_of, peak_mib, read_all, settle, stream_up};
use storage_s3::{S3Config, S3Storage};

const SMALL_COUNT: usize = 1000;
const SMALL_SIZE: usize = 64 * 1024;
const CONCURRENCY: usize = 16;
const LARGE_SIZE: usize = 256 << 20;
const PART: usize = 8 << 20;
const ROUNDS: usize = 5;

fn var(name: &str) -> Result<String, String> {
    std::env::var(name)
        .map_err(|_| format!("{name} is not set; run this through `cargo xtask bench s3`"))
}

async fn ours_small(
    store: &S3Storage,
    prefix: &str,
    body: &Bytes,
) -> Result<Duration, Box<dyn std::error::Error>> {
    let keys: Vec<Key> = (0..SMALL_COUNT)
        .map(|i| Key::new(format!("{prefix}/{i:05}")))
        .collect::<Result<_, _>>()?;
    let start = Instant::now();
    stream::iter(&keys)
        .map(|key| store.put(key, Body::Bytes(body.clone()), PutOptions::default()))
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    stream::iter(&keys)
        .map(|key| async move { store.get(key, GetOptions::default()).await?.bytes().await })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(start.elapsed())
}

async fn theirs_small(
    store: &AmazonS3,
    prefix: &str,
    body: &Bytes,
) -> Result<Duration, Box<dyn std::error::Error>> {
    let paths: Vec<Path> = (0..SMALL_COUNT)
        .map(|i| Path::from(format!("{prefix}/{i:05}")))
        .collect();
    let start = Instant::now();
    stream::iter(&paths)
        .map(|path| store.put(path, PutPayload::from(body.clone())))
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    stream::iter(&paths)
        .map(|path| async move { store.get(path).await?.bytes().await })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(start.elapsed())
}

async fn ours_large(
    store: &S3Storage,
    key: &Key,
    chunk: &Bytes,
) -> Result<(Duration, Duration), Box<dyn std::error::Error>> {
    let chunk = chunk.clone();
    let parts = LARGE_SIZE / chunk.len();
    let start = Instant::now();
    let body = Body::from_stream(stream::iter((0..parts).map(move |_| Ok(chunk.clone()))));
    store.put(key, body, PutOptions::default()).await?;
    let up = start.elapsed();
    let start = Instant::now();
    let mut body = store.get(key, GetOptions::default()).await?.body;
    let mut total = 0;
    while let Some(piece) = body.try_next().await? {
        total += piece.len();
    }
    assert_eq!(total, LARGE_SIZE);
    Ok((up, start.elapsed()))
}

async fn theirs_large(
    store: &AmazonS3,
    path: &Path,
    chunk: &Bytes,
) -> Result<(Duration, Duration), Box<dyn std::error::Error>> {
    let parts = LARGE_SIZE / chunk.len();
    let start = Instant::now();
    let mut writer = WriteMultipart::new_with_chunk_size(store.put_multipart(path).await?, PART);
    for _ in 0..parts {
        writer.wait_for_capacity(4).await?;
        writer.write(chunk);
    }
    writer.finish().await?;
    let up = start.elapsed();
    let start = Instant::now();
    let mut body = store.get(path).await?.into_stream();
    let mut total = 0;
    while let Some(piece) = body.try_next().await? {
        total += piece.len();
    }
    assert_eq!(total, LARGE_SIZE);
    Ok((up, start.elapsed()))
}

/// 100 objects of 1 MiB put and read back, one at a time.
async fn one_mib_round_trips(
    store: &dyn Storage,
    prefix: &str,
    body: &Bytes,
) -> Result<Duration, Box<dyn std::error::Error>> {
    let start = Instant::now();
    for i in 0..100 {
        let key = Key::new(format!("{prefix}/{i:03}"))?;
        store
            .put(&key, Body::Bytes(body.clone()), PutOptions::default())
            .await?;
        store
            .get(&key, GetOptions::default())
            .await?
            .bytes()
            .await?;
    }
    Ok(start.elapsed())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = var("STORAGE_TEST_S3S_ENDPOINT")?;
    let bucket = var("STORAGE_TEST_S3_BUCKET")?;
    let access_key = var("STORAGE_TEST_S3S_ACCESS_KEY")?;
    let secret = var("STORAGE_TEST_S3S_SECRET_KEY")?;
    let ours = S3Storage::new(
        S3Config::new(&bucket)
            .with_endpoint(&endpoint, true)
            .with_region("us-east-1")
            .with_credentials(access_key.as_str(), secret.as_str()),
    )?;
    let theirs: Arc<AmazonS3> = Arc::new(
        AmazonS3Builder::new()
            .with_endpoint(&endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_bucket_name(&bucket)
            .with_access_key_id(&access_key)
            .with_secret_access_key(&secret)
            .build()?,
    );
    let small = chunk_of(SMALL_SIZE, 1);
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
        return memory_check(&ours, &chunk, gib).await;
    }
    let (mut ours_s, mut theirs_s, mut ours_up, mut ours_down, mut theirs_up, mut theirs_down) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let large_key = Key::new("bench/large-ours")?;
    let large_path = Path::from("bench/large-theirs");
    for round in 0..ROUNDS {
        let ours_first = round % 2 == 0;
        for side in [ours_first, !ours_first] {
            // The server writes to disk: each side starts with nothing of
            // the other's left to flush.
            settle();
            if side {
                ours_s.push(ours_small(&ours, &format!("bench/ours-{round}"), &small).await?);
                settle();
                let (up, down) = ours_large(&ours, &large_key, &chunk).await?;
                ours_up.push(up);
                ours_down.push(down);
            } else {
                theirs_s
                    .push(theirs_small(&theirs, &format!("bench/theirs-{round}"), &small).await?);
                settle();
                let (up, down) = theirs_large(&theirs, &large_path, &chunk).await?;
                theirs_up.push(up);
                theirs_down.push(down);
            }
        }
    }
    // The layers' cost: the same client bare and with every layer on.
    let layered_config = {
        let mut config = storage::layers::LayersConfig::default();
        config.timeout = Some(storage::layers::TimeoutConfig::default());
        config.retry = Some(storage::layers::RetryConfig::default());
        config.circuit_breaker = Some(storage::layers::BreakerConfig::default());
        config
    };
    let layered = storage::layers::stack(Arc::new(ours.clone()), &layered_config).storage;
    let (mut bare_times, mut layered_times) = (vec![], vec![]);
    for round in 0..ROUNDS {
        let layered_first = round % 2 == 1;
        for side in [layered_first, !layered_first] {
            if side {
                layered_times.push(
                    one_mib_round_trips(&*layered, &format!("bench/layered-{round}"), &chunk)
                        .await?,
                );
            } else {
                bare_times.push(
                    one_mib_round_trips(&ours, &format!("bench/bare-{round}"), &chunk).await?,
                );
            }
        }
    }
    let (bare, with_layers) = (best(&bare_times), best(&layered_times));
    let rows = [
        (
            "1,000 x 64 KiB put + get, 16 at a time",
            best(&ours_s),
            best(&theirs_s),
        ),
        (
            "256 MiB streamed put (multipart)",
            best(&ours_up),
            best(&theirs_up),
        ),
        ("256 MiB get", best(&ours_down), best(&theirs_down)),
    ];
    println!("| S3 (s3s-fs on 127.0.0.1), best of {ROUNDS} | storage-s3 | object_store | ratio |");
    println!("|---|---|---|---|");
    for (name, ours, theirs) in rows {
        println!(
            "| {name} | {:.3} s | {:.3} s | {:.2} |",
            ours.as_secs_f64(),
            theirs.as_secs_f64(),
            ours.as_secs_f64() / theirs.as_secs_f64()
        );
    }
    println!(
        "\n| 100 x 1 MiB put + get, one at a time, best of {ROUNDS} | bare | all layers | ratio |\n|---|---|---|---|\n| storage-s3 | {:.3} s | {:.3} s | {:.3} |",
        bare.as_secs_f64(),
        with_layers.as_secs_f64(),
        with_layers.as_secs_f64() / bare.as_secs_f64()
    );
    Ok(())
}

async fn memory_check(
    store: &S3Storage,
    chunk: &Bytes,
    gib: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let key = Key::new("bench/memory-check")?;
    let up = stream_up(store, &key, chunk, gib << 30).await?;
    let down = read_all(store, &key, gib << 30).await?;
    store.delete(&key).await?;
    println!(
        "\n{gib} GiB stream of unknown length: up {:.1} s, down {:.1} s, peak resident memory {:.1} MiB",
        up.as_secs_f64(),
        down.as_secs_f64(),
        peak_mib()
    );
    Ok(())
}
