//! The examples' shared code: what the benchmarks share (deterministic
//! data, the best of several rounds, this process's peak resident memory),
//! and [`in_house`], a third-party provider registered at compile time.

pub mod in_house;

use std::time::Duration;

use storage::Bytes;

/// `size` bytes of a pattern that depends on `seed` (not compressible to
/// nothing, not random, so runs are repeatable).
pub fn chunk_of(size: usize, seed: u8) -> Bytes {
    Bytes::from(
        (0..size)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect::<Vec<u8>>(),
    )
}

/// The shortest of the rounds' times.
pub fn best(times: &[Duration]) -> Duration {
    times.iter().copied().min().unwrap_or_default()
}

/// Peak resident memory of this process so far (Linux VmHWM), in MiB; 0
/// where the kernel does not tell.
pub fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}
