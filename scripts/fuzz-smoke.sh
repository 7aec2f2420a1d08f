#!/usr/bin/env bash
# Builds every cargo-fuzz target (fuzz/) and runs each for a few seconds on its committed seed
# corpus: a smoke test for CI, not a fuzzing campaign (README.md, "Fuzzing", says how to run
# one target for long). Exits non-zero if a target cannot be built or finds a crash; the
# crashing input is left in fuzz/artifacts/<target>/.
#
#   FUZZ_SECONDS      seconds per target (default 5)
#   FUZZ_TARGETS      space-separated targets to run (default: all)
#   FUZZ_BUILD_FLAGS  extra flags of `cargo fuzz build/run`; "--dev -s none" (no optimization,
#                     no AddressSanitizer) builds in about half the time and runs slower, which
#                     a smoke test can afford. Default: cargo-fuzz's release build with ASan.
#
# New inputs a run finds go to a scratch directory that is removed afterwards, so the
# committed seeds never grow by themselves.
set -euo pipefail

cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-5}"
read -r -a flags <<<"${FUZZ_BUILD_FLAGS:-}"

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz-smoke: cargo-fuzz needs the nightly toolchain, which is not installed" >&2
    echo "fuzz-smoke: install it with: rustup toolchain install nightly" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

started=$(date +%s)
echo "fuzz-smoke: building the fuzz targets" >&2
cargo +nightly fuzz build "${flags[@]}"

scratch="$(mktemp -d "${TMPDIR:-/tmp}/tijori-fuzz-smoke.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
export TIJORI_FUZZ_TMP="$scratch"

targets="${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}"
failed=()
for target in $targets; do
    echo "fuzz-smoke: $target for ${seconds}s" >&2
    mkdir -p "$scratch/corpus/$target"
    # The scratch corpus comes first: libFuzzer writes new inputs to the first directory only.
    if ! cargo +nightly fuzz run "${flags[@]}" "$target" "$scratch/corpus/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=30 -print_final_stats=1 \
        >"$scratch/$target.log" 2>&1; then
        tail -n 40 "$scratch/$target.log" >&2
        failed+=("$target")
    else
        grep -E '^stat::number_of_executed_units|^Done' "$scratch/$target.log" | tr '\n' ' ' >&2
        echo >&2
    fi
done

echo "fuzz-smoke: done in $(($(date +%s) - started))s" >&2
if ((${#failed[@]})); then
    echo "fuzz-smoke: FAILED: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
