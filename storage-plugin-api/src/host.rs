//! The host side: loading a plugin library and using its providers as
//! ordinary [`Storage`].
//!
//! [`Plugin::load`] opens the library, finds [`DECLARATION_SYMBOL`], and
//! checks the declaration's magic, ABI version, size and panic strategy
//! before reading anything else. A library is loaded once per path and
//! never unloaded: code of a plugin may still run (a waker, a release)
//! after its last provider is dropped, and unloading would leave it
//! dangling.
//!
//! [`PluginStorage`] turns each [`Storage`] call into a vtable call: it
//! lends its arguments for the call, hands body streams over without
//! copying, and awaits the plugin's future, which runs on the plugin's own
//! runtime. Errors come back with the host's provider name, operation and
//! key; a panic in the plugin comes back as an error.

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use storage_core::{
    Body, Capabilities, Error, ErrorKind, GetOptions, GetResult, Key, ListOptions, ListStream,
    ObjectMeta, Operation, Prefix, PresignMethod, PresignOptions, PresignedRequest, PutOptions,
    PutResult, Result, Storage, async_trait,
};

use crate::abi::{
    ABI_VERSION, CreateFn, DECLARATION_SYMBOL, DeclarationFn, FfiBody, FfiProvider, FfiResult,
    FfiStr, MAGIC, PluginDeclaration, ProviderVTable,
};
use crate::buffer::{export_bytes, import_bytes};
use crate::convert::{
    export_error, get_options, import_capabilities, import_error, import_list_entry, import_meta,
    import_presigned, import_put_result, import_result, list_options, method_code, presign_options,
    put_option_strings, put_options, str_of,
};
use crate::export::SettingsEnvelope;
use crate::log::host_services;
use crate::task::{ImportedStream, RuntimeScope, export_stream, import_future};

/// The largest declaration a host accepts: anything bigger is not a
/// declaration of this ABI grown at its end, but garbage.
const MAX_DECLARATION_SIZE: u32 = 4096;

/// A loaded plugin library: what it declared.
pub struct Plugin {
    path: PathBuf,
    name: String,
    version: String,
    api_version: String,
    provider_types: Vec<String>,
    create: CreateFn,
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("path", &self.path)
            .field("name", &self.name)
            .field("version", &self.version)
            .field("provider_types", &self.provider_types)
            .finish_non_exhaustive()
    }
}

/// Why a library could not be used as a plugin. Its message names the
/// path and the reason.
#[derive(Debug, thiserror::Error)]
#[error("plugin {path}: {reason}")]
pub struct LoadError {
    path: String,
    reason: String,
}

impl LoadError {
    fn new(path: &Path, reason: impl Into<String>) -> Self {
        Self {
            path: path.display().to_string(),
            reason: reason.into(),
        }
    }

    /// The reason alone.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl From<LoadError> for Error {
    fn from(err: LoadError) -> Self {
        Error::new(ErrorKind::InvalidConfig, err.to_string())
    }
}

fn loaded() -> &'static Mutex<BTreeMap<PathBuf, &'static Plugin>> {
    static LOADED: Mutex<BTreeMap<PathBuf, &'static Plugin>> = Mutex::new(BTreeMap::new());
    &LOADED
}

/// Reads a declared string of the plugin.
///
/// # Safety
///
/// `text` must point into the plugin's static data, as the ABI requires.
unsafe fn declared(
    path: &Path,
    text: FfiStr<'static>,
    what: &str,
) -> std::result::Result<String, LoadError> {
    // SAFETY: forwarded to the caller.
    match unsafe { text.as_str() } {
        Some(text) => Ok(text.to_owned()),
        None => Err(LoadError::new(
            path,
            format!("its declared {what} is not UTF-8"),
        )),
    }
}

impl Plugin {
    /// Loads the library at `path` (once per canonical path; it is never
    /// unloaded) and checks its declaration.
    ///
    /// Refused, with the path and the reason: a missing file, a file that
    /// is not a loadable library, a library that exports no declaration
    /// of this ABI, a declaration with the wrong magic, ABI version or
    /// size, and a plugin built with `panic = "abort"`.
    ///
    /// A path without an extension that names no file is also looked for
    /// in the platform's form: `target/debug/my_plugin` finds
    /// `target/debug/libmy_plugin.so` on Linux, `libmy_plugin.dylib` on
    /// macOS and `my_plugin.dll` on Windows (a `-` in the name may be
    /// written as cargo writes it, `_`).
    pub fn load(path: &Path) -> std::result::Result<&'static Plugin, LoadError> {
        let found = locate(path);
        let canonical = std::fs::canonicalize(&found).map_err(|err| {
            LoadError::new(
                path,
                match err.kind() {
                    std::io::ErrorKind::NotFound => match platform_names(path).as_slice() {
                        [] => "no such file".to_owned(),
                        names => format!("no such file (nor {})", names.join(" nor ")),
                    },
                    _ => format!("cannot be read: {err}"),
                },
            )
        })?;
        let mut loaded = loaded()
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(plugin) = loaded.get(&canonical) {
            return Ok(plugin);
        }
        let plugin: &'static Plugin = Box::leak(Box::new(Self::read_declaration(&canonical)?));
        loaded.insert(canonical, plugin);
        Ok(plugin)
    }

    fn read_declaration(path: &Path) -> std::result::Result<Plugin, LoadError> {
        // SAFETY: loading a library runs its initialisers; naming a file
        // as a plugin is trusting it, as for any native code.
        let library = unsafe { libloading::Library::new(path) }
            .map_err(|err| LoadError::new(path, format!("cannot be loaded as a library: {err}")))?;
        // SAFETY: the symbol's type is fixed by the ABI (its name carries
        // the major version).
        let declare = match unsafe { library.get::<DeclarationFn>(DECLARATION_SYMBOL.as_bytes()) } {
            Ok(symbol) => *symbol,
            Err(_) => return Err(LoadError::new(path, not_a_plugin(&library))),
        };
        // SAFETY: calling the exported function, as the ABI defines it.
        let declaration = unsafe { declare() };
        if declaration.is_null() {
            return Err(LoadError::new(
                path,
                "its declaration function returned null",
            ));
        }
        // SAFETY: the first three fields (16 bytes) are common to every
        // version of the declaration; nothing else is read until they pass.
        let (magic, abi_version, size) = unsafe {
            (
                std::ptr::addr_of!((*declaration).magic).read_unaligned(),
                std::ptr::addr_of!((*declaration).abi_version).read_unaligned(),
                std::ptr::addr_of!((*declaration).size).read_unaligned(),
            )
        };
        if magic != MAGIC {
            return Err(LoadError::new(
                path,
                "its declaration does not start with the plugin magic: not a storage plugin, or a corrupt one",
            ));
        }
        if abi_version != ABI_VERSION {
            return Err(LoadError::new(
                path,
                format!(
                    "it was built for plugin ABI {abi_version}, and this host speaks ABI {ABI_VERSION}: rebuild it against this host's storage-plugin-api"
                ),
            ));
        }
        let needed = size_of::<PluginDeclaration>();
        if (size as usize) < needed
            || size > MAX_DECLARATION_SIZE
            || !(size as usize).is_multiple_of(align_of::<PluginDeclaration>())
        {
            return Err(LoadError::new(
                path,
                format!(
                    "its declaration says it is {size} bytes long, and ABI {ABI_VERSION} needs at least {needed} (at most {MAX_DECLARATION_SIZE}, a multiple of {}): it was built against an incompatible storage-plugin-api",
                    align_of::<PluginDeclaration>()
                ),
            ));
        }
        // SAFETY: the plugin declared at least `needed` bytes of ABI 1.
        let declaration = unsafe { &*declaration };
        // SAFETY: the declared strings are the plugin's statics.
        let name = unsafe { declared(path, declaration.plugin_name, "name") }?;
        if !declaration.panic_unwind {
            return Err(LoadError::new(
                path,
                format!(
                    "{name} was built with panic = \"abort\": any panic in it would abort this process; rebuild it with panic = \"unwind\" (the default)"
                ),
            ));
        }
        // SAFETY: as above.
        let version = unsafe { declared(path, declaration.plugin_version, "version") }?;
        // SAFETY: as above.
        let api_version = unsafe { declared(path, declaration.api_version, "API version") }?;
        if declaration.provider_types.is_null()
            || declaration.provider_types_len == 0
            || declaration.provider_types_len > 1024
        {
            return Err(LoadError::new(
                path,
                format!(
                    "{name} declares {} provider types",
                    declaration.provider_types_len
                ),
            ));
        }
        // SAFETY: the plugin declares an array of that many static strings.
        let types = unsafe {
            std::slice::from_raw_parts(declaration.provider_types, declaration.provider_types_len)
        };
        let provider_types = types
            .iter()
            // SAFETY: as above.
            .map(|t| unsafe { declared(path, *t, "provider type") })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let Some(create) = declaration.create else {
            return Err(LoadError::new(
                path,
                format!("{name} declares no create function"),
            ));
        };
        // Never unloaded: see the module documentation.
        std::mem::forget(library);
        tracing::debug!(path = %path.display(), plugin = %name, %version, types = ?provider_types, "plugin loaded");
        Ok(Plugin {
            path: path.to_owned(),
            name,
            version,
            api_version,
            provider_types,
            create,
        })
    }

    /// Where it was loaded from (canonical).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its declared name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its declared version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The version of storage-plugin-api it was built with.
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// The provider types it offers.
    pub fn provider_types(&self) -> &[String] {
        &self.provider_types
    }

    /// The provider type to open: `wanted` if the plugin offers it, else
    /// its only type; otherwise a message saying what it offers.
    pub fn choose_type(&self, wanted: Option<&str>) -> std::result::Result<String, String> {
        let offered = self.provider_types.join(", ");
        match (wanted, self.provider_types.as_slice()) {
            (Some(wanted), types) if types.iter().any(|t| t == wanted) => Ok(wanted.to_owned()),
            (Some(wanted), _) => Err(format!(
                "plugin {} has no provider type {wanted:?}; it offers: {offered}",
                self.path.display()
            )),
            (None, [only]) => Ok(only.clone()),
            (None, _) => Err(format!(
                "plugin {} offers several provider types ({offered}); choose one with provider = \"...\"",
                self.path.display()
            )),
        }
    }

    /// Opens a provider of `provider_type` named `name` with `settings`
    /// (a JSON object, the plugin's own settings); relative paths in them
    /// are relative to `base_dir` (the configuration file's folder).
    pub async fn open(
        &'static self,
        provider_type: &str,
        name: &str,
        settings: &serde_json::Value,
        base_dir: Option<&Path>,
    ) -> Result<PluginStorage> {
        let context = |err: Error| {
            Error::new(
                err.kind(),
                format!(
                    "plugin {} ({}): {}",
                    self.path.display(),
                    self.name,
                    err.message()
                ),
            )
            .context(Operation::Open, name, None)
        };
        if !self.provider_types.iter().any(|t| t == provider_type) {
            return Err(context(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "it has no provider type {provider_type:?}; it offers: {}",
                    self.provider_types.join(", ")
                ),
            )));
        }
        let envelope = SettingsEnvelope {
            settings: settings.clone(),
            base_dir: base_dir.map(Path::to_owned),
        };
        let json = serde_json::to_string(&envelope).map_err(|err| {
            context(Error::new(
                ErrorKind::InvalidConfig,
                format!("its settings cannot be passed on: {err}"),
            ))
        })?;
        // SAFETY: the create function of a checked declaration, with
        // strings valid for the call and host services that live forever.
        let future = unsafe {
            (self.create)(
                str_of(provider_type),
                str_of(name),
                str_of(&json),
                host_services(),
            )
        };
        let provider = match import_future(future).await {
            FfiResult::Ok(provider) => provider,
            FfiResult::Err(err) => return Err(context(import_error(err))),
        };
        if provider.this.is_null() || provider.vtable.is_null() {
            return Err(context(Error::new(
                ErrorKind::Other,
                "create returned a null provider",
            )));
        }
        // SAFETY: a non-null vtable from the plugin; its size is read first.
        let size = unsafe { std::ptr::addr_of!((*provider.vtable).size).read() };
        if size < size_of::<ProviderVTable>() {
            // It cannot be released through a table this short; leak it.
            return Err(context(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "its provider table has {size} bytes and this host needs {}: rebuild it against this host's storage-plugin-api",
                    size_of::<ProviderVTable>()
                ),
            )));
        }
        let handle = ProviderHandle(provider);
        // SAFETY: a live provider with a full vtable.
        let caps = import_capabilities(unsafe { (handle.vtable().capabilities)(handle.0.this) });
        Ok(PluginStorage {
            name: name.to_owned(),
            plugin: self,
            caps,
            provider: handle,
        })
    }
}

/// The platform's library file names for a bare `path` (no extension).
fn platform_names(path: &Path) -> Vec<String> {
    let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
        return Vec::new();
    };
    if path.extension().is_some() {
        return Vec::new();
    }
    let (prefix, suffix) = (std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    let mut names = vec![format!("{prefix}{file}{suffix}")];
    let cargo_form = format!("{prefix}{}{suffix}", file.replace('-', "_"));
    if cargo_form != names[0] {
        names.push(cargo_form);
    }
    names
}

/// `path` if it exists, else the first platform form of it that does.
fn locate(path: &Path) -> PathBuf {
    if path.exists() {
        return path.to_owned();
    }
    platform_names(path)
        .into_iter()
        .map(|name| path.with_file_name(name))
        .find(|candidate| candidate.exists())
        .unwrap_or_else(|| path.to_owned())
}

/// Says why a library without the declaration symbol is not a plugin, and
/// recognises plugins of other ABI versions.
fn not_a_plugin(library: &libloading::Library) -> String {
    for version in 2..=9u32 {
        let symbol = format!("storage_plugin_declaration_v{version}");
        // SAFETY: only the symbol's presence is checked; it is not called.
        if unsafe { library.get::<*const c_void>(symbol.as_bytes()) }.is_ok() {
            return format!(
                "it was built for plugin ABI {version} (it exports {symbol}), and this host speaks ABI {ABI_VERSION}"
            );
        }
    }
    format!(
        "not a storage plugin: it exports no {DECLARATION_SYMBOL} (a plugin is built with storage_plugin_api::export_plugin!)"
    )
}

/// Owns a plugin's provider; releases it once.
struct ProviderHandle(FfiProvider);

impl ProviderHandle {
    fn vtable(&self) -> &ProviderVTable {
        // SAFETY: checked non-null and full-sized in `Plugin::open`; the
        // plugin's static, never unloaded.
        unsafe { &*self.0.vtable }
    }

    fn this(&self) -> *const c_void {
        self.0.this
    }
}

impl Drop for ProviderHandle {
    fn drop(&mut self) {
        // SAFETY: the last use of this provider.
        unsafe { (self.vtable().release)(self.0.this) }
    }
}

/// A provider of a loaded plugin, used as any other [`Storage`].
pub struct PluginStorage {
    name: String,
    plugin: &'static Plugin,
    caps: Capabilities,
    provider: ProviderHandle,
}

impl fmt::Debug for PluginStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginStorage")
            .field("name", &self.name)
            .field("plugin", &self.plugin.name)
            .field("path", &self.plugin.path)
            .finish_non_exhaustive()
    }
}

impl PluginStorage {
    /// The plugin it comes from.
    pub fn plugin(&self) -> &'static Plugin {
        self.plugin
    }

    fn fail(&self, operation: Operation, key: Option<&str>) -> impl Fn(Error) -> Error + '_ {
        let key = key.map(str::to_owned);
        move |err| err.context(operation, &self.name, key.as_deref())
    }
}

/// A body for the plugin: bytes lent as they are, a stream lent as a
/// stream polled inside this runtime.
fn export_body(body: Body) -> FfiBody {
    match body {
        Body::Bytes(bytes) => FfiBody::Bytes(export_bytes(bytes)),
        Body::Stream { stream, size } => {
            let chunks = stream.map(|chunk| match chunk {
                Ok(bytes) => FfiResult::Ok(export_bytes(bytes)),
                Err(err) => FfiResult::Err(export_error(&err)),
            });
            FfiBody::Stream {
                stream: export_stream(RuntimeScope::current(), "the host's body stream", chunks),
                size: size.into(),
            }
        }
    }
}

#[async_trait]
impl Storage for PluginStorage {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> Capabilities {
        self.caps
    }

    async fn put(&self, key: &Key, body: Body, options: PutOptions) -> Result<PutResult> {
        let fail = self.fail(Operation::Put, Some(key.as_str()));
        let strings = put_option_strings(&options);
        let future = {
            let options = put_options(&options, &strings);
            // SAFETY: a live provider; the borrows outlive the call.
            unsafe {
                (self.provider.vtable().put)(
                    self.provider.this(),
                    str_of(key.as_str()),
                    export_body(body),
                    &options,
                )
            }
        };
        import_result(import_future(future).await, import_put_result).map_err(fail)
    }

    async fn get(&self, key: &Key, options: GetOptions) -> Result<GetResult> {
        let fail = self.fail(Operation::Get, Some(key.as_str()));
        let future = {
            let options = get_options(&options);
            // SAFETY: a live provider; the borrows outlive the call.
            unsafe {
                (self.provider.vtable().get)(self.provider.this(), str_of(key.as_str()), &options)
            }
        };
        let result = import_result(import_future(future).await, Ok).map_err(&fail)?;
        let meta = import_meta(result.meta).map_err(&fail)?;
        if result.range_start > result.range_end || result.range_end > meta.size {
            return Err(fail(crate::convert::malformed(format!(
                "range {}..{} of a {}-byte object",
                result.range_start, result.range_end, meta.size
            ))));
        }
        let name = self.name.clone();
        let key_text = key.as_str().to_owned();
        let body = ImportedStream::new("the plugin's get stream", result.body).map(move |chunk| {
            chunk
                .map(import_bytes)
                .map_err(|err| import_error(err).context(Operation::Get, &name, Some(&key_text)))
        });
        Ok(GetResult {
            meta,
            range: result.range_start..result.range_end,
            body: Box::pin(body),
        })
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        // SAFETY: a live provider; the key outlives the call.
        let future =
            unsafe { (self.provider.vtable().head)(self.provider.this(), str_of(key.as_str())) };
        import_result(import_future(future).await, import_meta)
            .map_err(self.fail(Operation::Head, Some(key.as_str())))
    }

    async fn exists(&self, key: &Key) -> Result<bool> {
        // SAFETY: a live provider; the key outlives the call.
        let future =
            unsafe { (self.provider.vtable().exists)(self.provider.this(), str_of(key.as_str())) };
        import_result(import_future(future).await, Ok)
            .map_err(self.fail(Operation::Head, Some(key.as_str())))
    }

    async fn delete(&self, key: &Key) -> Result<bool> {
        // SAFETY: a live provider; the key outlives the call.
        let future =
            unsafe { (self.provider.vtable().delete)(self.provider.this(), str_of(key.as_str())) };
        import_result(import_future(future).await, Ok)
            .map_err(self.fail(Operation::Delete, Some(key.as_str())))
    }

    fn list(&self, prefix: &Prefix, options: ListOptions) -> ListStream {
        let stream = {
            let options = list_options(&options);
            // SAFETY: a live provider; the borrows outlive the call.
            unsafe {
                (self.provider.vtable().list)(
                    self.provider.this(),
                    str_of(prefix.as_str()),
                    &options,
                )
            }
        };
        let name = self.name.clone();
        let prefix_text = prefix.as_str().to_owned();
        Box::pin(
            ImportedStream::new("the plugin's list stream", stream).map(move |entry| {
                entry
                    .map_err(import_error)
                    .and_then(import_list_entry)
                    .map_err(|err| err.context(Operation::List, &name, Some(&prefix_text)))
            }),
        )
    }

    async fn copy(&self, from: &Key, to: &Key) -> Result<PutResult> {
        // SAFETY: a live provider; the keys outlive the call.
        let future = unsafe {
            (self.provider.vtable().copy)(
                self.provider.this(),
                str_of(from.as_str()),
                str_of(to.as_str()),
            )
        };
        import_result(import_future(future).await, import_put_result)
            .map_err(self.fail(Operation::Copy, Some(from.as_str())))
    }

    async fn rename(&self, from: &Key, to: &Key) -> Result<()> {
        // SAFETY: a live provider; the keys outlive the call.
        let future = unsafe {
            (self.provider.vtable().rename)(
                self.provider.this(),
                str_of(from.as_str()),
                str_of(to.as_str()),
            )
        };
        import_result(import_future(future).await, |_| Ok(()))
            .map_err(self.fail(Operation::Rename, Some(from.as_str())))
    }

    async fn presign(
        &self,
        method: PresignMethod,
        key: &Key,
        expires_in: Duration,
        options: PresignOptions,
    ) -> Result<PresignedRequest> {
        let expires_ms = u64::try_from(expires_in.as_millis()).unwrap_or(u64::MAX);
        let future = {
            let options = presign_options(&options);
            // SAFETY: a live provider; the borrows outlive the call.
            unsafe {
                (self.provider.vtable().presign)(
                    self.provider.this(),
                    method_code(method),
                    str_of(key.as_str()),
                    expires_ms,
                    &options,
                )
            }
        };
        import_result(import_future(future).await, import_presigned)
            .map_err(self.fail(Operation::Presign, Some(key.as_str())))
    }

    async fn health(&self) -> Result<()> {
        // SAFETY: a live provider.
        let future = unsafe { (self.provider.vtable().health)(self.provider.this()) };
        import_result(import_future(future).await, |_| Ok(()))
            .map_err(self.fail(Operation::Head, None))
    }
}

/// Opens a provider of a plugin in one step: loads the library at `path`
/// and opens `provider_type` (the plugin's only type if `None`) as `name`.
/// Relative paths in `settings` are relative to the current folder.
pub async fn open_plugin(
    path: &Path,
    provider_type: Option<&str>,
    name: &str,
    settings: &serde_json::Value,
) -> Result<Arc<dyn Storage>> {
    let refuse = |reason: String| {
        Error::new(ErrorKind::InvalidConfig, reason).context(Operation::Open, name, None)
    };
    let plugin = Plugin::load(path).map_err(|err| refuse(err.to_string()))?;
    let provider_type = plugin.choose_type(provider_type).map_err(refuse)?;
    Ok(Arc::new(
        plugin.open(&provider_type, name, settings, None).await?,
    ))
}
