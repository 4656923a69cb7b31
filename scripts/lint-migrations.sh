#!/usr/bin/env bash
# Lints every migration with squawk (installed from PyPI when missing). Each tenant schema
# runs every tenant migration, so a locking or rewriting migration hurts once per tenant.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v squawk >/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore squawk-cli
fi
squawk --config .squawk.toml migrations/public/*/up.sql migrations/tenant/*/up.sql
