//! Plugin logs, routed to `tracing` under the target `warpgate::plugin` with the plugin's id.
//!
//! Extism logs what a plugin writes with `log::warn!` and friends under its own target
//! (`extism::pdk`), labelled with an instance's random id. A container instead links its own
//! versions of Extism's `log_*` host functions (they shadow Extism's, which the linker allows),
//! so that each event carries the plugin's [`Id`]: a subscriber can show or filter one plugin's
//! logs (`RUST_LOG=warpgate::plugin=info`). The library never prints them itself.

use extism::{CurrentPlugin, EXTISM_ENV_MODULE, Function, PTR, UserData, Val};

use crate::id::Id;

/// The `tracing` target of plugin logs.
pub const TARGET: &str = "warpgate::plugin";

#[derive(Clone, Copy)]
enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Extism's five log host functions, writing to `tracing` for plugin `id`.
pub(crate) fn functions(id: &Id) -> Vec<Function> {
    [
        ("log_trace", Level::Trace),
        ("log_debug", Level::Debug),
        ("log_info", Level::Info),
        ("log_warn", Level::Warn),
        ("log_error", Level::Error),
    ]
    .into_iter()
    .map(|(name, level)| {
        let id = id.clone();
        Function::new(
            name,
            [PTR],
            [],
            UserData::new(()),
            move |plugin: &mut CurrentPlugin, inputs: &[Val], _: &mut [Val], _: UserData<()>| {
                log(plugin, inputs, &id, level)
            },
        )
        .with_namespace(EXTISM_ENV_MODULE)
    })
    .collect()
}

fn log(
    plugin: &mut CurrentPlugin,
    inputs: &[Val],
    id: &Id,
    level: Level,
) -> Result<(), extism::Error> {
    let offset = match inputs.first() {
        Some(Val::I64(offset)) => u64::try_from(*offset).ok(),
        _ => None,
    }
    .ok_or_else(|| extism::Error::msg("log: expected a memory offset"))?;
    let handle = plugin
        .memory_handle(offset)
        .ok_or_else(|| extism::Error::msg(format!("log: invalid memory offset {offset}")))?;
    {
        let message = String::from_utf8_lossy(plugin.memory_bytes(handle)?);
        let plugin = id.as_str();
        match level {
            Level::Trace => tracing::trace!(target: TARGET, plugin, "{message}"),
            Level::Debug => tracing::debug!(target: TARGET, plugin, "{message}"),
            Level::Info => tracing::info!(target: TARGET, plugin, "{message}"),
            Level::Warn => tracing::warn!(target: TARGET, plugin, "{message}"),
            Level::Error => tracing::error!(target: TARGET, plugin, "{message}"),
        }
    }
    plugin.memory_free(handle)?;
    Ok(())
}
