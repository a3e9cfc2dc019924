//! The `storage` command end to end, as a user runs it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use storage::{GetOptions, Key, PutOptions, Storage};
use storage_local::{LocalConfig, LocalStorage};

const BIN: &str = env!("CARGO_BIN_EXE_storage");

/// Runs the command in `dir` with no configuration from the environment.
fn storage(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("STORAGE_CONFIG")
        .env_remove("SUPABASE_URL")
        .env_remove("S3_BUCKET")
        .env_remove("AWS_S3_BUCKET")
        .env_remove("STORAGE_LOCAL_ROOT")
        .stdin(Stdio::null())
        .output()
        .expect("the storage binary runs")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = storage(dir, args);
    assert!(
        out.status.success(),
        "storage {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(dir: &Path, args: &[&str]) -> String {
    let out = storage(dir, args);
    assert!(!out.status.success(), "storage {args:?} succeeded");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "errors are one line: {stderr}"
    );
    assert!(stderr.starts_with("storage: "), "{stderr}");
    stderr
}

#[test]
fn every_subcommand_works_on_the_local_default() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("notes.txt"), "hello notes").unwrap();
    std::fs::create_dir_all(d.join("site/css")).unwrap();
    std::fs::write(d.join("site/index.html"), "<html></html>").unwrap();
    std::fs::write(d.join("site/css/app.css"), "body{}").unwrap();

    ok(d, &["put", "notes.txt", "docs/notes.txt"]);
    ok(d, &["put", "-r", "site", "web/"]);
    assert_eq!(ok(d, &["ls"]), "docs/\nweb/\n");
    assert_eq!(
        ok(d, &["ls", "-r", "web/"]),
        "web/site/css/app.css\nweb/site/index.html\n"
    );
    let long = ok(d, &["ls", "-l", "-r"]);
    assert!(
        long.contains("text/html") && long.contains("11 B"),
        "{long}"
    );
    let listed: serde_json::Value =
        serde_json::from_str(&ok(d, &["ls", "--json", "-r", "docs/"])).unwrap();
    assert_eq!(listed[0]["key"], "docs/notes.txt");
    assert_eq!(listed[0]["size"], 11);

    let stat: serde_json::Value =
        serde_json::from_str(&ok(d, &["stat", "--json", "local:docs/notes.txt"])).unwrap();
    assert_eq!(stat["content_type"], "text/plain");
    assert_eq!(stat["provider"], "local");
    assert_eq!(ok(d, &["cat", "docs/notes.txt"]), "hello notes");

    ok(d, &["get", "docs/notes.txt", "copy.txt"]);
    assert_eq!(
        std::fs::read_to_string(d.join("copy.txt")).unwrap(),
        "hello notes"
    );
    ok(d, &["get", "-r", "web/site", "restored"]);
    assert_eq!(
        std::fs::read_to_string(d.join("restored/css/app.css")).unwrap(),
        "body{}"
    );
    assert_eq!(ok(d, &["get", "docs/notes.txt", "-"]), "hello notes");

    ok(d, &["cp", "docs/notes.txt", "backup/notes.txt"]);
    ok(d, &["mv", "-r", "web/", "moved/"]);
    assert_eq!(ok(d, &["ls"]), "backup/\ndocs/\nmoved/\n");
    ok(d, &["rm", "backup/notes.txt"]);
    fails(d, &["rm", "-r", "moved/"]);
    ok(d, &["rm", "-r", "--yes", "moved/"]);
    assert_eq!(ok(d, &["ls"]), "docs/\n");

    let providers = ok(d, &["providers"]);
    assert!(
        providers.contains("local") && providers.contains("memory"),
        "{providers}"
    );
    let doctor = ok(d, &["doctor"]);
    assert!(
        doctor.contains("write    ok") && doctor.contains("delete   ok"),
        "{doctor}"
    );
    // The objects are in ./storage-data, the local default.
    assert!(d.join("storage-data").is_dir());
}

#[test]
fn stdin_uploads_and_missing_objects_fail_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["put", "-", "piped/data.bin"])
        .current_dir(dir.path())
        .env_remove("STORAGE_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&vec![9u8; 3 << 20]).unwrap();
    }
    assert!(child.wait().unwrap().success());
    let stat: serde_json::Value =
        serde_json::from_str(&ok(dir.path(), &["stat", "--json", "piped/data.bin"])).unwrap();
    assert_eq!(stat["size"], 3 << 20);

    let err = fails(dir.path(), &["cat", "nothing/here"]);
    assert!(
        err.contains("not found") && err.contains("nothing/here"),
        "{err}"
    );
    let err = fails(dir.path(), &["stat", "../etc/passwd"]);
    assert!(err.contains("invalid key"), "{err}");
}

fn two_local_providers(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let config = dir.join("storage.toml");
    std::fs::write(
        &config,
        "default = \"src\"\n\
         [providers.src]\ntype = \"local\"\nroot = \"src-data\"\nfsync = false\n\
         [providers.dst]\ntype = \"local\"\nroot = \"dst-data\"\nfsync = false\n",
    )
    .unwrap();
    (dir.join("src-data"), dir.join("dst-data"))
}

#[test]
fn cp_r_of_1000_files_between_providers_keeps_bytes_types_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let (src_root, dst_root) = two_local_providers(dir.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let src = LocalStorage::open(LocalConfig::new(&src_root).with_fsync(false)).unwrap();
    let types = [
        "image/png",
        "application/json",
        "text/plain; charset=utf-8",
        "video/mp4",
    ];
    runtime.block_on(async {
        for i in 0..1000u32 {
            let key = Key::new(format!("batch/{:02}/file-{i:04}.bin", i % 17)).unwrap();
            let body = storage_core_pattern(i);
            let options = PutOptions::default()
                .with_content_type(types[i as usize % types.len()])
                .with_cache_control("max-age=60")
                .with_metadata("index", i.to_string());
            src.put(&key, body.into(), options).await.unwrap();
        }
    });

    let summary: serde_json::Value = serde_json::from_str(&ok(
        dir.path(),
        &["cp", "-r", "--json", "src:batch/", "dst:copied/"],
    ))
    .unwrap();
    assert_eq!(summary["objects"], 1000);

    let dst = LocalStorage::new(&dst_root).unwrap();
    runtime.block_on(async {
        for i in 0..1000u32 {
            let key = Key::new(format!("copied/{:02}/file-{i:04}.bin", i % 17)).unwrap();
            let got = dst.get(&key, GetOptions::default()).await.unwrap();
            assert_eq!(
                got.meta.content_type.as_deref(),
                Some(types[i as usize % types.len()])
            );
            assert_eq!(got.meta.cache_control.as_deref(), Some("max-age=60"));
            assert_eq!(got.meta.user_metadata.get("index"), Some(&i.to_string()));
            assert_eq!(
                got.bytes().await.unwrap(),
                storage_core_pattern(i),
                "file {i}"
            );
        }
    });
}

/// Distinct content per file, 0 to ~20 KiB.
fn storage_core_pattern(i: u32) -> Vec<u8> {
    (0..(i * 21) % 20_000).map(|n| (n ^ i) as u8).collect()
}

#[test]
fn doctor_reports_a_broken_provider_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("blocker"),
        "a file where a folder should be",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("storage.toml"),
        "default = \"good\"\n\
         [providers.good]\ntype = \"local\"\nroot = \"good-data\"\n\
         [providers.broken]\ntype = \"local\"\nroot = \"blocker/data\"\n",
    )
    .unwrap();
    let out = storage(dir.path(), &["doctor"]);
    assert!(!out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("broken           open     FAIL"), "{table}");
    assert!(table.contains("good             write    ok"), "{table}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.trim(), "storage: doctor found 1 failing check(s)");
}

#[test]
fn a_config_mistake_is_one_line_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("storage.toml"),
        "[providers.files]\ntype = \"local\"\nroot = 5\n",
    )
    .unwrap();
    let err = fails(dir.path(), &["ls"]);
    assert!(err.contains("storage.toml:3:8"), "{err}");
    assert!(err.contains("expected"), "{err}");
}

#[test]
fn a_presigned_url_from_the_command_works_against_storage_serve() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    std::fs::write(
        dir.path().join("storage.toml"),
        format!(
            "[providers.files]\ntype = \"local\"\nroot = \"data\"\n\
             public_url = \"http://127.0.0.1:{port}/files\"\nsigning_secret = \"cli-test-signing-secret\"\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("photo.jpg"), vec![0xffu8; 70_000]).unwrap();
    ok(dir.path(), &["put", "photo.jpg", "shared/photo.jpg"]);
    let url = ok(
        dir.path(),
        &["presign", "shared/photo.jpg", "--expires", "5m"],
    );
    let upload = ok(
        dir.path(),
        &[
            "presign",
            "--put",
            "--content-type",
            "text/plain",
            "inbox/note.txt",
        ],
    );

    let server = Command::new(BIN)
        .arg("serve")
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = KillOnDrop(server);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        // Wait for the server to listen (bounded).
        let mut ready = false;
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(ready, "storage serve did not start listening");
        let health = http
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
        let health: serde_json::Value = health.json().await.unwrap();
        assert_eq!(health["status"], "up");
        assert_eq!(health["providers"][0]["name"], "files");
        assert_eq!(health["providers"][0]["backend"], "local");
        let got = http.get(url.trim()).send().await.unwrap();
        assert_eq!(got.status(), 200);
        assert_eq!(got.bytes().await.unwrap().len(), 70_000);
        let put = http
            .put(upload.trim())
            .header("content-type", "text/plain")
            .body("from a browser")
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 200);
        let tampered = url.trim().replacen("photo", "photx", 1);
        assert_eq!(http.get(tampered).send().await.unwrap().status(), 403);
    });
    assert_eq!(ok(dir.path(), &["cat", "inbox/note.txt"]), "from a browser");
}

/// Stops a child process however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn stats_prints_each_providers_operations_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.bin"), vec![1u8; 5000]).unwrap();
    let out = storage(dir.path(), &["put", "--stats", "f.bin", "s/f.bin"]);
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("local: 4.9 KiB in, 0 B out"), "{stderr}");
    assert!(
        stderr.contains("put") && stderr.contains("1 ops"),
        "{stderr}"
    );
}
