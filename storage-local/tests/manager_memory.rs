//! A 200 MB stream of unknown length is routed by size, through the
//! manager, into a local folder, in bounded memory. This binary holds one
//! test so that the process's peak memory is this test's.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

use storage_core::config::{Config, Registry};
use storage_core::manager::{ArtifactSpec, Manager};
use storage_core::{Body, Bytes};

fn peak_resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mb_stream_of_unknown_length_routes_by_size_in_under_64_mib() {
    let folder = tempfile::tempdir().unwrap();
    let text = format!(
        "default = \"small\"\n\
         [providers.small]\ntype = \"local\"\nroot = \"{0}/small\"\nfsync = false\n\
         [providers.big]\ntype = \"local\"\nroot = \"{0}/big\"\nfsync = false\n\
         [[routes]]\nwhen = {{ size_gt = \"100MB\" }}\nprovider = \"big\"\n\
         [[routes]]\nprovider = \"small\"\n",
        folder.path().display()
    );
    let config = Config::parse("storage.toml", &text).unwrap();
    let registry = Registry::with_factories(&[&storage_local::FACTORY]);
    let manager = Manager::from_config(&config, &registry).await.unwrap();

    let chunk = Bytes::from(vec![3u8; 1 << 20]);
    let total_chunks = 200_000_000 / (1 << 20) + 1;
    let stream = futures::stream::iter((0..total_chunks).map(move |_| Ok(chunk.clone())));
    let spec = ArtifactSpec::new("t", "video", "b", "huge").with_content_type("video/mp4");
    let stored = manager
        .store(&spec, Body::from_stream(stream))
        .await
        .unwrap();

    assert_eq!(stored.provider, "big");
    assert_eq!(stored.size, (total_chunks as u64) << 20);
    let peak = peak_resident_bytes();
    eprintln!("peak resident memory: {} MiB", peak >> 20);
    assert!(
        peak < 64 << 20,
        "peak resident memory was {} MiB",
        peak >> 20
    );
}
