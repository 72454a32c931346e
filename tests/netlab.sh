#!/usr/bin/env bash
# Multi-host filecast test in netlab namespaces (../shared/netlab), called by tests/netlab.rs:
# h0 sends a tree (empty, small and 32 MiB files) to h1..h3 with 1 % independent loss at each
# receiver (nft input hook) and 1 % shared loss at the sender's switch port; every copy must
# be identical (content and mode) and every process must exit 0. The lab is torn down by a
# trap whatever happens; every process runs under `timeout -k`.
#
# Usage: tests/netlab.sh FILECAST_BINARY NETLAB_SCRIPT [RATE]
set -euo pipefail

BIN=$1
NETLAB=$2
RATE=${3:-400M}
PREFIX="fct$(( $$ % 100000 ))"
GROUP=239.255.92.1:7400
WORK=$(mktemp -d /tmp/filecast-netlab.XXXXXX)

cleanup() {
    "$NETLAB" --prefix "$PREFIX" down >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

lab() { "$NETLAB" --prefix "$PREFIX" "$@"; }

echo "== netlab $PREFIX: 1 sender, 3 receivers, 1 % loss per receiver + 1 % shared, rate $RATE"
lab up 4 >/dev/null
for h in 1 2 3; do lab loss "h$h" in 10 >/dev/null; done
lab loss h0 out 10 >/dev/null

mkdir -p "$WORK/src/tree/sub"
: > "$WORK/src/tree/empty"
echo "hello, lab" > "$WORK/src/tree/small.txt"
chmod 640 "$WORK/src/tree/small.txt"
head -c 33554432 /dev/urandom > "$WORK/src/tree/sub/big.bin"
chmod 755 "$WORK/src/tree/sub/big.bin"
head -c 100001 /dev/urandom > "$WORK/src/tree/sub/mid.bin"

pids=()
for h in 1 2 3; do
    lab exec "h$h" timeout -k 5 150 "$BIN" recv --interface "198.18.0.1$h" --group "$GROUP" \
        --out "$WORK/out$h" --once --timeout 60 --name "h$h" --json \
        >"$WORK/r$h.json" 2>"$WORK/r$h.err" &
    pids+=($!)
done
sleep 0.5
set +e
lab exec h0 timeout -k 5 150 "$BIN" send --interface 198.18.0.10 --group "$GROUP" \
    --receivers 3 --wait 30 --rate "$RATE" --json "$WORK/src/tree" \
    >"$WORK/send.json" 2>"$WORK/send.err"
send_rc=$?
fail=0
for i in 0 1 2; do
    wait "${pids[$i]}"
    rc=$?
    h=$((i + 1))
    if [[ $rc -ne 0 ]]; then
        echo "FAIL: receiver h$h exited $rc"; sed 's/^/  h'"$h"': /' "$WORK/r$h.err"; fail=1
    fi
done
set -e
if [[ $send_rc -ne 0 ]]; then
    echo "FAIL: sender exited $send_rc"; fail=1
fi
sed 's/^/  sender: /' "$WORK/send.err" | grep -v 'sent: \|^  sender: sent ' || true

listing() { (cd "$1" && find . -type f -printf '%P %m %s\n' | sort); }
for h in 1 2 3; do
    if [[ ! -d $WORK/out$h/tree ]] || ! diff -r "$WORK/src/tree" "$WORK/out$h/tree" >/dev/null \
        || [[ "$(listing "$WORK/src/tree")" != "$(listing "$WORK/out$h/tree")" ]]; then
        echo "FAIL: h$h's copy differs from the source"; fail=1
    else
        echo "h$h: identical copy ($(listing "$WORK/out$h/tree" | wc -l) files)"
    fi
done
for h in 0 1 2 3; do
    echo "loss counters h$h: $(lab counters "h$h" 2>/dev/null | tr '\n' ' ' | tr -s ' ')"
done
echo "sender json: $(cat "$WORK/send.json")"
for h in 1 2 3; do echo "h$h json: $(cat "$WORK/r$h.json")"; done
if [[ $fail -ne 0 ]]; then
    echo "netlab filecast test FAILED"
    exit 1
fi
echo "netlab filecast test passed"
