#!/usr/bin/env bash
# Checks that every repository path cited in COMPLIANCE.md exists, and that every
# `path::name` citation names a function `fn name` in that file.
#
# A citation is a backticked span that is a repository path: one under src/, cli/, ffi/,
# tests/, scripts/, benches/, examples/, fuzz/ or docs/, or a *.md file at the root,
# optionally followed by ::name. Exit 0 when all are there; exit 1 naming the others.
#
# Usage: scripts/check-compliance-paths.sh [FILE]   (default: COMPLIANCE.md at the root)

set -u

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 2
doc=${1:-COMPLIANCE.md}
if [ ! -f "$doc" ]; then
    echo "check-compliance-paths: $doc: no such file" >&2
    exit 2
fi

path_re='^((src|cli|ffi|tests|scripts|benches|examples|fuzz|docs)/[A-Za-z0-9_./-]*|[A-Za-z0-9_.-]+\.md)(::[A-Za-z_][A-Za-z0-9_]*)?$'

# Every backticked span on every line, one per line, without its backticks.
citations=$(grep -o '`[^`]*`' "$doc" | sed 's/^`//; s/`$//' | grep -E "$path_re" | sort -u)

checked=0
failed=0
while IFS= read -r citation; do
    [ -n "$citation" ] || continue
    checked=$((checked + 1))
    case $citation in
        *::*)
            path=${citation%%::*}
            name=${citation#*::}
            ;;
        *)
            path=$citation
            name=
            ;;
    esac
    if [ ! -e "$path" ]; then
        echo "missing: $path${name:+ (cited as $citation)}" >&2
        failed=$((failed + 1))
        continue
    fi
    if [ -n "$name" ]; then
        if [ ! -f "$path" ] || ! grep -Eq "fn[[:space:]]+$name[[:space:]]*[(<]" "$path"; then
            echo "no fn $name in $path" >&2
            failed=$((failed + 1))
        fi
    fi
done <<EOF
$citations
EOF

if [ "$failed" -ne 0 ]; then
    echo "check-compliance-paths: $failed of $checked citations in $doc do not resolve" >&2
    exit 1
fi
echo "check-compliance-paths: all $checked citations in $doc resolve"
