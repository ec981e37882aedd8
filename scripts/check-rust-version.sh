#!/usr/bin/env bash
# Checks that every crate of the workspace declares `rust-version` equal to the highest
# `rust-version` among its dependencies (all features, as Cargo.lock resolves them), and that
# the toolchain in use is at least that. Only one toolchain can be had here, so this is the
# check instead of a build on the oldest supported compiler.
# Usage: scripts/check-rust-version.sh
set -euo pipefail
cd "$(dirname "$0")/.."
read -r -d '' check <<'PY' || true
import json, subprocess, sys

def version(text):
    return tuple(int(part) for part in text.split("."))

meta = json.load(sys.stdin)
members = set(meta['workspace_members'])
resolved = {node['id'] for node in meta['resolve']['nodes']}
deps = [p for p in meta['packages'] if p['id'] in resolved and p['id'] not in members]
declared = [p for p in deps if p.get('rust_version')]
highest = max(declared, key=lambda p: version(p['rust_version']))
need = highest['rust_version']
print('highest dependency rust-version: %s (%s %s; %d of %d dependencies declare one)'
      % (need, highest['name'], highest['version'], len(declared), len(deps)))
failed = False
for p in meta['packages']:
    if p['id'] not in members:
        continue
    have = p.get('rust_version')
    if have is None or version(have) != version(need):
        print('%s: rust-version %s, but the dependencies need %s' % (p['name'], have, need),
              file=sys.stderr)
        failed = True
    else:
        print('%s: rust-version %s ok' % (p['name'], have))
rustc = subprocess.run(['rustc', '--version'], capture_output=True, text=True, check=True).stdout
if version(rustc.split()[1].split('-')[0]) < version(need):
    print('toolchain %s is older than %s' % (rustc.strip(), need), file=sys.stderr)
    failed = True
sys.exit(1 if failed else 0)
PY
cargo metadata --locked --format-version 1 --all-features | python3 -c "$check"
