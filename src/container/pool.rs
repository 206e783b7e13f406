//! The instance pool: checking an instance out for a call, running the call (under
//! [`watched`](super::watch::watched) when there is a timeout), and checking the instance back
//! in after a success.

use std::time::{Duration, Instant};

use extism::{CompiledPlugin, Plugin};

use std::sync::MutexGuard;
use std::sync::atomic::Ordering;

use super::error::{ContainerError, instantiate_error};
use super::watch::watched;
use super::{PluginContainer, lock};
use crate::id::Id;

/// The result of one call: the output, or Extism's error and the exit code it reported.
pub(super) type CallResult = Result<Vec<u8>, (extism::Error, i32)>;

/// One call under [`watched`]: the instance comes back with the result.
pub(super) fn call_watched(
    mut plugin: Plugin,
    function: &str,
    input: &[u8],
    timeout: Duration,
) -> std::io::Result<Option<(Plugin, CallResult)>> {
    let function = function.to_string();
    let input = input.to_vec();
    watched(timeout, move || {
        let result = plugin.call_get_error_code::<&[u8], Vec<u8>>(&function, &input);
        (plugin, result)
    })
}

/// A new instance of `compiled`; with a timeout, under [`watched`], since linking runs the
/// modules' start functions.
pub(super) fn instantiate(
    id: &Id,
    compiled: &CompiledPlugin,
    timeout: Option<Duration>,
) -> Result<Result<Plugin, extism::Error>, ContainerError> {
    let Some(timeout) = timeout else {
        return Ok(Plugin::new_from_compiled(compiled));
    };
    let compiled = compiled.clone();
    match watched(timeout, move || Plugin::new_from_compiled(&compiled)) {
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
pub(super) struct Slot {
    /// The compiled plugin (and so the wasmtime engine) that this slot alone uses, or `None`
    /// for the container's own [`Inner::compiled`].
    pub(super) engine: Option<CompiledPlugin>,
    /// A ready instance; `None` once a failed call dropped it.
    pub(super) plugin: Option<Plugin>,
}

impl PluginContainer {
    pub(super) fn idle(&self) -> MutexGuard<'_, Vec<Slot>> {
        lock(&self.inner.idle)
    }

    /// Calls `function` and hands its output, still in the instance's memory, to `read`
    /// (typed calls deserialize it there, with no copy).
    pub(super) fn call_with_output<R>(
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
    pub(super) fn checkout(&self) -> Result<(Option<CompiledPlugin>, Plugin), ContainerError> {
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
    pub(super) fn checkin(&self, slot: Slot) {
        let worth_keeping =
            slot.plugin.is_some() || slot.engine.is_some() || self.inner.timeout.is_some();
        let mut idle = self.idle();
        if worth_keeping && idle.len() < self.inner.max_idle_instances {
            idle.push(slot);
        }
    }

    pub(super) fn call_error(
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
