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
//! into an [`extism::CompiledPlugin`]. An Extism [`Plugin`](extism::Plugin) instance is single-threaded (a call
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
//! (which would write under `~/.memo/wasmtime`) is never used; warpgate keeps compiled code in
//! its own folder, as described next.
//!
//! # The compiled-module cache
//!
//! (The public names `CompileCache` and `WARPGATE_COMPILE_CACHE` stay; in the docs and
//! internals it is always the *compiled-module* cache, never just "the cache", which is the
//! plugin store.)
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
//! **Memoized calls.** [`PluginContainer::cache_func_with`] runs a function once per distinct
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

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::id::Id;

pub use extism;
pub use extism::{
    CurrentPlugin, Function, Manifest as PluginManifest, PTR, UserData, Val, ValType, Wasm,
};

mod builder;
pub mod compile_cache;
mod error;
mod exports;
pub mod logs;
mod memo;
mod pool;
mod watch;

pub use builder::PluginContainerBuilder;
pub use compile_cache::{CompileCache, ModuleOrigin};
pub use error::ContainerError;

use builder::{Compiled, Compiler};
use memo::Memo;
use pool::Slot;

/// How many bytes of a plugin's output [`ContainerError::OutputDeserialize`] quotes.
const RAW_START_LEN: usize = 200;

/// WASI preview 1's import module.
const WASI_MODULE: &str = "wasi_snapshot_preview1";

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
    memo: RwLock<Memo>,
}

// The container must stay `Send + Sync` (Extism declares `Plugin` so, and `CompiledPlugin` is).
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PluginContainer>();
};

/// One plugin, compiled once, callable from many threads at the same time.
///
/// Cloning is cheap and shares the compiled module, the instance pool and the call memo. See the
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
        PluginContainerBuilder::new(id, manifest)
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
        let output = self.memoized_bytes(name, &[])?;
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
        let output = self.memoized_bytes(name, &input)?;
        self.deserialize(name, &output)
    }

    /// How many instances sit idle in the pool right now.
    pub fn idle_instances(&self) -> usize {
        self.idle()
            .iter()
            .filter(|slot| slot.plugin.is_some())
            .count()
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

    fn call_bytes(&self, function: &str, input: &[u8]) -> Result<Vec<u8>, ContainerError> {
        self.call_with_output(function, input, <[u8]>::to_vec)
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
        assert_eq!(container.memo_entries(), 0);
        let sum: serde_json::Value = container
            .cache_func_with("add", serde_json::json!({"left": 1, "right": 2}))
            .unwrap();
        assert_eq!(sum, serde_json::json!({"sum": 3}));
        assert_eq!(container.memo_entries(), 1);

        let name = "failing";
        let failing = PluginContainer::builder(Id::new(name).unwrap(), fixture(name))
            .compile_cache(CompileCache::Disabled)
            .build()
            .unwrap();
        for input in ["a", "b"] {
            failing.cache_func_with::<_, ()>("fail", input).unwrap_err();
        }
        assert_eq!(failing.memo_entries(), 0);
    }
}
