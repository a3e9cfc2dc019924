//! `cargo xtask bench [local|s3|gcs|supabase|plugin|all] [ARGS]`: every
//! benchmark in release builds, side by side with its anchors, written to
//! `target/bench/latest.md` and `latest.json` (see `report.rs`).
//!
//! - `local`: `local_bench` (ours next to raw file I/O and object_store's
//!   LocalFileSystem; ARGS go to it: `--size 2GiB`, `--small 5000`,
//!   `--large-only`), then OpenDAL's fs service on the same workloads,
//!   and a 2 GiB memory check in a process of its own.
//! - `supabase`: `supabase_bench` on the repository's test server (which
//!   it starts), and a 2 GiB memory check.
//! - `plugin`: `plugin_bench`, the same providers linked statically and
//!   loaded from their cdylib (built here in release).
//! - `s3`: on a Garage node (see `garage.rs` for why not the test
//!   servers' s3s-fs): `s3_bench` (ours next to object_store), then
//!   OpenDAL's s3 service and boto3 (`benches/boto3`) on the same
//!   workload, and a 2 GiB memory check in a process of its own.
//! - `gcs`: with the test servers started: `gcs_bench`, and its 2 GiB
//!   memory check.

use std::path::PathBuf;

use crate::report::Report;
use crate::{cargo, garage, plugins, servers};

fn cargo_path() -> PathBuf {
    PathBuf::from(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
}

/// Runs an examples binary in release, its output kept in the report.
fn example(
    report: &mut Report,
    bin: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<(), String> {
    let mut command = vec![
        "run",
        "--release",
        "--quiet",
        "--package",
        "storage-examples",
        "--bin",
        bin,
    ];
    if !args.is_empty() {
        command.push("--");
        command.extend_from_slice(args);
    }
    report.run(&cargo_path(), &command, env, &plugins::workspace_root())
}

/// Builds and runs the OpenDAL anchor (`benches/opendal`, a crate outside
/// the workspace, so OpenDAL's dependencies stay out of the library's
/// tree).
fn opendal(report: &mut Report, args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    let root = plugins::workspace_root();
    let manifest = root
        .join("benches/opendal/Cargo.toml")
        .display()
        .to_string();
    let target = plugins::target_dir().join("opendal-bench");
    let target_text = target.display().to_string();
    cargo(
        &[
            "build",
            "--release",
            "--quiet",
            "--locked",
            "--manifest-path",
            &manifest,
            "--target-dir",
            &target_text,
        ],
        &[],
    )?;
    let binary = target.join("release").join(format!(
        "storage-bench-opendal{}",
        std::env::consts::EXE_SUFFIX
    ));
    report.run(&binary, args, env, &root)
}

/// The boto3 row: `benches/boto3/boto3_bench.py` with the test servers'
/// Python (which has boto3).
fn boto3(report: &mut Report, env: &[(&str, &str)]) -> Result<(), String> {
    let python = env
        .iter()
        .find(|(name, _)| *name == "STORAGE_TEST_BOTO3_PYTHON")
        .map(|(_, value)| PathBuf::from(value))
        .ok_or("the test servers did not say where boto3's Python is")?;
    let root = plugins::workspace_root();
    let script = root
        .join("benches/boto3/boto3_bench.py")
        .display()
        .to_string();
    report.run(&python, &[&script], env, &root)
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let (which, rest) = match args.first().map(String::as_str) {
        Some(which @ ("local" | "s3" | "gcs" | "supabase" | "plugin" | "all")) => {
            (which, &args[1..])
        }
        _ => ("all", args),
    };
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let mut report = Report::default();
    let result = run_into(&mut report, which, &rest);
    // What ran is written even if a later bench failed.
    let dir = plugins::target_dir().join("bench");
    let (md, json) = report.write(&dir)?;
    eprintln!("xtask: results in {} and {}", md.display(), json.display());
    result
}

fn run_into(report: &mut Report, which: &str, rest: &[&str]) -> Result<(), String> {
    let all = which == "all";
    if which == "local" || all {
        example(report, "local_bench", rest, &[])?;
        let mut anchor = vec!["local"];
        anchor.extend_from_slice(rest);
        opendal(report, &anchor, &[])?;
        // The memory check alone in its process, on the same disk.
        let mut memory = vec!["--memory", "2"];
        if let Some(at) = rest.iter().position(|arg| *arg == "--dir") {
            memory.extend(rest.get(at..at + 2).unwrap_or_default());
        }
        example(report, "local_bench", &memory, &[])?;
    }
    if which == "supabase" || all {
        // Its server is the repository's own, started by the bench.
        example(report, "supabase_bench", &[], &[])?;
        example(report, "supabase_bench", &["--memory", "2"], &[])?;
    }
    if which == "plugin" || all {
        cargo(
            &[
                "build",
                "--release",
                "--quiet",
                "--package",
                "storage-plugin-encrypted",
                "--package",
                "storage-test-plugin-faulty",
            ],
            &[],
        )?;
        let dir = plugins::target_dir().join("release").display().to_string();
        example(report, "plugin_bench", &["--plugins", &dir], &[])?;
    }
    if !matches!(which, "s3" | "gcs" | "all") {
        return Ok(());
    }
    let servers = servers::start()?;
    let env: Vec<(&str, &str)> = servers
        .env()
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    if which == "s3" || all {
        let garage = garage::start()?;
        // The test servers' variables say where boto3's Python is.
        let env: Vec<(&str, &str)> = env
            .iter()
            .copied()
            .chain(garage.env().iter().map(|(n, v)| (n.as_str(), v.as_str())))
            .collect();
        example(report, "s3_bench", &[], &env)?;
        opendal(report, &["s3"], &env)?;
        boto3(report, &env)?;
        // The memory check alone in its process, so its peak is its own.
        example(report, "s3_bench", &["--memory", "2"], &env)?;
    }
    if which == "gcs" || all {
        example(report, "gcs_bench", &[], &env)?;
        example(report, "gcs_bench", &["--memory", "2"], &env)?;
    }
    Ok(())
}
