#!/usr/bin/env bash
# Measures outboxd's memory (peak RSS, VmHWM) while it drains a backlog of outbox rows; the figures
# behind the Kubernetes memory request/limit (docs/operations.md, "Sizing").
#
#   cargo build --release && scripts/measure-rss.sh
#
# What it does, in a throwaway work directory removed on exit:
#   1. starts a PostgreSQL (initdb, wal_level=logical, free port) and an Apache Kafka broker
#      (scripts/kafka.sh; topics auto-created with 4 partitions), creates the outbox table, the
#      publication and the slot;
#   2. starts outboxd on the empty outbox and records its RSS once it streams (the idle figure);
#   3. stops it (SIGTERM), inserts ROWS rows (~PAYLOAD bytes of JSON each, TXN_ROWS rows per
#      transaction, TOPICS aggregate types) while it is down, so they wait as a backlog in the slot;
#   4. starts outboxd again and samples /proc/<pid>/status until Kafka acknowledged every row, then
#      prints VmHWM (the peak resident set) and the drain rate;
#   5. the same with the broker frozen (SIGSTOP) once outboxd is ready, so the in-flight caps fill
#      and hold (what a Kafka outage costs in memory), then thawed until everything is acknowledged.
# The backlog makes outboxd read as fast as Postgres sends; the frozen broker makes it hold as much
# as the in-flight caps allow (pipeline.max_in_flight_events / _bytes, defaults unless EXTRA_TOML
# sets them).
#
# Env: ROWS (100000), PAYLOAD (1024), TXN_ROWS (100), TOPICS (4), EXTRA_TOML (appended to the
# config, e.g. $'[pipeline]\nmax_in_flight_events = 50000'), OUTBOXD_BIN (target/release/outboxd),
# KEEP=1 keeps the work directory. Needs PostgreSQL, Java 17 and the Kafka jars:
# scripts/install-deps.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
unset KAFKA_BOOTSTRAP_SERVERS OUTBOXD_HTTP_ADDR OUTBOXD_CONFIG

ROWS="${ROWS:-100000}"
PAYLOAD="${PAYLOAD:-1024}"
TXN_ROWS="${TXN_ROWS:-100}"
TOPICS="${TOPICS:-4}"
OUTBOXD="${OUTBOXD_BIN:-$ROOT/target/release/outboxd}"

PROG=measure-rss
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

# shellcheck source=scripts/env.sh
source scripts/env.sh
[ -n "${PG_BIN:-}" ] || die "PostgreSQL server binaries not found (scripts/install-deps.sh)"
[ -x "$OUTBOXD" ] || die "$OUTBOXD not found: cargo build --release"

WORK="$(mktemp -d -t outboxd-rss.XXXXXX)"
chmod 755 "$WORK"
OUTBOXD_PID=""
KAFKA_PID=""

stop_outboxd() {
    [ -n "$OUTBOXD_PID" ] || return 0
    kill -TERM "$OUTBOXD_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$OUTBOXD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$OUTBOXD_PID" 2>/dev/null || true
    wait "$OUTBOXD_PID" 2>/dev/null || true
    OUTBOXD_PID=""
}

cleanup() {
    local rc=$?
    set +e
    stop_outboxd
    if [ "$rc" -ne 0 ]; then
        for f in "$WORK/outboxd.log" "$WORK/pg/postgres.log" "$WORK/kafka/kafka.log"; do
            [ -s "$f" ] && { echo "---- tail of $f ----" >&2; tail -n 30 "$f" >&2; }
        done
    fi
    [ -n "$KAFKA_PID" ] && kill -CONT "$KAFKA_PID" 2>/dev/null
    [ -n "$KAFKA_PID" ] && "$ROOT/scripts/kafka.sh" stop "$WORK/kafka"
    stop_postgres
    wait 2>/dev/null
    if [ "${KEEP:-0}" = "1" ]; then echo "measure-rss: kept $WORK" >&2; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

status_kb() { # pid field -> kB
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}
published() { # sum of outboxd_events_published_total
    curl -fsS "http://$HTTP_ADDR/metrics" 2>/dev/null |
        awk '/^outboxd_events_published_total/ { s += $NF } END { printf "%d\n", s }'
}

# ---- PostgreSQL and Apache Kafka --------------------------------------------------------------
start_postgres "$WORK/pg" "max_wal_size = '2GB'"
# The outbox table: the one docker/init.sql creates for the compose stack.
psql_q -f "$ROOT/docker/init.sql"
psql_q <<'SQL'
CREATE PUBLICATION outboxd FOR TABLE public.outbox;
SELECT pg_create_logical_replication_slot('outboxd', 'pgoutput') \g /dev/null
SQL

# Topics are created on outboxd's first produce to them, with 4 partitions each.
BOOTSTRAP="$("$ROOT/scripts/kafka.sh" start "$WORK/kafka" --set num.partitions=4)" ||
    die "Apache Kafka did not start"
KAFKA_PID="$(cat "$WORK/kafka/pid")"

HTTP_ADDR="127.0.0.1:$(free_port)"
cat >"$WORK/outboxd.toml" <<EOF
[source]
url = "$PG_URL"
tables = ["public.outbox"]

[kafka]
"bootstrap.servers" = "$BOOTSTRAP"

[http]
addr = "$HTTP_ADDR"
${EXTRA_TOML:-}
EOF

start_outboxd() {
    "$OUTBOXD" run --config "$WORK/outboxd.toml" >>"$WORK/outboxd.log" 2>&1 &
    OUTBOXD_PID=$!
    for _ in $(seq 600); do
        kill -0 "$OUTBOXD_PID" 2>/dev/null || die "outboxd exited early"
        curl -fsS "http://$HTTP_ADDR/readyz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "outboxd did not become ready within 60 s"
}

# ---- idle ---------------------------------------------------------------------------------------
start_outboxd
sleep 5
IDLE_RSS="$(status_kb "$OUTBOXD_PID" VmRSS)"
IDLE_HWM="$(status_kb "$OUTBOXD_PID" VmHWM)"
say "idle (streaming, empty outbox): VmRSS ${IDLE_RSS} kB, VmHWM ${IDLE_HWM} kB"
stop_outboxd

# ---- backlog ------------------------------------------------------------------------------------
insert_backlog() {
    say "inserting $ROWS rows of ~$PAYLOAD bytes ($TXN_ROWS per transaction, $TOPICS topics) while outboxd is down"
    local pad=$((PAYLOAD - 40))
    [ "$pad" -gt 0 ] || pad=1
    psql_q <<SQL
DO \$\$
DECLARE b int;
BEGIN
  FOR b IN 0 .. ($ROWS + $TXN_ROWS - 1) / $TXN_ROWS - 1 LOOP
    INSERT INTO public.outbox (id, aggregatetype, aggregateid, type, payload)
    SELECT gen_random_uuid(), 'agg' || (i % $TOPICS), 'id-' || (i % 1000), 'Event',
           jsonb_build_object('seq', i, 'pad', repeat('x', $pad))
    FROM generate_series(b * $TXN_ROWS, least((b + 1) * $TXN_ROWS, $ROWS) - 1) AS i;
    COMMIT;
  END LOOP;
END
\$\$;
SQL
    say "backlog: $(psql_q -At -c "SELECT pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)) FROM pg_replication_slots WHERE slot_name = 'outboxd'") of WAL in the slot"
}

# Samples VmRSS every 0.1 s until Kafka acknowledged ROWS events (at most 10 minutes).
wait_drained() {
    PEAK_RSS=0
    for _ in $(seq 6000); do
        local rss
        rss="$(status_kb "$OUTBOXD_PID" VmRSS)"
        [ "${rss:-0}" -gt "$PEAK_RSS" ] && PEAK_RSS="$rss"
        [ "$(published)" -ge "$ROWS" ] && return 0
        sleep 0.1
    done
    die "Kafka acknowledged only $(published) of $ROWS events in 10 minutes"
}

insert_backlog
start_outboxd
T0="$(date +%s.%N)"
wait_drained
T1="$(date +%s.%N)"
HWM="$(status_kb "$OUTBOXD_PID" VmHWM)"
DRAIN_PEAK_RSS="$PEAK_RSS"
# CPU time of the process (utime + stime, in clock ticks)
CPU_S="$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15) / hz }' "/proc/$OUTBOXD_PID/stat")"
stop_outboxd
SECS="$(python3 -c "print(f'{$T1 - $T0:.1f}')")"
RATE="$(python3 -c "print(int($ROWS / max($T1 - $T0, 0.001)))")"
say "drained $ROWS events in ${SECS} s (~${RATE} events/s, including start-up), ${CPU_S} CPU-seconds"

# ---- Kafka stalled --------------------------------------------------------------------------------
# The broker's JVM is frozen (SIGSTOP: connections stay open, nothing is acknowledged), so outboxd fills
# its in-flight caps and holds them: the most memory the caps allow. Then it is thawed and drains.
# outboxd reads its recorded position from Kafka at start, so the broker is frozen the moment
# outboxd is ready (a few hundred events get through first; the backlog is far above the caps).
insert_backlog
start_outboxd
kill -STOP "$KAFKA_PID"
say "broker frozen; waiting until the in-flight events stop growing"
last=-1
steady=0
for _ in $(seq 600); do
    n="$(curl -fsS "http://$HTTP_ADDR/metrics" | awk '/^outboxd_events_in_flight / { print $2 }')"
    if [ "${n:-0}" -gt 0 ] && [ "$n" = "$last" ]; then steady=$((steady + 1)); else steady=0; fi
    last="$n"
    [ "$steady" -ge 30 ] && break
    sleep 0.1
done
STALL_BYTES="$(curl -fsS "http://$HTTP_ADDR/metrics" | awk '/^outboxd_in_flight_bytes / { print $2 }')"
STALL_HWM="$(status_kb "$OUTBOXD_PID" VmHWM)"
say "frozen broker: $last events ($STALL_BYTES bytes) in flight"
kill -CONT "$KAFKA_PID"
wait_drained
STALL_HWM="$(status_kb "$OUTBOXD_PID" VmHWM)"
stop_outboxd

echo "idle VmRSS:                  ${IDLE_RSS} kB ($((IDLE_RSS / 1024)) MiB)"
echo "drain peak VmHWM:            ${HWM} kB ($((HWM / 1024)) MiB) (highest sampled VmRSS ${DRAIN_PEAK_RSS} kB)"
echo "Kafka stalled, then drained: ${STALL_HWM} kB ($((STALL_HWM / 1024)) MiB) ($last events, $STALL_BYTES bytes in flight at the stall)"
