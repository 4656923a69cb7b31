#!/usr/bin/env bash
# The tenancy benchmark (benches/tenancy.rs): 1,000 tenants, tenant creation, no-op migrate,
# throughput on one tenant against round-robin over all, server memory.
#   scripts/bench-tenancy.sh   # BENCH_TENANTS=1000 BENCH_SECONDS=10 BENCH_PAIRS=6 by default
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
server=$(scripts/pg.sh start .data/postgres-bench 54331)
psql "$server" -qc "DROP DATABASE IF EXISTS crowdminder_bench WITH (FORCE)" -c "CREATE DATABASE crowdminder_bench"
cargo build --release --bin crowdminder
BENCH_DATABASE_URL="${server%/postgres}/crowdminder_bench" cargo bench --bench tenancy

# PostgreSQL alone: the statements of a request that reads its tenant's tables, always in
# one tenant against spread over 1,000 (8 clients, prepared statements; progress every 15 s,
# the spread's first interval includes warming each new backend's catalog caches).
pgbench=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | sort -V | tail -n 1)")/pgbench
for script in tenant_one tenant_spread; do
  echo "== pgbench $script"
  "$pgbench" -n -M prepared -c 8 -j 2 -T 45 -P 15 -f "benches/sql/$script.sql" "${server%/postgres}/crowdminder_bench" 2>&1 \
    | grep -E '^(progress|tps)'
done
