//! Libraries that are not good plugins, for the loader's refusals. Built
//! by `cargo xtask plugins` with plain rustc, one `--cfg` each, and
//! independent of storage-plugin-api on purpose: they mimic the
//! declaration's first fields by hand, as a foreign or stale build would.
//!
//! - `bad_magic`: the declaration does not start with "STORPLUG".
//! - `bad_version`: ABI version 7 under the version-1 symbol.
//! - `bad_size`: a 24-byte declaration.
//! - `abi_v2`: exports only `storage_plugin_declaration_v2`.
//! - `not_a_plugin`: exports an unrelated function.
#![allow(dead_code)]

#[repr(C)]
pub struct DeclarationHead {
    magic: [u8; 8],
    abi_version: u32,
    size: u32,
}

static HEAD: DeclarationHead = DeclarationHead {
    magic: if cfg!(bad_magic) { *b"NOTPLUGN" } else { *b"STORPLUG" },
    abi_version: if cfg!(bad_version) { 7 } else { 1 },
    size: if cfg!(bad_size) { 24 } else { 4096 },
};

#[cfg(any(bad_magic, bad_version, bad_size))]
#[unsafe(no_mangle)]
pub extern "C" fn storage_plugin_declaration_v1() -> *const DeclarationHead {
    &HEAD
}

#[cfg(abi_v2)]
#[unsafe(no_mangle)]
pub extern "C" fn storage_plugin_declaration_v2() -> *const DeclarationHead {
    &HEAD
}

#[cfg(not_a_plugin)]
#[unsafe(no_mangle)]
pub extern "C" fn add_one(x: u32) -> u32 {
    x + 1
}
