//! `PluginContainer` overhead and throughput on the `json_tools` fixture's `add`.
//!
//! Run with `cargo bench --bench container --no-default-features --features runtime`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use serde::{Deserialize, Serialize};
use warpgate::container::extism::{CompiledPlugin, Plugin, PluginBuilder, Wasm};
use warpgate::container::{CompileCache, ModuleOrigin, PluginContainer, PluginManifest};
use warpgate::id::Id;

#[derive(Serialize)]
struct AddInput {
    left: i64,
    right: i64,
}

#[derive(Deserialize)]
struct AddOutput {
    sum: i64,
}

fn wasm_bytes() -> Vec<u8> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plugins/json_tools.wasm");
    fs_err::read(path).expect("the json_tools fixture")
}

fn manifest() -> PluginManifest {
    PluginManifest::new([Wasm::data(wasm_bytes())])
}

fn container() -> PluginContainer {
    PluginContainer::builder(Id::new("json_tools").unwrap(), manifest())
        .compile_cache(CompileCache::Disabled)
        .build()
        .unwrap()
}

fn calls(c: &mut Criterion) {
    let container = container();
    let input = AddInput { left: 40, right: 2 };
    let input_json = serde_json::to_vec(&input).unwrap();

    let mut group = c.benchmark_group("call");
    group.bench_function("container_call_func_with", |b| {
        b.iter(|| {
            let output: AddOutput = container
                .call_func_with("add", std::hint::black_box(&input))
                .unwrap();
            assert_eq!(output.sum, 42);
        });
    });
    group.bench_function("container_call_bytes", |b| {
        b.iter(|| {
            container
                .call("add", std::hint::black_box(&input_json))
                .unwrap()
        });
    });

    let mut plugin = PluginBuilder::new(manifest())
        .with_wasi(true)
        .with_cache_disabled()
        .build()
        .unwrap();
    group.bench_function("extism_plugin_call", |b| {
        b.iter(|| {
            let output: Vec<u8> = plugin
                .call::<&[u8], Vec<u8>>("add", std::hint::black_box(&input_json))
                .unwrap();
            let output: AddOutput = serde_json::from_slice(&output).unwrap();
            assert_eq!(output.sum, 42);
        });
    });

    container
        .cache_func_with::<_, AddOutput>("add", &input)
        .unwrap();
    group.bench_function("container_cache_func_with_hit", |b| {
        b.iter(|| {
            let output: AddOutput = container
                .cache_func_with("add", std::hint::black_box(&input))
                .unwrap();
            assert_eq!(output.sum, 42);
        });
    });

    // With a timeout: the call runs on a watched thread (kept between calls); the floor is
    // Extism with its own timer alone, which cannot stop a plugin blocked in a host function.
    let timed = PluginContainer::builder(Id::new("json_tools").unwrap(), manifest())
        .compile_cache(CompileCache::Disabled)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    group.bench_function("container_call_bytes_with_timeout", |b| {
        b.iter(|| {
            timed
                .call("add", std::hint::black_box(&input_json))
                .unwrap()
        });
    });
    let mut timed_plugin = PluginBuilder::new(manifest().with_timeout(Duration::from_secs(10)))
        .with_wasi(true)
        .with_cache_disabled()
        .build()
        .unwrap();
    group.bench_function("extism_plugin_call_with_timeout", |b| {
        b.iter(|| {
            timed_plugin
                .call::<&[u8], Vec<u8>>("add", std::hint::black_box(&input_json))
                .unwrap()
        });
    });

    // A failed call drops its instance, so every call here also creates a fresh instance.
    let failing = PluginContainer::builder(
        Id::new("failing").unwrap(),
        PluginManifest::new([Wasm::data(
            fs_err::read(
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/fixtures/plugins/failing.wasm"),
            )
            .unwrap(),
        )]),
    )
    .compile_cache(CompileCache::Disabled)
    .build()
    .unwrap();
    group.bench_function("failing_call_on_fresh_instance", |b| {
        b.iter(|| failing.call("fail", "x").unwrap_err());
    });
    group.finish();
}

/// Building a container: compiling cold, loading from the compiled-module cache (what a
/// second process does), sharing with a live container of this process, and the floor: raw
/// Extism loading the same plugin from wasmtime's own (unchecked) file cache.
fn creation(c: &mut Criterion) {
    let id = Id::new("json_tools").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = CompileCache::Directory(dir.path().join("compiled"));
    let wasmtime_config = dir.path().join("wasmtime-cache.toml");
    fs_err::write(
        &wasmtime_config,
        format!(
            "[cache]\ndirectory = {:?}\n",
            dir.path().join("wasmtime").to_str().unwrap()
        ),
    )
    .unwrap();
    let build = |cache: &CompileCache| {
        PluginContainer::builder(id.clone(), manifest())
            .compile_cache(cache.clone())
            .build()
            .unwrap()
    };
    let extism_cached = || {
        let compiled = CompiledPlugin::new(
            PluginBuilder::new(manifest())
                .with_wasi(true)
                .with_cache_config(&wasmtime_config),
        )
        .unwrap();
        Plugin::new_from_compiled(&compiled).unwrap()
    };
    // Fill both caches once.
    assert_ne!(build(&store).module_origin(), ModuleOrigin::Shared);
    extism_cached();

    let mut group = c.benchmark_group("create");
    group.sample_size(10);
    group.bench_function("cold_compile", |b| {
        b.iter(|| build(&CompileCache::Disabled));
    });
    group.bench_function("compile_cache_hit", |b| {
        b.iter(|| {
            let container = build(&store);
            assert_eq!(container.module_origin(), ModuleOrigin::CompileCache);
            container
        });
    });
    group.bench_function("extism_wasmtime_cache_hit", |b| {
        b.iter(extism_cached);
    });
    let live = build(&store);
    group.bench_function("second_container_in_process", |b| {
        b.iter(|| {
            let container = build(&store);
            assert_eq!(container.module_origin(), ModuleOrigin::Shared);
            container
        });
    });
    drop(live);
    group.finish();
}

fn throughput(c: &mut Criterion) {
    let container = container();
    let input = AddInput { left: 1, right: 2 };
    let mut group = c.benchmark_group("throughput");
    group.throughput(Throughput::Elements(1));
    for threads in [1_usize, 2] {
        group.bench_with_input(
            BenchmarkId::new("threads", threads),
            &threads,
            |b, &threads| {
                b.iter_custom(|iterations| {
                    let per_thread = iterations.div_ceil(threads as u64);
                    let started = Instant::now();
                    std::thread::scope(|scope| {
                        for _ in 0..threads {
                            scope.spawn(|| {
                                for _ in 0..per_thread {
                                    let output: AddOutput =
                                        container.call_func_with("add", &input).unwrap();
                                    assert_eq!(output.sum, 3);
                                }
                            });
                        }
                    });
                    let elapsed = started.elapsed();
                    // Report per call, counting the calls actually made.
                    elapsed.mul_f64(iterations as f64 / (per_thread * threads as u64) as f64)
                });
            },
        );
    }
    // The floor: raw Extism, one instance per thread from one compiled plugin.
    let compiled = CompiledPlugin::new(
        PluginBuilder::new(manifest())
            .with_wasi(true)
            .with_cache_disabled(),
    )
    .unwrap();
    let input_json = serde_json::to_vec(&input).unwrap();
    for threads in [1_usize, 2] {
        group.bench_with_input(
            BenchmarkId::new("extism_threads", threads),
            &threads,
            |b, &threads| {
                let mut plugins: Vec<Plugin> = (0..threads)
                    .map(|_| Plugin::new_from_compiled(&compiled).unwrap())
                    .collect();
                b.iter_custom(|iterations| {
                    let per_thread = iterations.div_ceil(threads as u64);
                    let started = Instant::now();
                    std::thread::scope(|scope| {
                        for plugin in &mut plugins {
                            let input_json = &input_json;
                            scope.spawn(move || {
                                for _ in 0..per_thread {
                                    let output: Vec<u8> =
                                        plugin.call::<&[u8], Vec<u8>>("add", input_json).unwrap();
                                    let output: AddOutput =
                                        serde_json::from_slice(&output).unwrap();
                                    assert_eq!(output.sum, 3);
                                }
                            });
                        }
                    });
                    let elapsed = started.elapsed();
                    elapsed.mul_f64(iterations as f64 / (per_thread * threads as u64) as f64)
                });
            },
        );
    }
    group.finish();
}

/// `call_func_with` against raw Extism, interleaved in short rounds so that a noisy machine
/// slows both alike; prints the median per-call times and the median of the per-round ratios.
fn interleaved_call_ratio() {
    let container = container();
    let mut plugin = PluginBuilder::new(manifest())
        .with_wasi(true)
        .with_cache_disabled()
        .build()
        .unwrap();
    let input = AddInput { left: 40, right: 2 };
    let input_json = serde_json::to_vec(&input).unwrap();
    const CALLS: u32 = 500;
    let mut ours = Vec::new();
    let mut raw = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        for _ in 0..CALLS {
            let output: AddOutput = container
                .call_func_with("add", std::hint::black_box(&input))
                .unwrap();
            assert_eq!(output.sum, 42);
        }
        ours.push(started.elapsed() / CALLS);
        let started = Instant::now();
        for _ in 0..CALLS {
            let output: Vec<u8> = plugin
                .call::<&[u8], Vec<u8>>("add", std::hint::black_box(&input_json))
                .unwrap();
            let output: AddOutput = serde_json::from_slice(&output).unwrap();
            assert_eq!(output.sum, 42);
        }
        raw.push(started.elapsed() / CALLS);
    }
    let mut ratios: Vec<f64> = ours
        .iter()
        .zip(&raw)
        .map(|(ours, raw)| ours.as_secs_f64() / raw.as_secs_f64())
        .collect();
    ratios.sort_by(f64::total_cmp);
    ours.sort();
    raw.sort();
    println!(
        "interleaved: call_func_with {:?}, extism Plugin::call {:?}, ratio {:.3}",
        ours[ours.len() / 2],
        raw[raw.len() / 2],
        ratios[ratios.len() / 2]
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = calls, creation, throughput
}

fn main() {
    interleaved_call_ratio();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
