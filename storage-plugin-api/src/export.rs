//! The plugin side: an ordinary [`Storage`] behind the C vtable.
//!
//! Plugin authors use [`export_plugin!`](crate::export_plugin), which
//! calls [`create`] from the exported declaration. Everything here runs
//! inside the plugin library, with its own copies of tokio, tracing and
//! this crate:
//!
//! - one tokio runtime per plugin library ([`plugin_runtime`]), entered on
//!   every poll of the plugin's futures and streams;
//! - the plugin's `tracing` events forwarded to the host's log callback;
//! - every `extern "C"` function catching panics and answering an error.

use std::ffi::c_void;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use storage_core::{Body, Error, ErrorKind, Key, Operation, Prefix, Storage};
use tokio::runtime::Runtime;

use crate::abi::{
    FfiBody, FfiGetOptions, FfiGetResult, FfiListEntry, FfiListOptions, FfiObjectMeta,
    FfiPresignOptions, FfiPresignedRequest, FfiProvider, FfiPutOptions, FfiPutResult, FfiResult,
    FfiStr, FfiStream, HostServices, PluginFuture, ProviderVTable,
};
use crate::buffer::{export_bytes, import_bytes};
use crate::convert::{
    export_capabilities, export_error, export_list_entry, export_meta, export_presigned,
    export_put_result, import_error, method_of, read_get_options, read_key, read_list_options,
    read_presign_options, read_put_options, read_str,
};
use crate::log::install_host_log;
use crate::task::{ImportedStream, RuntimeScope, export_future, export_stream, panic_error};

/// What a provider type's opener receives: the provider's configured name,
/// its settings (the TOML table without `type`, `path`, `provider` and
/// `layers`, as JSON) and the configuration file's folder.
///
/// On the wire (`config_json` of [`CreateFn`](crate::abi::CreateFn)) this
/// is `{"settings": {...}, "base_dir": "..." | null}`; fields added later
/// are ignored by older plugins.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    name: String,
    settings: serde_json::Value,
    base_dir: Option<PathBuf>,
}

/// The JSON envelope of `config_json`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SettingsEnvelope {
    pub(crate) settings: serde_json::Value,
    #[serde(default)]
    pub(crate) base_dir: Option<PathBuf>,
}

impl ProviderSettings {
    /// Settings for `name`; for tests and for linking a plugin's provider
    /// statically.
    pub fn new(name: impl Into<String>, settings: serde_json::Value) -> Self {
        Self {
            name: name.into(),
            settings,
            base_dir: None,
        }
    }

    /// Relative paths in the settings are relative to `base_dir`.
    pub fn with_base_dir(mut self, base_dir: impl Into<PathBuf>) -> Self {
        self.base_dir = Some(base_dir.into());
        self
    }

    /// `path` as the configuration means it: relative paths are relative
    /// to the configuration file's folder (the current folder if none).
    pub fn resolve(&self, path: &Path) -> PathBuf {
        match &self.base_dir {
            Some(base) if path.is_relative() => base.join(path),
            _ => path.to_owned(),
        }
    }

    /// The provider's configured name (`[providers.NAME]`). Use it in
    /// errors, so they name the same provider as the host's.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Deserializes the settings. Use `#[serde(deny_unknown_fields)]`: a
    /// mistyped setting comes back as an `InvalidConfig` error naming it.
    pub fn parse<T: DeserializeOwned>(&self) -> storage_core::Result<T> {
        T::deserialize(&self.settings).map_err(|err| {
            Error::new(ErrorKind::InvalidConfig, format!("its settings: {err}")).context(
                Operation::Open,
                &self.name,
                None,
            )
        })
    }
}

/// Opens one provider type from its settings.
pub type OpenFn =
    fn(ProviderSettings) -> BoxFuture<'static, storage_core::Result<Arc<dyn Storage>>>;

/// The runtime this plugin library runs its providers on: built once, on
/// first use, never shut down (the library is never unloaded).
///
/// Two worker threads by default; `STORAGE_PLUGIN_WORKER_THREADS` changes
/// it.
pub fn plugin_runtime() -> storage_core::Result<&'static Runtime> {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let workers = std::env::var("STORAGE_PLUGIN_WORKER_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(2);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("storage-plugin")
        .enable_all()
        .build()
        .map_err(|err| {
            Error::new(
                ErrorKind::Other,
                format!("cannot start the plugin's runtime: {err}"),
            )
        })?;
    // Another thread may have won the race; its runtime is the one kept.
    let _ = RUNTIME.set(runtime);
    RUNTIME
        .get()
        .ok_or_else(|| Error::new(ErrorKind::Other, "the plugin's runtime vanished"))
}

fn ready<T: Send + 'static>(place: &'static str, result: FfiResult<T>) -> PluginFuture<T> {
    export_future(RuntimeScope::default(), place, async move { result })
}

/// The body of the exported `create`: finds the opener for
/// `provider_type`, parses the settings and opens the provider on the
/// plugin's runtime.
///
/// # Safety
///
/// The arguments must follow the ABI: strings valid for the call, `host`
/// null or valid for the life of the process.
pub unsafe fn create(
    openers: &[(&str, OpenFn)],
    provider_type: FfiStr<'_>,
    provider_name: FfiStr<'_>,
    config_json: FfiStr<'_>,
    host: *const HostServices,
) -> PluginFuture<FfiProvider> {
    let prepared = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the host promises `host` is null or lives for the process.
        if let Some(host) = unsafe { host.as_ref() } {
            install_host_log(host);
        }
        // SAFETY: the host promises the strings are valid for this call.
        let provider_type = unsafe { read_str(&provider_type, "the provider type") }?;
        // SAFETY: as above.
        let name = unsafe { read_str(&provider_name, "the provider name") }?.to_owned();
        // SAFETY: as above.
        let json = unsafe { read_str(&config_json, "the settings") }?;
        let open = openers
            .iter()
            .find(|(type_name, _)| *type_name == provider_type)
            .map(|(_, open)| *open)
            .ok_or_else(|| {
                let offered: Vec<&str> = openers.iter().map(|(t, _)| *t).collect();
                Error::new(
                    ErrorKind::InvalidConfig,
                    format!(
                        "this plugin has no provider type {provider_type:?}; it offers: {}",
                        offered.join(", ")
                    ),
                )
            })?;
        let envelope: SettingsEnvelope = serde_json::from_str(json).map_err(|err| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!("its settings are not the expected JSON: {err}"),
            )
        })?;
        let settings = ProviderSettings {
            name,
            settings: envelope.settings,
            base_dir: envelope.base_dir,
        };
        let scope = RuntimeScope::of(plugin_runtime()?.handle().clone());
        Ok::<_, Error>((open, settings, scope))
    }));
    match prepared {
        Ok(Ok((open, settings, scope))) => {
            let provider_scope = scope.clone();
            export_future(scope, "the plugin's create", async move {
                match open(settings).await {
                    Ok(storage) => FfiResult::Ok(export_provider(storage, provider_scope)),
                    Err(err) => FfiResult::Err(export_error(&err)),
                }
            })
        }
        Ok(Err(err)) => ready("create", FfiResult::Err(export_error(&err))),
        Err(payload) => ready(
            "create",
            FfiResult::Err(panic_error("the plugin's create", payload)),
        ),
    }
}

/// A provider as the host sees it: its storage and the runtime to run it on.
struct ExportedProvider {
    storage: Arc<dyn Storage>,
    scope: RuntimeScope,
}

/// Puts `storage` behind the vtable, to run inside `scope`.
pub fn export_provider(storage: Arc<dyn Storage>, scope: RuntimeScope) -> FfiProvider {
    let provider = Box::new(ExportedProvider { storage, scope });
    FfiProvider {
        this: Box::into_raw(provider).cast::<c_void>().cast_const(),
        vtable: &VTABLE,
    }
}

static VTABLE: ProviderVTable = ProviderVTable {
    size: size_of::<ProviderVTable>(),
    release,
    capabilities,
    put,
    get,
    head,
    exists,
    delete,
    list,
    copy,
    rename,
    presign,
    health,
};

/// # Safety
///
/// `this` must come from [`export_provider`] and not be released.
unsafe fn provider<'a>(this: *const c_void) -> &'a ExportedProvider {
    // SAFETY: the caller promises `this` is a live ExportedProvider.
    unsafe { &*this.cast::<ExportedProvider>() }
}

impl ExportedProvider {
    /// Runs one operation: `prepare` reads the borrowed arguments (now,
    /// during the call), `operation` starts the work; both inside the
    /// plugin's runtime and with panics caught, as is the future.
    fn call<A, U, Fut>(
        &self,
        place: &'static str,
        prepare: impl FnOnce() -> storage_core::Result<A>,
        operation: impl FnOnce(Arc<dyn Storage>, A) -> Fut,
    ) -> PluginFuture<U>
    where
        Fut: Future<Output = storage_core::Result<U>> + Send + 'static,
        U: Send + 'static,
    {
        let started = {
            let _entered = self.scope.enter();
            catch_unwind(AssertUnwindSafe(|| {
                let args = prepare()?;
                Ok::<_, Error>(operation(self.storage.clone(), args))
            }))
        };
        match started {
            Ok(Ok(future)) => export_future(self.scope.clone(), place, async move {
                match future.await {
                    Ok(value) => FfiResult::Ok(value),
                    Err(err) => FfiResult::Err(export_error(&err)),
                }
            }),
            Ok(Err(err)) => ready(place, FfiResult::Err(export_error(&err))),
            Err(payload) => ready(place, FfiResult::Err(panic_error(place, payload))),
        }
    }
}

unsafe extern "C" fn release(this: *const c_void) {
    // SAFETY: the host releases each provider once, after its last call.
    let provider = unsafe { Box::from_raw(this.cast_mut().cast::<ExportedProvider>()) };
    let scope = provider.scope.clone();
    let _entered = scope.enter();
    let _ = catch_unwind(AssertUnwindSafe(move || drop(provider)));
}

unsafe extern "C" fn capabilities(this: *const c_void) -> u64 {
    // SAFETY: the host calls with a live provider.
    let provider = unsafe { provider(this) };
    catch_unwind(AssertUnwindSafe(|| {
        export_capabilities(provider.storage.capabilities())
    }))
    .unwrap_or(0)
}

/// A body from the host: its bytes, or its stream polled inside the
/// host's runtime (the host's stream enters it).
fn import_body(body: FfiBody) -> Body {
    match body {
        FfiBody::Bytes(bytes) => Body::Bytes(import_bytes(bytes)),
        FfiBody::Stream { stream, size } => Body::Stream {
            stream: Box::pin(
                ImportedStream::new("the host's body stream", stream)
                    .map(|chunk| chunk.map(import_bytes).map_err(import_error)),
            ),
            size: size.into(),
        },
    }
}

unsafe extern "C" fn put(
    this: *const c_void,
    key: FfiStr<'_>,
    body: FfiBody,
    options: &FfiPutOptions<'_>,
) -> PluginFuture<FfiPutResult> {
    // SAFETY: the host calls with a live provider.
    let provider = unsafe { provider(this) };
    let body = import_body(body);
    provider.call(
        "put",
        || {
            // SAFETY: the borrows are valid during this call.
            let key = unsafe { read_key(&key) }?;
            // SAFETY: as above.
            let options = unsafe { read_put_options(options) }?;
            Ok((key, options))
        },
        |storage, (key, options)| async move {
            storage
                .put(&key, body, options)
                .await
                .map(export_put_result)
        },
    )
}

fn export_body(scope: RuntimeScope, result: storage_core::GetResult) -> FfiGetResult {
    let body = result.body.map(|chunk| match chunk {
        Ok(bytes) => FfiResult::Ok(export_bytes(bytes)),
        Err(err) => FfiResult::Err(export_error(&err)),
    });
    FfiGetResult {
        meta: export_meta(result.meta),
        range_start: result.range.start,
        range_end: result.range.end,
        body: export_stream(scope, "the plugin's get stream", body),
    }
}

unsafe extern "C" fn get(
    this: *const c_void,
    key: FfiStr<'_>,
    options: &FfiGetOptions<'_>,
) -> PluginFuture<FfiGetResult> {
    // SAFETY: the host calls with a live provider.
    let provider = unsafe { provider(this) };
    let scope = provider.scope.clone();
    provider.call(
        "get",
        || {
            // SAFETY: the borrows are valid during this call.
            let key = unsafe { read_key(&key) }?;
            // SAFETY: as above.
            let options = unsafe { read_get_options(options) }?;
            Ok((key, options))
        },
        |storage, (key, options)| async move {
            let result = storage.get(&key, options).await?;
            Ok(export_body(scope, result))
        },
    )
}

unsafe extern "C" fn head(this: *const c_void, key: FfiStr<'_>) -> PluginFuture<FfiObjectMeta> {
    // SAFETY: the host calls with a live provider.
    let provider = unsafe { provider(this) };
    provider.call(
        "head",
        // SAFETY: the key is valid during this call.
        || unsafe { read_key(&key) },
        |storage, key: Key| async move { storage.head(&key).await.map(export_meta) },
    )
}

unsafe extern "C" fn exists(this: *const c_void, key: FfiStr<'_>) -> PluginFuture<bool> {
    // SAFETY: the host calls with a live provider.
    let provider = unsafe { provider(this) };
    provider.call(
        "exists",
        // SAFETY: the key is valid during this call.
        || unsafe { read_key(&key) },
        |storage, key: Key| async move { storage.exists(&key).await },
    )
}

unsafe extern "C" fn delete(this: *const c_void, key: FfiStr<'_>) -> PluginFuture<bool> {
    // SAFETY: the host calls with a live provider.
    let provider = unsafe { provider(this) };
    provider.call(
        "delete",
        // SAFETY: the key is valid during this call.
        || unsafe { read_key(&key) },
        |storage, key: Key| async move { storage.delete(&key).await },
    )
}

unsafe extern "C" fn list(
    this: *const c_void,
    prefix: FfiStr<'_>,
    options: &FfiListOptions<'_>,
) -> FfiStream<FfiResult<FfiListEntry>> {
    // SAFETY: the host calls with a live provider.
    let provider = unsafe { provider(this) };
    let scope = provider.scope.clone();
    let started = catch_unwind(AssertUnwindSafe(|| {
        let _entered = scope.enter();
        // SAFETY: the borrows are valid during this call.
        let prefix = unsafe { read_str(&prefix, "a prefix") }?;
        let prefix = Prefix::new(prefix)?;
        // SAFETY: as above.
        let options = unsafe { read_list_options(options) }?;
        Ok::<_, Error>(provider.storage.list(&prefix, options))
    }));
    let entries = match started {
        Ok(Ok(entries)) => entries
            .map(|entry| match entry {
                Ok(entry) => FfiResult::Ok(export_list_entry(entry)),
                Err(err) => FfiResult::Err(export_error(&err)),
            })
            .boxed(),
        Ok(Err(err)) => futures::stream::iter([FfiResult::Err(export_error(&err))]).boxed(),
        Err(payload) => {
            futures::stream::iter([FfiResult::Err(panic_error("list", payload))]).boxed()
        }
    };
    export_stream(scope, "the plugin's list stream", entries)
}

unsafe extern "C" fn copy(
    this: *const c_void,
    from: FfiStr<'_>,
    to: FfiStr<'_>,
) -> PluginFuture<FfiPutResult> {
    // SAFETY: the host calls with a live provider.
    let provider = unsafe { provider(this) };
    provider.call(
        "copy",
        // SAFETY: the keys are valid during this call.
        || Ok((unsafe { read_key(&from) }?, unsafe { read_key(&to) }?)),
        |storage, (from, to)| async move { storage.copy(&from, &to).await.map(export_put_result) },
    )
}

unsafe extern "C" fn rename(
    this: *const c_void,
    from: FfiStr<'_>,
    to: FfiStr<'_>,
) -> PluginFuture<bool> {
    // SAFETY: the host calls with a live provider.
    let provider = unsafe { provider(this) };
    provider.call(
        "rename",
        // SAFETY: the keys are valid during this call.
        || Ok((unsafe { read_key(&from) }?, unsafe { read_key(&to) }?)),
        |storage, (from, to)| async move { storage.rename(&from, &to).await.map(|()| true) },
    )
}

unsafe extern "C" fn presign(
    this: *const c_void,
    method: u8,
    key: FfiStr<'_>,
    expires_in_ms: u64,
    options: &FfiPresignOptions<'_>,
) -> PluginFuture<FfiPresignedRequest> {
    // SAFETY: the host calls with a live provider.
    let provider = unsafe { provider(this) };
    provider.call(
        "presign",
        || {
            Ok((
                method_of(method)?,
                // SAFETY: the borrows are valid during this call.
                unsafe { read_key(&key) }?,
                // SAFETY: as above.
                unsafe { read_presign_options(options) }?,
            ))
        },
        move |storage, (method, key, options)| async move {
            let expires_in = Duration::from_millis(expires_in_ms);
            storage
                .presign(method, &key, expires_in, options)
                .await
                .map(export_presigned)
        },
    )
}

unsafe extern "C" fn health(this: *const c_void) -> PluginFuture<bool> {
    // SAFETY: the host calls with a live provider.
    let provider = unsafe { provider(this) };
    provider.call(
        "health",
        || Ok(()),
        |storage, ()| async move { storage.health().await.map(|()| true) },
    )
}
