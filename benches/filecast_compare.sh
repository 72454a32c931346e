#!/usr/bin/env bash
# filecast against uftp, udpcast and the raw UDP multicast ceiling, side by side, on a netlab
# bridge (../shared/netlab; MTU 1500, 1,400-byte datagrams): SIZE bytes (default 256 MiB) to 1
# and to 3 receivers at 0 %, 1 % and 5 % independent loss per receiver and 2 % shared loss at
# the sender. Every copy is checked by SHA-256; goodput is SIZE / wall time from the sender's
# start to the last process's exit (setup and confirmation included, for every tool); CPU is
# user + system seconds of the sender and all receivers. Writes a markdown table to
# docs/benchmarks.md (or $OUT) and prints each measurement as it goes. filecast runs twice per
# cell: with --no-fsync, like uftp and udpcast, which do not fsync (the compared column), and
# in its default durable mode (fsync of each verified file before the rename).
#
# Usage (root): benches/filecast_compare.sh   env: SIZE, RECEIVERS="1 3", REPEAT, OUT, RMCAST_NETLAB
#
# REPEAT=N (default 1) runs every tool N times per cell, back to back, and reports the run with
# the median goodput, or the first run whose copies did not all verify (timings on a shared
# 2-CPU machine vary by 10-20 % from run to run).
#
# The ceiling is the best raw path: a GSO sender (UDP_SEGMENT, 46 datagrams per send) into a
# recvmmsg receiver (a small C program compiled here), unpaced, no reliability; its cell is
# the slowest receiver's delivered rate (first to last datagram) and the share delivered.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
NETLAB=${RMCAST_NETLAB:-$ROOT/../shared/netlab/netlab}
SIZE=${SIZE:-268435456}
REPEAT=${REPEAT:-1}
RECEIVERS=${RECEIVERS:-"1 3"}
OUT=${OUT:-$ROOT/docs/benchmarks.md}
PREFIX=fcb$(( $$ % 10000 ))
WORK=$(mktemp -d /tmp/filecast-bench.XXXXXX)
# independent permille per receiver, shared permille at the sender, label
CONDITIONS=("0 0 0 %" "10 0 1 % each" "50 0 5 % each" "0 20 2 % shared")
# TOOLS and ONLY (indices into CONDITIONS, e.g. "0 3") narrow a run for investigation; the
# checked-in table is made with the defaults (every tool, every condition).
TOOLS=${TOOLS:-"raw filecast filecast_fsync uftp udpcast"}
ONLY=${ONLY:-"0 1 2 3"}

[[ $(id -u) -eq 0 ]] || { echo "benches/filecast_compare.sh needs root (netlab)"; exit 1; }
[[ -x $NETLAB ]] || { echo "netlab not found at $NETLAB (set RMCAST_NETLAB)"; exit 1; }

# On a VM with virtio-balloon free page reporting, memory freed in the guest goes back to the
# host at once (min_free_ms 0 here), and the first write to such a page takes a host fault:
# touching 20 GiB of it took 100 s of system time, and a receiver's page-cache writes of
# 256 MiB ran at 0.2-0.4 GB/s instead of ~5 in one run out of two, for every tool that writes
# files. While this runs, freed pages stay with the guest for 2 minutes (restored on exit), so
# a run reuses the pages the previous run's copies freed and the page cache costs what it costs
# on a machine.
REPORTING=/sys/module/page_reporting/parameters/min_free_ms
REPORTING_WAS=
if [[ -w $REPORTING ]]; then
    REPORTING_WAS=$(cat "$REPORTING")
    echo 120000 >"$REPORTING" || REPORTING_WAS=
fi
cleanup() {
    "$NETLAB" --prefix "$PREFIX" down >/dev/null 2>&1 || true
    rm -rf "$WORK"
    if [[ -n $REPORTING_WAS ]]; then echo "$REPORTING_WAS" >"$REPORTING" || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
lab() { "$NETLAB" --prefix "$PREFIX" "$@"; }
# Starts a command in a lab host in the background. Not through `lab`: a backgrounded function
# runs in a subshell, so $! would be that subshell, and a TERM sent to it would never reach the
# command (stale uftpd daemons then kept running for their 150 s timeout, answering later runs
# and adding their CPU time to them). netlab execs `ip netns exec`, which execs the command, so
# here $! is the command's own `timeout`.
lab_bg() { "$NETLAB" --prefix "$PREFIX" exec "$@" & }

if ! command -v uftp >/dev/null || ! command -v udp-sender >/dev/null || ! command -v nft >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq uftp udpcast nftables >/dev/null
fi

echo "== building filecast (release) and the raw ceiling tool"
cargo build --release --example filecast 2>&1 | tail -1
FILECAST=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/filecast
cat >"$WORK/rawmc.c" <<'EOF'
/* rawmc send|recv IFADDR GROUP PORT BYTES: GSO sender / recvmmsg receiver, "END" marks the end. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {
    if (argc < 6) return 2;
    int dgram = 1400;
    long long total = atoll(argv[5]);
    struct in_addr ifa; inet_aton(argv[2], &ifa);
    struct sockaddr_in grp = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[4]))};
    inet_aton(argv[3], &grp.sin_addr);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    int big = 32 << 20;
    if (!strcmp(argv[1], "send")) {
        setsockopt(s, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big);
        setsockopt(s, IPPROTO_IP, IP_MULTICAST_IF, &ifa, sizeof ifa);
        int ttl = 1; setsockopt(s, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
        if (setsockopt(s, SOL_UDP, UDP_SEGMENT, &dgram, sizeof dgram)) { perror("UDP_SEGMENT"); return 1; }
        int per = 65000 / dgram; char *buf = calloc(per, dgram);
        long long sent = 0;
        while (sent < total) {
            long long left = total - sent; int n = left < (long long)per * dgram ? (int)left : per * dgram;
            ssize_t r = sendto(s, buf, n, 0, (struct sockaddr *)&grp, sizeof grp);
            if (r > 0) sent += r;
        }
        int zero = 0; setsockopt(s, SOL_UDP, UDP_SEGMENT, &zero, sizeof zero);
        for (int i = 0; i < 20; i++) { sendto(s, "END", 3, 0, (struct sockaddr *)&grp, sizeof grp); usleep(10000); }
        return 0;
    }
    setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = grp.sin_port, .sin_addr = grp.sin_addr};
    if (bind(s, (struct sockaddr *)&any, sizeof any)) { perror("bind"); return 1; }
    struct ip_mreq m = {.imr_multiaddr = grp.sin_addr, .imr_interface = ifa};
    if (setsockopt(s, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m)) { perror("join"); return 1; }
    struct timeval tv = {.tv_sec = 0, .tv_usec = 200000}; setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    enum { B = 64 }; static char bufs[B][2048]; struct mmsghdr msgs[B]; struct iovec iov[B];
    for (int i = 0; i < B; i++) { iov[i].iov_base = bufs[i]; iov[i].iov_len = 2048; memset(&msgs[i], 0, sizeof msgs[i]); msgs[i].msg_hdr.msg_iov = &iov[i]; msgs[i].msg_hdr.msg_iovlen = 1; }
    long long got = 0; double first = 0, last = 0, idle_since = now(); int done = 0;
    while (!done) {
        int n = recvmmsg(s, msgs, B, 0, NULL);
        double t = now();
        if (n <= 0) { if ((first > 0 && t - idle_since > 2.0) || t - idle_since > 30.0) break; continue; }
        idle_since = t;
        for (int i = 0; i < n; i++) {
            if (msgs[i].msg_len == 3 && !memcmp(bufs[i], "END", 3)) { done = 1; continue; }
            if (first == 0) first = t;
            last = t; got += msgs[i].msg_len;
        }
    }
    double secs = last - first;
    printf("%.1f %.1f\n", secs > 0 ? got / secs / 1e6 : 0, 100.0 * got / total);
    return 0;
}
EOF
cc -O2 -o "$WORK/rawmc" "$WORK/rawmc.c"

# Runs a command and appends its children's CPU seconds (user + system) to a file; forwards
# SIGTERM to the command so daemons (uftpd) can be stopped and still be measured. With T0_FILE
# in the environment it writes the wall-clock time at which it starts the command there: the
# interpreter's own start (~0.1 s here) is not the measured tool's time.
cat >"$WORK/cpu.py" <<'EOF'
import os, resource, signal, subprocess, sys, time
out = sys.argv[1]
if os.environ.get("T0_FILE"):
    with open(os.environ["T0_FILE"], "w") as f:
        f.write("%.6f\n" % time.time())
child = subprocess.Popen(sys.argv[2:])
signal.signal(signal.SIGTERM, lambda *_: child.terminate())
rc = child.wait()
r = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(out, "a") as f:
    f.write("%.3f\n" % (r.ru_utime + r.ru_stime))
sys.exit(rc)
EOF
# Each run counts CPU into a file of its own ($CPUF, made by `fresh`), so no straggler of an
# earlier run can add to it.
cpu_total() { awk '{s += $1} END {printf "%.2f", s}' "$CPUF"; }
t_now() { date +%s.%N; }
# sender_start FALLBACK: when the sender's command was started (see cpu.py), else FALLBACK.
sender_start() {
    if [[ -s $WORK/t0 ]]; then cat "$WORK/t0"; else echo "$1"; fi
    rm -f "$WORK/t0"
}

echo "== source: $SIZE random bytes"
mkdir -p "$WORK/src"
head -c "$SIZE" /dev/urandom >"$WORK/src/payload.bin"
SUM=$(sha256sum "$WORK/src/payload.bin" | cut -d' ' -f1)
# Warm-up: one copy's worth of page cache written and freed, so the first measured run does not
# pay the host's first-touch faults alone (see REPORTING above).
for _ in 1 2; do head -c "$SIZE" /dev/zero >"$WORK/warm.bin"; rm -f "$WORK/warm.bin"; done

# Checks every receiver's copy; prints "ok" or "BAD(hN…)".
verify() {
    local r=$1 bad=""
    for h in $(seq 1 "$r"); do
        local f="$WORK/out$h/payload.bin"
        if [[ ! -f $f ]] || [[ $(sha256sum "$f" | cut -d' ' -f1) != "$SUM" ]]; then bad+="h$h "; fi
    done
    if [[ -z $bad ]]; then echo ok; else echo "BAD(${bad% })"; fi
}
# Kills, by PID, whatever an earlier run left running in the lab's hosts h0..hR (nothing should
# be left; said on stderr when something was).
reap() {
    local h ns stale
    for h in $(seq 0 "$1"); do
        ns=$(lab ns "h$h") || continue
        stale=$(ip netns pids "$ns" 2>/dev/null || true)
        if [[ -n $stale ]]; then
            echo "reaping stale processes in h$h: $(echo $stale)" >&2
            kill -KILL $stale 2>/dev/null || true
        fi
    done
}
fresh() {
    reap "$1"
    rm -rf "$WORK"/out*
    CPUF=$(mktemp "$WORK/cpu.XXXXXX")
    for h in $(seq 1 "$1"); do mkdir -p "$WORK/out$h"; done
}
rate() { awk -v b="$SIZE" -v s="$1" 'BEGIN {printf "%.1f", b / s / 1e6}'; }

run_raw() {
    local r=$1 pids=()
    fresh "$r"
    for h in $(seq 1 "$r"); do
        lab_bg "h$h" timeout -k 2 60 python3 "$WORK/cpu.py" "$CPUF" "$WORK/rawmc" recv "198.18.0.1$h" 239.255.95.1 7500 "$SIZE" >"$WORK/rawout$h"
        pids+=($!)
    done
    sleep 0.5
    lab exec h0 timeout -k 2 60 python3 "$WORK/cpu.py" "$CPUF" "$WORK/rawmc" send 198.18.0.10 239.255.95.1 7500 "$SIZE" || true
    wait "${pids[@]}" || true
    # slowest receiver's rate and the smallest share delivered
    local worst; worst=$(cat "$WORK"/rawout* | sort -n | head -1)
    local share; share=$(cat "$WORK"/rawout* | awk '{print $2}' | sort -n | head -1)
    rm -f "$WORK"/rawout*
    echo "${worst%% *} $(cpu_total) ${share}%delivered"
}

run_filecast() { filecast_cell "$1" --no-fsync; }
run_filecast_fsync() { filecast_cell "$1"; }

# filecast_cell R [RECV-OPTION...]
filecast_cell() {
    local r=$1 pids=()
    shift
    fresh "$r"
    for h in $(seq 1 "$r"); do
        lab_bg "h$h" timeout -k 2 120 python3 "$WORK/cpu.py" "$CPUF" "$FILECAST" recv --interface "198.18.0.1$h" \
            --group 239.255.96.1:7600 --out "$WORK/out$h" --once --timeout 60 --quiet --name "h$h" "$@" 2>"$WORK/fc$h.err"
        pids+=($!)
    done
    sleep 0.5
    local t0 t1 rc=0
    rm -f "$WORK/t0"
    t0=$(t_now)
    T0_FILE="$WORK/t0" lab exec h0 timeout -k 2 120 python3 "$WORK/cpu.py" "$CPUF" "$FILECAST" send --interface 198.18.0.10 \
        --group 239.255.96.1:7600 --receivers "$r" --wait 30 --rate "$FILECAST_RATE" --quiet \
        "$WORK/src/payload.bin" 2>"$WORK/fc0.err" || rc=$?
    wait "${pids[@]}" || rc=$?
    t1=$(t_now)
    [[ -s $WORK/t0 ]] || echo "no sender start mark for $FUNCNAME" >&2
    t0=$(sender_start "$t0")
    local v; v=$(verify "$r")
    [[ $rc -eq 0 ]] || v="exit$rc/$v"
    echo "$(rate "$(echo "$t1 - $t0" | bc)") $(cpu_total) $v"
}

run_uftp() {
    local r=$1 pids=() hosts=""
    fresh "$r"
    for h in $(seq 1 "$r"); do
        lab_bg "h$h" timeout -k 2 150 python3 "$WORK/cpu.py" "$CPUF" uftpd -d -I veth0 -D "$WORK/out$h" \
            -M 239.255.93.1 -B 33554432 -x 0 >/dev/null 2>&1
        pids+=($!)
        hosts+="0xc612000$(printf '%x' $((10 + h))),"
    done
    sleep 0.5
    local t0 t1 rc=0
    rm -f "$WORK/t0"
    t0=$(t_now)
    # Best rate setting found: -R -1 (as fast as the interface allows); no encryption;
    # closed group (-H) so the announcement ends as soon as every receiver answered.
    T0_FILE="$WORK/t0" lab exec h0 timeout -k 2 120 python3 "$WORK/cpu.py" "$CPUF" uftp -I veth0 -M 239.255.93.1 \
        -P 239.255.93.2 -Y none -R -1 -B 33554432 -x 0 -H "${hosts%,}" "$WORK/src/payload.bin" \
        >/dev/null 2>&1 || rc=$?
    t1=$(t_now)
    [[ -s $WORK/t0 ]] || echo "no sender start mark for $FUNCNAME" >&2
    t0=$(sender_start "$t0")
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
    local v; v=$(verify "$r")
    [[ $rc -eq 0 ]] || v="exit$rc/$v"
    echo "$(rate "$(echo "$t1 - $t0" | bc)") $(cpu_total) $v"
}

run_udpcast() {
    local r=$1 pids=()
    fresh "$r"
    for h in $(seq 1 "$r"); do
        lab_bg "h$h" timeout -k 2 150 python3 "$WORK/cpu.py" "$CPUF" udp-receiver --interface veth0 \
            --file "$WORK/out$h/payload.bin" --nokbd --mcast-rdv-address 239.255.94.1 --portbase 9000 \
            --rcvbuf 33554432 >/dev/null 2>&1
        pids+=($!)
    done
    sleep 0.5
    local t0 t1 rc=0
    rm -f "$WORK/t0"
    t0=$(t_now)
    T0_FILE="$WORK/t0" lab exec h0 timeout -k 2 120 python3 "$WORK/cpu.py" "$CPUF" udp-sender --interface veth0 \
        --file "$WORK/src/payload.bin" --nokbd --min-receivers "$r" --mcast-rdv-address 239.255.94.1 \
        --mcast-data-address 239.255.94.2 --portbase 9000 >/dev/null 2>&1 </dev/null || rc=$?
    wait "${pids[@]}" || rc=$?
    t1=$(t_now)
    [[ -s $WORK/t0 ]] || echo "no sender start mark for $FUNCNAME" >&2
    t0=$(sender_start "$t0")
    local v; v=$(verify "$r")
    [[ $rc -eq 0 ]] || v="exit$rc/$v"
    echo "$(rate "$(echo "$t1 - $t0" | bc)") $(cpu_total) $v"
}

# pick RESULT...: the first result whose check failed, else the one with the median goodput
# (raw ceiling results have no check field, only a delivered share: median too).
pick() {
    local res
    for res in "$@"; do
        read -r _ _ chk <<<"$res"
        if [[ $chk != ok && $chk != *delivered ]]; then echo "$res"; return; fi
    done
    printf '%s\n' "$@" | sort -n -k1,1 | sed -n "$(( ($# + 1) / 2 ))p"
}

FILECAST_RATE=${FILECAST_RATE:-unlimited}
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A CEILING
rows=()
for r in $RECEIVERS; do
    lab up $((r + 1)) >/dev/null
    for ci in $ONLY; do
        read -r ind shared label <<<"${CONDITIONS[$ci]}"
        for h in $(seq 1 "$r"); do lab loss "h$h" in "$ind" >/dev/null 2>&1; done
        lab loss h0 out "$shared" >/dev/null 2>&1
        cells=()
        for tool in $TOOLS; do
            runs=()
            for _ in $(seq 1 "$REPEAT"); do
                result=$("run_$tool" "$r")
                echo "R=$r loss=$label $tool: MB/s CPU-s check = $result"
                runs+=("$result")
            done
            cells+=("$(pick "${runs[@]}")")
        done
        [[ ${#cells[@]} -eq 5 ]] || continue
        rows+=("$r|$label|${cells[0]}|${cells[1]}|${cells[2]}|${cells[3]}|${cells[4]}")
        if [[ $ind == 0 && $shared == 0 ]]; then CEILING[$r]=${cells[0]%% *}; fi
    done
    lab down >/dev/null
done

if [[ ${#rows[@]} -eq 0 ]]; then
    echo "== partial run (TOOLS=$TOOLS): no table written"
    exit 0
fi
{
    echo "# filecast benchmarks"
    echo
    echo "Generated by \`benches/filecast_compare.sh\` on $(date -u +%Y-%m-%d) ($(nproc) CPUs, $(uname -r))."
    echo "netlab bridge, MTU 1500; $((SIZE >> 20)) MiB of random data; loss by nftables (per"
    echo "receiver at its input, shared at the sender's switch port). Goodput = size / wall time"
    echo "from the start of the sender's command to the exit of every process (setup and confirmation included);"
    echo "CPU = user + system seconds of the sender and every receiver. Every copy is checked by"
    echo "SHA-256 (\`ok\`); \`BAD(h…)\` or \`exitN\` marks a failed run. The raw ceiling is an"
    echo "unpaced GSO (UDP_SEGMENT) sender into recvmmsg receivers, 1,400-byte datagrams, no"
    echo "reliability: its goodput is the slowest receiver's delivered rate and the share it got."
    echo "filecast runs with \`--rate $FILECAST_RATE\`, its receivers with \`--no-fsync\` (like uftp and"
    echo "udpcast, which do not fsync), and again in its default durable mode (\"filecast fsync\": each"
    echo "verified file fsynced before its rename); uftp with \`-R -1 -Y none\` (closed group);"
    echo "udpcast with its defaults. Load average (1/5/15 min) before: $LOAD_BEFORE, after:"
    echo "$(cut -d' ' -f1-3 /proc/loadavg) — other jobs on the machine share its CPUs, so compare"
    echo "columns within a row (measured back to back), not rows across runs. Each cell is the"
    echo "median of $REPEAT run(s) (\`REPEAT\`), or a failed run if any failed."
    echo
    echo "\"× best peer\" is filecast's goodput over the better of uftp and udpcast among runs"
    echo "that delivered identical copies; \"CPU/B vs peers\" is filecast's CPU seconds per byte over"
    echo "the lower of theirs; \"% ceiling\" is filecast over the loss-free raw rate to as many receivers."
    echo
    echo "| receivers | loss | raw ceiling MB/s (CPU s, delivered) | filecast MB/s (CPU s) | filecast fsync MB/s (CPU s) | uftp MB/s (CPU s) | udpcast MB/s (CPU s) | × best peer | CPU/B vs peers | % ceiling |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for row in "${rows[@]}"; do
        IFS='|' read -r r label raw fc fs uf uc <<<"$row"
        fmt() { read -r mbs cpu chk <<<"$1"; echo "$mbs ($cpu s, $chk)"; }
        read -r fc_mbs fc_cpu _ <<<"$fc"
        raw_mbs=${CEILING[$r]:-0}
        best=0 cpu_best=""
        for peer in "$uf" "$uc"; do
            read -r p_mbs p_cpu p_chk <<<"$peer"
            [[ $p_chk == ok ]] || continue
            best=$(awk -v a="$best" -v b="$p_mbs" 'BEGIN {print (b > a) ? b : a}')
            if [[ -z $cpu_best ]] || awk -v a="$p_cpu" -v b="$cpu_best" 'BEGIN {exit !(a < b)}'; then cpu_best=$p_cpu; fi
        done
        ratio=$(awk -v f="$fc_mbs" -v b="$best" 'BEGIN {if (b > 0) printf "%.2f", f / b; else print "n/a"}')
        cpu_ratio=$(awk -v f="$fc_cpu" -v b="${cpu_best:-0}" 'BEGIN {if (b > 0) printf "%.2f", f / b; else print "n/a"}')
        share=$(awk -v f="$fc_mbs" -v c="$raw_mbs" 'BEGIN {if (c > 0) printf "%.0f %%", 100 * f / c; else print "n/a"}')
        echo "| $r | $label | $(fmt "$raw") | $(fmt "$fc") | $(fmt "$fs") | $(fmt "$uf") | $(fmt "$uc") | $ratio | $cpu_ratio | $share |"
    done
} >"$OUT"
echo "== wrote $OUT"
cat "$OUT"
