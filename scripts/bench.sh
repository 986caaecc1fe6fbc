#!/usr/bin/env bash
# Runs the benchmark harness (benches/bench/; docs/benchmarks.md explains the figures):
#   1. installs/locates the dependencies (scripts/install-deps.sh: PG_BIN, Apache Kafka's jars,
#      TANSU_BIN),
#   2. prints the machine's load (other work on the machine disturbs the figures),
#   3. `cargo bench --bench bench -- ARGS...`, which builds outboxd and the harness in the bench
#      profile (the release settings) first.
# The harness starts a fresh Apache Kafka per scenario (scripts/kafka.sh), or tansu with
# `--broker tansu`; with KAFKA_BOOTSTRAP_SERVERS set, that Kafka is used instead.
#
# Usage: scripts/bench.sh [bench options]      (scripts/bench.sh --help lists them)
#   scripts/bench.sh                                      # the default matrix, 1M rows per backlog
#   scripts/bench.sh --rows 200000 --json bench.json      # smaller, and keep the figures
#   scripts/bench.sh --kafka linger.ms=1 --label linger1  # try another producer setting
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/install-deps.sh
source scripts/install-deps.sh
[ -n "${PG_BIN:-}" ] || { echo "bench.sh: PostgreSQL server binaries not found" >&2; exit 1; }

echo "==> $(nproc) CPUs, load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
exec cargo bench --bench bench -- "$@"
