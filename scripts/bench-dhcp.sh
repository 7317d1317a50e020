#!/usr/bin/env bash
# bench-dhcp.sh: DHCP throughput of bootd against Kea and dnsmasq, same run, same
# pool, same network, same client (perfdhcp), with every lease file on the machine's
# disk: a storm of new clients, returning clients, and resident memory with 10,000
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
# router, boot file pxelinux.0, lease time 24 h. Lease files: all three in a directory
# under LEASE_DIR (default /var/tmp, on the disk: a tmpfs would hide the cost of
# making a binding durable), each written as the server does it:
#   bootd    appends the bindings of each turn of its loop with one write and one
#            fdatasync before their ACKs leave ([bootp] lease_file)
#   Kea      memfile, "persist": true (appends each lease change to a CSV, no fsync)
#   dnsmasq  --dhcp-leasefile (rewrites the whole file after each change, no fsync),
#            --no-ping
# The script measures what one append + fdatasync costs on that disk (dd
# oflag=dsync). Logging: bootd at [logger] level = warning (info logs every reply),
# Kea at WARN, dnsmasq --quiet-dhcp.
#
# perfdhcp -4 -l IFACE -B (DISCOVERs broadcast on the segment; MODE=relay uses
# perfdhcp -4 -l 10.98.255.254 10.98.0.1 instead: unicast to port 67). perfdhcp 2.2
# sets giaddr = 10.98.255.254 in both modes, so the servers answer it as a relay
# (unicast to 10.98.255.254:67). An exchange counts only when its ACK arrives within
# perfdhcp's drop time (1 s); a step passes when fewer than 1% of the DISCOVERs sent
# got no ACK and perfdhcp sent >= 95% of the DISCOVERs asked for (a step that fails
# only for that is flagged "client-limited": perfdhcp was the limit). The rate
# doubles from the start rate until a step fails (halves until one passes), then
# BISECT bisection steps; a failing step is run once more (RETRY=1) and fails only if
# it fails twice.
#
# New-client storm: each step starts the server afresh with an empty lease file and
# sends min(STORM_CLIENTS, rate x STORM_SECONDS) DISCOVERs at the rate, each from a
# new client (MACs drawn from 100,000,000: a repeat is rare). Printed: new bindings
# per second (ACKs over the sending time) at the highest passing step, and the curve
# past that knee: ACKs per second and the share lost when offered PAST_KNEE times
# that rate.
#
# Returning clients: each server starts once, CLIENTS clients are bound first
# (perfdhcp until >= 99% of them are in its lease file, or WARM_SECONDS), then every
# step draws from those same CLIENTS for STEP_SECONDS. Printed: the completed DORA/s
# (perfdhcp's "Rate") of the highest passing step, and the server's CPU time per
# exchange in that step (utime + stime of all its threads, from /proc/PID/stat). A
# failing step in which the server used less than 80% of its CPU did not fail for
# the server's sake: the search is flagged client-limited (one perfdhcp on one CPU
# completes about 9,000-11,000 exchanges a second, and loses replies past that).
#
# Returning clients on a CPU share ("capped"): the same, but once its clients are
# bound each server is confined to CAP_PERCENT of one CPU (a cgroup: cpu.max, or
# cpu.cfs_quota_us on cgroup v1, with a 1 ms quota per period). A server that needs less CPU
# per exchange completes more of them on the same share: this measures the
# servers rather than perfdhcp, which a server as fast as bootd outruns on a
# whole CPU. CAP_STORM=1 confines the storm's servers the same way: a server
# starved of CPU, and how it sheds past its knee.
#
# Rewrite: bootd starts with REWRITE_BINDINGS bindings in its lease file and binds
# new clients until it rewrites the file while serving; printed: its log line saying
# how long that held its loop up.
#
# Memory: each server starts afresh and perfdhcp (a slower rate, new random clients
# per batch) runs until its lease file holds >= MEM_BINDINGS bound clients; then
# VmRSS and VmHWM from /proc/PID/status.
#
# Environment: CAP_PERCENT (25), CAP_STORM (0), STORM_CLIENTS (50000), STORM_SECONDS (10), STORM_START (1000),
# PAST_KNEE ("2 4"), CLIENTS (10000), STEP_SECONDS (5), START_RATE (2000), WARM_RATE
# (1000), WARM_SECONDS (120), MAX_RATE (64000), BISECT (3), RETRY (1), MEM_BINDINGS
# (10000), REWRITE_BINDINGS (50000), MODE (broadcast|relay), SERVERS ("bootd kea
# dnsmasq"), PARTS ("storm returning capped memory rewrite"), SERVER_CPU (1), CLIENT_CPU
# (0), LEASE_DIR (/var/tmp), BOOTD (a prebuilt binary instead of `cargo build
# --release`), KEEP (1: keep the work directory).
set -euo pipefail
cd "$(dirname "$0")/.."

STORM_CLIENTS=${STORM_CLIENTS:-50000}
STORM_SECONDS=${STORM_SECONDS:-10}
STORM_START=${STORM_START:-1000}
read -r -a PAST_KNEE <<<"${PAST_KNEE:-2 4}"
STORM_RANGE=100000000
CLIENTS=${CLIENTS:-10000}
STEP_SECONDS=${STEP_SECONDS:-5}
START_RATE=${START_RATE:-2000}
WARM_RATE=${WARM_RATE:-1000}
WARM_SECONDS=${WARM_SECONDS:-120}
MAX_RATE=${MAX_RATE:-64000}
MIN_RATE=25
BISECT=${BISECT:-3}
RETRY=${RETRY:-1}
MEM_BINDINGS=${MEM_BINDINGS:-10000}
MODE=${MODE:-broadcast}
read -r -a SERVERS <<<"${SERVERS:-bootd kea dnsmasq}"
read -r -a PARTS <<<"${PARTS:-storm returning capped memory rewrite}"
REWRITE_BINDINGS=${REWRITE_BINDINGS:-50000}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
KEEP=${KEEP:-0}
CAP_PERCENT=${CAP_PERCENT:-25}
CAP_STORM=${CAP_STORM:-0}
CLOCK_TICKS=$(getconf CLK_TCK)

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
for p in "${PARTS[@]}"; do
    case $p in storm | returning | capped | memory | rewrite) ;; *) die "unknown part $p (storm, returning, capped, memory, rewrite)" ;; esac
done
has_part() {
    case " ${PARTS[*]} " in *" $1 "*) return 0 ;; esac
    return 1
}
case $CAP_PERCENT in '' | *[!0-9]*) die "CAP_PERCENT must be a whole number of percent (1-100)" ;; esac
[ "$CAP_PERCENT" -ge 1 ] && [ "$CAP_PERCENT" -le 100 ] || die "CAP_PERCENT must be 1-100"

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

# --- work directory, lease directory (disk), namespaces, cleanup --------------------
WORK=$(mktemp -d /tmp/bench-dhcp.XXXXXX)
mkdir -p "${LEASE_DIR:=/var/tmp}"
LEASE_DIR=$(mktemp -d "$LEASE_DIR/bench-dhcp.XXXXXX")
LEASE_FS=$(stat -f -c %T "$LEASE_DIR")
case $LEASE_FS in
tmpfs | ramfs) echo "bench-dhcp.sh: warning: $LEASE_DIR is on $LEASE_FS, not a disk: fsync costs nothing there" >&2 ;;
esac
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

# The cgroup that confines a server to CAP_PERCENT of one CPU ("capped"), made by
# cap_server and removed by cleanup once its server has ended.
CAP_GROUP=""

# Confines the running server to CAP_PERCENT of one CPU: a cgroup with a CPU quota
# (cgroup v2's cpu.max, or v1's cpu controller), and the server's threads moved into
# it. The period is the shortest the kernel allows (a quota of at least 1 ms): while
# the server is held back, requests queue up, and the burst of replies that follows
# must fit perfdhcp's receive buffer.
cap_server() {
    local period=$(((100000 + CAP_PERCENT - 1) / CAP_PERCENT)) quota
    [ "$period" -ge 1000 ] || period=1000
    quota=$((period * CAP_PERCENT / 100))
    if [ -z "$CAP_GROUP" ]; then
        if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
            grep -qw cpu /sys/fs/cgroup/cgroup.controllers || die "cgroup v2 without the cpu controller: cannot run the capped part"
            grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control || echo +cpu >/sys/fs/cgroup/cgroup.subtree_control
            CAP_GROUP=/sys/fs/cgroup/bench-dhcp$$
            mkdir "$CAP_GROUP"
            echo "$quota $period" >"$CAP_GROUP/cpu.max"
        elif [ -d /sys/fs/cgroup/cpu ]; then
            CAP_GROUP=/sys/fs/cgroup/cpu/bench-dhcp$$
            mkdir "$CAP_GROUP"
            echo "$period" >"$CAP_GROUP/cpu.cfs_period_us"
            echo "$quota" >"$CAP_GROUP/cpu.cfs_quota_us"
        else
            die "no cgroup cpu controller under /sys/fs/cgroup: cannot run the capped part"
        fi
    fi
    echo "$SERVER_PID" >"$CAP_GROUP/cgroup.procs"
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_server
    [ -z "$CAP_GROUP" ] || rmdir "$CAP_GROUP" 2>/dev/null || true
    ip netns del "$SNS" 2>/dev/null || true
    ip netns del "$CNS" 2>/dev/null || true
    if [ "$KEEP" = 1 ]; then
        echo "kept $WORK and $LEASE_DIR" >&2
    else
        rm -rf "$LEASE_DIR" "$WORK"
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
    [ "${KEEP_LEASES:-0}" = 1 ] || rm -f "$LEASE_DIR/$server".leases*
    case $server in
    bootd)
        ip netns exec "$SNS" taskset -c "$SERVER_CPU" "$BOOTD" -p -c "${BOOTD_INI:-$WORK/bootd.ini}" \
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

# Datagrams the client namespace's UDP sockets dropped so far, their receive
# buffer full (perfdhcp's, when replies come faster than it reads them).
client_drops() {
    ip netns exec "$CNS" awk '/^Udp:/ { getline; print $6; exit }' /proc/net/snmp
}

# CPU time the server has used so far, in clock ticks (all its threads).
server_ticks() {
    awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat" 2>/dev/null || echo 0
}

# Runs perfdhcp against the server already started ($1) at rate $2 with the further
# perfdhcp arguments $4..., its report in $3. Sets VERDICT (pass|fail), DONE
# (completed exchanges per second), LOST (% of DISCOVERs without an ACK), SHORT (1:
# perfdhcp sent fewer than 95% of the DISCOVERs asked for, $EXPECTED of them),
# COUNTS, SERVER_BUSY (% of one CPU the server used while perfdhcp ran),
# CPU_PER_EXCHANGE (server CPU microseconds per ACK) and CLIENT_DROPS (replies the
# client's socket dropped, its buffer full). DONE is perfdhcp's "Rate", or
# with PER_SENDING_TIME=1 the ACKs over the time the DISCOVERs took to send at the
# rate (a step with a fixed count).
measure() {
    local server=$1 rate=$2 out=$3 rate_done do_sent do_rcvd ra_sent ra_rcvd
    local ticks_before started_ns ended_ns ticks_after drops_before
    shift 3
    ticks_before=$(server_ticks)
    drops_before=$(client_drops)
    started_ns=$(date +%s%N)
    perfdhcp_run -r "$rate" "$@" >"$out" 2>&1 || true
    ended_ns=$(date +%s%N)
    ticks_after=$(server_ticks)
    CLIENT_DROPS=$(($(client_drops) - drops_before))
    read -r SERVER_BUSY CPU_PER_EXCHANGE < <(awk -v t=$((ticks_after - ticks_before)) \
        -v hz="$CLOCK_TICKS" -v ns=$((ended_ns - started_ns)) -v out="$out" 'BEGIN {
            while ((getline line < out) > 0) if (line ~ /^received packets:/) { split(line, f, " "); acks = f[3] }
            printf "%.0f %.1f\n", 100 * t / hz / (ns / 1e9), (acks > 0 ? 1e6 * t / hz / acks : 0)
        }')
    read -r rate_done do_sent do_rcvd ra_sent ra_rcvd < <(parse_report <"$out")
    if [ "$do_sent" -eq 0 ]; then
        echo "bench-dhcp.sh: perfdhcp sent nothing against $server at rate $rate:" >&2
        tail -n 20 "$out" >&2
        exit 1
    fi
    read -r VERDICT DONE LOST SHORT < <(awk -v r="$rate" -v expected="$EXPECTED" \
        -v done="$rate_done" -v per_send="${PER_SENDING_TIME:-0}" \
        -v ds="$do_sent" -v rr="$ra_rcvd" 'BEGIN {
            lost = 100 * (ds - rr) / ds
            short = ds < 0.95 * expected
            if (per_send == 1) done = rr / (ds / r)
            printf "%s %.0f %.2f %d\n", (lost < 1 && !short) ? "pass" : "fail", done, lost, short
        }')
    COUNTS="$do_sent/$do_rcvd/$ra_sent/$ra_rcvd"
}

# Prints the line of the step just measured ($1: server, $2: rate, $3: unit, $4: a
# note).
print_step() {
    printf '  %-8s -r %-6s %s: %6s %s, %5s%% without ACK (DISCOVER/OFFER/REQUEST/ACK %s), server CPU %s%% (%s us per ACK)%s%s%s\n' \
        "$1" "$2" "$VERDICT" "$DONE" "$3" "$LOST" "$COUNTS" "$SERVER_BUSY" "$CPU_PER_EXCHANGE" "${4:-}" \
        "$([ "$SHORT" = 1 ] && echo ", perfdhcp sent < 95% of the asked DISCOVERs" || true)" \
        "$([ "$CLIENT_DROPS" -gt 0 ] && echo ", perfdhcp's socket dropped $CLIENT_DROPS replies (its buffer full)" || true)"
}

# One storm step: server $1 started afresh, min(STORM_CLIENTS, rate x STORM_SECONDS)
# new clients at rate $2. Also sets ON_DISK: the clients bound in its lease file once
# it is stopped.
storm_step() {
    local server=$1 rate=$2 n
    n=$((rate * STORM_SECONDS))
    [ "$n" -le "$STORM_CLIENTS" ] || n=$STORM_CLIENTS
    EXPECTED=$n
    start_server "$server"
    [ "$CAP_STORM" = 0 ] || cap_server
    PER_SENDING_TIME=1 measure "$server" "$rate" "$WORK/storm-$server-$rate.out" \
        -n "$n" -R "$STORM_RANGE" -s "$SEED" -b mac=02:00:00:00:00:00 -W 1500000
    stop_server
    ON_DISK=$(bound_clients "$server")
    print_step "$server" "$rate" "new bindings/s" ", $ON_DISK bound in its lease file"
}

# One returning-client step: server $1, already serving its CLIENTS, at rate $2, with
# BUSY_LIMIT (% of one CPU) the most it may use. A step that fails while the server
# used less than 80% of that was not limited by the server: CLIENT_LIMITED.
returning_step() {
    local server=$1 rate=$2 kind=${STEP_KIND:-returning}
    EXPECTED=$((rate * STEP_SECONDS))
    measure "$server" "$rate" "$WORK/$kind-$server-$rate.out" \
        -R "$CLIENTS" -p "$STEP_SECONDS" -s "$SEED"
    print_step "$server" "$rate" "DORA/s"
    if [ "$VERDICT" = fail ] && [ $((SERVER_BUSY * 100)) -lt $((${BUSY_LIMIT:-100} * 80)) ]; then
        CLIENT_LIMITED[${kind}_step-$server]=1
    fi
}

# One returning-client step with the server confined to CAP_PERCENT of one CPU.
capped_step() {
    STEP_KIND=capped BUSY_LIMIT=$CAP_PERCENT returning_step "$@"
}

# Step $1 (storm_step, returning_step) for server $2 at rate $3, repeated once when it
# fails (RETRY=1): a burst of other work on the machine should not end a search.
try_step() {
    "$1" "$2" "$3"
    if [ "$VERDICT" = fail ] && [ "$RETRY" = 1 ]; then
        "$1" "$2" "$3"
    fi
}

# The rate search with step $1 for server $2 from rate $3: sets BEST to the highest
# DONE of a passing step (0 if none passed) and BEST_RATE to its rate; CLIENT_LIMITED
# when perfdhcp could not send as fast as asked.
search() {
    local kind=$1 server=$2 rate=$3 lo=0 hi=0 i mid
    BEST=0
    BEST_RATE=0
    BEST_CPU=0
    while :; do
        try_step "$kind" "$server" "$rate"
        if [ "$VERDICT" = pass ]; then
            lo=$rate
            [ "$DONE" -gt "$BEST" ] && BEST=$DONE && BEST_RATE=$rate && BEST_CPU=$CPU_PER_EXCHANGE
            [ "$hi" -gt 0 ] && break
            rate=$((rate * 2))
            [ "$rate" -le "$MAX_RATE" ] || break
        else
            hi=$rate
            [ "$SHORT" = 1 ] && [ "${LOST%.*}" -lt 1 ] && CLIENT_LIMITED[$kind-$server]=1
            [ "$lo" -eq 0 ] || break
            rate=$((rate / 2))
            [ "$rate" -ge "$MIN_RATE" ] || break
        fi
    done
    for ((i = 0; i < BISECT; i++)); do
        [ "$lo" -gt 0 ] && [ "$hi" -gt 0 ] || break
        mid=$(((lo + hi) / 2))
        [ $((mid - lo)) -ge $((lo / 40 + 5)) ] || break
        try_step "$kind" "$server" "$mid"
        if [ "$VERDICT" = pass ]; then
            lo=$mid
            [ "$DONE" -gt "$BEST" ] && BEST=$DONE && BEST_RATE=$mid && BEST_CPU=$CPU_PER_EXCHANGE
        else
            hi=$mid
            [ "$SHORT" = 1 ] && [ "${LOST%.*}" -lt 1 ] && CLIENT_LIMITED[$kind-$server]=1
        fi
    done
    return 0
}

# The storm for server $1: STORM[$1] (new bindings/s at the knee) and PAST[$1-$m] for
# each multiple m of the knee's rate ("ACKs/s lost%").
storm() {
    local server=$1 m
    search storm_step "$server" "$STORM_START"
    STORM[$server]=$BEST
    [ "$BEST_RATE" -gt 0 ] || return 0
    for m in "${PAST_KNEE[@]}"; do
        storm_step "$server" $((BEST_RATE * m))
        PAST[$server-$m]="$DONE $LOST"
    done
}

# Binds CLIENTS clients on server $1 (already started): perfdhcp at WARM_RATE, 10 s
# at a time with a new seed, until >= 99% of them are in its lease file or
# WARM_SECONDS have passed. Sets WARM[$1] to the share bound (%).
warm_up() {
    local server=$1 seed=200 n deadline=$((SECONDS + WARM_SECONDS))
    while :; do
        perfdhcp_run -r "$WARM_RATE" -R "$CLIENTS" -p 10 -s "$seed" -W 500000 \
            >"$WORK/warm-$server-$seed.out" 2>&1 || true
        seed=$((seed + 1))
        n=$(settled_bound_clients "$server")
        [ $((n * 100)) -ge $((CLIENTS * 99)) ] && break
        [ "$SECONDS" -lt "$deadline" ] || break
    done
    WARM[$server]=$(awk -v n="$n" -v c="$CLIENTS" 'BEGIN { printf "%.1f", 100 * n / c }')
    echo "  $server: $n of $CLIENTS clients bound before the search (${WARM[$server]}%)"
}

# Returning clients on server $1: RETURNING[$1] (DORA/s).
returning() {
    local server=$1
    start_server "$server"
    warm_up "$server"
    search returning_step "$server" "$START_RATE"
    RETURNING[$server]=$BEST
    RETURNING_CPU[$server]=$BEST_CPU
    stop_server
}

# Returning clients on server $1 confined to CAP_PERCENT of one CPU once they are
# bound: CAPPED[$1] (DORA/s), CAPPED_CPU[$1] (CPU us per ACK at that step). The
# search starts at what the share would allow at the whole-CPU search's CPU cost.
capped() {
    local server=$1 start
    start_server "$server"
    warm_up "$server"
    cap_server
    start=$(awk -v c="${RETURNING_CPU[$server]:-0}" -v p="$CAP_PERCENT" -v s="$START_RATE" \
        'BEGIN { r = c > 0 ? 0.8 * p * 1e4 / c : s * p / 100; printf "%d", r < 100 ? 100 : r }')
    search capped_step "$server" "$start"
    CAPPED[$server]=$BEST
    CAPPED_CPU[$server]=$BEST_CPU
    stop_server
}

# How long bootd's loop is held up by a rewrite of a lease file of REWRITE_BINDINGS
# bindings: it starts with them in its file (a pool of 65,000 addresses), binds new
# clients until 10,000 lines were appended, which asks for a rewrite, and logs how
# long the rewrite held the loop up. Sets REWRITE to that line.
rewrite_stall() {
    local n=$REWRITE_BINDINGS deadline round=0
    sed -e 's/^level = warning/level = info/' -e 's/^pool_count = .*/pool_count = 65000/' \
        "$WORK/bootd.ini" >"$WORK/bootd-rewrite.ini"
    rm -f "$LEASE_DIR"/bootd.leases*
    awk -v n="$n" 'BEGIN {
        for (i = 0; i < n; i++) {
            a = i + 10
            printf "06-00-00-%02X-%02X-%02X 10.98.%d.%d 1718000000 bound\n", int(i / 65536) % 256, int(i / 256) % 256, i % 256, int(a / 256), a % 256
        }
    }' >"$LEASE_DIR/bootd.leases"
    : >"$WORK/bootd.log"
    KEEP_LEASES=1 BOOTD_INI=$WORK/bootd-rewrite.ini start_server bootd
    deadline=$((SECONDS + 120))
    while ! grep -q "rewrote the lease file\|cannot rewrite the lease file" "$WORK/bootd.log"; do
        [ "$SECONDS" -lt "$deadline" ] || break
        # perfdhcp numbers its clients from the base MAC whatever the seed: a base
        # of its own per round, or the rounds after the first bind nobody new.
        round=$((round + 1))
        perfdhcp_run -r 2000 -n 4000 -R "$STORM_RANGE" -s "$round" \
            -b "mac=04:$(printf %02x $((round % 256))):00:00:00:00" -W 500000 \
            >"$WORK/rewrite-perfdhcp.out" 2>&1 || true
    done
    stop_server
    REWRITE=$({ grep -h "rewrote the lease file\|cannot rewrite the lease file" "$WORK/bootd.log" || true; } |
        tail -n 1 | sed 's/.*(bootp) //')
    : "${REWRITE:=no rewrite within 120 s}"
    echo "  $REWRITE"
}

# What one append of a lease line and its fdatasync cost on the lease files' disk
# (dd with oflag=dsync: each write is synced as it is made): FDATASYNC_MS, the mean.
fdatasync_cost() {
    local probe=$LEASE_DIR/fdatasync-probe seconds count=1000
    : >"$probe"
    seconds=$(dd if=/dev/zero of="$probe" bs=48 count=$count oflag=dsync,append conv=notrunc 2>&1 |
        sed -n 's/.* copied, \([0-9.]*\) s,.*/\1/p')
    rm -f "$probe"
    FDATASYNC_MS=$(awk -v s="${seconds:-0}" -v n=$count 'BEGIN { printf "%.3f", s * 1000 / n }')
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
declare -A STORM=() PAST=() RETURNING=() RETURNING_CPU=() CAPPED=() CAPPED_CPU=() WARM=() CLIENT_LIMITED=() MEM=()
echo "bench-dhcp.sh: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg); server on CPU $SERVER_CPU, perfdhcp on CPU $CLIENT_CPU"
echo "  mode $MODE, pool $POOL_START-$POOL_END ($POOL_COUNT); bootd $($BOOTD --version 2>/dev/null | head -n1 || true)"
echo "  Kea $("$KEA" -v 2>/dev/null), dnsmasq $("$DNSMASQ" --version | head -n1 | awk '{print $3}'), perfdhcp $("$PERFDHCP" -v 2>&1 | head -n1)"
fdatasync_cost
echo "  lease files on $LEASE_FS ($LEASE_DIR): one line appended with O_DSYNC costs $FDATASYNC_MS ms (mean of 1000)"

if has_part storm; then
    for s in "${SERVERS[@]}"; do
        echo "new-client storm: $s (up to $STORM_CLIENTS new clients, ${STORM_SECONDS}s at most per step)"
        storm "$s"
    done
fi
if has_part returning; then
    for s in "${SERVERS[@]}"; do
        echo "returning clients: $s ($CLIENTS clients, ${STEP_SECONDS}s steps)"
        returning "$s"
    done
fi
if has_part capped; then
    for s in "${SERVERS[@]}"; do
        echo "returning clients on $CAP_PERCENT% of one CPU: $s ($CLIENTS clients, ${STEP_SECONDS}s steps)"
        capped "$s"
    done
fi
if has_part memory; then
    for s in "${SERVERS[@]}"; do
        # Half the highest passing rate, at least 100/s: the batches complete with few drops.
        mem_rate=$((${RETURNING[$s]:-${STORM[$s]:-200}} / 2))
        [ "$mem_rate" -ge 100 ] || mem_rate=100
        echo "memory: $s ($MEM_BINDINGS bindings at -r $mem_rate)"
        memory "$s" "$mem_rate"
    done
fi

if has_part rewrite; then
    echo "lease-file rewrite: bootd with $REWRITE_BINDINGS bindings"
    rewrite_stall
fi

echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on these CPUs skews the figures)"

ratio() { # bootd's value / peer's value, or - when either is missing
    awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else printf "-" }'
}

limited() { # the client-limited note of search $1 for server $2
    [ -n "${CLIENT_LIMITED[$1-$2]:-}" ] && echo "  (client-limited: perfdhcp could not go faster, the server could)" || true
}

if has_part storm; then
    echo
    echo "New-client storm: new bindings/s at < 1% lost ($MODE,$([ "$CAP_STORM" = 0 ] || echo " each server on $CAP_PERCENT% of one CPU,") up to $STORM_CLIENTS new clients per step, fresh server per step, lease files on $LEASE_FS, fdatasync $FDATASYNC_MS ms)"
    header=$(printf '%-10s %12s %14s' server "bindings/s" "bootd/server")
    for m in "${PAST_KNEE[@]}"; do
        header+=$(printf ' %22s' "at ${m}x: ACKs/s, lost")
    done
    echo "$header"
    for s in "${SERVERS[@]}"; do
        row=$(printf '%-10s %12s %14s' "$s" "${STORM[$s]}" "$(ratio "${STORM[bootd]:-0}" "${STORM[$s]}")")
        for m in "${PAST_KNEE[@]}"; do
            if [ -n "${PAST[$s-$m]:-}" ]; then
                read -r acks lost <<<"${PAST[$s-$m]}"
                row+=$(printf ' %22s' "$acks, $lost%")
            else
                row+=$(printf ' %22s' -)
            fi
        done
        echo "$row$(limited storm_step "$s")"
    done
    echo "(bootd makes each binding durable with fdatasync before its ACK; Kea's memfile and dnsmasq do not fsync)"
fi
if has_part returning; then
    echo
    echo "Returning clients: DORA/s at < 1% lost ($MODE, $CLIENTS clients bound before the search, ${STEP_SECONDS}s steps, lease files on $LEASE_FS)"
    printf '%-10s %12s %14s %16s %10s\n' server "DORA/s" "bootd/server" "CPU us per ACK" "bound"
    for s in "${SERVERS[@]}"; do
        printf '%-10s %12s %14s %16s %9s%%%s\n' "$s" "${RETURNING[$s]}" \
            "$(ratio "${RETURNING[bootd]:-0}" "${RETURNING[$s]}")" "${RETURNING_CPU[$s]:-}" "${WARM[$s]:-}" \
            "$(limited returning_step "$s")"
    done
fi
if has_part capped; then
    echo
    echo "Returning clients, each server confined to $CAP_PERCENT% of one CPU: DORA/s at < 1% lost ($MODE, $CLIENTS clients, ${STEP_SECONDS}s steps)"
    printf '%-10s %12s %14s %16s\n' server "DORA/s" "bootd/server" "CPU us per ACK"
    for s in "${SERVERS[@]}"; do
        printf '%-10s %12s %14s %16s%s\n' "$s" "${CAPPED[$s]}" \
            "$(ratio "${CAPPED[bootd]:-0}" "${CAPPED[$s]}")" "${CAPPED_CPU[$s]:-}" \
            "$(limited capped_step "$s")"
    done
fi
if has_part rewrite; then
    echo
    echo "bootd rewriting a lease file of $REWRITE_BINDINGS bindings (and the 10,000 it bound since) while serving:"
    echo "  $REWRITE"
fi
if has_part memory; then
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
fi
