//! Builds the plugins the tests load from disk, into one folder:
//!
//! - the example plugin (`examples/plugins/encrypted`) and the test plugin
//!   (`storage-plugin-api/test-plugins/faulty`), as cdylibs;
//! - the test plugin again with `-C panic=abort`, which the host must
//!   refuse;
//! - libraries that are not good plugins (`test-plugins/broken/broken.rs`,
//!   built with plain rustc, one `--cfg` each), and a file that is not a
//!   library at all.
//!
//! The tests find the folder in `STORAGE_TEST_PLUGIN_DIR`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cargo;

/// The workspace's root.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_owned)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The target folder cargo builds into.
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The file name of the cdylib of crate `name` (`libname.so` on Linux).
pub(crate) fn library_name(name: &str) -> String {
    format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        name.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    )
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    // Copy, not hard-link: a later build rewrites the source in place.
    std::fs::copy(from, to)
        .map(drop)
        .map_err(|err| format!("cannot copy {} to {}: {err}", from.display(), to.display()))
}

/// Builds every test plugin (debug profile, as `cargo test` builds) and
/// returns the folder that holds them.
pub(crate) fn build_for_tests() -> Result<PathBuf, String> {
    let debug = target_dir().join("debug");
    let out = target_dir().join("test-plugins");
    std::fs::create_dir_all(&out)
        .map_err(|err| format!("cannot create {}: {err}", out.display()))?;
    let faulty = library_name("storage-test-plugin-faulty");

    // The panic=abort build first: it writes the same file as the normal
    // build, which then overwrites it.
    cargo(
        &[
            "rustc",
            "--quiet",
            "--package",
            "storage-test-plugin-faulty",
            "--lib",
            "--crate-type",
            "cdylib",
            "--",
            "-C",
            "panic=abort",
        ],
        &[],
    )?;
    copy(
        &debug.join(&faulty),
        &out.join(library_name("faulty-panic-abort")),
    )?;

    cargo(
        &[
            "build",
            "--quiet",
            "--package",
            "storage-test-plugin-faulty",
            "--package",
            "storage-plugin-encrypted",
        ],
        &[],
    )?;
    copy(&debug.join(&faulty), &out.join(&faulty))?;
    let encrypted = library_name("storage-plugin-encrypted");
    copy(&debug.join(&encrypted), &out.join(&encrypted))?;

    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let source = workspace_root().join("storage-plugin-api/test-plugins/broken/broken.rs");
    for cfg in [
        "bad_magic",
        "bad_version",
        "bad_size",
        "abi_v2",
        "not_a_plugin",
    ] {
        let status = Command::new(&rustc)
            .args([
                "--edition",
                "2024",
                "--crate-type",
                "cdylib",
                "--cfg",
                cfg,
                "-o",
            ])
            .arg(out.join(library_name(&format!("broken-{cfg}"))))
            .arg(&source)
            .status()
            .map_err(|err| format!("cannot run {rustc}: {err}"))?;
        if !status.success() {
            return Err(format!(
                "rustc --cfg {cfg} {} failed ({status})",
                source.display()
            ));
        }
    }
    std::fs::write(
        out.join(library_name("not-a-library")),
        "this is text, not a library\n",
    )
    .map_err(|err| format!("cannot write into {}: {err}", out.display()))?;
    Ok(out)
}
