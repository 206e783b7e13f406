//! `PluginContainer` against the real plugins built from `examples/plugins/` (fixtures under
//! `tests/fixtures/plugins/`). Every container here sets its compiled-module cache (off, or a
//! temporary folder), so nothing is written outside temporary directories.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;
use warpgate::container::extism::host_fn;
use warpgate::container::{
    CompileCache, ContainerError, Function, ModuleOrigin, PTR, PluginContainer, PluginManifest,
    UserData, Wasm,
};
use warpgate::id::Id;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/plugins")
        .join(format!("{name}.wasm"))
}

fn manifest(name: &str) -> PluginManifest {
    PluginManifest::new([Wasm::file(fixture(name))])
}

fn id(name: &str) -> Id {
    Id::new(name).unwrap()
}

fn container(name: &str) -> PluginContainer {
    PluginContainer::builder(id(name), manifest(name))
        .compile_cache(CompileCache::Disabled)
        .build()
        .unwrap()
}

#[derive(Debug, Deserialize, PartialEq)]
struct Sum {
    sum: i64,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Greeting {
    greeting: String,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Doubled {
    doubled: i64,
}

host_fn!(host_double(value: i64) -> i64 { Ok(value * 2) });

fn host_double_function() -> Function {
    Function::new("host_double", [PTR], [PTR], UserData::new(()), host_double)
}

#[test]
fn call_func_with_sends_and_reads_json() {
    let container = container("json_tools");
    let sum: Sum = container
        .call_func_with("add", json!({"left": 40, "right": 2}))
        .unwrap();
    assert_eq!(sum, Sum { sum: 42 });
    let sum: Sum = container
        .call_func_with("add", json!({"left": -5, "right": 3}))
        .unwrap();
    assert_eq!(sum, Sum { sum: -2 });
}

#[test]
fn call_passes_raw_bytes_through() {
    let container = container("json_tools");
    let bytes = [0_u8, 159, 146, 150, 255, b'a'];
    assert_eq!(container.call("echo", bytes).unwrap(), bytes);
    assert_eq!(container.call("echo", "").unwrap(), b"");
}

#[test]
fn empty_output_deserializes_as_null() {
    let container = container("json_tools");
    container.call_func::<()>("echo").unwrap();
    assert_eq!(container.call_func::<Option<i64>>("echo").unwrap(), None);
}

#[test]
fn greet_reads_the_manifest_config() {
    let plain = container("json_tools");
    let greeting: Greeting = plain
        .call_func_with("greet", json!({"name": "Ferris"}))
        .unwrap();
    assert_eq!(greeting.greeting, "Hello, Ferris!");

    let configured = PluginContainer::builder(
        id("json_tools"),
        manifest("json_tools").with_config_key("greeting", "Howdy"),
    )
    .compile_cache(CompileCache::Disabled)
    .build()
    .unwrap();
    let greeting: Greeting = configured
        .call_func_with("greet", json!({"name": "Ferris"}))
        .unwrap();
    assert_eq!(greeting.greeting, "Howdy, Ferris!");
}

#[test]
fn call_func_keeps_instance_state_between_calls() {
    let container = container("json_tools");
    assert_eq!(container.call_func::<i64>("count").unwrap(), 1);
    assert_eq!(container.call_func::<i64>("count").unwrap(), 2);
    assert_eq!(container.idle_instances(), 1);
}

#[test]
fn has_func_id_and_manifest() {
    let container = PluginContainer::builder(id("json_tools"), manifest("json_tools"))
        .compile_cache(CompileCache::Disabled)
        .timeout(Duration::from_millis(1500))
        .memory_max_pages(300)
        .build()
        .unwrap();
    for name in ["add", "echo", "greet", "count"] {
        assert!(container.has_func(name), "{name}");
    }
    assert!(!container.has_func("nope"));
    assert!(!container.has_func("memory"));
    assert_eq!(container.id().as_str(), "json_tools");
    let manifest = container.manifest();
    assert_eq!(manifest.allowed_hosts, Some(Vec::new()));
    assert_eq!(manifest.timeout_ms, Some(1500));
    assert_eq!(manifest.memory.max_pages, Some(300));
    assert_eq!(container.timeout(), Some(Duration::from_millis(1500)));
    // The caller's manifest keeps its file entry; only Extism's copy holds the bytes.
    assert!(matches!(manifest.wasm[0], Wasm::File { .. }));
}

#[test]
fn allowed_hosts_set_by_the_caller_are_kept() {
    let container = PluginContainer::builder(
        id("json_tools"),
        manifest("json_tools").with_allowed_host("example.com"),
    )
    .compile_cache(CompileCache::Disabled)
    .build()
    .unwrap();
    assert_eq!(
        container.manifest().allowed_hosts,
        Some(vec!["example.com".to_string()])
    );
}

#[test]
fn data_manifest_with_the_right_hash_runs() {
    use sha2::{Digest, Sha256};
    let bytes = fs_err::read(fixture("json_tools")).unwrap();
    let hash = format!("{:x}", Sha256::digest(&bytes));
    let container = PluginContainer::builder(
        id("json_tools"),
        PluginManifest::new([Wasm::data(bytes).with_hash(hash)]),
    )
    .compile_cache(CompileCache::Disabled)
    .build()
    .unwrap();
    let sum: Sum = container
        .call_func_with("add", json!({"left": 1, "right": 1}))
        .unwrap();
    assert_eq!(sum.sum, 2);
}

#[test]
fn cache_func_hit_does_not_call_the_plugin() {
    let container = container("json_tools");
    assert_eq!(container.cache_func::<i64>("count").unwrap(), 1);
    assert_eq!(container.cache_func::<i64>("count").unwrap(), 1);
    // The single instance counted one call only.
    assert_eq!(container.call_func::<i64>("count").unwrap(), 2);

    container.clear_cache();
    assert_eq!(container.cache_func::<i64>("count").unwrap(), 3);
    assert_eq!(container.cache_func::<i64>("count").unwrap(), 3);
}

#[test]
fn cache_func_with_keys_on_function_and_input() {
    let container = container("json_tools");
    let first: Sum = container
        .cache_func_with("add", json!({"left": 1, "right": 2}))
        .unwrap();
    let second: Sum = container
        .cache_func_with("add", json!({"left": 2, "right": 2}))
        .unwrap();
    let again: Sum = container
        .cache_func_with("add", json!({"left": 1, "right": 2}))
        .unwrap();
    assert_eq!((first.sum, second.sum, again.sum), (3, 4, 3));
    // The same input bytes for another function are another entry.
    let echoed: serde_json::Value = container
        .cache_func_with("echo", json!({"left": 1, "right": 2}))
        .unwrap();
    assert_eq!(echoed, json!({"left": 1, "right": 2}));
}

#[test]
fn cache_func_does_not_cache_errors() {
    let container = container("failing");
    for _ in 0..2 {
        let error = container.cache_func_with::<_, ()>("fail", "x").unwrap_err();
        assert!(
            matches!(error, ContainerError::PluginFailed { .. }),
            "{error}"
        );
    }
}

#[test]
fn concurrent_calls_from_many_threads() {
    let container = container("json_tools");
    let threads = 6;
    let barrier = Arc::new(Barrier::new(threads));
    std::thread::scope(|scope| {
        for thread in 0..i64::try_from(threads).unwrap() {
            let container = container.clone();
            let barrier = Arc::clone(&barrier);
            scope.spawn(move || {
                barrier.wait();
                for call in 0..40 {
                    let sum: Sum = container
                        .call_func_with("add", json!({"left": thread, "right": call}))
                        .unwrap();
                    assert_eq!(sum.sum, thread + call);
                    let cached: Sum = container
                        .cache_func_with("add", json!({"left": call, "right": 1}))
                        .unwrap();
                    assert_eq!(cached.sum, call + 1);
                }
            });
        }
    });
    assert!(container.idle_instances() >= 1);
}

/// Every call waits inside the host function until all of them are inside at once: this only
/// finishes if calls run in parallel rather than one after another behind a lock.
#[test]
fn concurrent_calls_do_not_serialise() {
    let threads = 4;
    let inside = Arc::new(AtomicUsize::new(0));
    let most_inside = Arc::new(AtomicUsize::new(0));
    let function = {
        let inside = Arc::clone(&inside);
        let most_inside = Arc::clone(&most_inside);
        Function::new(
            "host_double",
            [PTR],
            [PTR],
            UserData::new(()),
            move |plugin, inputs, outputs, _| {
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                most_inside.fetch_max(now, Ordering::SeqCst);
                let deadline = Instant::now() + Duration::from_secs(10);
                while most_inside.load(Ordering::SeqCst) < threads && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
                inside.fetch_sub(1, Ordering::SeqCst);
                let value: i64 = plugin.memory_get_val(&inputs[0])?;
                let handle = plugin.memory_new(value * 2)?;
                outputs[0] = plugin.memory_to_val(handle);
                Ok(())
            },
        )
    };
    let container = PluginContainer::builder(id("host_caller"), manifest("host_caller"))
        .functions([function])
        .compile_cache(CompileCache::Disabled)
        .build()
        .unwrap();
    std::thread::scope(|scope| {
        for value in 0..i64::try_from(threads).unwrap() {
            let container = &container;
            scope.spawn(move || {
                let doubled: Doubled = container
                    .call_func_with("double_via_host", json!({"value": value}))
                    .unwrap();
                assert_eq!(doubled.doubled, value * 2);
            });
        }
    });
    assert_eq!(most_inside.load(Ordering::SeqCst), threads);
}

#[test]
fn host_function_plugin_runs_when_the_function_is_provided() {
    let container = PluginContainer::builder(id("host_caller"), manifest("host_caller"))
        .functions([host_double_function()])
        .compile_cache(CompileCache::Disabled)
        .build()
        .unwrap();
    let doubled: Doubled = container
        .call_func_with("double_via_host", json!({"value": 21}))
        .unwrap();
    assert_eq!(doubled, Doubled { doubled: 42 });
}

/// A host function may call back into the container that is calling it: the nested call takes
/// another instance from the pool instead of waiting for the busy one.
#[test]
fn host_function_can_call_back_into_the_same_container() {
    let slot: Arc<OnceLock<PluginContainer>> = Arc::new(OnceLock::new());
    let function = {
        let slot = Arc::clone(&slot);
        Function::new(
            "host_double",
            [PTR],
            [PTR],
            UserData::new(()),
            move |plugin, inputs, outputs, _| {
                let value: i64 = plugin.memory_get_val(&inputs[0])?;
                let doubled = if value < 0 {
                    value * 2
                } else {
                    // Doubles `-value` through the plugin (and this function) again.
                    let container = slot.get().expect("the container is set");
                    let nested: Doubled = container
                        .call_func_with("double_via_host", json!({"value": -value}))
                        .map_err(|error| {
                            warpgate::container::extism::Error::msg(error.to_string())
                        })?;
                    -nested.doubled
                };
                let handle = plugin.memory_new(doubled)?;
                outputs[0] = plugin.memory_to_val(handle);
                Ok(())
            },
        )
    };
    let container = PluginContainer::builder(id("host_caller"), manifest("host_caller"))
        .functions([function])
        .compile_cache(CompileCache::Disabled)
        .build()
        .unwrap();
    assert!(slot.set(container.clone()).is_ok());
    let doubled: Doubled = container
        .call_func_with("double_via_host", json!({"value": 21}))
        .unwrap();
    assert_eq!(doubled.doubled, 42);
    assert_eq!(container.idle_instances(), 2);
}

#[test]
fn host_function_plugin_without_the_function_is_incompatible() {
    let error = PluginContainer::builder(id("host_caller"), manifest("host_caller"))
        .compile_cache(CompileCache::Disabled)
        .build()
        .unwrap_err();
    match &error {
        ContainerError::Incompatible { id, missing } => {
            assert_eq!(id.as_str(), "host_caller");
            assert_eq!(missing, &["host_double".to_string()]);
        }
        other => panic!("unexpected error: {other:?}"),
    }
    assert_eq!(
        crate::support::report(&error),
        "Plugin `host_caller` is incompatible with this host: it imports `host_double`, not provided\n\
         hint: pass the host functions the plugin expects when building its container"
    );
}

#[test]
fn host_function_in_another_namespace_does_not_count() {
    let function = host_double_function().with_namespace("elsewhere");
    let error = PluginContainer::builder(id("host_caller"), manifest("host_caller"))
        .functions([function])
        .compile_cache(CompileCache::Disabled)
        .build()
        .unwrap_err();
    assert!(
        matches!(&error, ContainerError::Incompatible { missing, .. } if missing == &["host_double".to_string()]),
        "{error:?}"
    );
}

#[test]
fn function_missing_error() {
    let error = container("json_tools").call_func::<()>("nope").unwrap_err();
    assert!(matches!(error, ContainerError::FunctionMissing { .. }));
    assert_eq!(
        error.to_string(),
        "Plugin `json_tools` has no function `nope`"
    );
}

#[test]
fn plugin_error_message_is_reported() {
    let container = container("failing");
    let error = container.call("fail", "boom").unwrap_err();
    match &error {
        ContainerError::PluginFailed { message, .. } => {
            assert_eq!(message, "deliberate failure: boom");
        }
        other => panic!("unexpected error: {other:?}"),
    }
    assert_eq!(
        error.to_string(),
        "Function `fail` of plugin `failing` failed: deliberate failure: boom"
    );
    // The failed instance was dropped; the container still works.
    assert_eq!(container.idle_instances(), 0);
    let error = container
        .call_func_with::<_, ()>("fail", "again")
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "Function `fail` of plugin `failing` failed: deliberate failure: \"again\""
    );
}

#[test]
fn input_serialize_error() {
    let mut input = HashMap::new();
    input.insert((1, 2), 3);
    let error = container("json_tools")
        .call_func_with::<_, serde_json::Value>("echo", input)
        .unwrap_err();
    assert!(matches!(error, ContainerError::InputSerialize { .. }));
    assert_eq!(
        error.to_string(),
        "Cannot serialize the input of function `echo` of plugin `json_tools` to JSON: key must be a string"
    );
}

#[test]
fn output_deserialize_error_quotes_the_output_start() {
    let container = container("json_tools");
    let error = container
        .call_func_with::<_, Sum>("echo", json!({"total": 1}))
        .unwrap_err();
    match &error {
        ContainerError::OutputDeserialize { raw_start, .. } => {
            assert_eq!(raw_start, r#"{"total":1}"#);
        }
        other => panic!("unexpected error: {other:?}"),
    }
    assert_eq!(
        error.to_string(),
        "Cannot deserialize the output of function `echo` of plugin `json_tools`: missing field `sum` at line 1 column 11\n\
         Output starts with: `{\"total\":1}`"
    );

    let long = "x".repeat(1000);
    let error = container
        .call_func_with::<_, i64>("echo", &long)
        .unwrap_err();
    match &error {
        ContainerError::OutputDeserialize { raw_start, .. } => {
            assert_eq!(raw_start.len(), 200);
            assert_eq!(raw_start, &format!("\"{}", "x".repeat(199)));
        }
        other => panic!("unexpected error: {other:?}"),
    }
}

#[test]
fn timeout_stops_a_looping_plugin() {
    let container = PluginContainer::builder(id("looping"), manifest("looping"))
        .compile_cache(CompileCache::Disabled)
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    for _ in 0..2 {
        let started = Instant::now();
        let error = container.call_func::<()>("spin").unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10));
        match &error {
            ContainerError::Timeout {
                id,
                function,
                timeout,
            } => {
                assert_eq!(id.as_str(), "looping");
                assert_eq!(function, "spin");
                assert_eq!(*timeout, Duration::from_millis(200));
            }
            other => panic!("unexpected error: {other:?}"),
        }
        assert_eq!(
            error.to_string(),
            "Function `spin` of plugin `looping` timed out after `200ms`"
        );
        // The interrupted instance is not reused.
        assert_eq!(container.idle_instances(), 0);
    }
}

#[test]
fn timeout_from_the_manifest_is_used() {
    let container = PluginContainer::builder(
        id("looping"),
        manifest("looping").with_timeout(Duration::from_secs(1)),
    )
    .compile_cache(CompileCache::Disabled)
    .build()
    .unwrap();
    let error = container.call_func::<()>("spin").unwrap_err();
    assert_eq!(
        error.to_string(),
        "Function `spin` of plugin `looping` timed out after `1s`"
    );
}

#[test]
fn memory_cap_stops_a_large_call() {
    let container = PluginContainer::builder(id("json_tools"), manifest("json_tools"))
        .compile_cache(CompileCache::Disabled)
        .memory_max_pages(64)
        .build()
        .unwrap();
    // Small calls fit.
    assert_eq!(container.call("echo", "small").unwrap(), b"small");
    let error = container.call("echo", vec![b'x'; 8 << 20]).unwrap_err();
    assert!(
        matches!(
            error,
            ContainerError::MemoryExceeded {
                max_pages: Some(64),
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "Function `echo` of plugin `json_tools` ran out of memory (limit: 4 MiB, `64` pages of 64 KiB)"
    );
}

#[test]
fn wasi_reads_an_allowed_path() {
    let dir = tempfile::tempdir().unwrap();
    fs_err::write(dir.path().join("hello.txt"), "hello from the host\n").unwrap();
    let container = PluginContainer::builder(
        id("file_reader"),
        manifest("file_reader")
            .with_allowed_path(dir.path().to_str().unwrap().to_string(), "/data"),
    )
    .compile_cache(CompileCache::Disabled)
    .build()
    .unwrap();
    assert_eq!(
        container.call("read_file", "/data/hello.txt").unwrap(),
        b"hello from the host\n"
    );
    let error = container.call("read_file", "/etc/hostname").unwrap_err();
    match &error {
        ContainerError::PluginFailed { message, .. } => {
            assert!(
                message.starts_with("cannot read `/etc/hostname`: "),
                "{message}"
            );
        }
        other => panic!("unexpected error: {other:?}"),
    }
}

#[test]
fn wasi_plugin_without_wasi_is_incompatible() {
    let error = PluginContainer::builder(id("file_reader"), manifest("file_reader"))
        .compile_cache(CompileCache::Disabled)
        .wasi(false)
        .build()
        .unwrap_err();
    match &error {
        ContainerError::Incompatible { missing, .. } => {
            assert!(!missing.is_empty());
            assert!(
                missing
                    .iter()
                    .all(|name| name.starts_with("wasi_snapshot_preview1::")),
                "{missing:?}"
            );
        }
        other => panic!("unexpected error: {other:?}"),
    }
    assert!(
        crate::support::report(&error).ends_with(
            "\nhint: the plugin needs WASI; enable it with `PluginContainerBuilder::wasi(true)`"
        ),
        "{error}"
    );
}

#[test]
fn url_manifest_is_rejected() {
    let error = PluginContainer::builder(
        id("remote"),
        PluginManifest::new([Wasm::url("https://example.com/plugin.wasm")]),
    )
    .compile_cache(CompileCache::Disabled)
    .build()
    .unwrap_err();
    assert!(matches!(error, ContainerError::RemoteWasm { .. }));
    assert_eq!(
        crate::support::report(&error),
        "Plugin `remote` refers to its WebAssembly by URL (`https://example.com/plugin.wasm`); a plugin container never downloads code\n\
         hint: pass the module as a file or as bytes (for example from the warpgate cache)"
    );
}

#[test]
fn missing_file_is_reported_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.wasm");
    let error = PluginContainer::builder(id("absent"), PluginManifest::new([Wasm::file(&path)]))
        .compile_cache(CompileCache::Disabled)
        .build()
        .unwrap_err();
    assert!(matches!(error, ContainerError::ReadWasm { .. }));
    assert_eq!(
        error.to_string(),
        format!(
            "Cannot read the WebAssembly file `{}` of plugin `absent`",
            path.display()
        )
    );
}

#[test]
fn invalid_module_and_hash_mismatch_fail_to_compile() {
    let error = PluginContainer::builder(
        id("garbage"),
        PluginManifest::new([Wasm::data(b"\0asm not really".to_vec())]),
    )
    .compile_cache(CompileCache::Disabled)
    .build()
    .unwrap_err();
    assert!(matches!(error, ContainerError::Compile { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with("Cannot compile plugin `garbage`: "),
        "{error}"
    );

    let bytes = fs_err::read(fixture("json_tools")).unwrap();
    let error = PluginContainer::builder(
        id("json_tools"),
        PluginManifest::new([Wasm::data(bytes).with_hash("0".repeat(64))]),
    )
    .compile_cache(CompileCache::Disabled)
    .build()
    .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("Cannot compile plugin `json_tools`: Hash mismatch, found "),
        "{error}"
    );
}

#[test]
fn missing_allowed_path_fails_to_instantiate() {
    let dir = tempfile::tempdir().unwrap();
    let absent = dir.path().join("absent");
    let error = PluginContainer::builder(
        id("file_reader"),
        manifest("file_reader").with_allowed_path(absent.to_str().unwrap().to_string(), "/data"),
    )
    .compile_cache(CompileCache::Disabled)
    .build()
    .unwrap_err();
    assert!(
        matches!(error, ContainerError::Instantiate { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("Cannot instantiate plugin `file_reader`: "),
        "{error}"
    );
}

/// A container of `json_tools` whose compiled code goes through the cache at `dir`. The
/// timeout keeps it from sharing its compiled plugin with other containers of the process
/// (which skip the cache; see `a_second_container_shares_the_compiled_plugin`).
fn stored(dir: &std::path::Path) -> PluginContainer {
    let container = PluginContainer::builder(id("json_tools"), manifest("json_tools"))
        .timeout(Duration::from_secs(60))
        .compile_cache(CompileCache::Directory(dir.to_path_buf()))
        .build()
        .unwrap();
    let sum: Sum = container
        .call_func_with("add", json!({"left": 2, "right": 3}))
        .unwrap();
    assert_eq!(sum.sum, 5);
    container
}

/// The entry folders (holding a `SEAL`) of the compiled-module cache at `dir`.
fn entries(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name() == "SEAL")
        .map(|entry| entry.path().parent().unwrap().to_path_buf())
        .collect();
    entries.sort();
    entries
}

/// The compiled files (what wasmtime loads) of one entry.
fn compiled_files(entry: &std::path::Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(entry.join("wasmtime"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|item| item.file_type().is_file())
        .filter(|item| {
            let name = item.file_name().to_string_lossy();
            !name.ends_with(".stats") && !name.contains(".wip-") && !name.starts_with(".cleanup")
        })
        .map(walkdir::DirEntry::into_path)
        .collect()
}

#[test]
fn compiled_code_is_stored_once_then_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("compiled");
    assert_eq!(stored(&store).module_origin(), ModuleOrigin::Compiled);
    let stored_entries = entries(&store);
    assert_eq!(stored_entries.len(), 1, "{stored_entries:?}");
    // Extism's kernel and the plugin.
    assert_eq!(compiled_files(&stored_entries[0]).len(), 2);
    for _ in 0..2 {
        assert_eq!(stored(&store).module_origin(), ModuleOrigin::CompileCache);
    }
    assert_eq!(entries(&store), stored_entries);
    // Nothing is written beside the store, and no staging folder is left.
    let beside: Vec<_> = fs_err::read_dir(dir.path()).unwrap().collect();
    assert_eq!(beside.len(), 1);
    let staged: Vec<_> = fs_err::read_dir(store.join("tmp")).unwrap().collect();
    assert!(staged.is_empty(), "{staged:?}");
}

#[test]
fn a_second_container_shares_the_compiled_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let store = CompileCache::Directory(dir.path().to_path_buf());
    // A manifest setting no other test uses, so that no other test's container is shared.
    let manifest = || manifest("json_tools").with_config_key("share", "test");
    let build = || {
        PluginContainer::builder(id("json_tools"), manifest())
            .compile_cache(store.clone())
            .build()
            .unwrap()
    };
    let first = build();
    let second = build();
    assert_ne!(first.module_origin(), ModuleOrigin::Shared);
    assert_eq!(second.module_origin(), ModuleOrigin::Shared);
    let sum: Sum = second
        .call_func_with("add", json!({"left": 1, "right": 1}))
        .unwrap();
    assert_eq!(sum.sum, 2);

    // Host functions are closures that cannot be compared: no sharing, the cache serves.
    let with_function = PluginContainer::builder(id("json_tools"), manifest())
        .function(host_double_function())
        .compile_cache(store.clone())
        .build()
        .unwrap();
    assert_eq!(with_function.module_origin(), ModuleOrigin::CompileCache);
    // Other settings: another compiled plugin.
    let other = PluginContainer::builder(id("json_tools"), manifest().with_config_key("x", "y"))
        .compile_cache(store.clone())
        .build()
        .unwrap();
    assert_ne!(other.module_origin(), ModuleOrigin::Shared);

    // Once every container is gone, nothing is shared any more.
    drop((first, second, with_function, other));
    assert_eq!(build().module_origin(), ModuleOrigin::CompileCache);
}

#[test]
fn damaged_compiled_code_is_never_loaded_and_is_replaced() {
    type Damage = fn(&std::path::Path);
    let damages: [(&str, Damage); 6] = [
        ("a flipped byte", |entry| {
            let file = &compiled_files(entry)[0];
            let mut bytes = fs_err::read(file).unwrap();
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0xff;
            fs_err::write(file, bytes).unwrap();
        }),
        ("a truncated file", |entry| {
            let file = &compiled_files(entry)[0];
            let bytes = fs_err::read(file).unwrap();
            fs_err::write(file, &bytes[..bytes.len() / 2]).unwrap();
        }),
        ("a foreign file", |entry| {
            let file = &compiled_files(entry)[0];
            fs_err::write(file.with_file_name("planted"), b"machine code").unwrap();
        }),
        ("a symlink", |entry| {
            let file = &compiled_files(entry)[0];
            let copy = entry.parent().unwrap().join("copy");
            fs_err::rename(file, &copy).unwrap();
            fs_err::os::unix::fs::symlink(&copy, file).unwrap();
        }),
        ("a garbled seal", |entry| {
            fs_err::write(entry.join("SEAL"), b"not a seal").unwrap();
        }),
        ("a redirected wasmtime cache", |entry| {
            // The test's temp dir is three levels up: <dir>/compiled/<engine>/<key>.
            let elsewhere = entry.ancestors().nth(3).unwrap().join("elsewhere");
            fs_err::write(
                entry.join("wasmtime.toml"),
                format!("[cache]\ndirectory = {:?}\n", elsewhere.to_str().unwrap()),
            )
            .unwrap();
        }),
    ];
    for (what, damage) in damages {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("compiled");
        stored(&store);
        let entry = entries(&store).remove(0);
        damage(&entry);
        assert_eq!(
            stored(&store).module_origin(),
            ModuleOrigin::Compiled,
            "{what} was loaded"
        );
        // The damaged entry was replaced by a sound one.
        assert_eq!(entries(&store), std::slice::from_ref(&entry), "{what}");
        assert_eq!(
            stored(&store).module_origin(),
            ModuleOrigin::CompileCache,
            "{what}"
        );
        assert!(!dir.path().join("elsewhere").exists());
    }
}

#[test]
fn an_unwritable_compile_cache_still_runs_plugins() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the folder should be: nothing can be created under it (even as root).
    let blocked = dir.path().join("blocked");
    fs_err::write(&blocked, b"").unwrap();
    for _ in 0..2 {
        assert_eq!(
            stored(&blocked.join("compiled")).module_origin(),
            ModuleOrigin::Compiled
        );
    }
    assert_eq!(fs_err::read(&blocked).unwrap(), b"");
}

#[test]
fn concurrent_first_compiles_leave_one_sound_entry() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("compiled");
    let barrier = Barrier::new(4);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                barrier.wait();
                stored(&store);
            });
        }
    });
    assert_eq!(entries(&store).len(), 1);
    assert_eq!(stored(&store).module_origin(), ModuleOrigin::CompileCache);
    let staged: Vec<_> = fs_err::read_dir(store.join("tmp")).unwrap().collect();
    assert!(staged.is_empty(), "{staged:?}");
}

/// After a wasmtime or Extism upgrade the engine fingerprint changes: the old entries are
/// never loaded (they live under another folder) and `prune` deletes them.
#[test]
fn prune_deletes_other_engines_and_unkept_plugins() {
    use std::collections::HashSet;
    use warpgate::Checksum;
    use warpgate::container::compile_cache::prune;

    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("compiled");
    stored(&store);
    let entry = entries(&store).remove(0);
    let old_engine = store.join("0123456789abcdef0123456789abcdef");
    fs_err::create_dir_all(&old_engine).unwrap();
    let copy = old_engine.join(entry.file_name().unwrap());
    std::process::Command::new("cp")
        .arg("-r")
        .arg(&entry)
        .arg(&copy)
        .status()
        .unwrap();
    assert_eq!(entries(&store).len(), 2);

    let json_tools = Checksum::of(&fs_err::read(fixture("json_tools")).unwrap());
    let pruned = prune(&store, &HashSet::from([json_tools])).unwrap();
    assert_eq!(pruned.entries, 1);
    assert!(pruned.bytes > 0);
    assert_eq!(entries(&store), std::slice::from_ref(&entry));
    assert!(!old_engine.exists());
    assert_eq!(stored(&store).module_origin(), ModuleOrigin::CompileCache);

    let pruned = prune(&store, &HashSet::new()).unwrap();
    assert_eq!(pruned.entries, 1);
    assert!(entries(&store).is_empty());

    // A folder warpgate did not make is left alone.
    let foreign = dir.path().join("foreign");
    fs_err::create_dir_all(foreign.join("0123/4567")).unwrap();
    let error = prune(&foreign, &HashSet::new()).unwrap_err();
    assert!(error.to_string().contains("CACHEDIR.TAG"), "{error}");
    assert!(foreign.join("0123/4567").is_dir());
}

/// With several modules, Extism runs the first unnamed one (or the one named `main`), and
/// `has_func` answers for that one.
#[test]
fn has_func_answers_for_the_module_extism_runs() {
    let manifest = PluginManifest::new([
        Wasm::file(fixture("json_tools")),
        Wasm::file(fixture("failing")).with_name("lib"),
    ]);
    let container = PluginContainer::builder(id("json_tools"), manifest)
        .compile_cache(CompileCache::Disabled)
        .build()
        .unwrap();
    assert!(container.has_func("add"));
    assert!(!container.has_func("fail"));
    let sum: Sum = container
        .call_func_with("add", json!({"left": 1, "right": 2}))
        .unwrap();
    assert_eq!(sum.sum, 3);
}

/// A call that times out must not take down the calls running beside it on the same container.
///
/// Extism interrupts a call by advancing its engine's epoch, and every instance made from one
/// compiled plugin shares that engine. Here call A (value 1) waits in the host function past
/// its deadline; call B (value 2) starts half a timeout later. A is released a quarter timeout
/// after its deadline and must have timed out, which proves its engine's epoch was advanced;
/// only then is B released, a quarter timeout before its own deadline, and B must succeed.
/// Nothing asserts on durations; the 1.5 s margins (of a 6 s timeout) leave room for a loaded
/// machine, and a stall longer than that can only make A succeed or B time out, never hide a
/// regression.
#[test]
fn a_timeout_does_not_interrupt_other_calls() {
    use std::sync::mpsc;
    let timeout = Duration::from_secs(6);
    let (inside_tx, inside_rx) = mpsc::channel::<i64>();
    let (release_a_tx, release_a_rx) = mpsc::channel::<()>();
    let (release_b_tx, release_b_rx) = mpsc::channel::<()>();
    let release_a_rx = std::sync::Mutex::new(release_a_rx);
    let release_b_rx = std::sync::Mutex::new(release_b_rx);
    let inside_tx = std::sync::Mutex::new(inside_tx);
    let function = Function::new(
        "host_double",
        [PTR],
        [PTR],
        UserData::new(()),
        move |plugin, inputs, outputs, _| {
            let value: i64 = plugin.memory_get_val(&inputs[0])?;
            inside_tx.lock().unwrap().send(value).unwrap();
            match value {
                1 => release_a_rx.lock().unwrap().recv().unwrap(),
                _ => release_b_rx.lock().unwrap().recv().unwrap(),
            }
            let handle = plugin.memory_new(value * 2)?;
            outputs[0] = plugin.memory_to_val(handle);
            Ok(())
        },
    );
    let container = PluginContainer::builder(id("host_caller"), manifest("host_caller"))
        .compile_cache(CompileCache::Disabled)
        .function(function)
        .timeout(timeout)
        .build()
        .unwrap();
    std::thread::scope(|scope| {
        let started_a = Instant::now();
        let a = scope.spawn(|| {
            container.call_func_with::<_, Doubled>("double_via_host", json!({"value": 1}))
        });
        assert_eq!(inside_rx.recv().unwrap(), 1);
        std::thread::sleep(timeout / 2);
        let b = scope.spawn(|| {
            container.call_func_with::<_, Doubled>("double_via_host", json!({"value": 2}))
        });
        assert_eq!(inside_rx.recv().unwrap(), 2);
        // Past A's deadline: A returns to the plugin and is stopped.
        std::thread::sleep(
            (started_a + timeout + timeout / 4).saturating_duration_since(Instant::now()),
        );
        release_a_tx.send(()).unwrap();
        let error = a.join().unwrap().unwrap_err();
        assert!(matches!(error, ContainerError::Timeout { .. }), "{error:?}");
        // A's engine epoch has moved; B, still before its own deadline, must not notice.
        release_b_tx.send(()).unwrap();
        assert_eq!(b.join().unwrap().unwrap(), Doubled { doubled: 4 });
    });
    // The timed-out call's engine is reused for a fresh instance, and calls keep working.
    release_b_tx.send(()).unwrap();
    let doubled: Doubled = container
        .call_func_with("double_via_host", json!({"value": 3}))
        .unwrap();
    assert_eq!(doubled.doubled, 6);
}

/// A call blocked in a host function (where Extism's timer cannot interrupt it) still ends
/// with `Timeout` at the limit: the container stops waiting, the host function finishes later
/// on its own, and the container keeps working.
#[test]
fn a_timeout_holds_while_a_host_function_blocks() {
    use std::sync::atomic::AtomicBool;
    static FINISHED: AtomicBool = AtomicBool::new(false);
    host_fn!(host_double_slowly(value: i64) -> i64 {
        std::thread::sleep(Duration::from_secs(3));
        FINISHED.store(true, Ordering::SeqCst);
        Ok(value * 2)
    });
    let function = Function::new(
        "host_double",
        [PTR],
        [PTR],
        UserData::new(()),
        host_double_slowly,
    );
    let container = PluginContainer::builder(id("host_caller"), manifest("host_caller"))
        .function(function)
        .timeout(Duration::from_millis(300))
        .compile_cache(CompileCache::Disabled)
        .build()
        .unwrap();
    let error = container
        .call_func_with::<_, Doubled>("double_via_host", json!({"value": 21}))
        .unwrap_err();
    assert!(matches!(error, ContainerError::Timeout { .. }), "{error:?}");
    // The call came back while the host function was still sleeping.
    assert!(!FINISHED.load(Ordering::SeqCst));
}

/// A module whose start function runs long (wasmtime runs it while Extism links the module,
/// before any Extism timer) is stopped by the timeout too, when the container is built and
/// when an instance is created for a call.
#[test]
fn a_timeout_holds_in_a_start_function() {
    // About a second of spinning before the start function returns.
    let wat = r#"(module
        (global $left (mut i64) (i64.const 2000000000))
        (func $spin
            (loop $again
                (global.set $left (i64.sub (global.get $left) (i64.const 1)))
                (br_if $again (i64.gt_s (global.get $left) (i64.const 0)))))
        (start $spin)
        (func (export "check") (result i32) (i32.const 0)))"#;
    let error = PluginContainer::builder(
        id("slow_start"),
        PluginManifest::new([Wasm::data(wat.as_bytes().to_vec())]),
    )
    .timeout(Duration::from_millis(100))
    .compile_cache(CompileCache::Disabled)
    .build()
    .unwrap_err();
    assert!(
        matches!(error, ContainerError::StartTimeout { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "The start function of plugin `slow_start` did not finish within `100ms`"
    );
}
