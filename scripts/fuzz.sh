#!/usr/bin/env bash
# Fuzzes outboxd's pure code with cargo-fuzz (libFuzzer): each target of tests/fuzz runs for
# SECONDS (default 60). Targets: pgoutput_decode (the pgoutput decoder), config (the configuration
# file and what is resolved from it without I/O), router (outbox rows of a fixed table through the
# router and the converters), router_message (logical decoding message contents through the
# router). See docs/fuzzing.md.
#
#   scripts/fuzz.sh [SECONDS]         every target
#   FUZZ_TARGETS="router" scripts/fuzz.sh 600
#   FUZZ_SANITIZER=none scripts/fuzz.sh      # no AddressSanitizer: builds ~25 % faster, runs faster
#
# Installs cargo-fuzz when missing (cargo install cargo-fuzz --locked). Works on a stable toolchain:
# cargo-fuzz passes nightly-only flags (-Zsanitizer, sanitizer coverage), which RUSTC_BOOTSTRAP=1
# allows on stable. The corpus (tests/fuzz/corpus/<target>, not committed) is seeded from the
# captured pgoutput fixtures, the example configuration and a few rows, and grows run after run.
# A crash stops the script with exit status 1; the input is in tests/fuzz/artifacts/<target>/
# (reproduce: cargo fuzz run --fuzz-dir tests/fuzz <target> <file>).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds="${1:-60}"
targets="${FUZZ_TARGETS:-pgoutput_decode config router router_message}"
sanitizer="${FUZZ_SANITIZER:-address}"
fuzz_dir=tests/fuzz

export PATH="$HOME/.cargo/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
if ! rustc --version | grep -q nightly; then
    export RUSTC_BOOTSTRAP=1
fi

# ---- seeds -------------------------------------------------------------------------------------
corpus() { mkdir -p "$fuzz_dir/corpus/$1" && echo "$fuzz_dir/corpus/$1"; }

# Every captured pgoutput message, one file each (the fixtures are `LSN HEX` lines).
dir=$(corpus pgoutput_decode)
n=0
for fixture in src/source/testdata/pgoutput/*.txt; do
    name=$(basename "$fixture" .txt)
    while read -r lsn hex; do
        case "$lsn" in '' | '#'*) continue ;; esac
        n=$((n + 1))
        # shellcheck disable=SC2001 # every pair of hex digits becomes \xHH
        printf '%b' "$(sed 's/../\\x&/g' <<<"$hex")" >"$dir/seed-$name-$n"
    done <"$fixture"
done

# The example configuration and the deployment ones.
dir=$(corpus config)
cp config/outboxd.toml "$dir/seed-example.toml"
i=0
while IFS= read -r -d '' f; do
    i=$((i + 1))
    cp "$f" "$dir/seed-docker-$i.toml"
done < <(find docker -name '*.toml' -print0)
cat >"$dir/seed-errors.toml" <<'EOF'
[source]
url = "postgres://outboxd@db:5432/app"
tables = ["public.outbox", "billing.outbox"]
[router]
"table.fields.additional.placement" = "type:header:eventType,version:envelope:v"
"topic.prefix" = "app"
"route.topic.regex" = "(?<routedByValue>[a-z]+)_(.*)"
"route.topic.replacement" = "t.${routedByValue}.$2"
[converters]
"value.converter" = "org.apache.kafka.connect.json.JsonConverter"
[kafka]
"bootstrap.servers" = "kafka:9092"
[errors]
"errors.tolerance" = "all"
"errors.deadletterqueue.topic.name" = "outboxd.dlq"
"errors.deadletterqueue.context.headers.enable" = false
EOF

# Rows of the router target: option-set byte, then cells separated by 0x1F (see router.rs).
dir=$(corpus router)
row='11111111-1111-4111-8111-111111111111\x1fOrder\x1fo-1\x1fOrderCreated\x1f{"id": 1, "items": [{"qty": 2}]}\x1f2026-11-21 10:00:00.123456+00\x1f1\x1f2\x1f3\x1ftraceparent=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\x1f2026-11-21 10:00:00.123'
for set in 0 1 2 3 4 128 131; do
    printf '%b' "\\x$(printf '%02x' "$set")$row" >"$dir/seed-set-$set"
done
printf '\x00n\x1fOrder\x1fo-1\x1fE\x1fn' >"$dir/seed-null-id"
printf '\x01a\x1fBad Topic\x1fk\x1fE\x1f   ' >"$dir/seed-bad-topic"

# Message contents of the router_message target: option-set byte, then the content.
dir=$(corpus router_message)
msg='{"id": "e-1", "aggregatetype": "Order", "aggregateid": "o-1", "type": "OrderCreated", "payload": {"id": 1, "items": [{"qty": 2}]}, "version": 3, "part": 1, "seq": 7, "ts": "2026-11-21T10:00:00.123Z", "tracingspancontext": "traceparent=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}'
for set in 0 1 2 3; do
    printf '%b%s' "\\x0$set" "$msg" >"$dir/seed-set-$set"
done
printf '\x01%s' '{"id": null, "aggregatetype": "A", "aggregateid": 1.5e3, "payload": "  "}' >"$dir/seed-nulls"
printf '\x00%s' '{"id": "x", "id": "y"}' >"$dir/seed-duplicate"

# ---- build and run -----------------------------------------------------------------------------
started=$SECONDS
echo "==> cargo fuzz build ($(date -u +%H:%M:%S))"
cargo fuzz build --fuzz-dir "$fuzz_dir" --sanitizer "$sanitizer"
echo "==> built in $((SECONDS - started)) s"

for target in $targets; do
    echo "==> fuzzing $target for ${seconds} s ($(date -u +%H:%M:%S))"
    # -timeout: an input taking more than 10 s is a hang; -rss_limit_mb: a leak or a huge
    # allocation is a finding too.
    if ! cargo fuzz run --fuzz-dir "$fuzz_dir" --sanitizer "$sanitizer" "$target" \
        "$fuzz_dir/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
        echo "FUZZ FAILURE in $target: the input is in $fuzz_dir/artifacts/$target/" >&2
        ls -l "$fuzz_dir/artifacts/$target/" >&2 || true
        exit 1
    fi
done
echo "==> fuzzing passed in $((SECONDS - started)) s"
