//! Where the plugins built by `cargo xtask plugins` are.

use std::path::PathBuf;

/// The folder of test plugins. Missing is a failure, not a skip: run the
/// tests with `cargo xtask test`, or `cargo xtask plugins` first and
/// export what it prints.
pub(crate) fn plugin_dir() -> PathBuf {
    match std::env::var_os("STORAGE_TEST_PLUGIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => panic!(
            "STORAGE_TEST_PLUGIN_DIR is not set: run `cargo xtask test`, or `cargo xtask plugins` and export what it prints"
        ),
    }
}

/// The test plugin file built from crate (or broken variant) `name`.
pub(crate) fn plugin(name: &str) -> PathBuf {
    let file = format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        name.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    );
    let path = plugin_dir().join(file);
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask plugins`",
        path.display()
    );
    path
}
