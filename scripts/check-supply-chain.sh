#!/usr/bin/env bash
# cargo deny over the whole workspace with every feature (deny.toml): advisories against the
# offline RustSec snapshot in ../shared/advisory-db (or ENVCRYPT_ADVISORY_DB), licenses,
# bans and sources. Installs cargo-deny when missing.
# Usage: scripts/check-supply-chain.sh
set -euo pipefail
cd "$(dirname "$0")/.."
snapshot=${ENVCRYPT_ADVISORY_DB:-$(pwd)/../shared/advisory-db}
test -f "$snapshot/SNAPSHOT.md" || { echo "advisory snapshot missing at $snapshot" >&2; exit 1; }
if ! cargo deny --version >/dev/null 2>&1; then
  cargo install --locked cargo-deny
fi
# cargo-deny reads the database only as a git repository, under the directory name it
# derives from the default URL.
db=target/advisory-db/advisory-db-3157b0e258782691
rm -rf "$db" && mkdir -p "$db" && cp -r "$snapshot/." "$db"
(cd "$db" && git init -q && git add -A \
  && git -c user.name=ci -c user.email=ci@localhost commit -qm snapshot)
cargo fetch --locked --quiet
cargo deny --offline --all-features check advisories licenses bans sources
