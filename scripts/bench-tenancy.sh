#!/usr/bin/env bash
# The tenancy benchmark (benches/tenancy.rs): 1,000 tenants, tenant creation, no-op migrate,
# throughput on one tenant against round-robin over all, server memory.
#   scripts/bench-tenancy.sh            # BENCH_TENANTS=1000 BENCH_SECONDS=15 by default
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
server=$(scripts/pg.sh start .data/postgres-bench 54331)
psql "$server" -qc "DROP DATABASE IF EXISTS crowdminder_bench WITH (FORCE)" -c "CREATE DATABASE crowdminder_bench"
cargo build --release --bin crowdminder
BENCH_DATABASE_URL="${server%/postgres}/crowdminder_bench" cargo bench --bench tenancy
