#!/usr/bin/env bash
# bench-dhcp.sh: DHCP throughput of bootd against Kea and dnsmasq, same run, same
# pool, same network, same client (perfdhcp), and their resident memory with 10,000
# bindings. Run as root (network namespaces, port 67):
#   sudo scripts/bench-dhcp.sh
#
# Network: a server namespace (10.98.0.1/16) and a client namespace (10.98.255.254/16)
# joined by a veth pair; one server runs at a time, pinned to CPU SERVER_CPU, perfdhcp
# to CPU CLIENT_CPU. No traffic leaves the two namespaces, no DHCP server runs in the
# host's namespace; both namespaces are removed on exit or interrupt, and only the
# processes this script started (by PID) are ended.
#
# Pool: 10.98.0.10 - 10.98.234.105 (60,000 addresses) for all three servers. Replies:
# router, boot file pxelinux.0, lease time 24 h. Lease files: all three on a tmpfs
# (LEASE_DIR, default a directory under /dev/shm), each written as the server does it:
#   bootd    appends each new binding and fsyncs it before the ACK ([bootp] lease_file)
#   Kea      memfile, "persist": true (appends each lease change to a CSV, no fsync)
#   dnsmasq  --dhcp-leasefile (rewrites the whole file after each change), --no-ping
# LEASE_DIR=/some/disk/dir measures them on a disk instead. Logging: bootd at
# [logger] level = warning (info logs every reply), Kea at WARN, dnsmasq --quiet-dhcp.
#
# Throughput: perfdhcp -4 -l IFACE -B (DISCOVERs broadcast on the segment; MODE=relay
# uses perfdhcp -4 -l 10.98.255.254 10.98.0.1 instead: unicast to port 67). perfdhcp
# 2.2 sets giaddr = 10.98.255.254 in both modes, so the servers answer it as a relay
# (unicast to 10.98.255.254:67). Each step: -R CLIENTS simulated clients (MACs drawn at random, fixed seed) for STEP_SECONDS
# at a rate -r. Each step starts the server afresh with an empty lease file, so every
# step is the same workload: a mix of first DORAs (new bindings) and repeated ones.
# An exchange counts only when its ACK arrives; a step passes when fewer than 1% of
# the DISCOVERs sent got no ACK and perfdhcp sent >= 95% of the DISCOVERs asked for
# (a step that fails only for that is flagged "client-limited": perfdhcp was the limit).
# The rate doubles from START_RATE until a step fails (halves until one passes),
# then BISECT bisection steps; a failing step is run once more (RETRY=1) and fails
# only if it fails twice. Printed: the completed DORA/s (perfdhcp's "Rate") of
# the highest passing step, and bootd / peer.
#
# Memory: each server starts afresh and perfdhcp (a slower rate, new random clients
# per batch) runs until its lease file holds >= MEM_BINDINGS bound clients; then
# VmRSS and VmHWM from /proc/PID/status.
#
# Environment: CLIENTS (10000), STEP_SECONDS (5), START_RATE (500), MAX_RATE (64000),
# BISECT (3), RETRY (1), MEM_BINDINGS (10000), MODE (broadcast|relay), SERVERS ("bootd kea
# dnsmasq"), SERVER_CPU (1), CLIENT_CPU (0), LEASE_DIR, BOOTD (a prebuilt binary
# instead of `cargo build --release`), KEEP (1: keep the work directory).
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS=${CLIENTS:-10000}
STEP_SECONDS=${STEP_SECONDS:-5}
START_RATE=${START_RATE:-500}
MAX_RATE=${MAX_RATE:-64000}
MIN_RATE=25
BISECT=${BISECT:-3}
RETRY=${RETRY:-1}
MEM_BINDINGS=${MEM_BINDINGS:-10000}
MODE=${MODE:-broadcast}
read -r -a SERVERS <<<"${SERVERS:-bootd kea dnsmasq}"
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
KEEP=${KEEP:-0}

NET=10.98
SERVER_IP=$NET.0.1
CLIENT_IP=$NET.255.254
PREFIX=16
POOL_START=$NET.0.10
POOL_COUNT=60000
POOL_END=$NET.234.105 # POOL_START + POOL_COUNT - 1
SEED=1

die() {
    echo "bench-dhcp.sh: $*" >&2
    exit 1
}

[ "$(id -u)" -eq 0 ] || die "run as root (network namespaces, port 67)"
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (server on CPU $SERVER_CPU, perfdhcp on CPU $CLIENT_CPU)"
case $MODE in broadcast | relay) ;; *) die "MODE must be broadcast or relay" ;; esac
for s in "${SERVERS[@]}"; do
    case $s in bootd | kea | dnsmasq) ;; *) die "unknown server $s (bootd, kea, dnsmasq)" ;; esac
done

# --- packages -----------------------------------------------------------------------
# perfdhcp is in kea-admin. The Debian packages of Kea (and dnsmasq, if the full
# package were installed) start services in the host's namespace: policy-rc.d keeps
# them from starting, and anything that started anyway is stopped again.
server_names=(kea-dhcp4 kea-dhcp6 kea-ctrl-agent kea-dhcp-ddns dnsmasq)
missing=()
for p in kea-admin kea-dhcp4-server dnsmasq-base iproute2 util-linux procps; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    before=" $(pgrep -d ' ' -x "$(IFS='|'; echo "${server_names[*]}")" || true) "
    made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    install_rc=0
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } ||
        install_rc=$?
    if [ "$made_policy" = 1 ]; then
        rm -f /usr/sbin/policy-rc.d
    fi
    [ "$install_rc" = 0 ] || die "apt-get install ${missing[*]} failed"
    for pid in $(pgrep -x "$(IFS='|'; echo "${server_names[*]}")" || true); do
        case $before in *" $pid "*) continue ;; esac
        echo "stopping $(cat "/proc/$pid/comm" 2>/dev/null) (pid $pid), started by the install"
        kill "$pid" 2>/dev/null || true
    done
fi
PERFDHCP=$(command -v perfdhcp || echo /usr/sbin/perfdhcp)
KEA=$(command -v kea-dhcp4 || echo /usr/sbin/kea-dhcp4)
DNSMASQ=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)

# --- bootd --------------------------------------------------------------------------
if [ -z "${BOOTD:-}" ]; then
    . scripts/root.sh
    find_cargo
    cargo build --release --locked --quiet --bin bootd
fi
BOOTD=${BOOTD:-${CARGO_TARGET_DIR:-$PWD/target}/release/bootd}
[ -x "$BOOTD" ] || die "no bootd binary at $BOOTD"

# --- work directory (tmpfs), namespaces, cleanup ------------------------------------
WORK=$(mktemp -d /tmp/bench-dhcp.XXXXXX)
if [ -z "${LEASE_DIR:-}" ]; then
    if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then
        LEASE_DIR=$(mktemp -d /dev/shm/bench-dhcp.XXXXXX)
    else
        LEASE_DIR=$WORK/tmpfs
        mkdir "$LEASE_DIR"
        mount -t tmpfs -o size=256m bench-dhcp "$LEASE_DIR"
        MOUNTED=$LEASE_DIR
    fi
    REMOVE_LEASE_DIR=1
else
    mkdir -p "$LEASE_DIR"
    LEASE_DIR=$(mktemp -d "$LEASE_DIR/bench-dhcp.XXXXXX")
    REMOVE_LEASE_DIR=1
fi
LEASE_FS=$(stat -f -c %T "$LEASE_DIR")
SNS=dhcpsrv$$
CNS=dhcpcli$$
SIF=dsrv$$
CIF=dcli$$
SERVER_PID=""

stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_server
    ip netns del "$SNS" 2>/dev/null || true
    ip netns del "$CNS" 2>/dev/null || true
    if [ -n "${MOUNTED:-}" ]; then
        umount "$MOUNTED" 2>/dev/null || true
    fi
    if [ "$KEEP" = 1 ]; then
        echo "kept $WORK and $LEASE_DIR" >&2
    else
        [ "$REMOVE_LEASE_DIR" = 1 ] && rm -rf "$LEASE_DIR"
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$SNS"
ip netns add "$CNS"
ip link add "$SIF" netns "$SNS" type veth peer name "$CIF" netns "$CNS"
ip -n "$SNS" link set lo up
ip -n "$CNS" link set lo up
ip -n "$SNS" link set "$SIF" up
ip -n "$CNS" link set "$CIF" up
ip -n "$SNS" addr add "$SERVER_IP/$PREFIX" dev "$SIF"
ip -n "$CNS" addr add "$CLIENT_IP/$PREFIX" dev "$CIF"

# --- server configurations ----------------------------------------------------------
cat >"$WORK/bootd.ini" <<EOF
[logger]
type = file
level = warning
file = $WORK/bootd.log

[bootp]
pool_start = $POOL_START
pool_count = $POOL_COUNT
allow_simple_dhcp = on
lease_time = 86400
lease_file = $LEASE_DIR/bootd.leases

[bootfile]
default = pxelinux.0
EOF

cat >"$WORK/kea.json" <<EOF
{
  "Dhcp4": {
    "interfaces-config": { "interfaces": [ "$SIF" ], "dhcp-socket-type": "raw" },
    "lease-database": { "type": "memfile", "persist": true,
                        "name": "$LEASE_DIR/kea.leases", "lfc-interval": 0 },
    "valid-lifetime": 86400,
    "renew-timer": 43200,
    "rebind-timer": 75600,
    "next-server": "$SERVER_IP",
    "boot-file-name": "pxelinux.0",
    "subnet4": [ { "id": 1, "subnet": "$NET.0.0/$PREFIX",
                   "pools": [ { "pool": "$POOL_START - $POOL_END" } ],
                   "option-data": [ { "name": "routers", "data": "$SERVER_IP" } ] } ],
    "loggers": [ { "name": "kea-dhcp4", "severity": "WARN",
                   "output_options": [ { "output": "$WORK/kea.log" } ] } ]
  }
}
EOF

# Starts server $1 afresh (empty lease file) in the server namespace and waits until
# it has port 67 open; sets SERVER_PID.
start_server() {
    local server=$1 i ra_rcvd
    rm -f "$LEASE_DIR/$server".leases*
    case $server in
    bootd)
        ip netns exec "$SNS" taskset -c "$SERVER_CPU" "$BOOTD" -p -c "$WORK/bootd.ini" \
            >>"$WORK/bootd.out" 2>&1 &
        ;;
    kea)
        KEA_PIDFILE_DIR=$WORK KEA_LOCKFILE_DIR=$WORK \
            ip netns exec "$SNS" taskset -c "$SERVER_CPU" "$KEA" -c "$WORK/kea.json" \
            >>"$WORK/kea.out" 2>&1 &
        ;;
    dnsmasq)
        touch "$LEASE_DIR/dnsmasq.leases"
        ip netns exec "$SNS" taskset -c "$SERVER_CPU" "$DNSMASQ" --keep-in-foreground \
            --conf-file=/dev/null --pid-file= --port=0 --bind-interfaces \
            --interface="$SIF" --except-interface=lo --no-ping \
            --dhcp-range="$POOL_START,$POOL_END,255.255.0.0,24h" --dhcp-lease-max=100000 \
            --dhcp-leasefile="$LEASE_DIR/dnsmasq.leases" --dhcp-boot=pxelinux.0 \
            --dhcp-option=option:router,"$SERVER_IP" --quiet-dhcp \
            --log-facility="$WORK/dnsmasq.log" >>"$WORK/dnsmasq.out" 2>&1 &
        ;;
    esac
    SERVER_PID=$!
    for i in $(seq 100); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        if ip netns exec "$SNS" ss -Hulpn 'sport = :67' 2>/dev/null | grep -q "pid=$SERVER_PID,"; then
            # One exchange from a client outside the measured ones: it is up and serving.
            # (perfdhcp -n stops at its last DISCOVER: -n 2 and -W let the first DORA end.)
            perfdhcp_run -r 10 -n 2 -R 1 -b mac=02:00:00:00:00:01 -W 200000 \
                >"$WORK/probe.out" 2>&1 || true
            read -r _ _ _ _ ra_rcvd < <(parse_report <"$WORK/probe.out")
            [ "$ra_rcvd" -ge 1 ] && return 0
        fi
        sleep 0.1
    done
    echo "bench-dhcp.sh: $server did not start serving; its output:" >&2
    tail -n 20 "$WORK/$server.out" "$WORK/$server.log" "$WORK/probe.out" 2>/dev/null >&2 || true
    exit 1
}

# perfdhcp in the client namespace on CLIENT_CPU, with the mode's addressing.
perfdhcp_run() {
    local target=(-l "$CIF" -B)
    if [ "$MODE" = relay ]; then
        target=(-l "$CLIENT_IP" "$SERVER_IP")
    fi
    timeout 600 ip netns exec "$CNS" taskset -c "$CLIENT_CPU" \
        "$PERFDHCP" -4 "$@" "${target[@]}"
}

# Parses perfdhcp's report on stdin: "rate do_sent do_received ra_sent ra_received".
parse_report() {
    awk '
        /^Rate:/ { rate = $2 }
        /Statistics for: DISCOVER-OFFER/ { block = "do" }
        /Statistics for: REQUEST-ACK/ { block = "ra" }
        /^sent packets:/ { sent[block] = $3 }
        /^received packets:/ { received[block] = $3 }
        END { printf "%s %d %d %d %d\n", rate + 0, sent["do"], received["do"], sent["ra"], received["ra"] }
    '
}

# Number of clients server $1 has bound in its lease file.
bound_clients() {
    local f=$LEASE_DIR/$1.leases
    [ -f "$f" ] || { echo 0; return; }
    case $1 in
    bootd) # journal: MAC ADDRESS TIME STATE ...; the last line of a MAC wins
        awk '!/^#/ && NF >= 4 { state[$1] = $4 } END { n = 0; for (m in state) if (state[m] == "bound") n++; print n }' "$f" ;;
    kea) # CSV: address,hwaddr,...,state (10th): the last line of an address wins
        awk -F, 'NR > 1 && NF >= 10 { state[$1] = ($4 > 0 && $10 == 0) } END { n = 0; for (a in state) n += state[a]; print n }' "$f" ;;
    dnsmasq) # one line per lease
        grep -c . "$f" || true ;;
    esac
}

# bound_clients once the lease file stops changing (dnsmasq writes it some time after
# its replies): two equal counts 0.5 s apart, or the last one after 15 s.
settled_bound_clients() {
    local last=-1 n i
    for i in $(seq 30); do
        n=$(bound_clients "$1")
        [ "$n" = "$last" ] && break
        last=$n
        sleep 0.5
    done
    echo "$n"
}

# One throughput step: server $1 at rate $2. Sets VERDICT (pass|fail), DONE (completed
# DORA/s), LOST (% of DISCOVERs without an ACK), SHORT (1: perfdhcp sent fewer than 95%
# of the DISCOVERs asked for) and COUNTS.
step() {
    local server=$1 rate=$2 report out rate_done do_sent do_rcvd ra_sent ra_rcvd
    out=$WORK/step-$server-$rate.out
    start_server "$server"
    perfdhcp_run -r "$rate" -R "$CLIENTS" -p "$STEP_SECONDS" -s "$SEED" >"$out" 2>&1 || true
    stop_server
    read -r rate_done do_sent do_rcvd ra_sent ra_rcvd < <(parse_report <"$out")
    if [ "$do_sent" -eq 0 ]; then
        echo "bench-dhcp.sh: perfdhcp sent nothing against $server at rate $rate:" >&2
        tail -n 20 "$out" >&2
        exit 1
    fi
    read -r VERDICT DONE LOST SHORT < <(awk -v r="$rate" -v p="$STEP_SECONDS" \
        -v done="$rate_done" -v ds="$do_sent" -v rr="$ra_rcvd" 'BEGIN {
            lost = 100 * (ds - rr) / ds
            short = ds < 0.95 * r * p
            printf "%s %.0f %.2f %d\n", (lost < 1 && !short) ? "pass" : "fail", done, lost, short
        }')
    COUNTS="$do_sent/$do_rcvd/$ra_sent/$ra_rcvd"
    printf '  %-8s -r %-6s %s: %6s DORA/s, %5s%% without ACK (DISCOVER/OFFER/REQUEST/ACK %s)%s\n' \
        "$server" "$rate" "$VERDICT" "$DONE" "$LOST" "$COUNTS" \
        "$([ "$SHORT" = 1 ] && echo ", perfdhcp sent < 95% of the asked DISCOVERs" || true)"
}

# step, repeated once when it fails (RETRY=1): a burst of other work on the machine
# should not end a search.
try_step() {
    step "$1" "$2"
    if [ "$VERDICT" = fail ] && [ "$RETRY" = 1 ]; then
        step "$1" "$2"
    fi
}

# The rate search for server $1: sets RATE[$1] to the highest completed DORA/s of a
# passing step (0 if none passed).
search() {
    local server=$1 rate=$START_RATE lo=0 hi=0 best=0 i mid
    while :; do
        try_step "$server" "$rate"
        if [ "$VERDICT" = pass ]; then
            lo=$rate
            [ "$DONE" -gt "$best" ] && best=$DONE
            [ "$hi" -gt 0 ] && break
            rate=$((rate * 2))
            [ "$rate" -le "$MAX_RATE" ] || break
        else
            hi=$rate
            [ "$SHORT" = 1 ] && [ "${LOST%.*}" -lt 1 ] && CLIENT_LIMITED[$server]=1
            [ "$lo" -eq 0 ] || break
            rate=$((rate / 2))
            [ "$rate" -ge "$MIN_RATE" ] || break
        fi
    done
    for ((i = 0; i < BISECT; i++)); do
        [ "$lo" -gt 0 ] && [ "$hi" -gt 0 ] || break
        mid=$(((lo + hi) / 2))
        [ $((mid - lo)) -ge $((lo / 40 + 5)) ] || break
        try_step "$server" "$mid"
        if [ "$VERDICT" = pass ]; then
            lo=$mid
            [ "$DONE" -gt "$best" ] && best=$DONE
        else
            hi=$mid
            [ "$SHORT" = 1 ] && [ "${LOST%.*}" -lt 1 ] && CLIENT_LIMITED[$server]=1
        fi
    done
    RATE[$server]=$best
}

# Memory with MEM_BINDINGS bindings: server $1, perfdhcp at rate $2. Sets MEM[$1] to
# "bindings VmRSS VmHWM" (kB).
memory() {
    local server=$1 rate=$2 batch n=0 seed=100 deadline
    start_server "$server"
    deadline=$((SECONDS + 240))
    while :; do
        n=$(settled_bound_clients "$server")
        [ "$n" -ge "$MEM_BINDINGS" ] && break
        [ "$SECONDS" -lt "$deadline" ] || break
        # Each batch: a MAC base of its own (so only new clients), drawn from a range
        # four times the number still missing (few repeats).
        batch=$((MEM_BINDINGS - n))
        perfdhcp_run -r "$rate" -R $(((MEM_BINDINGS - n) * 4)) -n "$batch" -s "$seed" \
            -b "mac=02:$(printf %02x $((seed % 256))):00:00:00:00" -W 500000 \
            >"$WORK/mem-$server-$seed.out" 2>&1 || true
        seed=$((seed + 1))
    done
    MEM[$server]=$(awk -v n="$n" '/^VmRSS:/ { rss = $2 } /^VmHWM:/ { hwm = $2 } END { print n, rss, hwm }' \
        "/proc/$SERVER_PID/status")
    stop_server
}

# --- run ----------------------------------------------------------------------------
declare -A RATE=() CLIENT_LIMITED=() MEM=()
echo "bench-dhcp.sh: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg); server on CPU $SERVER_CPU, perfdhcp on CPU $CLIENT_CPU"
echo "  mode $MODE, $CLIENTS simulated clients, pool $POOL_START-$POOL_END ($POOL_COUNT), ${STEP_SECONDS}s steps"
echo "  lease files on $LEASE_FS ($LEASE_DIR); bootd $($BOOTD --version 2>/dev/null | head -n1 || true)"
echo "  Kea $("$KEA" -v 2>/dev/null), dnsmasq $("$DNSMASQ" --version | head -n1 | awk '{print $3}'), perfdhcp $("$PERFDHCP" -v 2>&1 | head -n1)"

for s in "${SERVERS[@]}"; do
    echo "throughput: $s"
    search "$s"
done
for s in "${SERVERS[@]}"; do
    # Half the highest passing rate, at least 100/s: the batches complete with few drops.
    mem_rate=$((RATE[$s] / 2))
    [ "$mem_rate" -ge 100 ] || mem_rate=100
    echo "memory: $s ($MEM_BINDINGS bindings at -r $mem_rate)"
    memory "$s" "$mem_rate"
done

echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on these CPUs skews the figures)"

ratio() { # bootd's value / peer's value, or - when either is missing
    awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else printf "-" }'
}

echo
echo "DORA exchanges/s at < 1% lost ($MODE, $CLIENTS clients, fresh server per ${STEP_SECONDS}s step, lease files on $LEASE_FS)"
printf '%-10s %12s %14s\n' server "DORA/s" "bootd/server"
for s in "${SERVERS[@]}"; do
    printf '%-10s %12s %14s%s\n' "$s" "${RATE[$s]}" "$(ratio "${RATE[bootd]:-0}" "${RATE[$s]}")" \
        "$([ -n "${CLIENT_LIMITED[$s]:-}" ] && echo "  (perfdhcp could not send faster: client-limited)" || true)"
done
echo
echo "Resident memory with >= $MEM_BINDINGS bound clients (kB, from /proc/PID/status)"
printf '%-10s %9s %9s %9s %14s\n' server bindings VmRSS VmHWM "bootd/server"
for s in "${SERVERS[@]}"; do
    read -r n rss hwm <<<"${MEM[$s]}"
    printf '%-10s %9s %9s %9s %14s\n' "$s" "$n" "$rss" "$hwm" \
        "$(ratio "$(echo "${MEM[bootd]:-0 0}" | cut -d' ' -f2)" "$rss")"
done
if [ -n "${MEM[bootd]:-}" ]; then
    read -r n rss hwm <<<"${MEM[bootd]}"
    echo
    echo "bootd resident memory with $n bindings: VmRSS $rss kB, VmHWM $hwm kB"
fi
