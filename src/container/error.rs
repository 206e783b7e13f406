//! [`ContainerError`]: why a container could not be built or a call failed, and the
//! helpers that word it.

use std::collections::BTreeSet;
use std::time::Duration;

use std::path::PathBuf;

use super::builder::main_module;
use super::{PluginManifest, WASI_MODULE};
use crate::id::Id;

/// Why a [`PluginContainer`](super::PluginContainer) could not be built or a call failed.
///
/// Every message names the plugin's id, and the function for call errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContainerError {
    /// The manifest names a module by URL; containers only run local code.
    #[error(
        "Plugin `{id}` refers to its WebAssembly by URL (`{url}`); a plugin container never downloads code"
    )]
    RemoteWasm {
        /// The plugin.
        id: Id,
        /// The refused URL.
        url: String,
    },

    /// A [`Wasm::File`](super::Wasm::File) of the manifest could not be read.
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
        "Plugin `{id}` is incompatible with this host: it imports {}, not provided",
        crate::release::backticked(missing, ", ")
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

impl crate::diagnostic::Diagnostic for ContainerError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::RemoteWasm { .. } => Some(
                "pass the module as a file or as bytes (for example from the warpgate cache)"
                    .into(),
            ),
            Self::Incompatible { missing, .. } => Some(missing_hint(missing).into()),
            _ => None,
        }
    }
}

fn missing_hint(missing: &[String]) -> &'static str {
    if missing
        .iter()
        .any(|name| name.starts_with(&format!("{WASI_MODULE}::")))
    {
        "the plugin needs WASI; enable it with `PluginContainerBuilder::wasi(true)`"
    } else {
        "pass the host functions the plugin expects when building its container"
    }
}

/// `pages` of 64 KiB in the largest binary unit that divides them (`1 GiB`, `640 KiB`).
pub(super) fn format_size(pages: u32) -> String {
    let kib = u64::from(pages) * 64;
    if kib % (1024 * 1024) == 0 {
        format!("{} GiB", kib / (1024 * 1024))
    } else if kib % 1024 == 0 {
        format!("{} MiB", kib / 1024)
    } else {
        format!("{kib} KiB")
    }
}

pub(super) fn format_duration(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

/// Maps an instance creation error; an unknown import becomes [`ContainerError::Incompatible`].
pub(super) fn instantiate_error(
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
pub(super) fn unknown_import(message: &str) -> Option<(&str, &str)> {
    let rest = &message[message.find("unknown import: `")? + "unknown import: `".len()..];
    let import = &rest[..rest.find('`')?];
    import.rsplit_once("::")
}

pub(super) fn display_import(module: &str, name: &str) -> String {
    if module == extism::EXTISM_USER_MODULE {
        name.to_string()
    } else {
        format!("{module}::{name}")
    }
}

/// Every function import of the main module that nothing provides (the error path only: this
/// compiles the main module once more, to list all of them rather than the first).
pub(super) fn missing_imports(
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
