#!/usr/bin/env bash
# End-to-end demo of outboxd (the README's "run the main job end to end" command):
#   1. installs dependencies, builds outboxd and the `consume` example (release),
#   2. starts a throwaway PostgreSQL (initdb into a tempdir, free port, wal_level=logical)
#      and an Apache Kafka broker (scripts/kafka.sh: KRaft, one node, free ports),
#   3. creates Debezium's outbox table, writes an outboxd config, starts `outboxd run`,
#   4. inserts 5 outbox rows across 2 aggregate types (order, customer),
#   5. reads the 5 records back from outbox.event.order / outbox.event.customer and prints them,
#   6. stops outboxd with SIGTERM (it must exit 0) and shows the slot's confirmed LSN,
# and removes everything on exit (trap), whatever happens.
#
# Env: DEMO_KEEP=1 keeps the work directory (logs, config) for inspection;
#      DEMO_OUTBOXD_BIN=PATH runs that outboxd binary instead of target/release/outboxd.
# It always uses its own broker: KAFKA_BOOTSTRAP_SERVERS is ignored (and unset for outboxd).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
unset KAFKA_BOOTSTRAP_SERVERS

PROG=demo
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

# shellcheck source=scripts/install-deps.sh
source scripts/install-deps.sh
[ -n "${PG_BIN:-}" ] || die "PostgreSQL server binaries not found"

say "building outboxd and the consume example (release)"
cargo build --release --bin outboxd --example consume
# DEMO_OUTBOXD_BIN=/path/to/outboxd runs that binary instead of the one just built.
OUTBOXD="${DEMO_OUTBOXD_BIN:-$ROOT/target/release/outboxd}"
CONSUME="$ROOT/target/release/examples/consume"

WORK="$(mktemp -d -t outboxd-demo.XXXXXX)"
chmod 755 "$WORK" # the postgres user must reach $WORK/pg
OUTBOXD_PID=""
KAFKA_STARTED=0

cleanup() {
    local rc=$?
    set +e
    if [ -n "$OUTBOXD_PID" ] && kill -0 "$OUTBOXD_PID" 2>/dev/null; then
        kill -TERM "$OUTBOXD_PID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$OUTBOXD_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$OUTBOXD_PID" 2>/dev/null
    fi
    if [ "$rc" -ne 0 ]; then
        for f in "$WORK/outboxd.log" "$WORK/pg/postgres.log" "$WORK/kafka/kafka.log"; do
            [ -s "$f" ] && { echo "---- tail of $f ----" >&2; tail -n 30 "$f" >&2; }
        done
    fi
    [ "$KAFKA_STARTED" -eq 1 ] && "$ROOT/scripts/kafka.sh" stop "$WORK/kafka"
    stop_postgres
    wait 2>/dev/null
    if [ "${DEMO_KEEP:-0}" = "1" ]; then
        echo "demo: kept $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- PostgreSQL ---------------------------------------------------------------------------
start_postgres "$WORK/pg"
say "PostgreSQL ($PG_BIN) is up on 127.0.0.1:$PG_PORT"

# The outbox table: the one docker/init.sql creates for the compose stack.
psql_q -f "$ROOT/docker/init.sql"

# ---- Apache Kafka ------------------------------------------------------------------------
say "starting Apache Kafka (KRaft, one node: scripts/kafka.sh)"
# Two partitions per topic the broker creates on outboxd's first produce to it.
BOOTSTRAP="$("$ROOT/scripts/kafka.sh" start "$WORK/kafka" --set num.partitions=2)" ||
    die "Apache Kafka did not start"
KAFKA_STARTED=1
say "Apache Kafka is up at $BOOTSTRAP"

# ---- outboxd -------------------------------------------------------------------------------
cat >"$WORK/outboxd.toml" <<EOF
[source]
url = "$PG_URL"
slot = "outboxd"
publication = "outboxd"
tables = ["public.outbox"]

[router]
"route.topic.replacement" = "outbox.event.\${routedByValue}"

[kafka]
"bootstrap.servers" = "$BOOTSTRAP"
EOF
say "starting: outboxd run --config $WORK/outboxd.toml"
"$OUTBOXD" run --config "$WORK/outboxd.toml" >"$WORK/outboxd.log" 2>&1 &
OUTBOXD_PID=$!

# Rows inserted before the slot exists would not be relayed: wait until outboxd streams.
ready=0
for _ in $(seq 600); do
    kill -0 "$OUTBOXD_PID" 2>/dev/null || die "outboxd exited early (see its log above)"
    if [ "$(psql_q -At -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'outboxd' AND active")" = "1" ]; then
        ready=1
        break
    fi
    sleep 0.1
done
[ "$ready" -eq 1 ] || die "outboxd did not start streaming from slot 'outboxd' within 60 s"
say "outboxd is streaming (slot 'outboxd' active)"

say "inserting 5 outbox rows (3 x order, 2 x customer)"
psql_q <<'SQL'
BEGIN;
INSERT INTO public.outbox (id, aggregatetype, aggregateid, type, payload) VALUES
  (gen_random_uuid(), 'order',    'order-1001',  'OrderCreated',    '{"orderId": 1001, "total": 42.50}'),
  (gen_random_uuid(), 'customer', 'customer-7',  'CustomerCreated', '{"customerId": 7, "name": "Ada"}'),
  (gen_random_uuid(), 'order',    'order-1001',  'OrderPaid',       '{"orderId": 1001, "method": "card"}');
COMMIT;
INSERT INTO public.outbox (id, aggregatetype, aggregateid, type, payload) VALUES
  (gen_random_uuid(), 'order',    'order-1002',  'OrderCreated',    '{"orderId": 1002, "total": 9.99}');
INSERT INTO public.outbox (id, aggregatetype, aggregateid, type, payload) VALUES
  (gen_random_uuid(), 'customer', 'customer-7',  'CustomerRenamed', '{"customerId": 7, "name": "Ada L."}');
SQL
LSN_AFTER_INSERTS="$(psql_q -At -c 'SELECT pg_current_wal_lsn()')"

say "records in Kafka:"
"$CONSUME" --bootstrap "$BOOTSTRAP" --topic outbox.event.order --topic outbox.event.customer \
    --count 5 --timeout-secs 60 || die "did not read 5 records back"

# The slot's confirmed position catches up only after Kafka acknowledged the records.
for _ in $(seq 100); do
    confirmed="$(psql_q -At -c "SELECT confirmed_flush_lsn >= '$LSN_AFTER_INSERTS'::pg_lsn FROM pg_replication_slots WHERE slot_name = 'outboxd'")"
    [ "$confirmed" = "t" ] && break
    sleep 0.1
done
say "slot 'outboxd': $(psql_q -At -c "SELECT 'confirmed_flush_lsn=' || confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'outboxd'") (WAL after inserts: $LSN_AFTER_INSERTS)"

say "stopping outboxd (SIGTERM)"
kill -TERM "$OUTBOXD_PID"
set +e
wait "$OUTBOXD_PID"
rc=$?
set -e
OUTBOXD_PID=""
[ "$rc" -eq 0 ] || die "outboxd exited with status $rc after SIGTERM"
say "outboxd exited 0; demo OK"
