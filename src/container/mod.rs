//! Running plugins: [`PluginContainer`], a thread-safe wrapper around Extism.
//!
//! A container holds one plugin, identified by its [`Id`]. It compiles the
//! plugin's module once, when it is built, and runs its functions with JSON (serde) inputs and
//! outputs or with raw bytes.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use warpgate::container::{PluginContainer, PluginManifest, Wasm};
//! use warpgate::id::Id;
//!
//! let manifest = PluginManifest::new([Wasm::file("plugins/json_tools.wasm")]);
//! let container = PluginContainer::builder(Id::new("json_tools")?, manifest)
//!     .timeout(Duration::from_secs(5))
//!     .memory_max_pages(256)
//!     .build()?;
//!
//! #[derive(serde::Deserialize)]
//! struct Sum {
//!     sum: i64,
//! }
//! let sum: Sum = container.call_func_with("add", serde_json::json!({"left": 1, "right": 2}))?;
//! assert_eq!(sum.sum, 3);
//! # Ok(())
//! # }
//! ```
//!
//! # Design
//!
//! **Compile once, instantiate per caller.** Building a container compiles the manifest's modules
//! into an [`extism::CompiledPlugin`]. An Extism [`Plugin`] instance is single-threaded (a call
//! needs `&mut`), so a container keeps a pool of idle instances behind a [`Mutex`] that is held
//! only to pop or push one: a call checks an instance out (creating a new one from the compiled
//! module when the pool is empty), runs without any container lock held, and puts the instance
//! back. Calls from many threads therefore run in parallel, each on its own instance, and a host
//! function may call back into the same container without deadlocking.
//!
//! **One engine per concurrent call when there is a timeout.** Extism stops a call that runs
//! past its timeout by advancing the epoch of the call's wasmtime engine, and that interrupts
//! every call running on the engine, not just the late one. Instances made from one compiled
//! plugin share its engine, so a container with a timeout gives each concurrently running call
//! an engine of its own: the first is the one compiled when the container is built, and each
//! further level of concurrency compiles the plugin once more (on its first use) and keeps that
//! engine in the pool with its instance. A container used from one thread at a time compiles
//! once, as does any container without a timeout (nothing advances its epoch).
//!
//! **Failed instances are dropped.** An instance goes back to the pool only after a call that
//! succeeded. After any error — the plugin's own error, a trap, a timeout, running out of memory
//! or a WASI exit — the instance is dropped, and the next call gets a fresh one. Telling a clean
//! plugin error apart from a trap or an exit would need Extism internals, errors are the rare
//! path, and a fresh instance costs well under a millisecond (about 0.3 ms with the
//! test fixtures in an optimised build); its engine is kept. A consequence: plugin state (Extism
//! vars, globals in linear memory) belongs to one instance and is not shared between instances.
//! At most [`PluginContainerBuilder::max_idle_instances`] instances (with their engines) are kept
//! idle.
//!
//! **Limits.** [`PluginContainerBuilder::timeout`] sets the manifest's `timeout_ms`, which Extism
//! enforces with wasmtime epoch interruption; a call that runs past it fails with
//! [`ContainerError::Timeout`]. Epoch interruption only reaches running WebAssembly, so with a
//! timeout each call (and each instance creation, which runs the modules' start functions)
//! runs on a thread of its own that the container waits for at most the timeout plus 100 ms:
//! a plugin blocked in a host function (a WASI sleep, a slow HTTP request) or looping in a start
//! function still ends with [`ContainerError::Timeout`] (or [`ContainerError::StartTimeout`])
//! in time, and its instance is dropped when it finally returns. That thread costs some
//! microseconds per call; containers without a timeout call on the caller's thread. [`PluginContainerBuilder::memory_max_pages`] caps the memory of
//! one instance (64 KiB pages, counting every memory of the instance, Extism's kernel included).
//! A value set on the builder wins over the one in the manifest; when neither is set there is no
//! limit.
//!
//! **No downloads, no surprise writes.** A manifest entry that is a [`Wasm::Url`] is refused
//! ([`ContainerError::RemoteWasm`]): code comes from the lockfile's verified bytes or a local
//! file, never from a fetch behind the lockfile's back. [`Wasm::File`] entries are read by the
//! container and handed to Extism as bytes, keeping their `name` and `hash` so that Extism still
//! checks the hash. `allowed_hosts` is set to an empty list when the manifest leaves it unset (the
//! runtime is built without Extism's HTTP support anyway). Extism's own wasmtime compile cache
//! (which would write under `~/.cache/wasmtime`) is never used; warpgate keeps compiled code in
//! its own folder, as described next.
//!
//! # The compiled-module cache
//!
//! Compiling a plugin to machine code is the expensive part of building a container (tens of
//! milliseconds for a 100 KB plugin). It happens once per machine, not once per process:
//!
//! - **Between processes**, compiled code is kept in `$WARPGATE_HOME/v1/compiled`, keyed by the
//!   plugin's SHA-256 and by everything that changes machine code (wasmtime's version and
//!   settings, the target, Extism's kernel), sealed with its own checksums and checked before
//!   wasmtime may load it. See [`compile_cache`] for the layout and why it is safe.
//!   [`PluginContainerBuilder::compile_cache`] moves it ([`CompileCache::Directory`]) or turns it
//!   off ([`CompileCache::Disabled`]); so does the `WARPGATE_COMPILE_CACHE` environment variable
//!   (`off`, or an absolute path) for containers left at [`CompileCache::Default`].
//! - **Within a process**, a container built from the same bytes and settings as a live one
//!   reuses its compiled plugin, with no compile and no disk access, when neither has host
//!   functions or a timeout (host functions are closures that cannot be compared, and a timeout
//!   needs engines of the container's own). Otherwise it, and each extra engine a container with
//!   a timeout creates, loads the compiled code from the cache.
//!
//! [`PluginContainer::module_origin`] says which of these happened.
//!
//! **WASI** is enabled by default, so that plugins built for `wasm32-wasip1` (as most are) work;
//! it only reaches the directories the manifest's `allowed_paths` maps in. Turn it off with
//! [`PluginContainerBuilder::wasi`].
//!
//! **Cached calls.** [`PluginContainer::cache_func_with`] runs a function once per distinct
//! (function, JSON input bytes) pair and keeps the raw output bytes for the container's lifetime;
//! a hit deserializes the stored bytes and never enters the plugin. Concurrent first calls for
//! the same pair wait for one computation; an error is returned and not cached. Only use it for
//! functions whose output depends on their input alone. [`PluginContainer::clear_cache`] drops
//! the stored outputs.
//!
//! **JSON on the wire.** Typed calls serialize the input with `serde_json`; [`call_func`] and
//! [`cache_func`] send an empty input. An empty output deserializes as JSON `null`, so a function
//! that returns nothing can be called with `O = ()` or `O = Option<T>`.
//!
//! [`call_func`]: PluginContainer::call_func
//! [`cache_func`]: PluginContainer::cache_func

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::id::Id;
use crate::settings::{RuntimeSettings, Timeout};

pub use extism;
pub use extism::{
    CurrentPlugin, Function, Manifest as PluginManifest, PTR, UserData, Val, ValType, Wasm,
};

use extism::{CompiledPlugin, Plugin, PluginBuilder};

pub mod compile_cache;
mod exports;
pub mod logs;

pub use compile_cache::{CompileCache, ModuleOrigin};
use compile_cache::{ModuleKey, ModuleStore};

/// How many bytes of a plugin's output [`ContainerError::OutputDeserialize`] quotes.
const RAW_START_LEN: usize = 200;

/// WASI preview 1's import module.
const WASI_MODULE: &str = "wasi_snapshot_preview1";

/// Why a [`PluginContainer`] could not be built or a call failed.
///
/// Every message names the plugin's id, and the function for call errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContainerError {
    /// The manifest names a module by URL; containers only run local code.
    #[error(
        "Plugin `{id}` refers to its WebAssembly by URL (`{url}`); a plugin container never downloads code\nhint: pass the module as a file or as bytes (for example from the warpgate cache)"
    )]
    RemoteWasm {
        /// The plugin.
        id: Id,
        /// The refused URL.
        url: String,
    },

    /// A [`Wasm::File`] of the manifest could not be read.
    #[error("Cannot read the WebAssembly file `{path}` of plugin `{id}`", path = path.display())]
    ReadWasm {
        /// The plugin.
        id: Id,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Extism could not load or compile the plugin (invalid module, hash mismatch, ...).
    #[error("Cannot compile plugin `{id}`: {message}")]
    Compile {
        /// The plugin.
        id: Id,
        /// Extism's error, with its causes.
        message: String,
    },

    /// The plugin imports host functions that were not provided.
    #[error(
        "Plugin `{id}` is incompatible with this host: it imports {}, not provided{}",
        crate::release::backticked(missing, ", "),
        missing_hint(missing)
    )]
    Incompatible {
        /// The plugin.
        id: Id,
        /// The missing imports: the bare name for Extism's user namespace
        /// (`extism:host/user`, where host functions go by default), else `namespace::name`.
        missing: Vec<String>,
    },

    /// A plugin instance could not be created (for example an `allowed_paths` directory that
    /// does not exist, or a host function with the wrong signature).
    #[error("Cannot instantiate plugin `{id}`: {message}")]
    Instantiate {
        /// The plugin.
        id: Id,
        /// Extism's error, with its causes.
        message: String,
    },

    /// The plugin does not export the function.
    #[error("Plugin `{id}` has no function `{function}`")]
    FunctionMissing {
        /// The plugin.
        id: Id,
        /// The requested function.
        function: String,
    },

    /// The input could not be serialized to JSON.
    #[error(
        "Cannot serialize the input of function `{function}` of plugin `{id}` to JSON: {source}"
    )]
    InputSerialize {
        /// The plugin.
        id: Id,
        /// The function.
        function: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },

    /// The plugin's output could not be deserialized from JSON into the requested type.
    #[error(
        "Cannot deserialize the output of function `{function}` of plugin `{id}`: {source}\nOutput starts with: `{raw_start}`"
    )]
    OutputDeserialize {
        /// The plugin.
        id: Id,
        /// The function.
        function: String,
        /// The first 200 bytes of the output, decoded as UTF-8 lossily.
        raw_start: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },

    /// The call ran longer than the container's timeout and was interrupted.
    #[error("Function `{function}` of plugin `{id}` timed out after `{}`", format_duration(*timeout))]
    Timeout {
        /// The plugin.
        id: Id,
        /// The function.
        function: String,
        /// The timeout that was exceeded.
        timeout: Duration,
    },

    /// The call needed more memory than the container allows.
    #[error(
        "Function `{function}` of plugin `{id}` ran out of memory{}",
        max_pages.map(|pages| format!(" (limit: {}, `{pages}` pages of 64 KiB)", format_size(pages))).unwrap_or_default()
    )]
    MemoryExceeded {
        /// The plugin.
        id: Id,
        /// The function.
        function: String,
        /// The container's limit, in 64 KiB pages.
        max_pages: Option<u32>,
    },

    /// The plugin returned an error, trapped, or a host function it called failed (an HTTP
    /// request to a host that is not allowed, say).
    #[error("Function `{function}` of plugin `{id}` failed: {message}")]
    PluginFailed {
        /// The plugin.
        id: Id,
        /// The function.
        function: String,
        /// The cause: the plugin's own error message, the trap, or the host function's error.
        message: String,
        /// Everything Extism and wasmtime reported, the WebAssembly backtrace included.
        details: String,
    },

    /// The plugin's start function (run when an instance is created) did not finish within the
    /// container's timeout.
    #[error("The start function of plugin `{id}` did not finish within `{}`", format_duration(*timeout))]
    StartTimeout {
        /// The plugin.
        id: Id,
        /// The timeout that was exceeded.
        timeout: Duration,
    },

    /// The plugin called WASI's `proc_exit` with a non-zero status.
    #[error("Function `{function}` of plugin `{id}` exited with status {code}")]
    Exited {
        /// The plugin.
        id: Id,
        /// The function.
        function: String,
        /// The exit status.
        code: i32,
    },
}

impl ContainerError {
    /// The message without the `hint:` lines meant for library users (an interface with its own
    /// advice, such as the CLI, adds that instead).
    pub fn summary(&self) -> String {
        self.to_string()
            .lines()
            .filter(|line| !line.starts_with("hint: "))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn missing_hint(missing: &[String]) -> &'static str {
    if missing
        .iter()
        .any(|name| name.starts_with(&format!("{WASI_MODULE}::")))
    {
        "\nhint: the plugin needs WASI; enable it with `PluginContainerBuilder::wasi(true)`"
    } else {
        "\nhint: pass the host functions the plugin expects when building its container"
    }
}

/// `pages` of 64 KiB in the largest binary unit that divides them (`1 GiB`, `640 KiB`).
fn format_size(pages: u32) -> String {
    let kib = u64::from(pages) * 64;
    if kib % (1024 * 1024) == 0 {
        format!("{} GiB", kib / (1024 * 1024))
    } else if kib % 1024 == 0 {
        format!("{} MiB", kib / 1024)
    } else {
        format!("{kib} KiB")
    }
}

fn format_duration(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

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
                cache: RwLock::new(HashMap::new()),
            }),
        })
    }
}

/// A compiled plugin and what answers `has_func`: the functions Extism can call, read from the
/// main module's bytes, or (when the bytes are not a binary module) an instance that is never
/// called (`function_exists` is a `&self` lookup in the compiled module).
struct Compiled {
    plugin: CompiledPlugin,
    exports: Option<std::collections::HashSet<String>>,
    probe: Option<Plugin>,
}

impl Compiled {
    fn has_func(&self, name: &str) -> bool {
        match (&self.exports, &self.probe) {
            (Some(exports), _) => exports.contains(name),
            (None, Some(probe)) => probe.function_exists(name),
            (None, None) => false,
        }
    }
}

/// The module Extism runs, by its rule: the first one without a name or named `main`, else
/// the last one.
fn main_module(local: &PluginManifest) -> Option<&[u8]> {
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
type ShareKey = [u8; 32];

/// Compiled plugins of this process, by [`ShareKey`], while some container uses them.
static SHARED: Mutex<Option<HashMap<ShareKey, std::sync::Weak<Compiled>>>> = Mutex::new(None);

/// The key under which a container may share its compiled plugin, or `None` when its settings
/// cannot be written down.
fn share_key(id: &Id, compiler: &Compiler, manifest: &PluginManifest) -> Option<ShareKey> {
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

fn shared_compiled(key: &ShareKey) -> Option<Arc<Compiled>> {
    lock(&SHARED).as_ref()?.get(key)?.upgrade()
}

fn share_compiled(key: ShareKey, compiled: &Arc<Compiled>) {
    let mut shared = lock(&SHARED);
    let map = shared.get_or_insert_with(HashMap::new);
    map.retain(|_, compiled| compiled.strong_count() > 0);
    map.insert(key, Arc::downgrade(compiled));
}

/// The key of the manifest's modules (their names and the SHA-256 of their bytes), and whether
/// every module matches the hash the manifest claims for it (Extism refuses one that does not
/// before anything is compiled or loaded).
fn module_key(local: &PluginManifest) -> (ModuleKey, bool) {
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
fn distinct_modules(local: &PluginManifest) -> usize {
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
struct Compiler {
    /// The manifest handed to Extism (files read into bytes).
    local: PluginManifest,
    /// The host functions the caller gave.
    functions: Vec<Function>,
    /// Extism's log functions, writing to `tracing` with the plugin's id (see [`logs`]).
    log_functions: Vec<Function>,
    wasi: bool,
    /// The compiled-module cache, unless it is disabled.
    store: Option<ModuleStore>,
    key: ModuleKey,
    /// How many compiled files wasmtime writes for the plugin: its modules and Extism's kernel.
    module_files: usize,
}

impl Compiler {
    fn compile(&self, id: &Id) -> Result<(CompiledPlugin, ModuleOrigin), ContainerError> {
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

/// How long past its timeout a call may take to come back before the container stops waiting
/// for it: Extism's own timer interrupts WebAssembly code at the timeout, and this margin lets
/// that interruption report itself.
const TIMEOUT_MARGIN: Duration = Duration::from_millis(100);

/// The result of one call: the output, or Extism's error and the exit code it reported.
type CallResult = Result<Vec<u8>, (extism::Error, i32)>;

/// Runs `work` on its own thread and waits at most `timeout` (plus a margin) for it, so that a
/// limit holds even when the plugin is not running WebAssembly, where Extism's timer cannot
/// reach it: blocked in a host function (a WASI sleep, a slow HTTP request), or in a start
/// function (wasmtime runs it while Extism links the module, before any timer). `Ok(None)`
/// when `work` is still running; its thread then ends with it, and drops what it holds.
fn watched<T: Send + 'static>(
    timeout: Duration,
    name: String,
    work: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<Option<T>> {
    let (sender, receiver) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new().name(name).spawn(move || {
        // The caller may have stopped waiting; the result is then dropped here.
        let _ = sender.send(work());
    })?;
    Ok(receiver.recv_timeout(timeout + TIMEOUT_MARGIN).ok())
}

/// One call under [`watched`]: the instance comes back with the result.
fn call_watched(
    mut plugin: Plugin,
    function: &str,
    input: &[u8],
    timeout: Duration,
) -> std::io::Result<Option<(Plugin, CallResult)>> {
    let name = format!("warpgate call {function}");
    let function = function.to_string();
    let input = input.to_vec();
    watched(timeout, name, move || {
        let result = plugin.call_get_error_code::<&[u8], Vec<u8>>(&function, &input);
        (plugin, result)
    })
}

/// A new instance of `compiled`; with a timeout, under [`watched`], since linking runs the
/// modules' start functions.
fn instantiate(
    id: &Id,
    compiled: &CompiledPlugin,
    timeout: Option<Duration>,
) -> Result<Result<Plugin, extism::Error>, ContainerError> {
    let Some(timeout) = timeout else {
        return Ok(Plugin::new_from_compiled(compiled));
    };
    let compiled = compiled.clone();
    match watched(timeout, format!("warpgate start {id}"), move || {
        Plugin::new_from_compiled(&compiled)
    }) {
        Ok(Some(result)) => Ok(result),
        Ok(None) => Err(ContainerError::StartTimeout {
            id: id.clone(),
            timeout,
        }),
        Err(error) => Err(ContainerError::Instantiate {
            id: id.clone(),
            message: format!("cannot start a thread to instantiate the plugin: {error}"),
        }),
    }
}

/// A place in the instance pool: an instance, and the engine it runs on.
struct Slot {
    /// The compiled plugin (and so the wasmtime engine) that this slot alone uses, or `None`
    /// for the container's own [`Inner::compiled`].
    engine: Option<CompiledPlugin>,
    /// A ready instance; `None` once a failed call dropped it.
    plugin: Option<Plugin>,
}

/// The manifest handed to Extism: URLs refused, files read into bytes (keeping name and hash).
fn local_manifest(id: &Id, manifest: &PluginManifest) -> Result<PluginManifest, ContainerError> {
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

/// Maps an instance creation error; an unknown import becomes [`ContainerError::Incompatible`].
fn instantiate_error(
    id: &Id,
    local: &PluginManifest,
    provided: &BTreeSet<(String, String)>,
    wasi: bool,
    error: &extism::Error,
) -> ContainerError {
    let message = format!("{error:#}");
    if let Some(first) = unknown_import(&message) {
        let mut missing = missing_imports(local, provided, wasi);
        if missing.is_empty() {
            missing.push(display_import(first.0, first.1));
        }
        return ContainerError::Incompatible {
            id: id.clone(),
            missing,
        };
    }
    ContainerError::Instantiate {
        id: id.clone(),
        message,
    }
}

/// Parses wasmtime's "unknown import: `module::name` has not been defined".
fn unknown_import(message: &str) -> Option<(&str, &str)> {
    let rest = &message[message.find("unknown import: `")? + "unknown import: `".len()..];
    let import = &rest[..rest.find('`')?];
    import.rsplit_once("::")
}

fn display_import(module: &str, name: &str) -> String {
    if module == extism::EXTISM_USER_MODULE {
        name.to_string()
    } else {
        format!("{module}::{name}")
    }
}

/// Every function import of the main module that nothing provides (the error path only: this
/// compiles the main module once more, to list all of them rather than the first).
fn missing_imports(
    local: &PluginManifest,
    provided: &BTreeSet<(String, String)>,
    wasi: bool,
) -> Vec<String> {
    let module_names: BTreeSet<&str> = local
        .wasm
        .iter()
        .filter_map(|wasm| wasm.meta().name.as_deref())
        .collect();
    let Some(data) = main_module(local) else {
        return Vec::new();
    };
    let Ok(module) = wasmtime::Module::new(&wasmtime::Engine::default(), data) else {
        return Vec::new();
    };
    module
        .imports()
        .filter(|import| matches!(import.ty(), wasmtime::ExternType::Func(_)))
        .filter(|import| {
            let module = import.module();
            module != extism::EXTISM_ENV_MODULE
                && !module_names.contains(module)
                && (!wasi || module != WASI_MODULE)
                && !provided.contains(&(module.to_string(), import.name().to_string()))
        })
        .map(|import| display_import(import.module(), import.name()))
        .collect()
}

/// One stored output of [`PluginContainer::cache_func_with`].
#[derive(Default)]
struct CacheSlot {
    output: OnceLock<Arc<[u8]>>,
    /// Held while the output is computed, so that concurrent misses compute it once.
    compute: Mutex<()>,
}

/// function name -> input bytes -> slot (nested so that a lookup borrows `&str` and `&[u8]`).
type CacheMap = HashMap<String, HashMap<Vec<u8>, Arc<CacheSlot>>>;

struct Inner {
    id: Id,
    /// The caller's manifest with the container's overrides applied.
    manifest: PluginManifest,
    timeout: Option<Duration>,
    memory_max_pages: Option<u32>,
    wasi: bool,
    max_idle_instances: usize,
    provided: BTreeSet<(String, String)>,
    compiler: Compiler,
    compiled: Arc<Compiled>,
    origin: ModuleOrigin,
    /// Set once creating an instance ran past the timeout: the start function is then still
    /// running, and every later instance would do the same (Extism cannot stop it), so calls
    /// fail at once instead of leaving one more thread behind each.
    start_timed_out: std::sync::atomic::AtomicBool,
    idle: Mutex<Vec<Slot>>,
    cache: RwLock<CacheMap>,
}

// The container must stay `Send + Sync` (Extism declares `Plugin` so, and `CompiledPlugin` is).
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PluginContainer>();
};

/// One plugin, compiled once, callable from many threads at the same time.
///
/// Cloning is cheap and shares the compiled module, the instance pool and the call cache. See the
/// [module docs](self) for the design.
#[derive(Clone)]
pub struct PluginContainer {
    inner: Arc<Inner>,
}

impl fmt::Debug for PluginContainer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginContainer")
            .field("id", &self.inner.id)
            .field("timeout", &self.inner.timeout)
            .field("memory_max_pages", &self.inner.memory_max_pages)
            .field("wasi", &self.inner.wasi)
            .field("idle_instances", &self.idle_instances())
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while a lock was held (a panicking host function unwinds through the call, never
    // while the pool or a cache slot is locked) leaves the data consistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl PluginContainer {
    /// Builds a container with default options and the given host functions.
    pub fn new(
        id: Id,
        manifest: PluginManifest,
        functions: impl IntoIterator<Item = Function>,
    ) -> Result<Self, ContainerError> {
        Self::builder(id, manifest).functions(functions).build()
    }

    /// Builds a container with default options and no host functions.
    pub fn new_without_functions(id: Id, manifest: PluginManifest) -> Result<Self, ContainerError> {
        Self::builder(id, manifest).build()
    }

    /// Starts a [`PluginContainerBuilder`]: no host functions, no timeout, no memory cap
    /// beyond the manifest's, WASI on, the compiled-module cache in warpgate's cache folder.
    pub fn builder(id: Id, manifest: PluginManifest) -> PluginContainerBuilder {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        PluginContainerBuilder {
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

    /// The plugin's id.
    pub fn id(&self) -> &Id {
        &self.inner.id
    }

    /// The manifest as given, with the container's overrides applied (`timeout_ms`,
    /// `memory.max_pages`, and `allowed_hosts` set to empty when it was unset).
    pub fn manifest(&self) -> &PluginManifest {
        &self.inner.manifest
    }

    /// Where this container's compiled module came from: compiled now, loaded from the
    /// compiled-module cache, or shared with another container of this process.
    pub fn module_origin(&self) -> ModuleOrigin {
        self.inner.origin
    }

    /// The call timeout, if any.
    pub fn timeout(&self) -> Option<Duration> {
        self.inner.timeout
    }

    /// Whether the plugin exports a callable function `name` (an Extism plugin function: no
    /// parameters, an `i32` or no result).
    pub fn has_func(&self, name: impl AsRef<str>) -> bool {
        self.inner.compiled.has_func(name.as_ref())
    }

    /// Calls `name` with `input` and returns the raw output bytes.
    pub fn call(
        &self,
        name: impl AsRef<str>,
        input: impl AsRef<[u8]>,
    ) -> Result<Vec<u8>, ContainerError> {
        self.call_bytes(name.as_ref(), input.as_ref())
    }

    /// Calls `name` with an empty input and deserializes its JSON output.
    pub fn call_func<O: DeserializeOwned>(
        &self,
        name: impl AsRef<str>,
    ) -> Result<O, ContainerError> {
        let name = name.as_ref();
        self.call_with_output(name, &[], |output| self.deserialize(name, output))?
    }

    /// Calls `name` with `input` serialized to JSON and deserializes its JSON output.
    pub fn call_func_with<I: Serialize, O: DeserializeOwned>(
        &self,
        name: impl AsRef<str>,
        input: I,
    ) -> Result<O, ContainerError> {
        let name = name.as_ref();
        let input = self.serialize(name, &input)?;
        self.call_with_output(name, &input, |output| self.deserialize(name, output))?
    }

    /// Like [`call_func`](Self::call_func), but the output is computed once and reused; see the
    /// [module docs](self#design).
    pub fn cache_func<O: DeserializeOwned>(
        &self,
        name: impl AsRef<str>,
    ) -> Result<O, ContainerError> {
        let name = name.as_ref();
        let output = self.cached_bytes(name, &[])?;
        self.deserialize(name, &output)
    }

    /// Like [`call_func_with`](Self::call_func_with), but the output for each distinct input is
    /// computed once and reused; see the [module docs](self#design).
    pub fn cache_func_with<I: Serialize, O: DeserializeOwned>(
        &self,
        name: impl AsRef<str>,
        input: I,
    ) -> Result<O, ContainerError> {
        let name = name.as_ref();
        let input = self.serialize(name, &input)?;
        let output = self.cached_bytes(name, &input)?;
        self.deserialize(name, &output)
    }

    /// Drops every output stored by [`cache_func`](Self::cache_func) and
    /// [`cache_func_with`](Self::cache_func_with).
    pub fn clear_cache(&self) {
        self.inner
            .cache
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// How many instances sit idle in the pool right now.
    pub fn idle_instances(&self) -> usize {
        self.idle()
            .iter()
            .filter(|slot| slot.plugin.is_some())
            .count()
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Slot>> {
        lock(&self.inner.idle)
    }

    fn serialize<I: Serialize>(
        &self,
        function: &str,
        input: &I,
    ) -> Result<Vec<u8>, ContainerError> {
        serde_json::to_vec(input).map_err(|source| ContainerError::InputSerialize {
            id: self.inner.id.clone(),
            function: function.to_string(),
            source,
        })
    }

    fn deserialize<O: DeserializeOwned>(
        &self,
        function: &str,
        output: &[u8],
    ) -> Result<O, ContainerError> {
        let json: &[u8] = if output.is_empty() { b"null" } else { output };
        serde_json::from_slice(json).map_err(|source| ContainerError::OutputDeserialize {
            id: self.inner.id.clone(),
            function: function.to_string(),
            raw_start: String::from_utf8_lossy(&output[..output.len().min(RAW_START_LEN)])
                .into_owned(),
            source,
        })
    }

    /// The cached output of `function` for `input`, computing it on a miss.
    fn cached_bytes(&self, function: &str, input: &[u8]) -> Result<Arc<[u8]>, ContainerError> {
        let slot = {
            let cache = self
                .inner
                .cache
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            match cache.get(function).and_then(|outputs| outputs.get(input)) {
                Some(slot) => match slot.output.get() {
                    Some(output) => return Ok(Arc::clone(output)),
                    None => Arc::clone(slot),
                },
                None => {
                    drop(cache);
                    let mut cache = self
                        .inner
                        .cache
                        .write()
                        .unwrap_or_else(PoisonError::into_inner);
                    Arc::clone(
                        cache
                            .entry(function.to_string())
                            .or_default()
                            .entry(input.to_vec())
                            .or_default(),
                    )
                }
            }
        };
        let _computing = lock(&slot.compute);
        if let Some(output) = slot.output.get() {
            return Ok(Arc::clone(output));
        }
        match self.call_bytes(function, input) {
            Ok(output) => {
                let output: Arc<[u8]> = output.into();
                Ok(Arc::clone(slot.output.get_or_init(|| output)))
            }
            Err(error) => {
                self.forget_failed(function, input, &slot);
                Err(error)
            }
        }
    }

    /// Drops the empty slot of a failed computation from the cache map, unless another caller
    /// is waiting on it (that caller computes it next), so that failing inputs and missing
    /// function names do not pile up in a long-running host.
    fn forget_failed(&self, function: &str, input: &[u8], slot: &Arc<CacheSlot>) {
        let mut cache = self
            .inner
            .cache
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(outputs) = cache.get_mut(function) else {
            return;
        };
        // Clones of a slot are only made under the map's lock: the count is stable here.
        // One reference is the map's, one is `slot`.
        let unused = outputs
            .get(input)
            .is_some_and(|entry| Arc::ptr_eq(entry, slot) && Arc::strong_count(slot) == 2);
        if unused {
            outputs.remove(input);
            if outputs.is_empty() {
                cache.remove(function);
            }
        }
    }

    #[cfg(test)]
    fn cache_entries(&self) -> usize {
        self.inner
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(HashMap::len)
            .sum()
    }

    fn call_bytes(&self, function: &str, input: &[u8]) -> Result<Vec<u8>, ContainerError> {
        self.call_with_output(function, input, <[u8]>::to_vec)
    }

    /// Calls `function` and hands its output, still in the instance's memory, to `read`
    /// (typed calls deserialize it there, with no copy).
    fn call_with_output<R>(
        &self,
        function: &str,
        input: &[u8],
        read: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, ContainerError> {
        if !self.has_func(function) {
            return Err(ContainerError::FunctionMissing {
                id: self.inner.id.clone(),
                function: function.to_string(),
            });
        }
        let (engine, plugin) = self.checkout()?;
        let started = Instant::now();
        let (plugin, result) = match self.inner.timeout {
            None => {
                let mut plugin = plugin;
                let result = plugin
                    .call_get_error_code::<&[u8], &[u8]>(function, input)
                    .map(read);
                (plugin, result)
            }
            Some(timeout) => match call_watched(plugin, function, input, timeout) {
                Ok(Some((plugin, result))) => (plugin, result.map(|output| read(&output))),
                Err(error) => {
                    self.checkin(Slot {
                        engine,
                        plugin: None,
                    });
                    return Err(ContainerError::Instantiate {
                        id: self.inner.id.clone(),
                        message: format!("cannot start a thread for the call: {error}"),
                    });
                }
                Ok(None) => {
                    // Still running (blocked in a host function, say): the instance is left to
                    // its thread and dropped when the call ends. The engine is kept: its own
                    // timer has already fired for this call.
                    self.checkin(Slot {
                        engine,
                        plugin: None,
                    });
                    return Err(ContainerError::Timeout {
                        id: self.inner.id.clone(),
                        function: function.to_string(),
                        timeout,
                    });
                }
            },
        };
        match result {
            Ok(output) => {
                self.checkin(Slot {
                    engine,
                    plugin: Some(plugin),
                });
                Ok(output)
            }
            Err(error) => {
                // The instance may be in any state after an error: it is dropped here. Its
                // engine is kept (compiling is the expensive part).
                drop(plugin);
                self.checkin(Slot {
                    engine,
                    plugin: None,
                });
                Err(self.call_error(function, &error.0, error.1, started.elapsed()))
            }
        }
    }

    /// An instance and the engine it runs on, from the pool or new.
    fn checkout(&self) -> Result<(Option<CompiledPlugin>, Plugin), ContainerError> {
        let slot = self.idle().pop();
        let engine = match slot {
            Some(Slot {
                engine,
                plugin: Some(plugin),
            }) => return Ok((engine, plugin)),
            Some(Slot { engine, .. }) => engine,
            // Extism stops a call that times out by advancing its engine's epoch, which
            // interrupts every call running on that engine: with a timeout, each concurrent
            // call gets an engine of its own (compiled once, then kept in the pool).
            None if self.inner.timeout.is_some() => {
                Some(self.inner.compiler.compile(&self.inner.id)?.0)
            }
            None => None,
        };
        let compiled = engine.as_ref().unwrap_or(&self.inner.compiled.plugin);
        if self.inner.start_timed_out.load(Ordering::Relaxed) {
            return Err(ContainerError::StartTimeout {
                id: self.inner.id.clone(),
                timeout: self.inner.timeout.unwrap_or_default(),
            });
        }
        let instance = instantiate(&self.inner.id, compiled, self.inner.timeout);
        if let Err(ContainerError::StartTimeout { .. }) = &instance {
            self.inner.start_timed_out.store(true, Ordering::Relaxed);
        }
        let plugin = instance?.map_err(|error| {
            instantiate_error(
                &self.inner.id,
                &self.inner.compiler.local,
                &self.inner.provided,
                self.inner.wasi,
                &error,
            )
        })?;
        Ok((engine, plugin))
    }

    /// Returns a slot to the pool, unless the pool is full or the slot holds nothing worth
    /// keeping (no instance, and the shared engine of a container without a timeout).
    fn checkin(&self, slot: Slot) {
        let worth_keeping =
            slot.plugin.is_some() || slot.engine.is_some() || self.inner.timeout.is_some();
        let mut idle = self.idle();
        if worth_keeping && idle.len() < self.inner.max_idle_instances {
            idle.push(slot);
        }
    }

    fn call_error(
        &self,
        function: &str,
        error: &extism::Error,
        code: i32,
        elapsed: Duration,
    ) -> ContainerError {
        let id = self.inner.id.clone();
        let function = function.to_string();
        let cause = error.root_cause().to_string();
        // WASI's `proc_exit` with a non-zero status (Extism passes the status on).
        if cause.starts_with("Exited with i32 exit status") {
            return ContainerError::Exited { id, function, code };
        }
        // Extism reports an epoch interruption as the bare message "timeout" and its memory
        // limiter as a chain ending in "oom"; the elapsed time tells a timeout from a plugin
        // error of that text.
        match error.root_cause().to_string().as_str() {
            "timeout" => {
                if let Some(timeout) = self.inner.timeout.filter(|timeout| elapsed >= *timeout) {
                    return ContainerError::Timeout {
                        id,
                        function,
                        timeout,
                    };
                }
            }
            "oom" if self.inner.memory_max_pages.is_some() => {
                return ContainerError::MemoryExceeded {
                    id,
                    function,
                    max_pages: self.inner.memory_max_pages,
                };
            }
            _ => {}
        }
        ContainerError::PluginFailed {
            id,
            function,
            message: cause,
            details: format!("{error:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PluginManifest {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/plugins")
            .join(format!("{name}.wasm"));
        PluginManifest::new([Wasm::file(path)])
    }

    #[test]
    fn failed_cached_calls_leave_no_entries() {
        let name = "json_tools";
        let container = PluginContainer::builder(Id::new(name).unwrap(), fixture(name))
            .compile_cache(CompileCache::Disabled)
            .build()
            .unwrap();
        for input in 0..3 {
            let error = container
                .cache_func_with::<_, serde_json::Value>("nope", input)
                .unwrap_err();
            assert!(matches!(error, ContainerError::FunctionMissing { .. }));
        }
        assert_eq!(container.cache_entries(), 0);
        let sum: serde_json::Value = container
            .cache_func_with("add", serde_json::json!({"left": 1, "right": 2}))
            .unwrap();
        assert_eq!(sum, serde_json::json!({"sum": 3}));
        assert_eq!(container.cache_entries(), 1);

        let name = "failing";
        let failing = PluginContainer::builder(Id::new(name).unwrap(), fixture(name))
            .compile_cache(CompileCache::Disabled)
            .build()
            .unwrap();
        for input in ["a", "b"] {
            failing.cache_func_with::<_, ()>("fail", input).unwrap_err();
        }
        assert_eq!(failing.cache_entries(), 0);
    }
}
