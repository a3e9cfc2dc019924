//! Runtime plugins: storage providers in dynamic libraries (`.so`,
//! `.dylib`, `.dll`), named in the configuration and loaded at run time.
//!
//! ```toml
//! [providers.vault]
//! type = "plugin"
//! path = "plugins/libstorage_plugin_encrypted.so"
//! root = "./vault"          # the plugin's own settings
//! key = "${VAULT_KEY}"
//! ```
//!
//! # Why not `Box<dyn Storage>` across the boundary
//!
//! Rust has no stable ABI. A plugin built by another compiler, or the same
//! compiler with other flags, may lay out a trait object, a `String` or an
//! enum differently from the host, and a version check does not make that
//! sound. So only C layouts cross ([`abi`]): borrowed strings, owned byte
//! buffers that carry their own release function, `u32` error codes,
//! `repr(C, u8)` options and results, and a vtable of `extern "C"`
//! functions that only grows at its end. Async operations return
//! FFI-safe futures (from the `async-ffi` crate) and streams with
//! `poll_next` and `release` ([`task`]).
//!
//! # Two runtimes, one process
//!
//! A plugin links its own tokio. Its futures, polled by the host's
//! executor, enter the plugin's runtime on every poll, so the plugin's
//! timers and sockets find their reactor; the body streams the host lends
//! to a plugin enter the host's runtime the same way. Each plugin library
//! has one runtime ([`export::plugin_runtime`]).
//!
//! # What cannot go wrong quietly
//!
//! - The host reads the declaration's magic, ABI version and size before
//!   anything else, and refuses a mismatch with the path and the reason.
//! - A plugin built with `panic = "abort"` is refused at load: any panic
//!   in it would end the host.
//! - Every `extern "C"` function catches panics; a panic in a plugin, in
//!   `create`, in an operation or in the middle of a stream, reaches the
//!   host as an error.
//! - Memory is freed by the library that allocated it; chunks cross
//!   without being copied.
//! - Libraries are never unloaded.
//! - A plugin's `tracing` events reach the host's subscriber (target
//!   `storage_plugin`).
//!
//! # Writing a plugin
//!
//! Implement [`Storage`](storage_core::Storage) as for any backend, build
//! the crate as a `cdylib`, and export it:
//!
//! ```no_run
//! use storage_plugin_api::export::ProviderSettings;
//! # // A stand-in for the plugin's own backend.
//! # use storage_core::MemoryStorage as MyStorage;
//! # trait Open {
//! #     async fn open(name: &str, root: std::path::PathBuf) -> storage_core::Result<MyStorage>;
//! # }
//! # impl Open for MyStorage {
//! #     async fn open(_: &str, _: std::path::PathBuf) -> storage_core::Result<MyStorage> {
//! #         Ok(MyStorage::new())
//! #     }
//! # }
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Settings { root: std::path::PathBuf }
//!
//! async fn open(settings: ProviderSettings) -> storage_core::Result<MyStorage> {
//!     let parsed: Settings = settings.parse()?;
//!     MyStorage::open(settings.name(), parsed.root).await
//! }
//!
//! storage_plugin_api::export_plugin!("my-store" => open);
//! # fn main() {}
//! ```
//!
//! `examples/plugins/encrypted` is a complete plugin: client-side
//! encryption over a local folder.
//!
//! # Loading one
//!
//! With the facade's `plugins` feature, `type = "plugin"` works in any
//! configuration ([`FACTORY`]). From code, [`open_plugin`] or
//! [`Plugin::load`] then [`Plugin::open`]. Whatever is wrong with a
//! library comes back as an error naming its path and the reason:
//!
//! ```
//! use std::path::Path;
//!
//! let err = storage_plugin_api::Plugin::load(Path::new("plugins/libmissing.so")).unwrap_err();
//! assert_eq!(err.to_string(), "plugin plugins/libmissing.so: no such file");
//! ```

pub mod abi;
pub mod buffer;
pub mod convert;
pub mod export;
mod factory;
mod host;
mod log;
pub mod task;

pub use factory::FACTORY;

pub use host::{LoadError, Plugin, PluginStorage, open_plugin};
#[doc(hidden)]
pub use storage_core as __storage_core;

/// This crate's version, recorded in every plugin's declaration.
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Exports a plugin: its declaration (the one symbol the host looks for)
/// and its `create` entry, which opens the named provider type with an
/// async function of [`ProviderSettings`](crate::export::ProviderSettings).
///
/// ```no_run
/// # use storage_core::MemoryStorage;
/// # use storage_plugin_api::export::ProviderSettings;
/// # async fn open_encrypted(_: ProviderSettings) -> storage_core::Result<MemoryStorage> {
/// #     Ok(MemoryStorage::new())
/// # }
/// # async fn open_in_memory(_: ProviderSettings) -> storage_core::Result<MemoryStorage> {
/// #     Ok(MemoryStorage::new())
/// # }
/// storage_plugin_api::export_plugin!(
///     "encrypted" => open_encrypted,
///     "encrypted-memory" => open_in_memory,
/// );
/// # fn main() {}
/// ```
///
/// Each function is `async fn(ProviderSettings) -> storage_core::Result<S>`
/// for some `S: Storage`. The declaration records the plugin's crate name
/// and version and whether it was built with `panic = "unwind"`.
#[macro_export]
macro_rules! export_plugin {
    ($($type_name:literal => $open:path),+ $(,)?) => {
        /// The plugin's declaration, read by the host.
        ///
        /// # Safety
        ///
        /// Always safe to call; `unsafe extern` only because it is an ABI
        /// entry point.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn storage_plugin_declaration_v1(
        ) -> *const $crate::abi::PluginDeclaration {
            static TYPES: &[$crate::abi::FfiStr<'static>] =
                &[$($crate::abi::FfiStr::new($type_name)),+];
            static DECLARATION: $crate::abi::PluginDeclaration = $crate::abi::PluginDeclaration {
                magic: $crate::abi::MAGIC,
                abi_version: $crate::abi::ABI_VERSION,
                size: ::core::mem::size_of::<$crate::abi::PluginDeclaration>() as u32,
                plugin_name: $crate::abi::FfiStr::new(env!("CARGO_PKG_NAME")),
                plugin_version: $crate::abi::FfiStr::new(env!("CARGO_PKG_VERSION")),
                api_version: $crate::abi::FfiStr::new($crate::API_VERSION),
                provider_types: TYPES.as_ptr(),
                provider_types_len: TYPES.len(),
                panic_unwind: cfg!(panic = "unwind"),
                create: ::core::option::Option::Some(__storage_plugin_create),
            };
            &DECLARATION
        }

        unsafe extern "C" fn __storage_plugin_create(
            provider_type: $crate::abi::FfiStr<'_>,
            provider_name: $crate::abi::FfiStr<'_>,
            config_json: $crate::abi::FfiStr<'_>,
            host: *const $crate::abi::HostServices,
        ) -> $crate::abi::PluginFuture<$crate::abi::FfiProvider> {
            const OPENERS: &[(&str, $crate::export::OpenFn)] = &[$((
                $type_name,
                |settings| {
                    ::std::boxed::Box::pin(async move {
                        let storage = $open(settings).await?;
                        Ok(::std::sync::Arc::new(storage)
                            as ::std::sync::Arc<dyn $crate::__storage_core::Storage>)
                    })
                },
            )),+];
            // SAFETY: the host calls with arguments that follow the ABI.
            unsafe {
                $crate::export::create(OPENERS, provider_type, provider_name, config_json, host)
            }
        }
    };
}
