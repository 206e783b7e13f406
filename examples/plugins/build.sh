#!/usr/bin/env bash
# Rebuilds the test plugins and copies them to tests/fixtures/plugins/*.wasm.
#
# Usage: examples/plugins/build.sh   (from anywhere)
# Needs: rustup targets wasm32-unknown-unknown and wasm32-wasip1
#   (`rustup target add wasm32-unknown-unknown wasm32-wasip1`).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/tests/fixtures/plugins"

# plugin name -> target
plugins=(
  "json_tools:wasm32-unknown-unknown"
  "host_caller:wasm32-unknown-unknown"
  "failing:wasm32-unknown-unknown"
  "looping:wasm32-unknown-unknown"
  "file_reader:wasm32-wasip1"
  "settings:wasm32-wasip1"
)

cd "$here"
mkdir -p "$out"
for entry in "${plugins[@]}"; do
  name="${entry%%:*}"
  target="${entry#*:}"
  cargo build --locked --release --package "$name" --target "$target"
  cp "target/$target/release/$name.wasm" "$out/$name.wasm"
  echo "$(wc -c <"$out/$name.wasm") bytes  tests/fixtures/plugins/$name.wasm" >&2
done
