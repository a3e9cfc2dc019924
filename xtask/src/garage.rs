//! The S3 benchmarks' server: Garage (crates.io, `garage`), a production
//! S3-compatible object store, as one node on 127.0.0.1.
//!
//! The test suites keep s3s-fs (signature checks) and moto (the widest S3
//! semantics); the benchmarks need a server that is not itself the
//! bottleneck. s3s-fs reads objects 4 KiB at a time, each read a hop
//! through tokio's blocking pool, and it spent about 1 ms of the machine's
//! two cores per 64 KiB GET, so every client, boto3 included, measured the
//! server. Garage serves the same GETs in about a third of that.
//!
//! Building it takes about ten minutes on two cores, once per servers
//! cache, and needs `make` and a C compiler (its libsodium is built from
//! the bundled source); a failed build fails the bench and says so.
//!
//! Garage stores a block with the same content once, so the benchmarks'
//! repeated bodies are written to its disk once: a put costs the server
//! its hashing and metadata, not a data write. That is the same for every
//! client measured.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::servers;

/// Garage, pinned.
const GARAGE_VERSION: &str = "2.5.0";
/// The bucket the S3 benchmarks use.
const BUCKET: &str = "bench";
/// An access key in Garage's format (`GK` and 24 hex digits), imported at
/// start so nothing has to be read back from Garage's output.
const ACCESS_KEY: &str = "GK0123456789abcdef01234567";
const SECRET_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// Secures the node's RPC port, which listens on 127.0.0.1 only.
const RPC_SECRET: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

/// A running Garage node; stopped, and its data removed, on drop.
pub(crate) struct Garage {
    child: Child,
    data: PathBuf,
    env: Vec<(String, String)>,
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!("xtask: stopped garage");
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

impl Garage {
    /// The variables the S3 benchmarks read: `STORAGE_BENCH_S3_ENDPOINT`,
    /// `_BUCKET`, `_ACCESS_KEY`, `_SECRET_KEY` (region `us-east-1`).
    pub(crate) fn env(&self) -> &[(String, String)] {
        &self.env
    }
}

fn install(dir: &Path) -> Result<PathBuf, String> {
    servers::cargo_install(
        dir,
        "garage",
        GARAGE_VERSION,
        &[],
        "garage",
        "about ten minutes",
    )
}

/// Runs a `garage` command against the node and returns what it printed.
/// Errors name the command by its first two words (`garage key import`):
/// the arguments after them can hold the secret key.
fn admin(garage: &Path, config: &Path, args: &[&str]) -> Result<String, String> {
    let command = args.iter().take(2).copied().collect::<Vec<_>>().join(" ");
    let output = Command::new(garage)
        .arg("-c")
        .arg(config)
        .args(args)
        .output()
        .map_err(|err| format!("cannot run garage {command}: {err}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "garage {command} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Installs (if needed) and starts one Garage node with the benchmarks'
/// bucket and key.
pub(crate) fn start() -> Result<Garage, String> {
    let garage = install(&servers::cache_dir()?)?;
    let data = std::env::temp_dir().join(format!("storage-bench-garage-{}", std::process::id()));
    std::fs::create_dir_all(&data)
        .map_err(|err| format!("cannot create {}: {err}", data.display()))?;
    let (s3_port, rpc_port) = (servers::free_port()?, servers::free_port()?);
    // No compression, so the server does the same work for any body; the
    // defaults for everything else (no fsync, as s3s-fs).
    let config_text = format!(
        "metadata_dir = \"{meta}\"\n\
         data_dir = \"{blocks}\"\n\
         db_engine = \"lmdb\"\n\
         replication_factor = 1\n\
         compression_level = \"none\"\n\
         rpc_bind_addr = \"127.0.0.1:{rpc_port}\"\n\
         rpc_public_addr = \"127.0.0.1:{rpc_port}\"\n\
         rpc_secret = \"{RPC_SECRET}\"\n\
         [s3_api]\n\
         s3_region = \"us-east-1\"\n\
         api_bind_addr = \"127.0.0.1:{s3_port}\"\n\
         root_domain = \".s3.garage.localhost\"\n",
        meta = data.join("meta").display(),
        blocks = data.join("data").display(),
    );
    let config = data.join("garage.toml");
    std::fs::write(&config, config_text)
        .map_err(|err| format!("cannot write {}: {err}", config.display()))?;
    let child = Command::new(&garage)
        .arg("-c")
        .arg(&config)
        .arg("server")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|err| format!("cannot start garage: {err}"))?;
    let mut node = Garage {
        child,
        data,
        env: Vec::new(),
    };
    // The node answers its own RPC once it is up; until then `node id`
    // fails to connect.
    let deadline = Instant::now() + Duration::from_secs(60);
    let id = loop {
        match admin(&garage, &config, &["node", "id", "-q"]) {
            Ok(id) => break id,
            Err(err) if Instant::now() > deadline => {
                return Err(format!("garage did not start within 60 s: {err}"));
            }
            Err(_) => {}
        }
        if let Ok(Some(status)) = node.child.try_wait() {
            return Err(format!("garage exited before it was ready ({status})"));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let id = id.trim().split('@').next().unwrap_or_default().to_owned();
    admin(
        &garage,
        &config,
        &["layout", "assign", "-z", "dc1", "-c", "10G", &id],
    )?;
    admin(&garage, &config, &["layout", "apply", "--version", "1"])?;
    admin(
        &garage,
        &config,
        &[
            "key", "import", "--yes", "-n", "bench", ACCESS_KEY, SECRET_KEY,
        ],
    )?;
    admin(&garage, &config, &["bucket", "create", BUCKET])?;
    admin(
        &garage,
        &config,
        &[
            "bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", ACCESS_KEY,
        ],
    )?;
    eprintln!("xtask: garage listens on 127.0.0.1:{s3_port}");
    node.env = vec![
        (
            "STORAGE_BENCH_S3_ENDPOINT".into(),
            format!("http://127.0.0.1:{s3_port}"),
        ),
        ("STORAGE_BENCH_S3_BUCKET".into(), BUCKET.into()),
        ("STORAGE_BENCH_S3_ACCESS_KEY".into(), ACCESS_KEY.into()),
        ("STORAGE_BENCH_S3_SECRET_KEY".into(), SECRET_KEY.into()),
    ];
    Ok(node)
}
