//! Which functions a plugin exports that Extism can call, read once from the module's bytes.
//!
//! Extism calls an export that takes no parameters and returns nothing or one `i32`. Asking
//! wasmtime on every call (`Plugin::function_exists`) goes through the engine's shared type
//! registry (a lock and reference counts that every thread touches); reading the answer from
//! an immutable set keeps concurrent calls apart.

use std::collections::HashSet;

use wasmparser::{CompositeInnerType, ExternalKind, FuncType, Parser, Payload, TypeRef, ValType};

/// The names of the functions of `module` that Extism can call, or `None` when the bytes are not
/// a binary module that this reader understands (WebAssembly text, for example).
pub(crate) fn callable_exports(module: &[u8]) -> Option<HashSet<String>> {
    // Per type index: whether it is a callable function type.
    let mut types: Vec<bool> = Vec::new();
    // Per function index (imports first): its type index.
    let mut functions: Vec<u32> = Vec::new();
    let mut exports: Vec<(String, u32)> = Vec::new();
    for payload in Parser::new(0).parse_all(module) {
        match payload.ok()? {
            Payload::TypeSection(reader) => {
                for group in reader {
                    for sub_type in group.ok()?.into_types() {
                        types.push(match &sub_type.composite_type.inner {
                            CompositeInnerType::Func(func) => callable(func),
                            _ => false,
                        });
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    if let TypeRef::Func(index) | TypeRef::FuncExact(index) = import.ok()?.ty {
                        functions.push(index);
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                for type_index in reader {
                    functions.push(type_index.ok()?);
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.ok()?;
                    if matches!(export.kind, ExternalKind::Func | ExternalKind::FuncExact) {
                        exports.push((export.name.to_string(), export.index));
                    }
                }
            }
            _ => {}
        }
    }
    let callable_function = |index: u32| {
        let type_index = *functions.get(usize::try_from(index).ok()?)?;
        types.get(usize::try_from(type_index).ok()?).copied()
    };
    let mut names = HashSet::new();
    for (name, index) in exports {
        if callable_function(index)? {
            names.insert(name);
        }
    }
    Some(names)
}

/// Extism's rule for a plugin function: no parameters, and no result or one `i32`.
fn callable(func: &FuncType) -> bool {
    func.params().is_empty() && matches!(func.results(), [] | [ValType::I32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_callable_exports_of_a_plugin() {
        let bytes = fs_err::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/plugins/json_tools.wasm"),
        )
        .unwrap();
        let exports = callable_exports(&bytes).unwrap();
        for name in ["add", "greet", "echo", "count"] {
            assert!(exports.contains(name), "{name}: {exports:?}");
        }
        // Exported, but not callable by Extism (parameters) or not a function.
        assert!(!exports.contains("memory"));
        assert!(callable_exports(b"(module)").is_none());
    }
}
