#!/usr/bin/env bash
# The two commands of the README.
#
#   scripts/dev.sh up     the service with a database and the demo tenant, at 127.0.0.1:8080
#   scripts/dev.sh test   the whole test suite against a private PostgreSQL, straight and
#                         through a private pgbouncer in transaction mode, with a private
#                         S3-compatible store and SMTP server (scripts/peers.sh)
#
# Without DATABASE_URL, `up` starts a private PostgreSQL under .data/postgres (port 54329)
# and reuses it on the next start. `test` always uses its own under .data/postgres-test
# (port 54330 or the next free one), tuned for speed rather than durability.
set -euo pipefail
cd "$(dirname "$0")/.."

psql_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -n "${PG_BIN:-}" ]]; then echo "$PG_BIN/psql"; elif [[ -x "$dir/psql" ]]; then echo "$dir/psql"; else echo psql; fi
}

ensure_database() {
  local server_url=$1 name=$2
  local psql; psql=$(psql_bin)
  if [[ -z $("$psql" "$server_url" -Atc "SELECT 1 FROM pg_database WHERE datname = '$name'") ]]; then
    "$psql" "$server_url" -qc "CREATE DATABASE \"$name\"" >/dev/null
  fi
}

case "${1:-}" in
  up)
    if [[ -f .env ]]; then set -a; source .env; set +a; fi
    if [[ -z "${DATABASE_URL:-}" ]]; then
      server=$(scripts/pg.sh start .data/postgres 54329)
      ensure_database "$server" crowdminder
      export DATABASE_URL="${server%/postgres}/crowdminder"
    fi
    if [[ -z "${JWT_SECRET:-}" ]]; then
      mkdir -p .data
      [[ -s .data/jwt-secret ]] || (umask 077; head -c 48 /dev/urandom | base64 -w0 > .data/jwt-secret)
      JWT_SECRET=$(cat .data/jwt-secret)
      export JWT_SECRET
    fi
    export PUBLIC_URL_SCHEME=${PUBLIC_URL_SCHEME:-http}
    export PUBLIC_URL_PORT=${PUBLIC_URL_PORT:-8080}
    export BIND_ADDR=${BIND_ADDR:-127.0.0.1:8080}
    export METRICS_BIND=${METRICS_BIND:-127.0.0.1:9464}
    export GRAPHIQL=${GRAPHIQL:-true}
    cargo build --release --bin crowdminder
    bin=target/release/crowdminder
    "$bin" migrate
    CROWDMINDER_ADMIN_PASSWORD=${DEMO_ADMIN_PASSWORD:-demo-password} "$bin" tenants create demo \
      --host demo.localhost --name "Demo Consulting" --admin-email admin@demo.localhost \
      --admin-name "Demo Admin" --if-not-exists
    echo "GraphQL: http://demo.localhost:8080/graphql  GraphiQL: http://demo.localhost:8080/graphiql"
    echo "Sign in as admin@demo.localhost / ${DEMO_ADMIN_PASSWORD:-demo-password}"
    exec "$bin" serve
    ;;
  test)
    # The invoice PDF tests read PDFs back with pdftotext (poppler-utils) and set them in
    # DejaVu Sans (fonts-dejavu-core).
    missing=()
    command -v pdftotext >/dev/null 2>&1 || missing+=(poppler-utils)
    [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
    if [ ${#missing[@]} -gt 0 ]; then
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
          || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; }
      else
        echo "the tests need: ${missing[*]} (apt-get install ${missing[*]})" >&2
        exit 1
      fi
    fi
    server=$(scripts/pg.sh start .data/postgres-test 54330 -c fsync=off -c synchronous_commit=off -c full_page_writes=off)
    export TEST_DATABASE_URL=$server
    # A real S3-compatible store and a real SMTP server for the file and email tests.
    peers=$(scripts/peers.sh start .data/peers-test)
    eval "$peers"
    shift
    run_tests() {
      if cargo nextest --version >/dev/null 2>&1; then
        cargo nextest run --workspace --no-fail-fast "$@"
      else
        cargo test --workspace --no-fail-fast "$@"
      fi
    }
    # Twice: straight to PostgreSQL, then with every service pool going through pgbouncer in
    # transaction mode (4 server connections a database), as operators run it. Only what
    # needs a session of its own (LISTEN, the harness's set-up) connects directly then.
    echo "== tests straight to PostgreSQL"
    status=0
    run_tests "$@" || status=$?
    pooler=$(scripts/pgbouncer.sh start .data/pgbouncer-test 54340 "$server" 4)
    echo "== tests through pgbouncer (transaction mode) at $pooler"
    TEST_POOLER_URL=$pooler run_tests "$@" || status=$?
    if [ "$status" != 0 ]; then
      # What a failed run leaves to read: the machine's room and the servers' own words.
      echo "== the tests failed; the state of the machine and of the servers"
      df -h . /tmp 2>/dev/null || true
      free -m 2>/dev/null || true
      echo "open files allowed: $(ulimit -n)"
      scripts/pg.sh report .data/postgres-test || true
      scripts/pgbouncer.sh report .data/pgbouncer-test || true
      dmesg 2>/dev/null | grep -iE "out of memory|killed process|oom" | tail -n 5 || true
    fi
    exit $status
    ;;
  *)
    echo "usage: $0 up | test [test filters...]" >&2
    exit 2
    ;;
esac
