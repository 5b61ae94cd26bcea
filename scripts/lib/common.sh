# Shared helpers for Qiao's scripts: installing Debian packages and starting private,
# loopback-only servers for tests and benchmarks. Source it; do not run it.

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        die "installing packages needs root (or sudo): $*"
    fi
}

# apt_install PKG...: installs Debian packages, refreshing the package lists only if needed.
apt_install() {
    log "installing Debian packages: $*"
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null; then
        as_root apt-get update -qq >/dev/null
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
    fi
}

# free_port: prints a TCP port that is free on 127.0.0.1 right now.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pg_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

ensure_postgres() {
    [ -n "$(pg_bindir)" ] || apt_install postgresql
    [ -n "$(pg_bindir)" ] || die "PostgreSQL did not install"
}

# The cluster tests start and stop their own nats-server processes (loopback, free ports).
nats_bin() { command -v nats-server 2>/dev/null || ls /usr/sbin/nats-server /usr/bin/nats-server 2>/dev/null | head -n 1; }
ensure_nats() {
    [ -n "$(nats_bin)" ] || apt_install nats-server
    [ -n "$(nats_bin)" ] || die "nats-server did not install"
    QIAO_TEST_NATS_SERVER="$(nats_bin)"
    export QIAO_TEST_NATS_SERVER
}

# start_postgres DIR [durable]: starts a private PostgreSQL cluster in DIR on a free loopback
# port and exports QIAO_TEST_POSTGRES_URL (an admin URL to the `postgres` database).
# Without `durable`, fsync is off: tests do not need it and run much faster.
start_postgres() {
    local dir=$1 durable=${2:-}
    local bin port
    bin=$(pg_bindir)
    port=$(free_port)
    mkdir -p "$dir"
    chmod 755 "$dir"
    local runas=()
    if [ "$(id -u)" = 0 ]; then
        # PostgreSQL refuses to run as root; Debian's package created the postgres user.
        chown postgres: "$dir"
        runas=(runuser -u postgres --)
    fi
    local fsync=(-c fsync=off -c synchronous_commit=off -c full_page_writes=off)
    [ -n "$durable" ] && fsync=(-c fsync=on -c synchronous_commit=on)
    "${runas[@]}" "$bin/initdb" -D "$dir/data" -U qiao --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    "${runas[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -c listen_addresses=127.0.0.1 -k $dir -c max_connections=300 ${fsync[*]}" start >/dev/null ||
        { cat "$dir/server.log" >&2; die "PostgreSQL did not start"; }
    export QIAO_TEST_POSTGRES_URL="postgres://qiao@127.0.0.1:$port/postgres"
    PG_STARTED_DIR=$dir
    log "PostgreSQL $(basename "$(dirname "$bin")") listening on 127.0.0.1:$port"
}

stop_postgres() {
    [ -n "${PG_STARTED_DIR:-}" ] || return 0
    local runas=()
    [ "$(id -u)" = 0 ] && runas=(runuser -u postgres --)
    "${runas[@]}" "$(pg_bindir)/pg_ctl" -D "$PG_STARTED_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_STARTED_DIR"
    PG_STARTED_DIR=
}

# ensure_node: Node.js ≥ 20.19 and npm (Vite 7's minimum). Debian 12's own nodejs is 18, so
# an older Node is an error with advice rather than a silent downgrade.
ensure_node() {
    command -v node >/dev/null || apt_install nodejs npm
    command -v npm >/dev/null || apt_install npm
    node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' ||
        die "Node.js $(node --version) is too old for the web client: install Node.js 20.19 or newer"
}

# ensure_web_deps: the web client's npm packages, at the locked versions. (`npm ci` would
# refuse the lock file: npm records only this platform's optional packages, such as
# rollup's native binary, and `ci` then reports the others as missing.)
ensure_web_deps() {
    ensure_node
    if [ ! -d web/node_modules ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
        log "installing the web client's npm packages"
        (cd web && npm install --no-save --no-audit --no-fund --loglevel=error)
    fi
}

# ensure_chromium: Debian's Chromium for the browser tests, with CJK fonts so Chinese text
# renders in screenshots (playwright-core drives it; no browser is downloaded).
ensure_chromium() {
    # (grep without -q reads all of fc-list's output: under pipefail an early exit would fail it)
    local fonts
    fonts=$(fc-list 2>/dev/null || true)
    command -v chromium >/dev/null && grep -i "Noto Sans CJK" <<<"$fonts" >/dev/null &&
        grep -i "Noto Color Emoji" <<<"$fonts" >/dev/null && return 0
    apt_install chromium fonts-noto-cjk fonts-noto-color-emoji
}

# start_s3 DIR: starts an S3-compatible server (moto, from PyPI, in a virtualenv cached under
# ~/.cache/qiao-test) on a free loopback port and exports QIAO_TEST_S3_ENDPOINT and dummy AWS
# credentials for the file-storage tests. stop_s3 stops it.
start_s3() {
    local dir=$1 venv="${HOME}/.cache/qiao-test/moto-venv" port
    command -v python3 >/dev/null || apt_install python3
    if [ ! -x "$venv/bin/moto_server" ]; then
        log "installing moto (an S3-compatible test server) into $venv"
        python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$venv"; }
        "$venv/bin/pip" install -q --disable-pip-version-check "moto[server]==5.2.5" >/dev/null
    fi
    port=$(free_port)
    mkdir -p "$dir"
    "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$dir/moto.log" 2>&1 &
    echo $! >"$dir/moto.pid"
    for _ in $(seq 1 100); do
        if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/', timeout=1)" 2>/dev/null; then
            export QIAO_TEST_S3_ENDPOINT="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
            log "S3-compatible test server on $QIAO_TEST_S3_ENDPOINT"
            S3_DIR=$dir
            return 0
        fi
        sleep 0.2
    done
    die "the S3 test server did not start (see $dir/moto.log)"
}

stop_s3() {
    if [ -n "${S3_DIR:-}" ] && [ -f "$S3_DIR/moto.pid" ]; then
        kill "$(cat "$S3_DIR/moto.pid")" 2>/dev/null || true
        rm -f "$S3_DIR/moto.pid"
    fi
}
