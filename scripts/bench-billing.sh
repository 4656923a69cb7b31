#!/usr/bin/env bash
# The billing benchmark (benches/billing.rs): createInvoice over 10,000 entries against the
# same rows selected in bare SQL, and the PDF of a 500-line invoice.
#   scripts/bench-billing.sh   # BENCH_RUNS=7 by default
set -euo pipefail
cd "$(dirname "$0")/.."
server=$(scripts/pg.sh start .data/postgres-bench 54331)
psql "$server" -qc "DROP DATABASE IF EXISTS crowdminder_bench_billing WITH (FORCE)" -c "CREATE DATABASE crowdminder_bench_billing"
BENCH_DATABASE_URL="${server%/postgres}/crowdminder_bench_billing" cargo bench --bench billing
