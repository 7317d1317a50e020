#!/usr/bin/env bash
# bench-http.sh: HTTP throughput of bootd's file service (-H) against nginx, same run,
# same file, same network, same client. Run as root (network namespaces, port 80):
#   sudo scripts/bench-http.sh
#
# Both servers listen on their own address in one server namespace (bootd
# 10.98.0.11, nginx 10.98.0.12), pinned to CPU 0, nginx with one worker like bootd's
# one HTTP thread, both sending files with sendfile(2). The client is curl, one
# process running every transfer of a round in parallel (-Z) in a client namespace
# (10.98.0.2), pinned to CPU 1, writing to /dev/null: it moves bytes with no copy
# to a disk, so it is not what is measured. A veth pair joins the namespaces; no
# traffic leaves them; both are removed on exit or interrupt.
#
# Measured: one client downloading a SIZE_MIB file (the median of REPEAT runs), then
# CONCURRENT clients downloading it at once: MB/s (10^6 bytes/s; aggregate for the
# concurrent round), failures (a transfer that does not end with 200 and the whole
# file), server CPU seconds (user + system of the server's processes, from /proc,
# for the whole of each measurement), and the servers' peak memory (VmHWM, summed
# over nginx's processes). The servers take turns, each round starting with the next.
#
# With 200 flows into one client CPU the client's veth drops packets; with BBR (the
# host's congestion control, which a namespace here may not change) a few flows then
# see their pacing rate collapse to kB/s for tens of seconds (ss -ti: cwnd 4, the
# send queue full). Either server gives up on such a client after 60 s without
# progress (bootd's [httpd] timeout, nginx's send_timeout): a failure counted here.
#
# Environment: REPEAT (3), CONCURRENT (200), SIZE_MIB (64), BOOTD (a prebuilt binary
# instead of `cargo build --release`).
set -euo pipefail
cd "$(dirname "$0")/.."

REPEAT=${REPEAT:-3}
CONCURRENT=${CONCURRENT:-200}
SIZE_MIB=${SIZE_MIB:-64}
NET=10.98.0
CLIENT_IP=$NET.2
SERVERS=(bootd nginx)
declare -A ADDR=([bootd]=$NET.11 [nginx]=$NET.12)
SERVER_CPU=0
CLIENT_CPU=1

if [ "$(id -u)" -ne 0 ]; then
    echo "bench-http.sh: run as root (network namespaces, port 80)" >&2
    exit 1
fi
if [ "$(nproc)" -lt 2 ]; then
    echo "bench-http.sh: needs 2 CPUs (servers on CPU $SERVER_CPU, client on CPU $CLIENT_CPU)" >&2
    exit 1
fi

# --- packages -----------------------------------------------------------------------
missing=()
for p in nginx curl iproute2 util-linux procps; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    # Keep the packages' own services (nginx on the host's port 80) from starting.
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
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

if [ -z "${BOOTD:-}" ]; then
    cargo build --release --locked --quiet --bin bootd
fi
BOOTD=${BOOTD:-${CARGO_TARGET_DIR:-$PWD/target}/release/bootd}

# --- workspace, namespaces, cleanup -------------------------------------------------
WORK=$(mktemp -d /tmp/bench-http.XXXXXX)
ROOT=$WORK/root
SNS=benchhsrv$$
CNS=benchhcli$$
declare -A PID=()

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for s in "${!PID[@]}"; do
        kill "${PID[$s]}" 2>/dev/null || true
        wait "${PID[$s]}" 2>/dev/null || true
    done
    ip netns del "$SNS" 2>/dev/null || true
    ip netns del "$CNS" 2>/dev/null || true
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$ROOT" "$WORK/nginx"
chmod 755 "$WORK" "$ROOT"
head -c $((SIZE_MIB << 20)) /dev/urandom >"$ROOT/bench.bin"
chmod 644 "$ROOT/bench.bin"
FILE_BYTES=$((SIZE_MIB << 20))

ip netns add "$SNS"
ip netns add "$CNS"
ip link add bhsrv$$ netns "$SNS" type veth peer name bhcli$$ netns "$CNS"
ip -n "$SNS" link set lo up
ip -n "$CNS" link set lo up
ip -n "$SNS" link set bhsrv$$ up
ip -n "$CNS" link set bhcli$$ up
for s in "${SERVERS[@]}"; do
    ip -n "$SNS" addr add "${ADDR[$s]}/24" dev bhsrv$$
done
ip -n "$CNS" addr add "$CLIENT_IP/24" dev bhcli$$

# --- servers ------------------------------------------------------------------------
cat >"$WORK/bootd.ini" <<EOF
[logger]
type = file
level = info
file = $WORK/bootd.log

[tftp]
root = $ROOT
address = ${ADDR[bootd]}

[httpd]
address = ${ADDR[bootd]}
max_connections = 1000
# nginx's send_timeout: both servers give up on a client after the same silence.
timeout = 60
EOF

cat >"$WORK/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 2048; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 30;
    send_timeout 60s;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    types { application/octet-stream bin; }
    server {
        listen ${ADDR[nginx]}:80;
        root $ROOT;
    }
}
EOF

ip netns exec "$SNS" taskset -c "$SERVER_CPU" "$BOOTD" -t -H -c "$WORK/bootd.ini" \
    2>"$WORK/bootd.err" &
PID[bootd]=$!
ip netns exec "$SNS" taskset -c "$SERVER_CPU" "$NGINX" -c "$WORK/nginx.conf" \
    -e "$WORK/nginx/error.log" 2>"$WORK/nginx.err" &
PID[nginx]=$!

for s in "${SERVERS[@]}"; do
    for _ in $(seq 50); do
        ip netns exec "$SNS" ss -Hltn "sport = :80" | grep -q "${ADDR[$s]}:80" && break
        if ! kill -0 "${PID[$s]}" 2>/dev/null; then
            echo "$s did not start:" >&2
            cat "$WORK/$s.err" >&2
            exit 1
        fi
        sleep 0.1
    done
    ip netns exec "$SNS" ss -Hltn "sport = :80" | grep -q "${ADDR[$s]}:80" || {
        echo "$s is not listening on ${ADDR[$s]}:80" >&2
        exit 1
    }
done

nginx_version=$("$NGINX" -v 2>&1 | sed 's/.*nginx\///')
echo "bootd $("$BOOTD" --version 2>&1 | awk '{print $NF}') ($(git rev-parse --short HEAD 2>/dev/null || echo '?')), nginx $nginx_version (1 worker, sendfile), curl $(curl --version | awk 'NR == 1 {print $2}')"
echo "file: $SIZE_MIB MiB random; servers pinned to CPU $SERVER_CPU, client to CPU $CLIENT_CPU (taskset)"
echo "single: median of $REPEAT runs; MB/s = 10^6 bytes/s; a transfer counts when it ends with 200 and $FILE_BYTES bytes"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the host disturbs the numbers)"
echo

TICKS=$(getconf CLK_TCK)

# The server's processes: bootd, or nginx's master and its workers.
pids_of() {
    echo "${PID[$1]}"
    pgrep -P "${PID[$1]}" 2>/dev/null || true
}

# CPU seconds (user + system) the server has used so far.
cpu_seconds() {
    local total=0 pid t
    for pid in $(pids_of "$1"); do
        # Fields 14 and 15 of /proc/PID/stat; the name (field 2) may hold spaces.
        t=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13}')
        total=$((total + ${t:-0}))
    done
    awk -v t="$total" -v hz="$TICKS" 'BEGIN {printf "%.2f", t / hz}'
}

# Peak resident memory of the server's processes (VmHWM), in kB.
peak_kb() {
    local total=0 pid kb
    for pid in $(pids_of "$1"); do
        kb=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null)
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}

# run_curl SERVER COUNT: "ok failed seconds" for COUNT parallel downloads.
run_curl() {
    local url="http://${ADDR[$1]}/bench.bin" args=() i start end out
    for ((i = 0; i < $2; i++)); do
        args+=(-o /dev/null "$url")
    done
    out=$WORK/curl.out
    start=$(date +%s.%N)
    ip netns exec "$CNS" taskset -c "$CLIENT_CPU" curl -sS --no-progress-meter -Z --parallel-max "$2" \
        --max-time 600 -w '%{http_code} %{size_download}\n' "${args[@]}" >"$out" \
        2>>"$WORK/client.err" || true
    end=$(date +%s.%N)
    local ok
    ok=$(awk -v n="$FILE_BYTES" '$1 == 200 && $2 == n' "$out" | wc -l)
    echo "$ok $(($2 - ok)) $(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.3f", b - a}')"
}

mbps() { # mbps BYTES SECONDS
    awk -v b="$1" -v s="$2" 'BEGIN {printf "%.0f", (s > 0 ? b / s / 1e6 : 0)}'
}

median() {
    printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}'
}

in_turn() {
    local n=${#SERVERS[@]} i
    for ((i = 0; i < n; i++)); do
        printf '%s\n' "${SERVERS[$(((i + $1 - 1) % n))]}"
    done
}

# --- one client ---------------------------------------------------------------------
declare -A SRATES=() SFAIL=() SCPU=() CRATE=() CFAIL=() CCPU=() CWALL=()
for s in "${SERVERS[@]}"; do SRATES[$s]=""; SFAIL[$s]=0; SCPU[$s]=0; done
for round in $(seq "$REPEAT"); do
    for s in $(in_turn "$round"); do
        before=$(cpu_seconds "$s")
        read -r ok failed seconds <<<"$(run_curl "$s" 1)"
        after=$(cpu_seconds "$s")
        SRATES[$s]+="$(mbps $((ok * FILE_BYTES)) "$seconds") "
        SFAIL[$s]=$((${SFAIL[$s]} + failed))
        SCPU[$s]=$(awk -v a="${SCPU[$s]}" -v d="$(awk -v x="$before" -v y="$after" 'BEGIN {print y - x}')" 'BEGIN {printf "%.2f", a + d}')
        printf '  measured 1 client:   %-6s %s MB/s\n' "$s" "$(mbps $((ok * FILE_BYTES)) "$seconds")" >&2
    done
done

# --- concurrent clients ---------------------------------------------------------------
for s in $(in_turn 1); do
    before=$(cpu_seconds "$s")
    read -r ok failed seconds <<<"$(run_curl "$s" "$CONCURRENT")"
    after=$(cpu_seconds "$s")
    CRATE[$s]=$(mbps $((ok * FILE_BYTES)) "$seconds")
    CFAIL[$s]=$failed
    CWALL[$s]=$seconds
    CCPU[$s]=$(awk -v x="$before" -v y="$after" 'BEGIN {printf "%.2f", y - x}')
    printf '  measured %d clients: %-6s %s MB/s, %s failed, %s s\n' "$CONCURRENT" "$s" \
        "${CRATE[$s]}" "$failed" "$seconds" >&2
done

# --- table --------------------------------------------------------------------------
echo
printf '%-40s %12s %12s %12s\n' "$SIZE_MIB MiB over HTTP" bootd nginx bootd/nginx
printf '%.0s-' $(seq 80)
echo
# shellcheck disable=SC2086
{
    b=$(median ${SRATES[bootd]})
    n=$(median ${SRATES[nginx]})
    printf '%-40s %12s %12s %12s\n' "1 client, MB/s" "$b" "$n" "$(ratio "$b" "$n")"
}
printf '%-40s %12s %12s\n' "1 client, failed (of $REPEAT)" "${SFAIL[bootd]}" "${SFAIL[nginx]}"
printf '%-40s %12s %12s %12s\n' "1 client, server CPU s (all $REPEAT runs)" "${SCPU[bootd]}" "${SCPU[nginx]}" \
    "$(ratio "${SCPU[bootd]}" "${SCPU[nginx]}")"
printf '%-40s %12s %12s %12s\n' "$CONCURRENT clients, aggregate MB/s" "${CRATE[bootd]}" "${CRATE[nginx]}" \
    "$(ratio "${CRATE[bootd]}" "${CRATE[nginx]}")"
printf '%-40s %12s %12s\n' "$CONCURRENT clients, failed" "${CFAIL[bootd]}" "${CFAIL[nginx]}"
printf '%-40s %12s %12s\n' "$CONCURRENT clients, wall time s" "${CWALL[bootd]}" "${CWALL[nginx]}"
printf '%-40s %12s %12s %12s\n' "$CONCURRENT clients, server CPU s" "${CCPU[bootd]}" "${CCPU[nginx]}" \
    "$(ratio "${CCPU[bootd]}" "${CCPU[nginx]}")"
b=$(peak_kb bootd)
n=$(peak_kb nginx)
printf '%-40s %12s %12s %12s\n' "peak memory (VmHWM), kB" "$b" "$n" "$(ratio "$b" "$n")"
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "bootd's peak includes its TFTP and log threads; nginx's is its master and worker summed"
if [ -s "$WORK/client.err" ]; then
    echo
    echo "client errors:"
    sort "$WORK/client.err" | uniq -c | sort -rn | head -20
fi
