#!/usr/bin/env bash
# bench-tftp.sh: TFTP throughput and CPU cost of bootd against tftpd-hpa and dnsmasq,
# same run, same file, same network, same client. Run as root (network namespaces,
# port 69):
#   sudo scripts/bench-tftp.sh
#
# The servers each listen on their own address in one server namespace (bootd
# 10.97.0.11, bootd with [tftp] single_port = on 10.97.0.14 ("bootd-1port"),
# tftpd-hpa 10.97.0.12, dnsmasq 10.97.0.13), pinned to CPU 0;
# the client (scripts/bench/tftp_bench_client.rs, built as a cargo example) runs in a
# client namespace (10.97.0.2), pinned to CPU 1. A veth pair with MTU 9000 on both
# ends joins them, so every server sees the same MTU and blksize 8192 fits a frame.
# No traffic leaves the two namespaces; both are removed on exit or interrupt.
#
# Measured: one 64 MiB transfer at blksize 512, 1468, 8192 (no windowsize asked),
# and at windowsize 1, 8, 16, 64 (blksize 1468); the median of REPEAT runs, the
# servers taking turns within each repetition, each repetition starting with the next
# server (see in_turn). A server that does not grant the window a client asks for
# serves it lock-step (RFC 7440 clients fall back to windowsize 1): its cell is what
# such a client gets, marked with '*'. Then CONCURRENT transfers of the same file
# started at once (blksize 1468), CONCURRENT_REPEAT times (a multiple of 3 gives each
# server each turn equally often): aggregate MB/s, failures, and when the first of
# them was done (next to the wall time, when the last was: how evenly the server
# shares itself among clients booting at once). Then a boot storm: STORM clients
# (50 and 200) each fetching one STORM_MIB (8) MiB file lock-step (no windowsize, as
# most firmware), at blksize 1468 and 512. Then bootd's peak RSS (VmHWM).
#
# Server CPU seconds per GiB served: utime + stime of the server process from
# /proc/PID/stat over the run, divided by the bytes the client received. tftpd-hpa
# forks a child per transfer and ignores SIGCHLD, so its children's time never
# reaches the parent: a sampler reads each child's every 50 ms and the last reading
# of each counts (a child's last 50 ms may be missed: tftpd-hpa's figure is a
# little low). CPU time is far less sensitive than MB/s to other work on the
# machine. It counts what the kernel does in the server's system calls, not
# softirq work charged elsewhere.
# MB/s = 10^6 bytes/s. Each transfer is checked byte for byte against the file, and
# its length against the file size and tsize.
#
# dnsmasq sizes its packet buffer from --edns-packet-max (default 1232) and caps the
# TFTP blksize to it (2263); with DNS off (--port=0) that option only raises the cap.
#
# Environment: REPEAT (3), CONCURRENT (200), CONCURRENT_REPEAT (1), SIZE_MIB (64),
# STORM ("50 200"; empty: no storm), STORM_BLKSIZES ("1468 512"), STORM_MIB (8),
# STORM_REPEAT (1), PARTS (which parts run: "single concurrent storm"), MTU (9000), BOOTD / CLIENT (prebuilt binaries instead of
# `cargo build`).
set -euo pipefail
cd "$(dirname "$0")/.."

REPEAT=${REPEAT:-3}
CONCURRENT=${CONCURRENT:-200}
CONCURRENT_REPEAT=${CONCURRENT_REPEAT:-1}
SIZE_MIB=${SIZE_MIB:-64}
STORM=${STORM-50 200}
STORM_BLKSIZES=${STORM_BLKSIZES:-1468 512}
STORM_MIB=${STORM_MIB:-8}
STORM_REPEAT=${STORM_REPEAT:-1}
PARTS=" ${PARTS:-single concurrent storm} "
MTU=${MTU:-9000}
NET=10.97.0
CLIENT_IP=$NET.2
SERVERS=(bootd bootd-1port tftpd-hpa dnsmasq)
declare -A ADDR=([bootd]=$NET.11 [bootd-1port]=$NET.14 [tftpd-hpa]=$NET.12 [dnsmasq]=$NET.13)
HZ=$(getconf CLK_TCK)
SERVER_CPU=0
CLIENT_CPU=1

if [ "$(id -u)" -ne 0 ]; then
    echo "bench-tftp.sh: run as root (network namespaces, port 69)" >&2
    exit 1
fi
if [ "$(nproc)" -lt 2 ]; then
    echo "bench-tftp.sh: needs 2 CPUs (server on CPU $SERVER_CPU, client on CPU $CLIENT_CPU)" >&2
    exit 1
fi

# --- packages -----------------------------------------------------------------------
missing=()
for p in tftpd-hpa dnsmasq-base iproute2 util-linux procps; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    # Keep the packages' own services (tftpd-hpa on the host) from starting.
    made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [ "$made_policy" = 1 ]; then
        rm -f /usr/sbin/policy-rc.d
    fi
fi

# --- binaries -----------------------------------------------------------------------
if [ -z "${BOOTD:-}" ] || [ -z "${CLIENT:-}" ]; then
    . scripts/root.sh
    find_cargo
    cargo build --release --locked --quiet --bin bootd --example tftp-bench-client
fi
BOOTD=${BOOTD:-${CARGO_TARGET_DIR:-$PWD/target}/release/bootd}
CLIENT=${CLIENT:-${CARGO_TARGET_DIR:-$PWD/target}/release/examples/tftp-bench-client}
IN_TFTPD=$(command -v in.tftpd || echo /usr/sbin/in.tftpd)
DNSMASQ=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)

# --- workspace, namespaces, cleanup -------------------------------------------------
WORK=$(mktemp -d /tmp/bench-tftp.XXXXXX)
ROOT=$WORK/root
SNS=benchsrv$$
CNS=benchcli$$
declare -A PID=()

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for s in "${!PID[@]}"; do
        local pid=${PID[$s]}
        # tftpd-hpa forks one child per transfer: end those of our server too.
        for child in $(pgrep -P "$pid" 2>/dev/null || true); do
            kill "$child" 2>/dev/null || true
        done
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    ip netns del "$SNS" 2>/dev/null || true
    ip netns del "$CNS" 2>/dev/null || true
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$ROOT"
chmod 755 "$WORK" "$ROOT"
head -c $((SIZE_MIB << 20)) /dev/urandom >"$ROOT/bench.bin"
chmod 644 "$ROOT/bench.bin"
FILE_BYTES=$((SIZE_MIB << 20))
head -c $((STORM_MIB << 20)) /dev/urandom >"$ROOT/storm.bin"
chmod 644 "$ROOT/storm.bin"

ip netns add "$SNS"
ip netns add "$CNS"
ip link add bsrv$$ netns "$SNS" type veth peer name bcli$$ netns "$CNS"
ip -n "$SNS" link set lo up
ip -n "$CNS" link set lo up
ip -n "$SNS" link set bsrv$$ mtu "$MTU" up
ip -n "$CNS" link set bcli$$ mtu "$MTU" up
for s in "${SERVERS[@]}"; do
    ip -n "$SNS" addr add "${ADDR[$s]}/24" dev bsrv$$
done
ip -n "$CNS" addr add "$CLIENT_IP/24" dev bcli$$

# --- servers ------------------------------------------------------------------------
cat >"$WORK/bootd.ini" <<EOF
[logger]
type = file
level = info
file = $WORK/bootd.log

[tftp]
root = $ROOT
address = ${ADDR[bootd]}
port = 69
windowsize = 64
max_transfers = 1000
# Every benchmark client shares one address.
max_transfers_per_client = 1000
EOF
sed -e "s|^address = .*|address = ${ADDR[bootd-1port]}|" -e "s|/bootd.log|/bootd-1port.log|" \
    "$WORK/bootd.ini" >"$WORK/bootd-1port.ini"
echo "single_port = on" >>"$WORK/bootd-1port.ini"

ip netns exec "$SNS" taskset -c "$SERVER_CPU" "$BOOTD" -t -c "$WORK/bootd.ini" \
    2>"$WORK/bootd.err" &
PID[bootd]=$!
ip netns exec "$SNS" taskset -c "$SERVER_CPU" "$BOOTD" -t -c "$WORK/bootd-1port.ini" \
    2>"$WORK/bootd-1port.err" &
PID[bootd-1port]=$!
ip netns exec "$SNS" taskset -c "$SERVER_CPU" "$IN_TFTPD" -L -s -u nobody \
    -a "${ADDR[tftpd-hpa]}:69" "$ROOT" 2>"$WORK/tftpd-hpa.err" &
PID[tftpd-hpa]=$!
ip netns exec "$SNS" taskset -c "$SERVER_CPU" "$DNSMASQ" --keep-in-foreground \
    --conf-file=/dev/null --pid-file= --port=0 --enable-tftp --tftp-root="$ROOT" \
    --tftp-max=1000 --bind-interfaces --listen-address="${ADDR[dnsmasq]}" \
    --edns-packet-max=9000 --log-facility="$WORK/dnsmasq.log" 2>"$WORK/dnsmasq.err" &
PID[dnsmasq]=$!

for s in "${SERVERS[@]}"; do
    for _ in $(seq 50); do
        ip netns exec "$SNS" ss -Hlun "sport = :69" | grep -q "${ADDR[$s]}:69" && break
        if ! kill -0 "${PID[$s]}" 2>/dev/null; then
            echo "$s did not start:" >&2
            cat "$WORK/$s.err" >&2
            exit 1
        fi
        sleep 0.1
    done
    ip netns exec "$SNS" ss -Hlun "sport = :69" | grep -q "${ADDR[$s]}:69" || {
        echo "$s is not listening on ${ADDR[$s]}:69" >&2
        exit 1
    }
done

tftpd_version=$(dpkg-query -W -f='${Version}' tftpd-hpa 2>/dev/null || echo "?")
dnsmasq_version=$("$DNSMASQ" --version | head -1 | awk '{print $3}')
echo "bootd $("$BOOTD" --version 2>&1 | awk '{print $NF}') ($(git rev-parse --short HEAD 2>/dev/null || echo '?')) (bootd-1port: the same with [tftp] single_port = on), tftpd-hpa $tftpd_version, dnsmasq $dnsmasq_version"
echo "file: $SIZE_MIB MiB random; veth MTU $MTU both ends; servers pinned to CPU $SERVER_CPU, client to CPU $CLIENT_CPU (taskset)"
echo "median of $REPEAT runs per point; MB/s = 10^6 bytes/s; every transfer verified byte for byte"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the host disturbs the numbers)"
echo

# Busy and total ticks of the server and client CPUs (everything on them: the server,
# its forked children, the kernel's network work, the client): "sb st cb ct".
cpu_sample() {
    awk -v s="cpu$SERVER_CPU" -v c="cpu$CLIENT_CPU" '
        $1 == s || $1 == c {
            total = 0
            for (i = 2; i <= 9; i++) total += $i
            busy[$1] = total - $5 - $6
            all[$1] = total
        }
        END { print busy[s], all[s], busy[c], all[c] }' /proc/stat
}

# cpu_busy BEFORE AFTER: "server% client%" of the time between the two samples.
cpu_busy() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        split(a, x, " "); split(b, y, " ")
        ds = y[2] - x[2]; dc = y[4] - x[4]
        printf "%.0f %.0f", ds ? 100 * (y[1] - x[1]) / ds : 0, dc ? 100 * (y[3] - x[3]) / dc : 0
    }'
}

# ticks PID: user + system CPU ticks of a process (the fields after the ")" of its
# name; 0 once it is gone).
ticks() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    awk '{print $12 + $13}' <<<"${stat##*) }"
}

# sample_children PID: "child ticks" lines for the children of PID, every 50 ms,
# leaving out those already there when it starts.
sample_children() {
    local old c
    # pgrep fails when there are none: not an error here (set -e, pipefail).
    old=" $(pgrep -P "$1" | tr '\n' ' ' || true) "
    while :; do
        for c in $(pgrep -P "$1" || true); do
            [[ $old == *" $c "* ]] || echo "$c $(ticks "$c")"
        done
        sleep 0.05
    done
}

# cpu_begin SERVER / cpu_end SERVER: the server's CPU ticks in between, its
# children's included (tftpd-hpa).
cpu_begin() {
    CPU_T0=$(ticks "${PID[$1]}")
    if [ "$1" = tftpd-hpa ]; then
        sample_children "${PID[$1]}" >"$WORK/children" &
        SAMPLER=$!
    fi
}
cpu_end() {
    local own children=0
    own=$(($(ticks "${PID[$1]}") - CPU_T0))
    if [ "$1" = tftpd-hpa ]; then
        kill "$SAMPLER" 2>/dev/null || true
        wait "$SAMPLER" 2>/dev/null || true
        children=$(awk '$2 > 0 {last[$1] = $2} END {for (c in last) t += last[c]; print t + 0}' \
            "$WORK/children")
    fi
    echo $((own + children))
}

# per_gib TICKS BYTES: CPU seconds per GiB served.
per_gib() {
    if [ -z "$2" ] || [ "$2" = 0 ]; then
        echo n/a
    else
        awk -v t="$1" -v b="$2" -v hz="$HZ" 'BEGIN {printf "%.2f", t / hz / (b / 1073741824)}'
    fi
}

# run_client SERVER COUNT BLKSIZE WINDOWSIZE [client flags]: the client's key=value line.
run_client() {
    local file=${FILE:-bench.bin}
    local args=(--server "${ADDR[$1]}" --bind "$CLIENT_IP" --file "$file"
        --reference "$ROOT/$file" --count "$2")
    [ -n "$3" ] && args+=(--blksize "$3")
    [ -n "$4" ] && args+=(--windowsize "$4")
    ip netns exec "$CNS" taskset -c "$CLIENT_CPU" "$CLIENT" "${args[@]}" "${@:5}" \
        2>>"$WORK/client.err" || true
}

field() { # field NAME LINE
    sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"
}

# The servers in the order round $1 runs them: each round starts one further along,
# so over a multiple of three rounds every server runs first, second and last once.
# Load from outside drifts over minutes (a concurrent round takes about three);
# a fixed order would hand that drift to whichever server always runs last.
in_turn() {
    local n=${#SERVERS[@]} i
    for ((i = 0; i < n; i++)); do
        printf '%s\n' "${SERVERS[$(((i + $1 - 1) % n))]}"
    done
}

median() {
    printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}

ratio() {
    if [ "$1" = n/a ] || [ "$2" = n/a ] || [ "$2" = 0 ]; then
        echo n/a
    else
        awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'
    fi
}

# --- single transfers ---------------------------------------------------------------
# label|blksize|windowsize
POINTS=(
    "blksize 512|512|"
    "blksize 1468|1468|"
    "blksize 8192|8192|"
    "windowsize 1 (blksize 1468)|1468|1"
    "windowsize 8 (blksize 1468)|1468|8"
    "windowsize 16 (blksize 1468)|1468|16"
    "windowsize 64 (blksize 1468)|1468|64"
)
declare -A RESULT=() CPUINFO=() MARK=() GIB=()
notes=()
[[ $PARTS == *" single "* ]] || POINTS=()
for point in "${POINTS[@]}"; do
    IFS='|' read -r label blksize windowsize <<<"$point"
    declare -A rates=() skip=() busy=() costs=()
    for s in "${SERVERS[@]}"; do
        rates[$s]=""
        costs[$s]=""
        busy[$s]="0 0"
        # Ask first what the server grants: a window it does not take is served lock-step (*).
        line=$(run_client "$s" 1 "$blksize" "$windowsize" --probe --timeout 10)
        granted_b=$(field blksize "$line")
        granted_w=$(field windowsize "$line")
        if [ -n "$windowsize" ] && [ "$windowsize" -gt 1 ] && [ "$granted_w" != "$windowsize" ]; then
            MARK[$s,$label]="*"
            notes+=("$label: $s does not grant windowsize (OACK: ${granted_w/#0/none}): * = served lock-step")
        elif [ -n "$windowsize" ] && [ "$granted_w" != "$windowsize" ]; then
            notes+=("$label: $s ignores windowsize and serves lock-step, which is windowsize 1")
        fi
        if [ -z "${skip[$s]:-}" ] && [ "$granted_b" != "$blksize" ]; then
            notes+=("$label: $s granted blksize ${granted_b/#0/none (512)} for $blksize")
        fi
    done
    for round in $(seq "$REPEAT"); do
        for s in $(in_turn "$round"); do
            [ -n "${skip[$s]:-}" ] && continue
            before=$(cpu_sample)
            cpu_begin "$s"
            line=$(run_client "$s" 1 "$blksize" "$windowsize" --timeout 120)
            ticks=$(cpu_end "$s")
            after=$(cpu_sample)
            if [ "$(field ok "$line")" != 1 ]; then
                echo "$label: $s: transfer failed: ${line:-no output}" >&2
                tail -3 "$WORK/client.err" >&2 || true
                rates[$s]+="0 "
                continue
            fi
            rates[$s]+="$(field mbps "$line") "
            costs[$s]+="$(per_gib "$ticks" "$(field bytes "$line")") "
            read -r bs bc <<<"$(cpu_busy "$before" "$after")"
            read -r ss sc <<<"${busy[$s]}"
            busy[$s]="$((ss + bs)) $((sc + bc))"
        done
    done
    for s in "${SERVERS[@]}"; do
        if [ -n "${skip[$s]:-}" ]; then
            RESULT[$s,$label]=n/a
        else
            # shellcheck disable=SC2086
            RESULT[$s,$label]=$(median ${rates[$s]})
            # shellcheck disable=SC2086
            GIB[$s,$label]=$(median ${costs[$s]:-n/a})
            read -r ss sc <<<"${busy[$s]}"
            CPUINFO[$s,$label]="$((ss / REPEAT))/$((sc / REPEAT))"
        fi
    done
    printf '  measured %-30s' "$label" >&2
    for s in "${SERVERS[@]}"; do
        printf ' %s %s MB/s %s s/GiB;' "$s" "${RESULT[$s,$label]}" "${GIB[$s,$label]:-n/a}" >&2
    done
    echo >&2
    unset rates skip busy costs
done

# --- concurrent transfers -----------------------------------------------------------
declare -A CAGG=() CFAIL=() CWALL=() CBUSY=() CFIRST=() CGIB=()
for s in "${SERVERS[@]}"; do CAGG[$s]=""; CFAIL[$s]=0; CWALL[$s]=""; CFIRST[$s]=""; CGIB[$s]=""; done
[[ $PARTS == *" concurrent "* ]] || CONCURRENT_REPEAT=0
for round in $(seq "$CONCURRENT_REPEAT"); do
    for s in $(in_turn "$round"); do
        before=$(cpu_sample)
        cpu_begin "$s"
        # A failure is a server losing a transfer, not a slow one: a generous deadline.
        line=$(run_client "$s" "$CONCURRENT" 1468 "" --timeout 600)
        CBUSY[$s]=$(cpu_busy "$before" "$(cpu_sample)" | tr ' ' /)
        CGIB[$s]+="$(per_gib "$(cpu_end "$s")" "$(field bytes "$line")") "
        CAGG[$s]+="$(field mbps "$line") "
        CWALL[$s]+="$(field seconds "$line") "
        CFIRST[$s]+="$(field first_end "$line") "
        failed=$(field failed "$line")
        CFAIL[$s]=$((${CFAIL[$s]} + ${failed:-$CONCURRENT}))
        printf '  measured %d concurrent: %-10s %s\n' "$CONCURRENT" "$s" "$line" >&2
    done
done

# --- boot storm: many lock-step clients -------------------------------------------
# count|blksize
STORM_POINTS=()
[[ $PARTS == *" storm "* ]] || STORM=""
for count in $STORM; do
    for blksize in $STORM_BLKSIZES; do
        STORM_POINTS+=("$count|$blksize")
    done
done
declare -A SGIB=() SAGG=() SFAIL=()
for point in "${STORM_POINTS[@]}"; do
    IFS='|' read -r count blksize <<<"$point"
    for s in "${SERVERS[@]}"; do SGIB[$s,$point]=""; SAGG[$s,$point]=""; SFAIL[$s,$point]=0; done
    for round in $(seq "$STORM_REPEAT"); do
        for s in $(in_turn "$round"); do
            cpu_begin "$s"
            line=$(FILE=storm.bin run_client "$s" "$count" "$blksize" "" --timeout 600)
            ticks=$(cpu_end "$s")
            SGIB[$s,$point]+="$(per_gib "$ticks" "$(field bytes "$line")") "
            SAGG[$s,$point]+="$(field mbps "$line") "
            failed=$(field failed "$line")
            SFAIL[$s,$point]=$((${SFAIL[$s,$point]} + ${failed:-$count}))
            printf '  measured storm %s x %s MiB, blksize %s: %-12s %s ticks %s\n' "$count" \
                "$STORM_MIB" "$blksize" "$s" "$ticks" "$line" >&2
        done
    done
done

RSS=$(awk '/VmHWM/ {print $2, $3}' "/proc/${PID[bootd]}/status")
DNSMASQ_RSS=$(awk '/VmHWM/ {print $2, $3}' "/proc/${PID[dnsmasq]}/status")

# --- table --------------------------------------------------------------------------
# row LABEL VALUE... (one per server, in SERVERS order), then the ratios of bootd to
# tftpd-hpa and to dnsmasq, and of bootd-1port to dnsmasq.
row() {
    local label=$1
    shift
    local b=${1%\*} p=${2%\*} t=${3%\*} d=${4%\*}
    printf '%-34s %9s %11s %9s %9s %8s %8s %8s\n' "$label" "$@" "$(ratio "$b" "$t")" \
        "$(ratio "$b" "$d")" "$(ratio "$p" "$d")"
}
header() {
    printf '%-34s %9s %11s %9s %9s %8s %8s %8s\n' "$1" bootd bootd-1port tftpd-hpa dnsmasq \
        b/tftpd b/dnsm 1port/dn
    printf '%.0s-' $(seq 102)
    echo
}
if [ ${#POINTS[@]} -gt 0 ]; then
    echo
    header "single $SIZE_MIB MiB transfer, MB/s"
    for point in "${POINTS[@]}"; do
        IFS='|' read -r label _ _ <<<"$point"
        cells=()
        for s in "${SERVERS[@]}"; do cells+=("${RESULT[$s,$label]}${MARK[$s,$label]:-}"); done
        row "$label" "${cells[@]}"
    done
    echo
    header "single transfer, server CPU s/GiB"
    for point in "${POINTS[@]}"; do
        IFS='|' read -r label _ _ <<<"$point"
        cells=()
        for s in "${SERVERS[@]}"; do cells+=("${GIB[$s,$label]:-n/a}"); done
        row "$label" "${cells[@]}"
    done
fi
# shellcheck disable=SC2086
if [ "$CONCURRENT_REPEAT" -gt 0 ]; then
    echo
    header "$CONCURRENT concurrent (blksize 1468)"
    cells=() fails=() walls=() firsts=() busies=() gibs=()
    for s in "${SERVERS[@]}"; do
        cells+=("$(median ${CAGG[$s]})")
        fails+=("${CFAIL[$s]}")
        walls+=("$(median ${CWALL[$s]})")
        firsts+=("$(median ${CFIRST[$s]})")
        busies+=("${CBUSY[$s]}")
        gibs+=("$(median ${CGIB[$s]})")
    done
    row "aggregate MB/s" "${cells[@]}"
    row "server CPU s/GiB" "${gibs[@]}"
    printf '%-34s %9s %11s %9s %9s\n' "failed transfers (of $((CONCURRENT * CONCURRENT_REPEAT)))" "${fails[@]}"
    printf '%-34s %9s %11s %9s %9s\n' "wall time, s" "${walls[@]}"
    # Fairness: how long before the last transfer the first one was done.
    printf '%-34s %9s %11s %9s %9s\n' "first transfer done at, s" "${firsts[@]}"
    printf '%-34s %9s %11s %9s %9s\n' "CPU busy % server/client" "${busies[@]}"
fi
if [ ${#STORM_POINTS[@]} -gt 0 ]; then
    echo
    header "storm: lock-step x $STORM_MIB MiB, CPU s/GiB"
    for point in "${STORM_POINTS[@]}"; do
        IFS='|' read -r count blksize <<<"$point"
        cells=() aggs=() fails=()
        for s in "${SERVERS[@]}"; do
            # shellcheck disable=SC2086
            cells+=("$(median ${SGIB[$s,$point]})")
            # shellcheck disable=SC2086
            aggs+=("$(median ${SAGG[$s,$point]})")
            fails+=("${SFAIL[$s,$point]}")
        done
        row "$count clients, blksize $blksize" "${cells[@]}"
        row "  aggregate MB/s" "${aggs[@]}"
        printf '%-34s %9s %11s %9s %9s\n' "  failed (of $((count * STORM_REPEAT)))" "${fails[@]}"
    done
fi
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "bootd peak RSS (VmHWM): $RSS   (dnsmasq: $DNSMASQ_RSS; tftpd-hpa forks a process per transfer)"
if [ ${#POINTS[@]} -gt 0 ]; then
    echo
    echo "CPU busy % during the single transfers, server CPU $SERVER_CPU / client CPU $CLIENT_CPU (mean of the runs):"
    for point in "${POINTS[@]}"; do
        IFS='|' read -r label _ _ <<<"$point"
        printf '  %-30s' "$label"
        for s in "${SERVERS[@]}"; do printf ' %s %-8s' "$s" "${CPUINFO[$s,$label]:-n/a}"; done
        echo
    done
fi
if [ ${#notes[@]} -gt 0 ]; then
    echo
    echo "notes:"
    printf '  %s\n' "${notes[@]}"
fi
if [ -s "$WORK/client.err" ]; then
    echo
    echo "client errors:"
    sort "$WORK/client.err" | uniq -c | sort -rn | head -20
fi
