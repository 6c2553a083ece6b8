#!/usr/bin/env bash
# The whole suite: every test file under Bun and under Deno, then deno check, deno lint and deno fmt --check.
# Prints each tool's output, then one closing line "N passed, N failed" (each check counts as one).
set -u
cd "$(dirname "$0")/.."
bin=node_modules/.bin
export NO_COLOR=1
passed=0
failed=0
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# count NAME PASSED FAILED: adds a runner's own counts; a runner that printed none has failed as a whole.
count() {
  if [ -z "$2" ] || [ -z "$3" ]; then
    echo "== $1 printed no summary: counted as one failure"
    failed=$((failed + 1))
  else
    passed=$((passed + $2))
    failed=$((failed + $3))
  fi
}

check() {
  local name=$1
  shift
  if "$@" >"$out/check.txt" 2>&1; then
    passed=$((passed + 1))
  else
    cat "$out/check.txt"
    echo "== $name failed"
    failed=$((failed + 1))
  fi
}

# The checkout's own state (what the README's commands keep beside the bundled forwarder.yaml) is the user's:
# the suite must neither change it nor make one.
state() { sha256sum forwarder-state.db* 2>/dev/null; }
state_before=$(state)

echo "== bun test"
$bin/bun test --timeout 600000 tests/ 2>&1 | tee "$out/bun.txt"
count "bun test" "$(grep -oE '^ *[0-9]+ pass$' "$out/bun.txt" | tail -1 | grep -oE '[0-9]+')" \
  "$(grep -oE '^ *[0-9]+ fail$' "$out/bun.txt" | tail -1 | grep -oE '[0-9]+')"

echo "== deno test"
$bin/deno test --allow-all tests/ 2>&1 | tee "$out/deno.txt"
summary=$(grep -E '^(ok|FAILED) \| [0-9]+ passed' "$out/deno.txt" | tail -1)
count "deno test" "$(echo "$summary" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+')" \
  "$(echo "$summary" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+')"

echo "== deno check, lint, fmt"
check "deno check" $bin/deno check forward.ts lib/ tests/
check "deno lint" $bin/deno lint
check "deno fmt --check" $bin/deno fmt --check

if [ "$(state)" = "$state_before" ]; then
  passed=$((passed + 1))
else
  echo "== the suite changed or made the checkout's own forwarder-state.db"
  failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
