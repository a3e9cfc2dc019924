//! What `cargo xtask bench` writes: every bench's output, as Markdown and
//! as JSON, with the machine it ran on.
//!
//! Each bench prints Markdown tables (and a few lines of prose) on its
//! standard output. The report keeps each run's output under the command
//! that produced it, and parses the tables into JSON: per table, its
//! columns and rows of cells, as printed. Both files go to
//! `target/bench/` (`latest.md`, `latest.json`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

/// The outputs of one `cargo xtask bench` run.
#[derive(Default)]
pub(crate) struct Report {
    runs: Vec<(String, String)>,
}

impl Report {
    /// Runs `program` with `args`, echoing and keeping its standard output.
    pub(crate) fn run(
        &mut self,
        program: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        cwd: &Path,
    ) -> Result<(), String> {
        let shown = format!(
            "{} {}",
            program
                .file_name()
                .map(|f| f.to_string_lossy())
                .unwrap_or_default(),
            args.join(" ")
        );
        eprintln!("xtask: {shown}");
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .current_dir(cwd)
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|err| format!("cannot run {}: {err}", program.display()))?;
        let mut output = String::new();
        if let Some(stdout) = child.stdout.take() {
            for line in BufReader::new(stdout).lines() {
                let line = line.map_err(|err| format!("reading {shown}: {err}"))?;
                println!("{line}");
                output.push_str(&line);
                output.push('\n');
            }
        }
        let status = child
            .wait()
            .map_err(|err| format!("waiting for {shown}: {err}"))?;
        self.runs.push((shown.clone(), output));
        if status.success() {
            Ok(())
        } else {
            Err(format!("{shown} failed ({status})"))
        }
    }

    /// Writes `latest.md` and `latest.json` into `dir`.
    pub(crate) fn write(&self, dir: &Path) -> Result<(PathBuf, PathBuf), String> {
        std::fs::create_dir_all(dir)
            .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
        let machine = machine();
        let mut markdown = String::from("# Benchmark results\n\n");
        for (name, value) in machine.as_object().into_iter().flatten() {
            markdown.push_str(&format!(
                "- {name}: {}\n",
                value.as_str().unwrap_or_default()
            ));
        }
        let mut runs = Vec::new();
        for (command, output) in &self.runs {
            markdown.push_str(&format!("\n## `{command}`\n\n{output}"));
            runs.push(json!({ "command": command, "tables": tables(output), "output": output }));
        }
        let md = dir.join("latest.md");
        let js = dir.join("latest.json");
        std::fs::write(&md, markdown)
            .map_err(|err| format!("cannot write {}: {err}", md.display()))?;
        let document = json!({ "machine": machine, "runs": runs });
        let text = serde_json::to_string_pretty(&document).map_err(|err| err.to_string())?;
        std::fs::write(&js, text).map_err(|err| format!("cannot write {}: {err}", js.display()))?;
        Ok((md, js))
    }
}

/// The Markdown tables in `text`: columns and rows of cells.
fn tables(text: &str) -> Vec<Value> {
    let cells = |line: &str| -> Vec<String> {
        line.trim()
            .trim_matches('|')
            .split('|')
            .map(|cell| cell.trim().to_owned())
            .collect()
    };
    let mut found = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let is_table = line.trim_start().starts_with('|')
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("|---"));
        if !is_table {
            continue;
        }
        let columns = cells(line);
        lines.next();
        let mut rows = Vec::new();
        while let Some(row) = lines.next_if(|l| l.trim_start().starts_with('|')) {
            rows.push(cells(row));
        }
        found.push(json!({ "columns": columns, "rows": rows }));
    }
    found
}

/// What the machine is: enough to tell runs on different machines apart.
fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(str::trim)
        .unwrap_or("unknown")
        .to_owned();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<f64>().ok())
        .map(|kib| format!("{:.1} GiB", kib / (1 << 20) as f64))
        .unwrap_or_else(|| "unknown".to_owned());
    let output = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    json!({
        "date": output("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
        "cpu": cpu,
        "cores": cores.to_string(),
        "memory": memory,
        "os": output("uname", &["-sr"]),
        "rustc": output("rustc", &["--version"]),
        "commit": output("git", &["rev-parse", "--short", "HEAD"]),
    })
}
