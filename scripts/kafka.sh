#!/usr/bin/env bash
# Starts an Apache Kafka broker (KRaft, combined broker + controller) from the jars that
# scripts/install-deps.sh put in .tools/kafka/lib (tests/kafka/pom.xml pins the version).
# The tests, the demo and the benchmark harness all start their brokers through this file.
#
#   scripts/kafka.sh run   DIR [options]  # formats DIR (once), then runs the broker in the
#                                         # foreground (exec: the caller's child is the JVM)
#   scripts/kafka.sh start DIR [options]  # the same in the background; waits until the broker
#                                         # serves, then prints its bootstrap address
#   scripts/kafka.sh stop  DIR            # stops a broker started with `start` (SIGTERM, then KILL)
#
# DIR holds server.properties, data/ (the log and KRaft metadata), kafka.log (with `start`),
# bootstrap (the advertised client address) and pid (with `start`). Running `run` again on the
# same DIR restarts the same broker with its data (the storage is formatted only once).
#
# Options:
#   --port P            client (PLAINTEXT) listener port; default: a free port
#   --advertise H:P     the client address the broker advertises; default 127.0.0.1:P. Point it
#                       at a proxy in front of the broker and every client connection (bootstrap
#                       and per-broker) goes through the proxy.
#   --controller-port C the KRaft controller listener; default: a free port
#   --internal-port I   the inter-broker listener (INTERNAL, never proxied, so a proxy in front of
#                       the client port cuts clients off and nothing else); default: a free port
#   --listener NAME://H:P  one more client listener, advertised as it is (repeatable); NAME is
#                       a security protocol (SSL, SASL_PLAINTEXT, SASL_SSL) or any name mapped by
#                       --set listener.security.protocol.map=...
#   --node-id N         default 1
#   --voters LIST       controller.quorum.voters of a multi-node cluster (`1@127.0.0.1:C1,2@...`);
#                       default: this node alone. All nodes of a cluster need the same
#                       --cluster-id.
#   --cluster-id ID     22-character base64 UUID; default: a random one (on first format)
#   --scram SPEC        a SCRAM user created at format time, as `kafka-storage format
#                       --add-scram` takes it: 'SCRAM-SHA-256=[name=alice,password=secret]'
#                       (repeatable)
#   --set KEY=VALUE     any other server.properties entry; it overrides the defaults below
#                       (repeatable)
#   --heap SIZE         JVM heap (-Xms and -Xmx); default $KAFKA_HEAP or 512m
#
# Defaults are Kafka's own except what a one-node cluster needs (replication factor 1 for the
# internal topics) and group.initial.rebalance.delay.ms=0. Needs Java 17+ (`java` on PATH, or
# $JAVA_HOME) and the jars (run scripts/install-deps.sh); $OUTBOXD_KAFKA_LIB overrides where the
# jars are.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROG=kafka.sh
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
LIB="${OUTBOXD_KAFKA_LIB:-$ROOT/.tools/kafka/lib}"

check_lib() {
    compgen -G "$LIB/kafka_2.13-*.jar" >/dev/null ||
        die "no Kafka jars in $LIB: run scripts/install-deps.sh (it resolves tests/kafka/pom.xml with Maven)"
}

service_args "${1:-}" "${2:-}"
shift 2
if [ "$cmd" = stop ]; then
    stop_pidfile "$dir" 15
    exit 0
fi

port="" advertise="" cport="" iport="" node_id=1 voters="" cluster_id="" heap="${KAFKA_HEAP:-512m}"
scram=() sets=() extra=()
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || die "$1 needs a value"
    case "$1" in
        --port) port="$2" ;;
        --advertise) advertise="$2" ;;
        --controller-port) cport="$2" ;;
        --internal-port) iport="$2" ;;
        --listener) extra+=("$2") ;;
        --node-id) node_id="$2" ;;
        --voters) voters="$2" ;;
        --cluster-id) cluster_id="$2" ;;
        --scram) scram+=(--add-scram "$2") ;;
        --set) sets+=("$2") ;;
        --heap) heap="$2" ;;
        *) die "unknown option $1 (see the header of scripts/kafka.sh)" ;;
    esac
    shift 2
done

JAVA="$(java_bin "Apache Kafka 4")"
check_lib
[ -n "$port" ] || port="$(free_port)"
[ -n "$cport" ] || cport="$(free_port)"
[ -n "$iport" ] || iport="$(free_port)"
[ -n "$advertise" ] || advertise="127.0.0.1:$port"
[ -n "$voters" ] || voters="$node_id@127.0.0.1:$cport"
mkdir -p "$dir/data"

{
    echo "# written by scripts/kafka.sh; rewritten at every start"
    echo "process.roles=broker,controller"
    echo "node.id=$node_id"
    echo "controller.quorum.voters=$voters"
    more=""
    for l in "${extra[@]}"; do more="$more,$l"; done
    echo "listeners=PLAINTEXT://127.0.0.1:$port,INTERNAL://127.0.0.1:$iport,CONTROLLER://127.0.0.1:$cport$more"
    echo "advertised.listeners=PLAINTEXT://$advertise,INTERNAL://127.0.0.1:$iport$more"
    echo "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"
    echo "controller.listener.names=CONTROLLER"
    echo "inter.broker.listener.name=INTERNAL"
    echo "log.dirs=$dir/data"
    echo "offsets.topic.replication.factor=1"
    echo "transaction.state.log.replication.factor=1"
    echo "transaction.state.log.min.isr=1"
    echo "share.coordinator.state.topic.replication.factor=1"
    echo "share.coordinator.state.topic.min.isr=1"
    echo "group.initial.rebalance.delay.ms=0"
    for kv in "${sets[@]}"; do
        case "$kv" in *=*) echo "$kv" ;; *) die "--set $kv: expected KEY=VALUE" ;; esac
    done
} >"$dir/server.properties"
echo "$advertise" >"$dir/bootstrap"

jvm=(-Xms"$heap" -Xmx"$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$ROOT/tests/kafka/log4j2.properties"
    -cp "$LIB/*")

if [ ! -f "$dir/data/meta.properties" ]; then
    # A random UUID, base64url; never starting with '-', which the tool would take for an option
    # (Kafka's own Uuid.randomUuid() avoids it for the same reason).
    while [ -z "$cluster_id" ] || [ "${cluster_id#-}" != "$cluster_id" ]; do
        cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | cut -c 1-22)"
    done
    if ! out="$("$JAVA" -Xmx256m -Dlog4j2.configurationFile="$ROOT/tests/kafka/log4j2.properties" \
        -cp "$LIB/*" kafka.tools.StorageTool format --ignore-formatted -t "$cluster_id" \
        -c "$dir/server.properties" "${scram[@]}" 2>&1)"; then
        echo "$out" >&2
        die "formatting $dir/data failed"
    fi
fi

if [ "$cmd" = run ]; then
    exec "$JAVA" "${jvm[@]}" kafka.Kafka "$dir/server.properties"
fi

# start: in the background, logging to DIR/kafka.log; ready when the broker says it started.
if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
    die "a broker already runs from $dir (pid $(cat "$dir/pid")); scripts/kafka.sh stop $dir"
fi
: >"$dir/kafka.log"
nohup "$JAVA" "${jvm[@]}" kafka.Kafka "$dir/server.properties" >>"$dir/kafka.log" 2>&1 &
echo $! >"$dir/pid"
for _ in $(seq 600); do
    if grep -q "Kafka Server started" "$dir/kafka.log"; then
        echo "$advertise"
        exit 0
    fi
    kill -0 "$(cat "$dir/pid")" 2>/dev/null || {
        tail -n 30 "$dir/kafka.log" >&2
        die "the broker exited during start-up (log: $dir/kafka.log)"
    }
    sleep 0.1
done
tail -n 30 "$dir/kafka.log" >&2
die "the broker did not start within 60 s (log: $dir/kafka.log)"
