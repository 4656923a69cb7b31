#!/usr/bin/env bash
# The benchmarks, each against a fresh database on a private PostgreSQL (port 54331):
#
#   scripts/bench.sh tenancy   1,000 tenants: creation, no-op migrate, throughput on one
#                              tenant against round-robin over all, server memory; then
#                              pgbench of the same statements (installs wrk if missing)
#                              straight and through pgbouncer (port 54341) side by side
#                              BENCH_TENANTS=1000 BENCH_SECONDS=10 BENCH_PAIRS=6
#   scripts/bench.sh jobs      no-op jobs over 100 tenants drained by 2 and 8 concurrent
#                              jobs; commit-to-start delay through LISTEN/NOTIFY
#                              BENCH_TENANTS=100 BENCH_JOBS=5000 BENCH_LATENCY_JOBS=500
#   scripts/bench.sh time      one tenant with 1,000,000 entries: the billable-hours report
#                              and a page of entries through the API against the same SQL;
#                              the page's throughput straight, with DB_STATEMENT_CACHE=off
#                              and through pgbouncer
#                              BENCH_ENTRIES=1000000 BENCH_RUNS=30 BENCH_SECONDS=10
#   scripts/bench.sh leave     teamLeaveBalances for 20 and 200 users x 5 leave types:
#                              statements per request and time through HTTP
#                              BENCH_RUNS=30
#   scripts/bench.sh billing   createInvoice over 10,000 entries against the same rows in
#                              bare SQL, and the PDF of a 500-line invoice
#                              BENCH_RUNS=7
#   scripts/bench.sh hostile   200 logins at once (peak memory), correct logins a second
#                              under 200 clients, and another tenant's `me` (p50, p99) idle
#                              and while one tenant sends the most expensive request allowed
#                              from 8 connections
#                              BENCH_SECONDS=10 BENCH_SAMPLES=200
#   scripts/bench.sh api       the API's reads (pages of entries, me, tenantSettings,
#                              clients, billableHours) under wrk -c8 against pgbench running
#                              the leanest SQL for each, taking turns: req/s, p50/p99, CPU
#                              per request of the server and of PostgreSQL; latency with one
#                              connection; memory after a spread over 1,000 tenants
#                              BENCH_SECONDS=10 BENCH_ROUNDS=3 BENCH_TENANTS=1000
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-}
case "$name" in
  tenancy | jobs | time | leave | billing | hostile | api) ;;
  *)
    echo "usage: $0 tenancy | jobs | time | leave | billing | hostile | api" >&2
    exit 2
    ;;
esac
if [[ $name == tenancy || $name == time || $name == api ]]; then
  command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
fi
server=$(scripts/pg.sh start .data/postgres-bench 54331)
database="${server%/postgres}/crowdminder_bench_$name"
psql "$server" -qc "DROP DATABASE IF EXISTS crowdminder_bench_$name WITH (FORCE)" -c "CREATE DATABASE crowdminder_bench_$name"
# These two time server processes of their own: straight to PostgreSQL and through a
# private pgbouncer in transaction mode (8 server connections), side by side.
pooled=
if [[ $name == hostile || $name == api ]]; then
  cargo build --release --bin crowdminder
fi
if [[ $name == tenancy || $name == time ]]; then
  cargo build --release --bin crowdminder
  pooler=$(scripts/pgbouncer.sh start .data/pgbouncer-bench 54341 "$server" 8)
  pooled="${pooler%/postgres}/crowdminder_bench_$name"
fi
BENCH_DATABASE_URL="$database" BENCH_POOLER_URL="$pooled" cargo bench --bench "$name"

if [[ $name == tenancy ]]; then
  # PostgreSQL alone: the statements of a request that reads its tenant's tables, always in
  # one tenant against spread over 1,000 (8 clients, prepared statements; progress every
  # 15 s, the spread's first interval includes warming each new backend's catalog caches).
  pgbench=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | sort -V | tail -n 1)")/pgbench
  for script in tenant_one tenant_spread; do
    echo "== pgbench $script"
    "$pgbench" -n -M prepared -c 8 -j 2 -T 45 -P 15 -f "benches/sql/$script.sql" "$database" 2>&1 \
      | grep -E '^(progress|tps)'
  done
fi
