//! The project's own automation, run as `cargo xtask <command>`.
//!
//! - `test`: the whole test suite: every crate, every feature, doc tests,
//!   with the test servers installed (once) and started on 127.0.0.1 for
//!   the backends that need one (see `servers.rs`).
//! - `plugins`: build the plugins the tests load from disk (see
//!   `plugins.rs`) and print the variable that points the tests at them.
//! - `servers`: start the test servers and print their variables, for
//!   running one backend's suite by hand; Ctrl-C stops them.
//! - `example [plugin|in-house|features|quickstart|all]`: the runnable
//!   examples, as their documented commands run them (`test` runs them
//!   all after the suite).
//! - `ci`: what CI runs: formatting, clippy with warnings as errors, docs
//!   with warnings as errors, then `test`.
//! - `bench [local|s3|gcs|supabase|plugin|all] [ARGS]`: the benchmarks
//!   in release builds, next to their anchors (raw file I/O, object_store,
//!   OpenDAL), written to `target/bench/latest.md` and `latest.json`; see
//!   `bench.rs`.

mod bench;
mod garage;
mod plugins;
mod report;
mod servers;

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("servers") => run_servers(),
        Some("ci") => ci(),
        Some("bench") => bench::run(&args[1..]),
        Some("example") => example(args.get(1).map(String::as_str).unwrap_or("all")),
        Some("plugins") => plugins::build_for_tests().map(|dir| {
            println!("export STORAGE_TEST_PLUGIN_DIR={}", dir.display());
        }),
        _ => {
            eprintln!(
                "usage: cargo xtask <test | ci | servers | plugins | example [plugin|in-house|features|quickstart|all] | bench [local|s3|gcs|supabase|plugin|all] [ARGS]>"
            );
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
    let plugin_dir = plugins::build_for_tests()?.display().to_string();
    let servers = servers::start()?;
    let mut env: Vec<(&str, &str)> = servers
        .env()
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    env.push(("STORAGE_TEST_PLUGIN_DIR", &plugin_dir));
    cargo(
        &[
            "test",
            "--workspace",
            "--all-features",
            "--all-targets",
            "--no-fail-fast",
        ],
        &env,
    )?;
    cargo(&["test", "--workspace", "--all-features", "--doc"], &env)?;
    example("all")
}

/// Runs the runnable examples, each as its documented command does.
fn example(which: &str) -> Result<(), String> {
    let run = |args: &[&str]| {
        let mut command = vec!["run", "--quiet"];
        command.extend_from_slice(args);
        cargo(&command, &[])
    };
    let known = ["plugin", "in-house", "features", "quickstart", "all"];
    if !known.contains(&which) {
        return Err(format!(
            "no example {which:?}; there are: {}",
            known.join(", ")
        ));
    }
    if matches!(which, "plugin" | "all") {
        // The host was compiled without the plugin: build the library the
        // configuration names, then run the host.
        cargo(
            &["build", "--quiet", "--package", "storage-plugin-encrypted"],
            &[],
        )?;
        run(&["--package", "storage-examples", "--bin", "plugin_demo"])?;
    }
    if matches!(which, "in-house" | "all") {
        run(&["--package", "storage-examples", "--bin", "in_house_demo"])?;
    }
    if matches!(which, "features" | "all") {
        // Local only, then with plugins on and the plugin's configuration.
        run(&["--package", "storage-app-features"])?;
        if which == "features" {
            cargo(
                &["build", "--quiet", "--package", "storage-plugin-encrypted"],
                &[],
            )?;
        }
        run(&[
            "--package",
            "storage-app-features",
            "--features",
            "plugins",
            "--",
            "examples/plugin_demo.toml",
        ])?;
    }
    if matches!(which, "quickstart" | "all") {
        run(&["--package", "storage-examples", "--bin", "quickstart"])?;
    }
    Ok(())
}

fn run_servers() -> Result<(), String> {
    let servers = servers::start()?;
    for (name, value) in servers.env() {
        println!("export {name}={value}");
    }
    eprintln!("xtask: test servers running; Ctrl-C stops them");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
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
