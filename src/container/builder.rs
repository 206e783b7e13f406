//! [`PluginContainerBuilder`] and compiling: the plugin compiled once, shared in-process
//! between containers of the same bytes and settings (see [`super::compile_cache`] for the
//! compiled-module cache on disk).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use extism::{CompiledPlugin, Function, Plugin, PluginBuilder};

use std::fmt;
use std::path::PathBuf;
use std::sync::RwLock;

use super::compile_cache::{CompileCache, ModuleKey, ModuleOrigin, ModuleStore};
use super::error::{ContainerError, instantiate_error};
use super::pool::{Slot, instantiate};
use super::{Inner, PluginContainer, PluginManifest, Wasm, exports, lock, logs};
use crate::id::Id;
use crate::settings::{RuntimeSettings, Timeout};

/// Builds a [`PluginContainer`] with limits and options; see [`PluginContainer::builder`].
#[must_use = "a builder does nothing until `build` is called"]
pub struct PluginContainerBuilder {
    id: Id,
    manifest: PluginManifest,
    functions: Vec<Function>,
    timeout: Option<Timeout>,
    memory_max_pages: Option<u32>,
    wasi: bool,
    compile_cache: CompileCache,
    max_idle_instances: usize,
}

impl fmt::Debug for PluginContainerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginContainerBuilder")
            .field("id", &self.id)
            .field(
                "functions",
                &self
                    .functions
                    .iter()
                    .map(Function::name)
                    .collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .field("memory_max_pages", &self.memory_max_pages)
            .field("wasi", &self.wasi)
            .field("compile_cache", &self.compile_cache)
            .field("max_idle_instances", &self.max_idle_instances)
            .finish_non_exhaustive()
    }
}

impl PluginContainerBuilder {
    /// The defaults of [`PluginContainer::builder`].
    pub(super) fn new(id: Id, manifest: PluginManifest) -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        Self {
            id,
            manifest,
            functions: Vec::new(),
            timeout: None,
            memory_max_pages: None,
            wasi: true,
            compile_cache: CompileCache::Default,
            max_idle_instances: cpus.max(4),
        }
    }

    /// Adds host functions the plugin may import.
    pub fn functions(mut self, functions: impl IntoIterator<Item = Function>) -> Self {
        self.functions.extend(functions);
        self
    }

    /// Adds one host function.
    pub fn function(mut self, function: Function) -> Self {
        self.functions.push(function);
        self
    }

    /// Interrupts a call that runs longer than `timeout` ([`ContainerError::Timeout`]).
    /// Overrides the manifest's `timeout_ms`. Extism counts whole milliseconds.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(Timeout::After(timeout));
        self
    }

    /// Lets calls run as long as they take, whatever the manifest's `timeout_ms` says.
    pub fn no_timeout(mut self) -> Self {
        self.timeout = Some(Timeout::Never);
        self
    }

    /// Sets an Extism config value, which the plugin reads with `config::get(key)`.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.manifest.config.insert(key.into(), value.into());
        self
    }

    /// Lets WASI open the host folder `host` as `guest` inside the plugin. A relative `host` is
    /// taken from the process's working folder.
    pub fn allowed_path(mut self, host: impl Into<String>, guest: impl Into<PathBuf>) -> Self {
        self.manifest
            .allowed_paths
            .get_or_insert_with(Default::default)
            .insert(host.into(), guest.into());
        self
    }

    /// Lets the plugin's HTTP requests reach hosts matching `pattern` (`api.example.com`,
    /// `*.example.com`); needs the `http` feature. No host is allowed unless listed.
    pub fn allowed_host(mut self, pattern: impl Into<String>) -> Self {
        self.manifest
            .allowed_hosts
            .get_or_insert_with(Vec::new)
            .push(pattern.into());
        self
    }

    /// Applies the runtime settings declared in a plugin's `[plugins]` entry (see
    /// [`crate::settings`]): each one set there overrides what this builder had. Relative host
    /// folders in `allowed_paths` should already be resolved by the caller (the CLI takes them
    /// from the config's folder).
    pub fn settings(mut self, settings: &RuntimeSettings) -> Self {
        for (key, value) in &settings.config {
            self = self.config(key, value);
        }
        for (host, guest) in &settings.allowed_paths {
            self = self.allowed_path(host, guest);
        }
        for pattern in &settings.allowed_hosts {
            self = self.allowed_host(pattern);
        }
        if let Some(pages) = settings.memory_max_pages {
            self.memory_max_pages = Some(pages);
        }
        if let Some(timeout) = settings.timeout {
            self.timeout = Some(timeout);
        }
        if let Some(wasi) = settings.wasi {
            self.wasi = wasi;
        }
        self
    }

    /// Caps the memory of each instance at `pages` pages of 64 KiB
    /// ([`ContainerError::MemoryExceeded`]). Overrides the manifest's `memory.max_pages`.
    pub fn memory_max_pages(mut self, pages: u32) -> Self {
        self.memory_max_pages = Some(pages);
        self
    }

    /// Enables or disables WASI (default: enabled).
    pub fn wasi(mut self, enabled: bool) -> Self {
        self.wasi = enabled;
        self
    }

    /// Chooses where compiled machine code is kept between runs (default:
    /// [`CompileCache::Default`], warpgate's cache folder); see
    /// [the compiled-module cache](crate::container#the-compiled-module-cache).
    pub fn compile_cache(mut self, cache: CompileCache) -> Self {
        self.compile_cache = cache;
        self
    }

    /// How many idle instances the container keeps for reuse (default: the number of CPUs, at
    /// least 4). More instances than this may run at once; the surplus is dropped after its call
    /// (with a timeout, together with the engine compiled for it; see the
    /// [module docs](crate::container#design)).
    pub fn max_idle_instances(mut self, count: usize) -> Self {
        self.max_idle_instances = count;
        self
    }

    /// Checks the manifest, compiles the plugin and checks that every host function it imports
    /// is provided.
    pub fn build(self) -> Result<PluginContainer, ContainerError> {
        let Self {
            id,
            mut manifest,
            functions,
            timeout,
            memory_max_pages,
            wasi,
            compile_cache,
            max_idle_instances,
        } = self;

        match timeout {
            Some(Timeout::After(timeout)) => {
                // Extism counts milliseconds; never turn a sub-millisecond timeout into "none".
                let millis = u64::try_from(timeout.as_millis())
                    .unwrap_or(u64::MAX)
                    .max(1);
                manifest.timeout_ms = Some(millis);
            }
            Some(Timeout::Never) => manifest.timeout_ms = None,
            None => {}
        }
        if let Some(pages) = memory_max_pages {
            manifest.memory.max_pages = Some(pages);
        }
        if manifest.allowed_hosts.is_none() {
            manifest.allowed_hosts = Some(Vec::new());
        }
        let timeout = manifest.timeout_ms.map(Duration::from_millis);
        let memory_max_pages = manifest.memory.max_pages;

        let local = local_manifest(&id, &manifest)?;
        let provided: BTreeSet<(String, String)> = functions
            .iter()
            .map(|function| {
                (
                    function
                        .namespace()
                        .unwrap_or(extism::EXTISM_USER_MODULE)
                        .to_string(),
                    function.name().to_string(),
                )
            })
            .collect();

        let (key, claims_hold) = module_key(&local);
        let compiler = Compiler {
            module_files: distinct_modules(&local) + 1,
            local,
            functions,
            log_functions: logs::functions(&id),
            wasi,
            store: ModuleStore::open(&compile_cache),
            key,
        };
        // Containers that differ in nothing a compiled plugin carries share one: no host
        // functions (closures cannot be compared) and no timeout (a timeout interrupts every
        // call on its engine, so a container with one needs engines of its own).
        // Bytes that do not match their claimed hash are left to Extism, which refuses them.
        let share_key = (compiler.functions.is_empty() && timeout.is_none() && claims_hold)
            .then(|| share_key(&id, &compiler, &manifest))
            .flatten();
        let shared = share_key.as_ref().and_then(shared_compiled);
        let mut first_instance = None;
        let (compiled, origin) = match shared {
            Some(compiled) => (compiled, ModuleOrigin::Shared),
            None => {
                let (plugin, origin) = compiler.compile(&id)?;
                // Instantiating checks the imports; the instance then serves the first call.
                let probe = instantiate(&id, &plugin, timeout)?.map_err(|error| {
                    instantiate_error(&id, &compiler.local, &provided, wasi, &error)
                })?;
                let exports = main_module(&compiler.local).and_then(exports::callable_exports);
                // With the exports known, the instance serves the first call; otherwise it
                // stays to answer `has_func`.
                let probe = match exports {
                    Some(_) => {
                        first_instance = Some(probe);
                        None
                    }
                    None => Some(probe),
                };
                let compiled = Arc::new(Compiled {
                    plugin,
                    exports,
                    probe,
                });
                if let Some(key) = share_key {
                    share_compiled(key, &compiled);
                }
                (compiled, origin)
            }
        };
        // With a timeout, the container's own engine serves one call at a time (see the module
        // docs); its slot is there from the start.
        let idle = match (first_instance, timeout) {
            (Some(plugin), _) => vec![Slot {
                engine: None,
                plugin: Some(plugin),
            }],
            (None, Some(_)) => vec![Slot {
                engine: None,
                plugin: None,
            }],
            (None, None) => Vec::new(),
        };

        Ok(PluginContainer {
            inner: Arc::new(Inner {
                id,
                manifest,
                timeout,
                memory_max_pages,
                wasi,
                max_idle_instances,
                provided,
                compiler,
                compiled,
                origin,
                start_timed_out: std::sync::atomic::AtomicBool::new(false),
                idle: Mutex::new(idle),
                memo: RwLock::new(HashMap::new()),
            }),
        })
    }
}

/// A compiled plugin and what answers `has_func`: the functions Extism can call, read from the
/// main module's bytes, or (when the bytes are not a binary module) an instance that is never
/// called (`function_exists` is a `&self` lookup in the compiled module).
pub(super) struct Compiled {
    pub(super) plugin: CompiledPlugin,
    pub(super) exports: Option<std::collections::HashSet<String>>,
    pub(super) probe: Option<Plugin>,
}

impl Compiled {
    pub(super) fn has_func(&self, name: &str) -> bool {
        match (&self.exports, &self.probe) {
            (Some(exports), _) => exports.contains(name),
            (None, Some(probe)) => probe.function_exists(name),
            (None, None) => false,
        }
    }
}

/// The module Extism runs, by its rule: the first one without a name or named `main`, else
/// the last one.
pub(super) fn main_module(local: &PluginManifest) -> Option<&[u8]> {
    let main = local
        .wasm
        .iter()
        .find(|wasm| {
            wasm.meta()
                .name
                .as_deref()
                .is_none_or(|name| name == "main")
        })
        .or(local.wasm.last());
    match main {
        Some(Wasm::Data { data, .. }) => Some(data),
        _ => None,
    }
}

/// A digest of everything a [`CompiledPlugin`] carries besides host functions: the modules,
/// the manifest's settings, WASI and the plugin's id (which its log functions carry).
pub(super) type ShareKey = [u8; 32];

/// Compiled plugins of this process, by [`ShareKey`], while some container uses them.
pub(super) static SHARED: Mutex<Option<HashMap<ShareKey, std::sync::Weak<Compiled>>>> =
    Mutex::new(None);

/// The key under which a container may share its compiled plugin, or `None` when its settings
/// cannot be written down.
pub(super) fn share_key(
    id: &Id,
    compiler: &Compiler,
    manifest: &PluginManifest,
) -> Option<ShareKey> {
    use sha2::Digest;
    let settings = serde_json::to_vec(&(
        &manifest.memory,
        &manifest.config,
        &manifest.allowed_hosts,
        &manifest.allowed_paths,
        &manifest.timeout_ms,
        compiler.wasi,
    ))
    .ok()?;
    let mut hasher = sha2::Sha256::new();
    hasher.update(compiler.key.digest());
    hasher.update(&settings);
    // The log functions name the plugin.
    hasher.update(id.as_str().as_bytes());
    Some(hasher.finalize().into())
}

pub(super) fn shared_compiled(key: &ShareKey) -> Option<Arc<Compiled>> {
    lock(&SHARED).as_ref()?.get(key)?.upgrade()
}

pub(super) fn share_compiled(key: ShareKey, compiled: &Arc<Compiled>) {
    let mut shared = lock(&SHARED);
    let map = shared.get_or_insert_with(HashMap::new);
    map.retain(|_, compiled| compiled.strong_count() > 0);
    map.insert(key, Arc::downgrade(compiled));
}

/// The key of the manifest's modules (their names and the SHA-256 of their bytes), and whether
/// every module matches the hash the manifest claims for it (Extism refuses one that does not
/// before anything is compiled or loaded).
pub(super) fn module_key(local: &PluginManifest) -> (ModuleKey, bool) {
    let mut claims_hold = true;
    let key = ModuleKey::new(local.wasm.iter().map(|wasm| {
        let meta = wasm.meta();
        let hex = match wasm {
            Wasm::Data { data, .. } => crate::checksum::Checksum::of(data).hex(),
            // `local_manifest` turned files into bytes and refused URLs.
            _ => String::new(),
        };
        if meta
            .hash
            .as_ref()
            .is_some_and(|hash| !hash.eq_ignore_ascii_case(&hex))
        {
            claims_hold = false;
        }
        (meta.name.as_deref(), hex)
    }));
    (key, claims_hold)
}

/// How many distinct modules the manifest holds (wasmtime caches identical bytes once).
pub(super) fn distinct_modules(local: &PluginManifest) -> usize {
    local
        .wasm
        .iter()
        .filter_map(|wasm| match wasm {
            Wasm::Data { data, .. } => Some(data.as_slice()),
            _ => None,
        })
        .collect::<BTreeSet<_>>()
        .len()
}

/// What compiling the plugin takes, kept to compile it again for another engine.
pub(super) struct Compiler {
    /// The manifest handed to Extism (files read into bytes).
    pub(super) local: PluginManifest,
    /// The host functions the caller gave.
    pub(super) functions: Vec<Function>,
    /// Extism's log functions, writing to `tracing` with the plugin's id (see [`logs`]).
    pub(super) log_functions: Vec<Function>,
    pub(super) wasi: bool,
    /// The compiled-module cache, unless it is disabled.
    pub(super) store: Option<ModuleStore>,
    pub(super) key: ModuleKey,
    /// How many compiled files wasmtime writes for the plugin: its modules and Extism's kernel.
    pub(super) module_files: usize,
}

impl Compiler {
    pub(super) fn compile(
        &self,
        id: &Id,
    ) -> Result<(CompiledPlugin, ModuleOrigin), ContainerError> {
        let compile = |settings: Option<&std::path::Path>| {
            let builder = PluginBuilder::new(&self.local)
                .with_wasi(self.wasi)
                .with_functions(self.functions.iter().cloned())
                .with_functions(self.log_functions.iter().cloned());
            let builder = match settings {
                Some(path) => builder.with_cache_config(path),
                None => builder.with_cache_disabled(),
            };
            CompiledPlugin::new(builder).map_err(|error| ContainerError::Compile {
                id: id.clone(),
                message: format!("{error:#}"),
            })
        };
        match &self.store {
            Some(store) => store.compile(&self.key, self.module_files, compile),
            None => compile(None).map(|compiled| (compiled, ModuleOrigin::Compiled)),
        }
    }
}

/// The manifest handed to Extism: URLs refused, files read into bytes (keeping name and hash).
#[expect(
    clippy::disallowed_methods,
    reason = "each error is wrapped with the path it concerns; fs_err would name it twice"
)]
pub(super) fn local_manifest(
    id: &Id,
    manifest: &PluginManifest,
) -> Result<PluginManifest, ContainerError> {
    let mut local = manifest.clone();
    for wasm in &mut local.wasm {
        match wasm {
            Wasm::Url { req, .. } => {
                return Err(ContainerError::RemoteWasm {
                    id: id.clone(),
                    url: req.url.clone(),
                });
            }
            Wasm::File { path, meta } => {
                let data = std::fs::read(&*path).map_err(|source| ContainerError::ReadWasm {
                    id: id.clone(),
                    path: path.clone(),
                    source,
                })?;
                *wasm = Wasm::Data {
                    data,
                    meta: meta.clone(),
                };
            }
            Wasm::Data { .. } => {}
        }
    }
    Ok(local)
}
