//! Apache OpenDAL on the same workloads as `local_bench` and `s3_bench`,
//! in its own process (so its peak memory is its own). Run it with
//! `cargo xtask bench local` or `cargo xtask bench s3`.
//!
//! ```text
//! storage-bench-opendal local [--size BYTES] [--small N] [--dir DIR]
//! storage-bench-opendal s3     # server from STORAGE_BENCH_S3_* variables
//! ```
//!
//! - `local`: OpenDAL's fs service. A `--size` object streamed in 4 MiB
//!   writes (its writer fsyncs on close) and read back as a stream, next
//!   to a raw write (4 MiB writes, then fsync) and a raw read (2 MiB reads)
//!   of the same bytes in this process, best of four, as MiB/s and as a
//!   ratio to raw; then `--small` 4 KiB objects (default 10,000, as
//!   `local_bench`) written, read, stat'ed and
//!   deleted one at a time and 16 at a time (16 tasks, the same names in
//!   100 folders, as `local_bench`; gets and stats go over the objects thirty
//!   times), as operations per second; and the put again with
//!   `atomic_write_dir` set (a temporary file renamed into place, as ours).
//! - `s3`: OpenDAL's s3 service: 1,000 objects of 64 KiB, 16 at a time, put
//!   then get; one 256 MiB streamed put (8 MiB chunks, 4 in flight) and a
//!   whole-object streamed get; best of five, each after `sync`; and the
//!   CPU time this process spent on the 1,000 puts and gets (the least of
//!   five, from /proc/self/stat, so in steps of 10 ms).
//!
//! The raw helpers, `settle`, `best` and `peak_mib` repeat `local_bench`'s
//! and `storage-examples`' on purpose: this crate stays outside the
//! workspace so OpenDAL's dependencies stay out of it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use opendal::{Buffer, Operator, services};

const WRITE_CHUNK: usize = 4 << 20;
const READ_CHUNK: usize = 2 << 20;
const ROUNDS: usize = 4;
const CONCURRENCY: usize = 16;
/// Gets and stats go over the objects this many times (as in local_bench).
const READ_PASSES: usize = 30;
/// Warm reads of each side per round of the large object.
const WARM_READS: usize = 3;

type Failure = Box<dyn std::error::Error>;

fn pattern(size: usize, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn mib_per_s(bytes: u64, time: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / time.as_secs_f64()
}

fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// CPU time (user and system, every thread) this process has used so far,
/// from /proc/self/stat (in clock ticks of 10 ms; zero where there is no
/// /proc). Without a crate for clock_gettime, this is what std can read.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (which may hold spaces, and ends
    // with the last ')'): utime and stime are the 12th and 13th of them.
    let ticks: u64 = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|n| n.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// Flushes every file system's dirty data and journal (`sync`), so that a
/// measurement starts on a quiet disk instead of paying for the writeback
/// of the one before it.
fn settle() {
    if let Err(err) = std::process::Command::new("sync").status() {
        eprintln!("warning: cannot run sync ({err}): figures will be noisier");
    }
}

fn raw_write(path: &Path, size: u64, chunk: &[u8]) -> std::io::Result<Duration> {
    settle();
    let start = Instant::now();
    let mut file = std::fs::File::create(path)?;
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    file.sync_all()?;
    Ok(start.elapsed())
}

fn raw_read(path: &Path) -> std::io::Result<Duration> {
    let start = Instant::now();
    let mut file = std::fs::File::open(path)?;
    let mut buffer = vec![0u8; READ_CHUNK];
    while file.read(&mut buffer)? > 0 {}
    Ok(start.elapsed())
}

fn best(times: &[Duration]) -> Duration {
    times.iter().copied().min().unwrap_or_default()
}

fn arg(name: &str) -> Option<String> {
    let mut args = std::env::args().skip(2);
    while let Some(a) = args.next() {
        if a == name {
            return args.next();
        }
    }
    None
}

fn parse_size(text: &str) -> Result<u64, Failure> {
    let text = text.trim();
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = digits.parse()?;
    let scale = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "k" => 1 << 10,
        "mib" | "m" => 1 << 20,
        "gib" | "g" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?}").into()),
    };
    Ok(n * scale)
}

async fn local() -> Result<(), Failure> {
    let size = arg("--size")
        .map(|s| parse_size(&s))
        .transpose()?
        .unwrap_or(1 << 30);
    let small: usize = arg("--small")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let dir = PathBuf::from(arg("--dir").unwrap_or_else(|| "target/bench-data/opendal".into()));
    std::fs::create_dir_all(&dir)?;
    let root = dir.canonicalize()?;
    let op = Operator::new(services::Fs::default().root(&root.display().to_string()))?;
    let chunk = pattern(WRITE_CHUNK, 3);
    let raw_path = root.join("raw.bin");

    let (mut raw_put, mut raw_get, mut od_put, mut od_get) = (vec![], vec![], vec![], vec![]);
    for round in 0..ROUNDS {
        let raw_first = round % 2 == 0;
        for side in if raw_first { [0, 1] } else { [1, 0] } {
            if side == 0 {
                raw_put.push(raw_write(&raw_path, size, &chunk)?);
            } else {
                settle();
                let start = Instant::now();
                let mut writer = op.writer("large.bin").await?;
                let mut left = size;
                while left > 0 {
                    let n = left.min(WRITE_CHUNK as u64) as usize;
                    writer.write(Buffer::from(chunk[..n].to_vec())).await?;
                    left -= n as u64;
                }
                writer.close().await?;
                od_put.push(start.elapsed());
            }
        }
        // Several reads of each, alternating which goes first (as in
        // local_bench): read speed swings between runs on this machine.
        for repeat in 0..WARM_READS {
            for side in if (round + repeat) % 2 == 0 {
                [0, 1]
            } else {
                [1, 0]
            } {
                if side == 0 {
                    raw_get.push(raw_read(&raw_path)?);
                } else {
                    let start = Instant::now();
                    let mut body = op.reader("large.bin").await?.into_bytes_stream(..).await?;
                    let mut total = 0u64;
                    while let Some(piece) = body.try_next().await? {
                        total += piece.len() as u64;
                    }
                    od_get.push(start.elapsed());
                    if total != size {
                        return Err(format!("read {total} bytes of {size}").into());
                    }
                }
            }
        }
    }
    std::fs::remove_file(&raw_path)?;
    op.delete("large.bin").await?;
    let (rp, rg, op_, og) = (best(&raw_put), best(&raw_get), best(&od_put), best(&od_get));
    println!(
        "| OpenDAL fs, {} MiB, best of {ROUNDS} (reads: of {}) | raw | OpenDAL | OpenDAL / raw |",
        size >> 20,
        ROUNDS * WARM_READS
    );
    println!("|---|---|---|---|");
    println!(
        "| streamed put (both fsync) | {:.0} MiB/s | {:.0} MiB/s | {:.2} |",
        mib_per_s(size, rp),
        mib_per_s(size, op_),
        rp.as_secs_f64() / op_.as_secs_f64()
    );
    println!(
        "| streamed get (warm cache) | {:.0} MiB/s | {:.0} MiB/s | {:.2} |",
        mib_per_s(size, rg),
        mib_per_s(size, og),
        rg.as_secs_f64() / og.as_secs_f64()
    );
    println!(
        "peak resident memory after the large object: {:.1} MiB\n",
        peak_mib()
    );

    let value = pattern(4096, 5);
    // The names local_bench uses (100 folders), under a prefix of their
    // own per pass and per operator: on ext4 without a journal, files
    // created where files were just deleted crawl (`recently_deleted`),
    // so every put phase writes into new folders, as local_bench's do.
    let names_under = |prefix: &str| -> Vec<String> {
        (0..small)
            .map(|i| format!("{prefix}/small/{:03}/{i:06}", i % 100))
            .collect()
    };
    println!(
        "| OpenDAL fs, {small} × 4 KiB (its writes fsync) | one at a time | {CONCURRENCY} at a time |"
    );
    println!("|---|---|---|");
    let ops = |t: Duration| small as f64 / t.as_secs_f64();
    // The same fs service with a temporary folder configured: then it
    // writes a temporary file and renames it into place (atomic, as ours
    // always is); without one it writes the target file in place.
    let atomic = Operator::new(
        services::Fs::default()
            .root(&root.display().to_string())
            .atomic_write_dir(&root.join(".atomic-tmp").display().to_string()),
    )?;
    let mut rows: Vec<(&str, [f64; 2])> = vec![
        ("put", [0.0; 2]),
        ("get", [0.0; 2]),
        ("head", [0.0; 2]),
        ("delete", [0.0; 2]),
        ("put, atomic (`atomic_write_dir`)", [0.0; 2]),
    ];
    for (column, concurrency) in [1usize, CONCURRENCY].into_iter().enumerate() {
        // `concurrency` tasks, each taking the next name when done with
        // one: local_bench's harness, and its raw baseline's threads.
        let plain_names = Arc::new(names_under(&format!("plain-{concurrency}")));
        let atomic_names = Arc::new(names_under(&format!("atomic-{concurrency}")));
        let run = |op: &Operator, what: usize, names: &Arc<Vec<String>>| {
            let (op, value, names) = (op.clone(), value.clone(), names.clone());
            async move {
                let next = Arc::new(AtomicUsize::new(0));
                settle();
                let start = Instant::now();
                let mut tasks = tokio::task::JoinSet::new();
                for _ in 0..concurrency {
                    let (op, value, names, next) =
                        (op.clone(), value.clone(), names.clone(), next.clone());
                    tasks.spawn(async move {
                        // Reads go over the names READ_PASSES times, as
                        // in local_bench; writes and deletes once.
                        let passes = if matches!(what, 1 | 2) {
                            READ_PASSES
                        } else {
                            1
                        };
                        loop {
                            let item = next.fetch_add(1, Ordering::Relaxed);
                            if item >= names.len() * passes {
                                break;
                            }
                            let name = &names[item % names.len()];
                            match what {
                                0 => op.write(name, value.clone()).await.map(drop)?,
                                1 => op.read(name).await.map(drop)?,
                                2 => op.stat(name).await.map(drop)?,
                                _ => op.delete(name).await?,
                            }
                        }
                        Ok::<(), opendal::Error>(())
                    });
                }
                while let Some(done) = tasks.join_next().await {
                    done.map_err(|err| {
                        opendal::Error::new(opendal::ErrorKind::Unexpected, err.to_string())
                    })??;
                }
                Ok::<Duration, opendal::Error>(start.elapsed())
            }
        };
        for (what, row) in rows.iter_mut().enumerate() {
            let passes = if matches!(what, 1 | 2) {
                READ_PASSES
            } else {
                1
            };
            // Row 4 is a put through the atomic operator, to names of
            // its own.
            let (operator, action, names) = if what == 4 {
                (&atomic, 0, &atomic_names)
            } else {
                (&op, what, &plain_names)
            };
            row.1[column] = passes as f64 * ops(run(operator, action, names).await?);
        }
        // Remove what the atomic puts wrote, unmeasured.
        run(&op, 3, &atomic_names).await?;
    }
    for (name, [one, many]) in rows {
        println!("| {name} | {one:.0} ops/s | {many:.0} ops/s |");
    }
    Ok(())
}

async fn s3() -> Result<(), Failure> {
    let var = |name: &str| {
        std::env::var(name).map_err(|_| format!("{name} is not set: run `cargo xtask bench s3`"))
    };
    let op = Operator::new(
        services::S3::default()
            .endpoint(&var("STORAGE_BENCH_S3_ENDPOINT")?)
            .bucket(&var("STORAGE_BENCH_S3_BUCKET")?)
            .region("us-east-1")
            .access_key_id(&var("STORAGE_BENCH_S3_ACCESS_KEY")?)
            .secret_access_key(&var("STORAGE_BENCH_S3_SECRET_KEY")?)
            .disable_config_load()
            .disable_ec2_metadata(),
    )?;
    let value = pattern(64 << 10, 7);
    let names: Vec<String> = (0..1000)
        .map(|i| format!("opendal-bench/small/{i:04}"))
        .collect();
    let (mut puts, mut gets, mut big_puts, mut big_gets) = (vec![], vec![], vec![], vec![]);
    let mut cpu = vec![];
    let big_size = 256u64 << 20;
    let chunk = pattern(8 << 20, 11);
    for _ in 0..5 {
        // The server writes to disk: start each measurement with nothing
        // of the last one left to flush (as s3_bench does).
        settle();
        let cpu_start = cpu_time();
        let start = Instant::now();
        stream::iter(names.clone())
            .map(|name| {
                let (op, value) = (op.clone(), value.clone());
                async move { op.write(&name, value).await.map(drop) }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        puts.push(start.elapsed());
        let start = Instant::now();
        stream::iter(names.clone())
            .map(|name| {
                let op = op.clone();
                async move { op.read(&name).await.map(drop) }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        gets.push(start.elapsed());
        cpu.push(cpu_time() - cpu_start);

        settle();
        let start = Instant::now();
        let mut writer = op
            .writer_with("opendal-bench/large.bin")
            .chunk(8 << 20)
            .concurrent(4)
            .await?;
        for _ in 0..(big_size / chunk.len() as u64) {
            writer.write(Buffer::from(chunk.clone())).await?;
        }
        writer.close().await?;
        big_puts.push(start.elapsed());
        let start = Instant::now();
        let mut body = op
            .reader("opendal-bench/large.bin")
            .await?
            .into_bytes_stream(..)
            .await?;
        let mut total = 0u64;
        while let Some(piece) = body.try_next().await? {
            total += piece.len() as u64;
        }
        if total != big_size {
            return Err(format!("read {total} bytes of {big_size}").into());
        }
        big_gets.push(start.elapsed());
    }
    println!("| OpenDAL s3 on the same server, best of 5 | time |");
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
        "| client CPU for the 1,000 puts and gets (least of 5) | {:.2} s |",
        best(&cpu).as_secs_f64()
    );
    println!(
        "| 256 MiB streamed put (8 MiB chunks, 4 in flight) | {:.3} s |",
        best(&big_puts).as_secs_f64()
    );
    println!(
        "| 256 MiB streamed get | {:.3} s |",
        best(&big_gets).as_secs_f64()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    // Without `auto-register-services` (and its constructor), the HTTP
    // transport is installed by hand.
    opendal::install_default();
    match std::env::args().nth(1).as_deref() {
        Some("local") => local().await,
        Some("s3") => s3().await,
        _ => Err(
            "usage: storage-bench-opendal <local [--size BYTES] [--small N] [--dir DIR] | s3>"
                .into(),
        ),
    }
}
