//! The `storage` command: every operation of the storage contract on any
//! configured provider, from the shell.
//!
//! The configuration comes from `--config`, `STORAGE_CONFIG`,
//! `./storage.toml`, or else the environment (see `storage::load_config`).
//! Locations are `PROVIDER:KEY` (`media:videos/a.mp4`) or a bare key on
//! the default provider. Output is for people unless `--json` is given;
//! errors are one line on stderr and a non-zero exit.

#![forbid(unsafe_code)]

mod inspect;
mod location;
mod output;
#[cfg(feature = "local")]
mod serve;
mod transfer;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use storage::config::Providers;

/// Store, list, copy, presign and serve objects on any configured provider.
#[derive(Debug, Parser)]
#[command(name = "storage", version, about, long_about = None)]
struct Cli {
    /// The configuration file (default: STORAGE_CONFIG, ./storage.toml, or
    /// the environment).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print JSON for scripts instead of text for people.
    #[arg(long, global = true)]
    json: bool,
    /// Log what happens (-v info, -vv debug, -vvv trace) to stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Print each provider's metrics (operations, errors, bytes, latency
    /// percentiles) to stderr at the end.
    #[arg(long, global = true)]
    stats: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List objects and folders under a prefix.
    Ls(LsArgs),
    /// Upload files, folders (-r) or stdin (-) to a location.
    Put(PutArgs),
    /// Download an object or a prefix (-r) to files, or to stdout (-).
    Get(GetArgs),
    /// Write an object to stdout.
    Cat(OneLocation),
    /// Show an object's metadata.
    Stat(OneLocation),
    /// Delete an object, or everything under a prefix (-r).
    Rm(RmArgs),
    /// Copy objects between any two locations, across providers too.
    Cp(CopyArgs),
    /// Move objects between any two locations, across providers too.
    Mv(CopyArgs),
    /// Print a presigned URL for downloading (default) or uploading.
    Presign(PresignArgs),
    /// Serve a local provider's presigned URLs over HTTP.
    Serve(ServeArgs),
    /// List the configured providers and the types this build has.
    Providers,
    /// Check the configuration and every provider with a probe object.
    Doctor,
}

#[derive(Debug, Args)]
struct LsArgs {
    /// What to list: `PROVIDER:PREFIX`, `PREFIX` or nothing (everything on
    /// the default provider).
    location: Option<String>,
    /// List every key under the prefix instead of one folder level.
    #[arg(short, long)]
    recursive: bool,
    /// Show sizes, times and content types.
    #[arg(short, long)]
    long: bool,
}

#[derive(Debug, Args)]
struct PutArgs {
    /// Files or folders to upload, or `-` for stdin; then the destination.
    #[arg(required = true, num_args = 2.., value_name = "SOURCE... DEST")]
    paths: Vec<String>,
    /// Upload folders with everything in them.
    #[arg(short, long)]
    recursive: bool,
    /// The content type (default: inferred from the bytes or the name).
    #[arg(long)]
    content_type: Option<String>,
    /// How many transfers run at once.
    #[arg(short = 'j', long, default_value_t = 8)]
    jobs: usize,
}

#[derive(Debug, Args)]
struct GetArgs {
    /// The object (or prefix with -r).
    source: String,
    /// A file or folder to write to, or `-` for stdout (default: the
    /// object's file name in the current folder).
    dest: Option<String>,
    /// Download everything under the prefix into a folder.
    #[arg(short, long)]
    recursive: bool,
    /// How many transfers run at once.
    #[arg(short = 'j', long, default_value_t = 8)]
    jobs: usize,
}

#[derive(Debug, Args)]
struct OneLocation {
    /// `PROVIDER:KEY` or `KEY` on the default provider.
    location: String,
}

#[derive(Debug, Args)]
struct RmArgs {
    /// The object (or prefix with -r).
    location: String,
    /// Delete everything under the prefix.
    #[arg(short, long)]
    recursive: bool,
    /// Do not ask before a recursive delete.
    #[arg(short, long)]
    yes: bool,
}

#[derive(Debug, Args)]
struct CopyArgs {
    /// The source object (or prefix with -r).
    source: String,
    /// The destination object (or prefix with -r).
    dest: String,
    /// Copy everything under the prefix.
    #[arg(short, long)]
    recursive: bool,
    /// How many transfers run at once.
    #[arg(short = 'j', long, default_value_t = 8)]
    jobs: usize,
}

#[derive(Debug, Args)]
struct PresignArgs {
    /// The object.
    location: String,
    /// Sign an upload (PUT) instead of a download (GET).
    #[arg(long)]
    put: bool,
    /// How long the URL lives: `90s`, `15m`, `2h`, `7d`.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    expires: Duration,
    /// For uploads: the content type the upload must carry.
    #[arg(long)]
    content_type: Option<String>,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// The local provider to serve (default: the default provider).
    #[arg(long)]
    provider: Option<String>,
    /// The address to listen on (default: the host and port of the
    /// provider's public_url).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 90s, 15m, 2h or 7d"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?}; use s, m, h or d"
            ));
        }
    };
    Ok(Duration::from_secs(n * seconds))
}

/// What the command works with: the configuration and its providers.
pub(crate) struct Context {
    pub(crate) providers: Providers,
    pub(crate) json: bool,
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => return,
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::new(format!(
        "storage={level},storage_core={level},storage_local={level},storage_cli={level}"
    ));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn run(cli: Cli) -> Result<(), String> {
    let config = storage::load_config(cli.config.as_deref()).map_err(|e| e.to_string())?;
    let registry = storage::registry();
    match cli.command {
        Command::Providers => return inspect::providers(&config, &registry, cli.json),
        Command::Doctor => return inspect::doctor(&config, &registry, cli.json).await,
        #[cfg(feature = "local")]
        Command::Serve(args) => {
            return serve::serve(&config, &registry, args.provider, args.listen).await;
        }
        #[cfg(not(feature = "local"))]
        Command::Serve(_) => return Err("this build has no local backend to serve".into()),
        _ => {}
    }
    let providers = registry
        .build_all(&config)
        .await
        .map_err(|e| e.to_string())?;
    let context = Context {
        providers,
        json: cli.json,
    };
    let stats = cli.stats;
    let result = match cli.command {
        Command::Ls(args) => {
            inspect::ls(
                &context,
                args.location.as_deref(),
                args.recursive,
                args.long,
            )
            .await
        }
        Command::Stat(args) => inspect::stat(&context, &args.location).await,
        Command::Presign(args) => {
            inspect::presign(
                &context,
                &args.location,
                args.put,
                args.expires,
                args.content_type,
            )
            .await
        }
        Command::Put(args) => {
            transfer::put(
                &context,
                &args.paths,
                args.recursive,
                args.content_type,
                args.jobs,
            )
            .await
        }
        Command::Get(args) => {
            transfer::get(
                &context,
                &args.source,
                args.dest.as_deref(),
                args.recursive,
                args.jobs,
            )
            .await
        }
        Command::Cat(args) => transfer::cat(&context, &args.location).await,
        Command::Rm(args) => transfer::rm(&context, &args.location, args.recursive, args.yes).await,
        Command::Cp(args) => {
            transfer::copy(
                &context,
                &args.source,
                &args.dest,
                args.recursive,
                args.jobs,
                false,
            )
            .await
        }
        Command::Mv(args) => {
            transfer::copy(
                &context,
                &args.source,
                &args.dest,
                args.recursive,
                args.jobs,
                true,
            )
            .await
        }
        Command::Providers | Command::Doctor | Command::Serve(_) => Ok(()),
    };
    if stats {
        output::print_metrics(&context.providers);
    }
    result.map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("storage: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("storage: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_common_units() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert!(parse_duration("1w").is_err());
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
