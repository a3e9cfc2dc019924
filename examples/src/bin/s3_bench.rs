//! The S3 backend next to `object_store` used directly, against the same
//! server in the same run. Run it with `cargo xtask bench s3`, which starts
//! a Garage node (a production S3-compatible server that checks signatures
//! and keeps objects on disk) and passes it in `STORAGE_BENCH_S3_*`.
//!
//! - 1,000 objects of 64 KiB, 16 at a time: put all, then get all (timed
//!   apart and together). The two sides take turns by batches of 100
//!   objects, so both meet the same server and disk conditions; then each
//!   runs it again in whole phases, the figure to set next to OpenDAL's
//!   and boto3's (their benches run it so), with the CPU time the client
//!   spent on it (the server shares this machine's cores, so when the
//!   server is the bottleneck, the CPU time still shows each client's own
//!   cost).
//! - One 256 MiB object: a streamed put (multipart, 8 MiB parts, 4 in
//!   flight) and a whole-object get.
//! - One 64 MiB object read through a proxy that caps each connection at
//!   32 MB/s ([`CappedProxy`]), where a connection's throughput, not
//!   loopback's, is the limit, as it is against S3: storage-s3's parallel
//!   ranged GETs against object_store's one GET, three rounds.
//! - The whole-phase small workload and the 256 MiB put once more through
//!   storage-s3 with `unsigned_payload = true`: OpenDAL signs no body, so
//!   this is the figure to set next to its own, like with like.
//!
//! Seven rounds turn which side goes first, and each side's turn
//! starts after `sync` (the server keeps objects on disk, so one side's
//! writes would otherwise be flushed during the other's turn). Reported:
//! the best time of each side and their ratio, and the median (and range)
//! of the seven ratios of one round's two sides, which is the steadier
//! figure on a machine whose speed drifts (ours / object_store: 1.00 =
//! equal; above 1 = slower).
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
use storage_examples::capped_proxy::CappedProxy;
use storage_examples::{
    best, chunk_of, cpu_time, peak_mib, read_all, read_all_object_store, settle, stream_up,
};
use storage_s3::{S3Config, S3Storage};

const SMALL_COUNT: usize = 1000;
const SMALL_SIZE: usize = 64 * 1024;
const CONCURRENCY: usize = 16;
const LARGE_SIZE: usize = 256 << 20;
const PART: usize = 8 << 20;
const ROUNDS: usize = 7;
const CAPPED_SIZE: usize = 64 << 20;
/// Bytes a second each connection carries through the capping proxy.
const CAPPED_RATE: f64 = 32e6;
const CAPPED_ROUNDS: usize = 3;

fn var(name: &str) -> Result<String, String> {
    std::env::var(name)
        .map_err(|_| format!("{name} is not set; run this through `cargo xtask bench s3`"))
}

/// The clients of the measured rounds: storage-s3 as configured by
/// default, object_store used directly, and storage-s3 with
/// `unsigned_payload = true`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Ours,
    Theirs,
    Unsigned,
}

/// Objects per batch of the small-object workload. The two sides take
/// turns batch by batch, so each side's time is spread over the whole
/// phase and whatever drifts meanwhile (the server's disk, the machine's
/// other tenants) weighs on both alike.
const BATCH: usize = 100;

async fn ours_puts(
    store: &S3Storage,
    keys: &[Key],
    body: &Bytes,
) -> Result<Duration, Box<dyn std::error::Error>> {
    let start = Instant::now();
    stream::iter(keys)
        .map(|key| store.put(key, Body::Bytes(body.clone()), PutOptions::default()))
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(start.elapsed())
}

async fn ours_gets(
    store: &S3Storage,
    keys: &[Key],
) -> Result<Duration, Box<dyn std::error::Error>> {
    let start = Instant::now();
    stream::iter(keys)
        .map(|key| async move { store.get(key, GetOptions::default()).await?.bytes().await })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(start.elapsed())
}

async fn theirs_puts(
    store: &AmazonS3,
    paths: &[Path],
    body: &Bytes,
) -> Result<Duration, Box<dyn std::error::Error>> {
    let start = Instant::now();
    stream::iter(paths)
        .map(|path| store.put(path, PutPayload::from(body.clone())))
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(start.elapsed())
}

async fn theirs_gets(
    store: &AmazonS3,
    paths: &[Path],
) -> Result<Duration, Box<dyn std::error::Error>> {
    let start = Instant::now();
    stream::iter(paths)
        .map(|path| async move { store.get(path).await?.bytes().await })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(start.elapsed())
}

/// One round of the small-object workload: 1,000 puts of each side, then
/// 1,000 gets of each, taking turns by batches. Returns ours (put, get)
/// and theirs (put, get).
async fn small_round(
    ours: &S3Storage,
    theirs: &AmazonS3,
    round: usize,
    body: &Bytes,
) -> Result<[(Duration, Duration); 2], Box<dyn std::error::Error>> {
    let keys: Vec<Key> = (0..SMALL_COUNT)
        .map(|i| Key::new(format!("bench/ours-{round}/{i:05}")))
        .collect::<Result<_, _>>()?;
    let paths: Vec<Path> = (0..SMALL_COUNT)
        .map(|i| Path::from(format!("bench/theirs-{round}/{i:05}")))
        .collect();
    let mut ours_times = (Duration::ZERO, Duration::ZERO);
    let mut theirs_times = (Duration::ZERO, Duration::ZERO);
    settle();
    for (batch, (keys, paths)) in keys.chunks(BATCH).zip(paths.chunks(BATCH)).enumerate() {
        let ours_first = (batch + round).is_multiple_of(2);
        for side in [ours_first, !ours_first] {
            if side {
                ours_times.0 += ours_puts(ours, keys, body).await?;
            } else {
                theirs_times.0 += theirs_puts(theirs, paths, body).await?;
            }
        }
    }
    for (batch, (keys, paths)) in keys.chunks(BATCH).zip(paths.chunks(BATCH)).enumerate() {
        let ours_first = !(batch + round).is_multiple_of(2);
        for side in [ours_first, !ours_first] {
            if side {
                ours_times.1 += ours_gets(ours, keys).await?;
            } else {
                theirs_times.1 += theirs_gets(theirs, paths).await?;
            }
        }
    }
    Ok([ours_times, theirs_times])
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
        // By reference, as storage-s3 hands on chunks of 64 KiB and more.
        writer.put(chunk.clone());
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
    let endpoint = var("STORAGE_BENCH_S3_ENDPOINT")?;
    let bucket = var("STORAGE_BENCH_S3_BUCKET")?;
    let access_key = var("STORAGE_BENCH_S3_ACCESS_KEY")?;
    let secret = var("STORAGE_BENCH_S3_SECRET_KEY")?;
    let ours = S3Storage::new(
        S3Config::new(&bucket)
            .with_endpoint(&endpoint, true)
            .with_region("us-east-1")
            .with_credentials(access_key.as_str(), secret.as_str()),
    )?;
    let ours_unsigned = {
        let mut config = ours.config().clone();
        config.unsigned_payload = true;
        S3Storage::new(config)?
    };
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
    // Per workload, this round's time of each side.
    let mut ours_rounds: [Vec<Duration>; 5] = Default::default();
    let mut theirs_rounds: [Vec<Duration>; 5] = Default::default();
    // The small workload again, in whole phases (1,000 puts, then 1,000
    // gets, 16 at a time throughout), as OpenDAL's and boto3's benches run
    // it: the absolute figure to set next to theirs. With each, the CPU
    // time this process spent on it: the client's cost, which the server
    // (sharing this machine's cores) does not set.
    let (mut ours_whole, mut theirs_whole) = (vec![], vec![]);
    let (mut ours_cpu, mut theirs_cpu) = (vec![], vec![]);
    let large_key = Key::new("bench/large-ours")?;
    let large_path = Path::from("bench/large-theirs");
    // storage-s3 again with `unsigned_payload = true`, as OpenDAL sends
    // every request: its whole-phase small workload and large put, to set
    // next to OpenDAL's like with like.
    let (mut unsigned_whole, mut unsigned_cpu, mut unsigned_up) = (vec![], vec![], vec![]);
    let unsigned_key = Key::new("bench/large-unsigned")?;
    for round in 0..ROUNDS {
        let [(ours_put, ours_get), (theirs_put, theirs_get)] =
            small_round(&ours, &theirs, round, &small).await?;
        // Which side goes first turns round by round.
        let mut order = [Side::Ours, Side::Theirs, Side::Unsigned];
        let sides = order.len();
        order.rotate_left(round % sides);
        for side in order {
            // The server writes to disk: each side starts with nothing of
            // the other's left to flush.
            settle();
            match side {
                Side::Ours | Side::Unsigned => {
                    let (store, name) = match side {
                        Side::Unsigned => (&ours_unsigned, "unsigned"),
                        _ => (&ours, "ours"),
                    };
                    let keys: Vec<Key> = (0..SMALL_COUNT)
                        .map(|i| Key::new(format!("bench/{name}-whole-{round}/{i:05}")))
                        .collect::<Result<_, _>>()?;
                    let cpu = cpu_time();
                    let put = ours_puts(store, &keys, &small).await?;
                    let whole = put + ours_gets(store, &keys).await?;
                    let cpu = cpu_time() - cpu;
                    settle();
                    if side == Side::Unsigned {
                        unsigned_whole.push(whole);
                        unsigned_cpu.push(cpu);
                        unsigned_up.push(ours_large(store, &unsigned_key, &chunk).await?.0);
                        continue;
                    }
                    ours_whole.push(whole);
                    ours_cpu.push(cpu);
                    let (up, down) = ours_large(store, &large_key, &chunk).await?;
                    for (workload, time) in ours_rounds.iter_mut().zip([
                        ours_put,
                        ours_get,
                        ours_put + ours_get,
                        up,
                        down,
                    ]) {
                        workload.push(time);
                    }
                }
                Side::Theirs => {
                    let paths: Vec<Path> = (0..SMALL_COUNT)
                        .map(|i| Path::from(format!("bench/theirs-whole-{round}/{i:05}")))
                        .collect();
                    let cpu = cpu_time();
                    let put = theirs_puts(&theirs, &paths, &small).await?;
                    theirs_whole.push(put + theirs_gets(&theirs, &paths).await?);
                    theirs_cpu.push(cpu_time() - cpu);
                    settle();
                    let (up, down) = theirs_large(&theirs, &large_path, &chunk).await?;
                    for (workload, time) in theirs_rounds.iter_mut().zip([
                        theirs_put,
                        theirs_get,
                        theirs_put + theirs_get,
                        up,
                        down,
                    ]) {
                        workload.push(time);
                    }
                }
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
    let (capped_ours, capped_theirs) =
        capped_gets(&ours, &endpoint, &bucket, &access_key, &secret).await?;
    let names = [
        "1,000 x 64 KiB put, 16 at a time",
        "1,000 x 64 KiB get, 16 at a time",
        "1,000 x 64 KiB put + get, 16 at a time",
        "256 MiB streamed put (multipart)",
        "256 MiB get",
    ];
    println!(
        "| S3 (Garage on 127.0.0.1), {ROUNDS} rounds | storage-s3, best | object_store, best | ratio of bests | ratio per round: median (range) |"
    );
    println!("|---|---|---|---|---|");
    for ((name, ours), theirs) in names.iter().zip(&ours_rounds).zip(&theirs_rounds) {
        // Both sides ran in the same round, one after the other: the
        // round's ratio cancels what drifts slowly (the disk, the other
        // tenants of the machine), which the best of each does not.
        let mut ratios: Vec<f64> = ours
            .iter()
            .zip(theirs)
            .map(|(o, t)| o.as_secs_f64() / t.as_secs_f64())
            .collect();
        ratios.sort_by(f64::total_cmp);
        println!(
            "| {name} | {:.3} s | {:.3} s | {:.2} | {:.2} ({:.2}–{:.2}) |",
            best(ours).as_secs_f64(),
            best(theirs).as_secs_f64(),
            best(ours).as_secs_f64() / best(theirs).as_secs_f64(),
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1],
        );
    }
    println!(
        "\n1,000 x 64 KiB put + get, 16 at a time, in whole phases as OpenDAL's and boto3's benches run it (best of {ROUNDS}): storage-s3 {:.3} s, object_store {:.3} s; client CPU (least of {ROUNDS}): storage-s3 {:.3} s, object_store {:.3} s",
        best(&ours_whole).as_secs_f64(),
        best(&theirs_whole).as_secs_f64(),
        best(&ours_cpu).as_secs_f64(),
        best(&theirs_cpu).as_secs_f64()
    );
    println!(
        "\n| storage-s3, body signing (best of {ROUNDS}) | signed (default) | `unsigned_payload = true` | ratio |\n|---|---|---|---|"
    );
    let signing_rows = [
        (
            "1,000 x 64 KiB put + get, whole phases",
            &ours_whole,
            &unsigned_whole,
        ),
        ("client CPU of it (least)", &ours_cpu, &unsigned_cpu),
        (
            "256 MiB streamed put (multipart)",
            &ours_rounds[3],
            &unsigned_up,
        ),
    ];
    for (name, signed, unsigned) in signing_rows {
        println!(
            "| {name} | {:.3} s | {:.3} s | {:.2} |",
            best(signed).as_secs_f64(),
            best(unsigned).as_secs_f64(),
            best(unsigned).as_secs_f64() / best(signed).as_secs_f64()
        );
    }
    println!(
        "\n| 100 x 1 MiB put + get, one at a time, best of {ROUNDS} | bare | all layers | ratio |\n|---|---|---|---|\n| storage-s3 | {:.3} s | {:.3} s | {:.3} |",
        bare.as_secs_f64(),
        with_layers.as_secs_f64(),
        with_layers.as_secs_f64() / bare.as_secs_f64()
    );
    println!(
        "\n| 64 MiB get, each connection capped at 32 MB/s (a proxy), best of {CAPPED_ROUNDS} | storage-s3, parallel 8 MiB ranges (default) | object_store, one GET | ratio |\n|---|---|---|---|\n| time | {:.3} s | {:.3} s | {:.2} |",
        capped_ours.as_secs_f64(),
        capped_theirs.as_secs_f64(),
        capped_ours.as_secs_f64() / capped_theirs.as_secs_f64()
    );
    Ok(())
}

/// The best times of a 64 MiB get through a [`CappedProxy`]: storage-s3's
/// (parallel ranges) and object_store's (one GET), taking turns.
async fn capped_gets(
    ours: &S3Storage,
    endpoint: &str,
    bucket: &str,
    access_key: &str,
    secret: &str,
) -> Result<(Duration, Duration), Box<dyn std::error::Error>> {
    let key = Key::new("bench/capped")?;
    ours.put(
        &key,
        Body::Bytes(chunk_of(CAPPED_SIZE, 5)),
        PutOptions::default(),
    )
    .await?;
    let proxy = CappedProxy::start(endpoint, CAPPED_RATE).await?;
    let mut config = ours.config().clone();
    config.endpoint = Some(proxy.url.clone());
    let capped = S3Storage::new(config)?;
    let theirs = AmazonS3Builder::new()
        .with_endpoint(&proxy.url)
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_bucket_name(bucket)
        .with_access_key_id(access_key)
        .with_secret_access_key(secret)
        .build()?;
    let (mut ours_times, mut theirs_times) = (vec![], vec![]);
    for round in 0..CAPPED_ROUNDS {
        for side in [round % 2 == 0, round % 2 == 1] {
            if side {
                ours_times.push(read_all(&capped, &key, CAPPED_SIZE).await?);
            } else {
                theirs_times.push(read_all_object_store(&theirs, &key, CAPPED_SIZE).await?);
            }
        }
    }
    ours.delete(&key).await?;
    Ok((best(&ours_times), best(&theirs_times)))
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
