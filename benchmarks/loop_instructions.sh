#!/usr/bin/env bash
# Instructions the Rust bar loop executes (callgrind), for this checkout or another one:
#   benchmarks/loop_instructions.sh [CHECKOUT_DIR] [BARS]
# Counting instructions instead of seconds makes two builds comparable on a busy machine.
# The example it runs (packages/engine-rs/core/examples/loop_cost.rs) is copied into the
# other checkout when that one has none.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-$here}"
bars="${2:-200000}"
example="packages/engine-rs/core/examples/loop_cost.rs"
if [ ! -f "$dir/$example" ]; then
    mkdir -p "$dir/$(dirname "$example")"
    cp "$here/$example" "$dir/$example"
fi
(cd "$dir" && cargo build --release -q -p bt-engine-core --example loop_cost)
out="$(mktemp)"
valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$dir/target/release/examples/loop_cost" "$bars" 2>&1 | grep -E "^bars|Collected" || true
ir=$(grep -E "^(summary|totals):" "$out" | head -1 | awk '{print $2}')
echo "instructions: $ir ($(( ir / bars )) per bar, both drivers) in $dir"
rm -f "$out"
