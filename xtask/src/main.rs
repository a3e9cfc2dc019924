//! The project's own automation, run as `cargo xtask <command>`.
//!
//! - `test`: the whole test suite: every crate, every feature, doc tests.
//!   Backends that need a server get it installed and started here (none
//!   yet: the in-memory and local backends need none).
//! - `ci`: what CI runs: formatting, clippy with warnings as errors, docs
//!   with warnings as errors, then `test`.
//! - `bench [ARGS]`: the local backend's benchmark in a release build;
//!   arguments go to `local_bench` (`--size 2GiB`, `--small 5000`,
//!   `--large-only`).

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("ci") => ci(),
        Some("bench") => bench(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask <test | ci | bench [ARGS]>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn cargo(args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = Command::new(&cargo)
        .args(args)
        .envs(env.iter().copied())
        .status()
        .map_err(|err| format!("cannot run cargo: {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo {} failed ({status})", args.join(" ")))
    }
}

fn test() -> Result<(), String> {
    cargo(
        &["test", "--workspace", "--all-features", "--all-targets"],
        &[],
    )?;
    cargo(&["test", "--workspace", "--all-features", "--doc"], &[])
}

fn ci() -> Result<(), String> {
    cargo(&["fmt", "--all", "--", "--check"], &[])?;
    cargo(
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    cargo(
        &["doc", "--workspace", "--all-features", "--no-deps"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    test()
}

fn bench(args: &[String]) -> Result<(), String> {
    let mut command = vec![
        "run",
        "--release",
        "--quiet",
        "--package",
        "storage-examples",
        "--bin",
        "local_bench",
        "--",
    ];
    command.extend(args.iter().map(String::as_str));
    cargo(&command, &[])
}
