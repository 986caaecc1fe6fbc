#!/usr/bin/env bash
# Runs Debezium itself: a Kafka Connect standalone worker (org.apache.kafka.connect.cli.
# ConnectStandalone) with Debezium's PostgreSQL connector and its Outbox EventRouter, from the jars
# that scripts/install-deps.sh put in .tools/debezium/lib (tests/debezium/pom.xml pins Kafka
# Connect 4.3.2 and Debezium 3.6.1.Final; Debezium 3.6 does not run on Connect 4.4, see the pom).
# With --distributed, a distributed worker (ConnectDistributed) instead, its configs, offsets and
# status in Kafka topics. The broker may be any Kafka (the tests' is 4.4.0).
# tests/debezium_live.rs runs it beside outboxd.
#
#   scripts/debezium.sh run   DIR [options]  # writes DIR/worker.properties and
#                                            # DIR/connector.properties, then runs the worker in
#                                            # the foreground (exec: the caller's child is the JVM;
#                                            # with --distributed, a background helper creates the
#                                            # connector once the REST API serves)
#   scripts/debezium.sh start DIR [options]  # the same in the background, logging to
#                                            # DIR/connect.log; waits until the connector's task
#                                            # runs, then prints the worker's REST URL
#   scripts/debezium.sh stop  DIR            # stops a worker started with `start`: SIGTERM
#                                            # (Connect's graceful stop: the task stops and the
#                                            # offsets are committed), then KILL after 30 s
#
# DIR holds worker.properties, connector.properties (both rewritten at every start), offsets
# (Connect's offset file: the connector's position), connect.log and pid (with `start`) and rest
# (the REST URL). Running `run` again on the same DIR resumes from the offsets. With
# --distributed, the position is in the offsets topic instead (the same DIR gives the same topics
# and group, so it resumes too), and DIR/connector.json holds the body of the REST request that
# created the connector (connector.properties as a JSON object).
#
# Options:
#   --bootstrap LIST    Kafka's bootstrap.servers; default $KAFKA_BOOTSTRAP_SERVERS (one of the
#                       two is needed)
#   --pg-url URL        postgres://USER[:PASSWORD]@HOST[:PORT]/DBNAME[?sslmode=MODE]: sets the
#                       database.* keys of the five options below (and database.sslmode),
#                       over whatever those options say; percent-encoding is decoded
#   --host H            database.hostname; default 127.0.0.1
#   --port P            database.port; default 5432
#   --user U            database.user; default postgres
#   --password PW       database.password; default none (trust auth); $PGPASSWORD if set
#   --dbname D          database.dbname; default postgres
#   --slot NAME         slot.name; default debezium (Debezium's)
#   --publication NAME  publication.name; default dbz_publication (Debezium's)
#   --table LIST        table.include.list; default public.outbox
#   --topic-prefix P    topic.prefix; default outbox
#   --name NAME         the connector's name; default outbox-connector
#   --connector K=V     any connector property (repeatable; overrides the defaults below), e.g.
#                       transforms.outbox.route.topic.replacement=dbz.${routedByValue},
#                       value.converter=org.apache.kafka.connect.storage.StringConverter
#   --worker K=V        any worker property (repeatable; overrides the defaults below), e.g.
#                       offset.flush.interval.ms=1000
#   --rest-port P       the worker's REST listener (listeners=http://127.0.0.1:P); default: a
#                       free port
#   --heap SIZE         JVM heap (-Xms and -Xmx); default $DEBEZIUM_HEAP or 512m
#   --jvm-opt OPT       one more JVM option, after the defaults below (repeatable; for -XX
#                       flags the last one wins), e.g. -XX:TieredStopAtLevel=4 (the full JIT)
#   --distributed       (no value) a distributed worker (org.apache.kafka.connect.cli.
#                       ConnectDistributed, one node) instead of a standalone one: the connector is
#                       created with PUT /connectors/NAME/config (the properties of
#                       connector.properties) once the REST API answers, again while the worker
#                       is not ready (409, 503) for up to 120 s; a refusal (400 or 500: an
#                       invalid configuration) stops the worker. curl, else python3's urllib
#   --topics-prefix P   with --distributed: the worker's topics are P-configs, P-offsets and
#                       P-status (config.storage.topic, offset.storage.topic,
#                       status.storage.topic); default connect-NAME-HASH, HASH a checksum of the
#                       host name and DIR (so each DIR has topics of its own)
#
# Connector defaults, for an outbox connector: connector.class=io.debezium.connector.postgresql.
# PostgresConnector, tasks.max=1, plugin.name=pgoutput, publication.autocreate.mode=filtered
# (Debezium creates the publication FOR TABLE the included tables), snapshot.mode=no_data (no
# snapshot: only rows committed after the slot's creation), transforms=outbox with
# transforms.outbox.type=io.debezium.transforms.outbox.EventRouter (every EventRouter option at
# its default). Everything else is Debezium's default; no converter is set on the connector, so
# the worker's apply.
# Worker defaults: key.converter and value.converter = org.apache.kafka.connect.json.JsonConverter
# with schemas.enable at the converter's default (true), headers through Connect's default
# SimpleHeaderConverter, offset.storage.file.filename=DIR/offsets, offset.flush.interval.ms=60000
# (Connect's default: Debezium confirms the slot position only after a flush), the REST listener
# above, plugin.discovery=service_load (the plugins are on the class path and declare themselves;
# no class-path scan at start-up). Everything else is Connect's default: the producer is the Java
# client with its default partitioner (murmur2 of the key bytes) and topics are created by the
# broker's auto-creation.
# Distributed worker defaults: the same converters, offset.flush.interval.ms, listener and plugin
# discovery, no offset file; group.id=debezium-NAME-HASH (HASH as for --topics-prefix: a group of
# its own, so a worker never joins another DIR's); config.storage.topic, offset.storage.topic and
# status.storage.topic from --topics-prefix, created by the worker (compacted, Connect's default
# partitions: 1, 25 and 5) with replication factor 1 each (config.storage.replication.factor, ...;
# a one-node test broker; set them with --worker for a real cluster).
#
# JVM: G1 with Kafka's kafka-run-class.sh flags (MaxGCPauseMillis=20,
# InitiatingHeapOccupancyPercent=35, ExplicitGCInvokesConcurrent), the heap above, and
# -XX:TieredStopAtLevel=1 (the C1 compiler only: a faster start for the tests, slower code for a
# long run; the benchmark harness gives -XX:TieredStopAtLevel=4, the JVM's default).
#
# Values are written to the properties files escaped (backslashes, non-ASCII as \uXXXX), so a
# regex or a non-ASCII value reaches Connect unchanged. Needs Java 17+ (`java` on PATH, or
# $JAVA_HOME), python3 (the escaping, free ports) and the jars (run scripts/install-deps.sh);
# $OUTBOXD_DEBEZIUM_LIB overrides where the jars are.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROG=debezium.sh
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
LIB="${OUTBOXD_DEBEZIUM_LIB:-$ROOT/.tools/debezium/lib}"

check_lib() {
    compgen -G "$LIB/debezium-connector-postgres-*.jar" >/dev/null &&
        compgen -G "$LIB/connect-runtime-*.jar" >/dev/null ||
        die "no Debezium jars in $LIB: run scripts/install-deps.sh (it resolves tests/debezium/pom.xml with Maven)"
}
# write_props FILE KEY=VALUE...: a properties file, later keys overriding earlier ones, in the
# order of first appearance, escaped for java.util.Properties.load (ISO-8859-1 with \u escapes).
write_props() {
    local file="$1"
    shift
    python3 - "$file" "$@" <<'PY'
import sys
out, pairs = sys.argv[1], sys.argv[2:]
props = {}
for kv in pairs:
    k, sep, v = kv.partition("=")
    if not sep or not k:
        sys.exit(f"debezium.sh: ERROR: {kv!r}: expected KEY=VALUE")
    props[k] = v
def esc(s, key):
    r = []
    for i, c in enumerate(s):
        o = ord(c)
        if c == "\\":
            r.append("\\\\")
        elif c in "\t\n\r\f":
            r.append({"\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f"}[c])
        elif (key and c in " =:#!") or (not key and i == 0 and c in " #!"):
            r.append("\\" + c)
        elif o < 0x20 or o > 0x7E:
            b = c.encode("utf-16-be")
            for j in range(0, len(b), 2):
                r.append("\\u%02X%02X" % (b[j], b[j + 1]))
        else:
            r.append(c)
    return "".join(r)
with open(out, "w", encoding="ascii") as f:
    f.write("# written by scripts/debezium.sh; rewritten at every start\n")
    for k, v in props.items():
        f.write(f"{esc(k, True)}={esc(v, False)}\n")
PY
}
# write_json FILE KEY=VALUE...: the same properties (later keys overriding earlier ones) as one
# JSON object of strings: the body of Connect's PUT /connectors/NAME/config.
write_json() {
    python3 - "$@" <<'PY'
import json, sys
out, pairs = sys.argv[1], sys.argv[2:]
props = {}
for kv in pairs:
    k, sep, v = kv.partition("=")
    if not sep or not k:
        sys.exit(f"debezium.sh: ERROR: {kv!r}: expected KEY=VALUE")
    props[k] = v
with open(out, "w", encoding="utf-8") as f:
    json.dump(props, f, indent=2)
    f.write("\n")
PY
}
# http METHOD URL [BODY_FILE]: one request (a JSON body from BODY_FILE); prints the HTTP status
# (000 when nothing answered) and leaves the response body in $dir/http.out. curl, else python3.
http() {
    if command -v curl >/dev/null; then
        local body=()
        [ -z "${3:-}" ] || body=(-H "Content-Type: application/json" --data-binary "@$3")
        curl -s -o "$dir/http.out" -w "%{http_code}" --max-time 100 -X "$1" "${body[@]}" "$2" ||
            true
    else
        python3 - "$dir/http.out" "$@" <<'PY'
import sys, urllib.request, urllib.error
out, method, url = sys.argv[1:4]
data = open(sys.argv[4], "rb").read() if len(sys.argv) > 4 else None
req = urllib.request.Request(url, data=data, method=method,
                             headers={"Content-Type": "application/json"} if data else {})
try:
    with urllib.request.urlopen(req, timeout=100) as r:
        code, body = r.status, r.read()
except urllib.error.HTTPError as e:
    code, body = e.code, e.read()
except OSError:
    code, body = 0, b""
open(out, "wb").write(body)
print("%03d" % code)
PY
    fi
}
# create_connector PID: waits for the distributed worker's REST API ($rest), then creates the
# connector (PUT $rest/connectors/NAME/config with DIR/connector.json), again while the worker is
# not ready (409: rebalancing or not yet in the group; 503: starting; no answer) for up to 120 s.
# Status 1 (with the reason on stderr) if the worker (PID) exits, refuses the configuration (400,
# or 500 when the connector's validation throws) or time runs out.
create_connector() {
    local pid="$1" deadline=$((SECONDS + 120)) code url
    url="$rest/connectors/$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$name")/config"
    while :; do
        kill -0 "$pid" 2>/dev/null || {
            echo "$PROG: ERROR: the worker exited before the connector was created" >&2
            return 1
        }
        code="$(http GET "$rest/")"
        if [ "$code" = 200 ]; then
            code="$(http PUT "$url" "$dir/connector.json")"
            case "$code" in
                200 | 201)
                    echo "$PROG: connector $name created (PUT $url: $code)" >&2
                    return 0
                    ;;
                409 | 503 | 000) ;;
                *)
                    echo "$PROG: ERROR: PUT $url: HTTP $code: $(cat "$dir/http.out")" >&2
                    return 1
                    ;;
            esac
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "$PROG: ERROR: the connector was not created within 120 s (last: HTTP $code $(cat "$dir/http.out" 2>/dev/null))" >&2
            return 1
        fi
        sleep 0.2
    done
}
# pg_url URL: the database.* settings of a postgres:// URL, one KEY=VALUE a line.
pg_url() {
    python3 - "$1" <<'PY'
import sys
from urllib.parse import urlsplit, unquote, parse_qs
u = urlsplit(sys.argv[1])
if u.scheme not in ("postgres", "postgresql") or not u.hostname:
    sys.exit(f"debezium.sh: ERROR: --pg-url {sys.argv[1]!r}: expected postgres://USER[:PASSWORD]@HOST[:PORT]/DBNAME")
print(f"database.hostname={u.hostname}")
print(f"database.port={u.port or 5432}")
if u.username:
    print(f"database.user={unquote(u.username)}")
if u.password is not None:
    print(f"database.password={unquote(u.password)}")
if u.path.strip("/"):
    print(f"database.dbname={unquote(u.path.strip('/'))}")
for mode in parse_qs(u.query).get("sslmode", []):
    print(f"database.sslmode={mode}")
PY
}

service_args "${1:-}" "${2:-}"
shift 2
if [ "$cmd" = stop ]; then
    stop_pidfile "$dir" 30
    exit 0
fi

bootstrap="${KAFKA_BOOTSTRAP_SERVERS:-}" url_props=() host=127.0.0.1 port=5432 user=postgres
password="${PGPASSWORD:-}" dbname=postgres slot=debezium publication=dbz_publication
table=public.outbox prefix=outbox name=outbox-connector rest_port="" heap="${DEBEZIUM_HEAP:-512m}"
conn_sets=() worker_sets=() jvm_opts=() distributed=0 topics_prefix=""
while [ $# -gt 0 ]; do
    if [ "$1" = --distributed ]; then
        distributed=1
        shift
        continue
    fi
    [ $# -ge 2 ] || die "$1 needs a value"
    case "$1" in
        --bootstrap) bootstrap="$2" ;;
        --pg-url)
            out="$(pg_url "$2")" || exit 1
            mapfile -t url_props <<<"$out"
            ;;
        --host) host="$2" ;;
        --port) port="$2" ;;
        --user) user="$2" ;;
        --password) password="$2" ;;
        --dbname) dbname="$2" ;;
        --slot) slot="$2" ;;
        --publication) publication="$2" ;;
        --table) table="$2" ;;
        --topic-prefix) prefix="$2" ;;
        --name) name="$2" ;;
        --connector) conn_sets+=("$2") ;;
        --worker) worker_sets+=("$2") ;;
        --rest-port) rest_port="$2" ;;
        --heap) heap="$2" ;;
        --jvm-opt) jvm_opts+=("$2") ;;
        --topics-prefix) topics_prefix="$2" ;;
        *) die "unknown option $1 (see the header of scripts/debezium.sh)" ;;
    esac
    shift 2
done
[ -n "$bootstrap" ] || die "no Kafka: give --bootstrap HOST:PORT (or set KAFKA_BOOTSTRAP_SERVERS)"
[ -z "$topics_prefix" ] || [ "$distributed" = 1 ] || die "--topics-prefix needs --distributed"

JAVA="$(java_bin "Kafka Connect 4")"
check_lib
[ -n "$rest_port" ] || rest_port="$(free_port)"

db_props=("database.hostname=$host" "database.port=$port" "database.user=$user"
    "database.dbname=$dbname")
[ -z "$password" ] || db_props+=("database.password=$password")
conn_props=("name=$name"
    "connector.class=io.debezium.connector.postgresql.PostgresConnector"
    "tasks.max=1"
    "plugin.name=pgoutput"
    "${db_props[@]}" "${url_props[@]}"
    "topic.prefix=$prefix"
    "slot.name=$slot"
    "publication.name=$publication"
    "publication.autocreate.mode=filtered"
    "table.include.list=$table"
    "snapshot.mode=no_data"
    "transforms=outbox"
    "transforms.outbox.type=io.debezium.transforms.outbox.EventRouter"
    "${conn_sets[@]}")
write_props "$dir/connector.properties" "${conn_props[@]}"
common=("bootstrap.servers=$bootstrap"
    "key.converter=org.apache.kafka.connect.json.JsonConverter"
    "value.converter=org.apache.kafka.connect.json.JsonConverter")
if [ "$distributed" = 1 ]; then
    [ -z "$topics_prefix" ] || [[ "$topics_prefix" =~ ^[A-Za-z0-9._-]+$ ]] ||
        die "--topics-prefix $topics_prefix: a Kafka topic name allows only A-Z a-z 0-9 . _ -"
    # Unique to this host and DIR, stable across runs on the same DIR; the name made topic-safe.
    hash="$(printf '%s:%s' "$(uname -n)" "$dir" | cksum | cut -d ' ' -f 1)"
    safe_name="$(printf '%s' "$name" | tr -c 'A-Za-z0-9._-' '_')"
    [ -n "$topics_prefix" ] || topics_prefix="connect-$safe_name-$hash"
    write_json "$dir/connector.json" "${conn_props[@]}"
    write_props "$dir/worker.properties" \
        "${common[@]}" \
        "group.id=debezium-$safe_name-$hash" \
        "config.storage.topic=$topics_prefix-configs" \
        "offset.storage.topic=$topics_prefix-offsets" \
        "status.storage.topic=$topics_prefix-status" \
        "config.storage.replication.factor=1" \
        "offset.storage.replication.factor=1" \
        "status.storage.replication.factor=1" \
        "offset.flush.interval.ms=60000" \
        "listeners=http://127.0.0.1:$rest_port" \
        "plugin.discovery=service_load" \
        "${worker_sets[@]}"
else
    write_props "$dir/worker.properties" \
        "${common[@]}" \
        "offset.storage.file.filename=$dir/offsets" \
        "offset.flush.interval.ms=60000" \
        "listeners=http://127.0.0.1:$rest_port" \
        "plugin.discovery=service_load" \
        "${worker_sets[@]}"
fi
rest="http://127.0.0.1:$rest_port"
echo "$rest" >"$dir/rest"

jvm=(-Xms"$heap" -Xmx"$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
    -XX:TieredStopAtLevel=1 -Xshare:auto
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$ROOT/tests/debezium/log4j2.properties"
    "${jvm_opts[@]}" -cp "$LIB/*")
if [ "$distributed" = 1 ]; then
    main=(org.apache.kafka.connect.cli.ConnectDistributed "$dir/worker.properties")
else
    main=(org.apache.kafka.connect.cli.ConnectStandalone "$dir/worker.properties"
        "$dir/connector.properties")
fi

if [ "$cmd" = run ]; then
    if [ "$distributed" = 1 ]; then
        # $$ is this shell, the JVM after the exec below; the helper stops it if the connector
        # cannot be created.
        (create_connector $$ || kill -TERM $$ 2>/dev/null) &
    fi
    exec "$JAVA" "${jvm[@]}" "${main[@]}"
fi

# start: in the background, logging to DIR/connect.log; ready when the task has started.
if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
    die "a worker already runs from $dir (pid $(cat "$dir/pid")); scripts/debezium.sh stop $dir"
fi
: >"$dir/connect.log"
nohup "$JAVA" "${jvm[@]}" "${main[@]}" >>"$dir/connect.log" 2>&1 &
echo $! >"$dir/pid"
if [ "$distributed" = 1 ] && ! create_connector "$(cat "$dir/pid")" 2>>"$dir/connect.log"; then
    tail -n 30 "$dir/connect.log" >&2
    "$0" stop "$dir"
    die "the connector could not be created (log: $dir/connect.log)"
fi
for _ in $(seq 1200); do
    if grep -q "Source task finished initialization and start" "$dir/connect.log"; then
        cat "$dir/rest"
        exit 0
    fi
    if grep -q "Task threw an uncaught and unrecoverable exception\|Failed to start connector" "$dir/connect.log"; then
        grep -A 20 "Task threw an uncaught\|Failed to start connector" "$dir/connect.log" | head -n 40 >&2
        "$0" stop "$dir"
        die "the connector failed to start (log: $dir/connect.log)"
    fi
    kill -0 "$(cat "$dir/pid")" 2>/dev/null || {
        tail -n 30 "$dir/connect.log" >&2
        die "the worker exited during start-up (log: $dir/connect.log)"
    }
    sleep 0.1
done
tail -n 30 "$dir/connect.log" >&2
die "the connector's task did not start within 120 s (log: $dir/connect.log)"
