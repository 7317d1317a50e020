#!/usr/bin/env bash
# bench-storm.sh: a boot storm. N machines fetch the same SIZE_MIB image from bootd at
# once while bootd's link is limited to RATE_MBIT with tc tbf (the machines' links
# are not), by three methods:
#   http  curl from bootd's HTTP service (-H);
#   tftp  atftp from bootd's TFTP service, blksize 1468 and windowsize 16;
#   bt    aria2c with the torrent bootd publishes (bootd as web seed, local peer
#         discovery between the machines), as phase 1 runs it.
# Printed per method and N: the seconds until the last machine has the whole image
# with its SHA-256 checked, and the bytes bootd's link sent (the bridge's tx_bytes,
# headers included). A PNG plot of time against N (one line per method) is written
# with gnuplot to PLOT. Every figure is kept in RESULTS, one line per method and N
# (method N seconds MB-sent); a run replaces the lines of what it measured, and the
# plot draws every method RESULTS holds, so one method can be measured again alone.
#
# Run as root (network namespaces, tc):  sudo scripts/bench-storm.sh
# Environment: NS ("1 4 16 32"), SIZE_MIB (256), RATE_MBIT (100), METHODS
# ("http tftp bt"), RUN_TIMEOUT (seconds one run may take, 1800), PLOT
# (docs/storm.png), RESULTS (docs/storm.txt), BOOTD (a prebuilt binary instead of `cargo build --release`).
#
# Layout: a server namespace holds a bridge (10.97.0.1, bootd) with the tbf on its
# egress; each machine is a namespace with a veth leg on that bridge (10.97.0.11…),
# so machine-to-machine traffic is switched by the bridge and never crosses the
# limit, as on a classroom's switch. Nothing leaves the namespaces; every namespace,
# process and file made here is removed on exit or interrupt.
set -euo pipefail
cd "$(dirname "$0")/.."

NS=${NS:-"1 4 16 32"}
SIZE_MIB=${SIZE_MIB:-256}
RATE_MBIT=${RATE_MBIT:-100}
METHODS=${METHODS:-"http tftp bt"}
RUN_TIMEOUT=${RUN_TIMEOUT:-1800}
PLOT=${PLOT:-docs/storm.png}
RESULTS=${RESULTS:-docs/storm.txt}
NET=10.97.0
SERVER_IP=$NET.1

if [ "$(id -u)" -ne 0 ]; then
    echo "bench-storm.sh: run as root (network namespaces, tc)" >&2
    exit 1
fi
for tool in curl atftp aria2c gnuplot sha256sum ip tc; do
    command -v "$tool" >/dev/null || {
        echo "bench-storm.sh: $tool is missing (scripts/deps.sh installs it)" >&2
        exit 1
    }
done
if [ -z "${BOOTD:-}" ]; then
    cargo build --release --locked --quiet --bin bootd
fi
BOOTD=${BOOTD:-$PWD/target/release/bootd}

max_n=0
for n in $NS; do [ "$n" -gt "$max_n" ] && max_n=$n; done

WORK=$(mktemp -d /tmp/bench-storm.XXXXXX)
SERVER=bs$$s
BRIDGE=bsbr$$
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for ((i = 0; i < max_n; i++)); do ip netns del "bs$$m$i" 2>/dev/null || true; done
    ip netns del "$SERVER" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# --- network ------------------------------------------------------------------------
ip netns add "$SERVER"
ip -n "$SERVER" link set lo up
ip -n "$SERVER" link add "$BRIDGE" type bridge
ip -n "$SERVER" link set "$BRIDGE" type bridge mcast_snooping 0
ip -n "$SERVER" addr add "$SERVER_IP/24" dev "$BRIDGE"
ip -n "$SERVER" link set "$BRIDGE" up
# bootd's link: what leaves the server for the bridge, limited; the legs are not.
ip netns exec "$SERVER" tc qdisc add dev "$BRIDGE" root tbf rate "${RATE_MBIT}mbit" \
    burst 256kb latency 400ms
for ((i = 0; i < max_n; i++)); do
    m=bs$$m$i
    ip netns add "$m"
    ip -n "$m" link set lo up
    ip link add "bs$$l$i" netns "$SERVER" type veth peer name eth0 netns "$m"
    ip -n "$SERVER" link set "bs$$l$i" master "$BRIDGE"
    ip -n "$SERVER" link set "bs$$l$i" up
    ip -n "$m" addr add "$NET.$((11 + i))/24" dev eth0
    ip -n "$m" link set eth0 up
    ip -n "$m" route add 224.0.0.0/4 dev eth0
done

# --- image and bootd ----------------------------------------------------------------
mkdir -p "$WORK/root/storm" "$WORK/out"
# bootd, started as root, serves as an unprivileged user: it must reach the image.
chmod 755 "$WORK" "$WORK/root" "$WORK/root/storm"
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$WORK/root/storm/image.img"
chmod 644 "$WORK/root/storm/image.img"
WANT=$(sha256sum <"$WORK/root/storm/image.img" | cut -d' ' -f1)
cat >"$WORK/bootd.ini" <<EOF
[logger]
level = warning
[tftp]
address = $SERVER_IP
root = $WORK/root
windowsize = 16
max_transfers = 256
max_transfers_per_client = 4
[httpd]
address = $SERVER_IP
[menu]
url = http://$SERVER_IP
[os storm]
name = Storm image
method = bin
dir = $WORK/root/storm
bin = image.img
EOF
ip netns exec "$SERVER" "$BOOTD" -c "$WORK/bootd.ini" -t -H 2>"$WORK/bootd.log" &
PIDS+=($!)
# The torrent is published once the image is hashed.
for ((t = 0; t < 600; t++)); do
    if ip netns exec bs$$m0 curl -sf -o "$WORK/storm.torrent" \
        "http://$SERVER_IP/torrents/storm.torrent"; then
        break
    fi
    sleep 1
done
if [ ! -s "$WORK/storm.torrent" ]; then
    echo "bootd never published the torrent; the end of its log:" >&2
    tail -n 20 "$WORK/bootd.log" >&2
    exit 1
fi

tx_bytes() { ip netns exec "$SERVER" cat "/sys/class/net/$BRIDGE/statistics/tx_bytes"; }
now() { date +%s.%N; }

# One machine's fetch by METHOD; writes its completion time to $WORK/out/done.I
# only if the image it got has the right SHA-256.
fetch() {
    local method=$1 i=$2 m=bs$$m$2 dir=$WORK/out/m$2 got
    mkdir -p "$dir"
    case $method in
    http)
        got=$(ip netns exec "$m" curl -sf --max-time "$RUN_TIMEOUT" \
            "http://$SERVER_IP/storm/image.img" | sha256sum | cut -d' ' -f1)
        ;;
    tftp)
        ip netns exec "$m" timeout "$RUN_TIMEOUT" atftp --option "blksize 1468" \
            --option "windowsize 16" -g -r storm/image.img -l "$dir/image.img" \
            "$SERVER_IP" >/dev/null 2>&1 || true
        got=$(sha256sum <"$dir/image.img" 2>/dev/null | cut -d' ' -f1)
        rm -f "$dir/image.img"
        ;;
    bt)
        # The hook runs when the download completes (every piece checked),
        # before the sharing that follows; the machines are stopped once all are done.
        printf '#!/bin/sh\ndate +%%s.%%N >%s/bt-done\n' "$dir" >"$dir/hook.sh"
        chmod +x "$dir/hook.sh"
        ip netns exec "$m" timeout "$RUN_TIMEOUT" aria2c --dir="$dir" --quiet=true \
            --enable-dht=false --enable-dht6=false --disable-ipv6=true \
            --bt-enable-lpd=true --bt-lpd-interface=eth0 --check-integrity=true \
            --stream-piece-selector=random \
            --file-allocation=none --seed-ratio=0.0 --seed-time=60 \
            --bt-max-peers=55 --bt-request-peer-speed-limit=100M \
            --on-bt-download-complete="$dir/hook.sh" \
            --torrent-file="$WORK/storm.torrent" >/dev/null 2>&1 &
        echo $! >"$dir/pid"
        for ((t = 0; t < RUN_TIMEOUT * 10; t++)); do
            [ -e "$dir/bt-done" ] && break
            sleep 0.1
        done
        got=$(sha256sum <"$dir/storm/image.img" 2>/dev/null | cut -d' ' -f1)
        ;;
    esac
    if [ "$got" = "$WANT" ]; then
        if [ "$method" = bt ]; then cp "$dir/bt-done" "$WORK/out/done.$i"; else now >"$WORK/out/done.$i"; fi
    fi
}

printf '%-5s %4s %10s %14s %s\n' method N seconds "bytes sent" "verified"
: >"$WORK/results"
# N by N, every method at each: a run cut short still compares the methods.
for n in $NS; do
    for method in $METHODS; do
        rm -rf "$WORK/out"
        mkdir -p "$WORK/out"
        before=$(tx_bytes)
        start=$(now)
        fetchers=()
        for ((i = 0; i < n; i++)); do
            fetch "$method" "$i" &
            fetchers+=($!)
        done
        for pid in "${fetchers[@]}"; do wait "$pid" || true; done
        # Stop the machines still sharing (bt): each one's aria2c, by its PID.
        for ((i = 0; i < n; i++)); do
            if [ -e "$WORK/out/m$i/pid" ]; then
                kill "$(cat "$WORK/out/m$i/pid")" 2>/dev/null || true
            fi
        done
        sent=$(($(tx_bytes) - before))
        verified=$(find "$WORK/out" -maxdepth 1 -name 'done.*' | wc -l)
        last=$(cat "$WORK/out"/done.* 2>/dev/null | sort -n | tail -1)
        if [ "$verified" -eq "$n" ]; then
            seconds=$(awk -v a="$last" -v b="$start" 'BEGIN { printf "%.1f", a - b }')
        else
            seconds=NaN
        fi
        printf '%-5s %4d %10s %14d %d/%d\n' "$method" "$n" "$seconds" "$sent" "$verified" "$n"
        echo "$method $n $seconds $sent" >>"$WORK/results"
        sleep 2
    done
done

# --- plot ---------------------------------------------------------------------------
# This run's lines replace those of the same method and N kept from earlier runs.
mkdir -p "$(dirname "$PLOT")" "$(dirname "$RESULTS")"
touch "$RESULTS"
awk 'NR == FNR { ran[$1 " " $2] = 1; next } !(($1 " " $2) in ran)' \
    "$WORK/results" "$RESULTS" >"$WORK/kept"
awk '{ printf "%s %s %s %.0f\n", $1, $2, $3, $4 / 1e6 }' "$WORK/results" >>"$WORK/kept"
sort -k1,1 -k2,2n "$WORK/kept" >"$RESULTS"
echo "results: $RESULTS"
plots=()
for method in http tftp bt; do
    grep -q "^$method " "$RESULTS" || continue
    grep "^$method " "$RESULTS" | cut -d' ' -f2,3 >"$WORK/$method.dat"
    plots+=("'$WORK/$method.dat' using 1:2 with linespoints title '$method'")
done
gnuplot <<EOF
set terminal png size 800,500
set output '$PLOT'
set title 'Boot storm: ${SIZE_MIB} MiB image, server link ${RATE_MBIT} Mbit/s'
set xlabel 'machines booting at once (N)'
set ylabel 'seconds until the last machine has the verified image'
set key top left
set grid
plot $(IFS=,; echo "${plots[*]}")
EOF
echo "plot: $PLOT"
