//! The Supabase backend against the repository's Supabase Storage test
//! server, run in a child process (this binary with `--serve`), so the
//! memory measured is the client's alone. Run it with
//! `cargo xtask bench supabase`.
//!
//! - 1,000 objects of 64 KiB, 16 at a time: put all, then get all.
//! - One 256 MiB object: a streamed put of unknown length (TUS, 6 MiB
//!   chunks) and a whole-object get.
//! - One 64 MiB object read through a proxy that caps each connection at
//!   32 MB/s ([`CappedProxy`]), where a connection's throughput, not
//!   loopback's, is the limit: parallel ranged downloads (the default)
//!   against one download.
//! - With `--memory GIB`: only one object of that many GiB of unknown
//!   length, up (TUS) and down, and the process's peak resident memory.
//!
//! No anchor library has a Supabase backend, so there is no ratio: the
//! numbers are absolute, on this machine.

#[path = "../../../storage-supabase/tests/support/server.rs"]
mod server;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use storage::{Body, GetOptions, Key, PutOptions, Storage};
use storage_examples::capped_proxy::CappedProxy;
use storage_examples::{best, chunk_of, peak_mib, read_all, stream_up};
use storage_supabase::{SupabaseConfig, SupabaseStorage};

const SMALL_COUNT: usize = 1000;
const SMALL_SIZE: usize = 64 * 1024;
const CONCURRENCY: usize = 16;
const LARGE_SIZE: usize = 256 << 20;
const ROUNDS: usize = 3;
const CAPPED_SIZE: usize = 64 << 20;
/// Bytes a second each connection carries through the capping proxy.
const CAPPED_RATE: f64 = 32e6;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve") {
        let server = server::SupabaseServer::start(Duration::from_secs(60)).await;
        println!("{}", server.url);
        // Serve until the parent kills this process.
        std::future::pending::<()>().await;
    }
    let memory = args
        .iter()
        .position(|a| a == "--memory")
        .and_then(|i| args.get(i + 1))
        .map(|g| g.parse::<usize>())
        .transpose()?;

    let mut child = Command::new(std::env::current_exe()?)
        .arg("--serve")
        .stdout(Stdio::piped())
        .spawn()?;
    let url = {
        let stdout = child.stdout.take().ok_or("the server's stdout")?;
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        line.trim().to_owned()
    };
    let outcome = run(&url, memory).await;
    let _ = child.kill();
    let _ = child.wait();
    outcome
}

async fn run(url: &str, memory: Option<usize>) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = SupabaseConfig::new(url, "bench").with_key(server::service_key().as_str());
    config.create_bucket = true;
    let store = SupabaseStorage::new(config)?;
    store.create_bucket().await?;
    let chunk = chunk_of(1 << 20, 2);
    if let Some(gib) = memory {
        let key = Key::new("bench/memory-check")?;
        let up = stream_up(&store, &key, &chunk, gib << 30).await?;
        let down = read_all(&store, &key, gib << 30).await?;
        println!(
            "\n{gib} GiB stream of unknown length through storage-supabase (TUS, 6 MiB chunks): up {:.1} s, down {:.1} s, peak resident memory {:.1} MiB",
            up.as_secs_f64(),
            down.as_secs_f64(),
            peak_mib()
        );
        return Ok(());
    }
    let small = chunk_of(SMALL_SIZE, 1);
    let (mut puts, mut gets, mut large_up, mut large_down) = (vec![], vec![], vec![], vec![]);
    for round in 0..ROUNDS {
        let keys: Vec<Key> = (0..SMALL_COUNT)
            .map(|i| Key::new(format!("bench/{round}/{i:05}")))
            .collect::<Result<_, _>>()?;
        let start = Instant::now();
        stream::iter(&keys)
            .map(|key| store.put(key, Body::Bytes(small.clone()), PutOptions::default()))
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?;
        puts.push(start.elapsed());
        let start = Instant::now();
        let reader = &store;
        stream::iter(&keys)
            .map(|key| async move { reader.get(key, GetOptions::default()).await?.bytes().await })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?;
        gets.push(start.elapsed());
        let key = Key::new("bench/large")?;
        large_up.push(stream_up(&store, &key, &chunk, LARGE_SIZE).await?);
        large_down.push(read_all(&store, &key, LARGE_SIZE).await?);
        store
            .delete_many(&keys)
            .await
            .into_iter()
            .collect::<storage::Result<Vec<()>>>()?;
    }
    // Reads where each connection's throughput is the limit.
    let capped_key = Key::new("bench/capped")?;
    store
        .put(
            &capped_key,
            Body::Bytes(chunk_of(CAPPED_SIZE, 5)),
            PutOptions::default(),
        )
        .await?;
    let proxy = CappedProxy::start(url, CAPPED_RATE).await?;
    let through = |chunk: u64| {
        let mut config =
            SupabaseConfig::new(&proxy.url, "bench").with_key(server::service_key().as_str());
        config.download_chunk_size = storage::config::ByteSize(chunk);
        SupabaseStorage::new(config)
    };
    let (parallel, single) = (through(8 << 20)?, through(u64::MAX)?);
    let (mut capped_parallel, mut capped_single) = (vec![], vec![]);
    for round in 0..ROUNDS {
        for side in [round % 2 == 0, round % 2 == 1] {
            if side {
                capped_parallel.push(read_all(&parallel, &capped_key, CAPPED_SIZE).await?);
            } else {
                capped_single.push(read_all(&single, &capped_key, CAPPED_SIZE).await?);
            }
        }
    }
    store.delete(&capped_key).await?;
    let mib_s = |time: Duration| LARGE_SIZE as f64 / (1 << 20) as f64 / time.as_secs_f64();
    println!(
        "| Supabase (repository test server on 127.0.0.1), best of {ROUNDS} | storage-supabase |"
    );
    println!("|---|---|");
    println!(
        "| 1,000 x 64 KiB put, 16 at a time | {:.3} s |",
        best(&puts).as_secs_f64()
    );
    println!(
        "| 1,000 x 64 KiB get, 16 at a time | {:.3} s |",
        best(&gets).as_secs_f64()
    );
    println!(
        "| 256 MiB streamed put (TUS, unknown length) | {:.3} s ({:.0} MiB/s) |",
        best(&large_up).as_secs_f64(),
        mib_s(best(&large_up))
    );
    println!(
        "| 256 MiB get | {:.3} s ({:.0} MiB/s) |",
        best(&large_down).as_secs_f64(),
        mib_s(best(&large_down))
    );
    println!(
        "| 64 MiB get, each connection capped at 32 MB/s (a proxy), parallel 8 MiB ranges (default) | {:.3} s |",
        best(&capped_parallel).as_secs_f64()
    );
    println!(
        "| 64 MiB get, each connection capped at 32 MB/s, one download | {:.3} s |",
        best(&capped_single).as_secs_f64()
    );
    Ok(())
}
