#!/usr/bin/env bash
# forward.sh: let machines installed through bootd reach the outside world.
#
#   forward.sh [-i WAN] [-j LAN] on    enable IP forwarding and NAT (masquerade)
#   forward.sh off                     remove exactly what `on` added
#   forward.sh status                  show what `on` added
#
# WAN defaults to the interface of the default route; LAN (the boot network) is
# required with `on`. Uses nftables when `nft` is present, iptables otherwise.
# The state of `on` is kept in /run/bootd-forward.state so `off` can undo it.
set -euo pipefail

STATE=${BOOTD_FORWARD_STATE:-/run/bootd-forward.state}
TABLE=bootd_forward
COMMENT=bootd-forward

usage() {
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-2}"
}

die() {
    echo "forward.sh: $*" >&2
    exit 1
}

wan=""
lan=""
while getopts ":i:j:h" opt; do
    case $opt in
        i) wan=$OPTARG ;;
        j) lan=$OPTARG ;;
        h) usage 0 ;;
        :) echo "forward.sh: -$OPTARG needs an interface name" >&2; usage 2 ;;
        *) echo "forward.sh: unknown option -$OPTARG" >&2; usage 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || usage 2
action=$1

if [ "$(id -u)" -ne 0 ]; then
    die "must run as root (it changes the firewall and net.ipv4.ip_forward); try: sudo $0 $*"
fi

backend() {
    if command -v nft >/dev/null 2>&1; then echo nft
    elif command -v iptables >/dev/null 2>&1; then echo iptables
    else die "neither nft nor iptables is installed; install nftables"
    fi
}

check_interface() {
    [ -e "/sys/class/net/$1" ] || die "no network interface named '$1' (see: ip link)"
}

iptables_rules() {
    # One rule per line: table, chain, arguments (the same for -A and -D).
    echo "nat POSTROUTING -o $wan -j MASQUERADE -m comment --comment $COMMENT"
    echo "filter FORWARD -i $lan -o $wan -j ACCEPT -m comment --comment $COMMENT"
    echo "filter FORWARD -i $wan -o $lan -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT -m comment --comment $COMMENT"
}

on() {
    [ -e "$STATE" ] && die "forwarding is already on (state in $STATE); run '$0 off' first"
    if [ -z "$wan" ]; then
        wan=$(ip route show default 2>/dev/null | awk '/default/ {for (i=1;i<NF;i++) if ($i=="dev") {print $(i+1); exit}}')
        [ -n "$wan" ] || die "no default route, so no WAN interface to guess: give one with -i"
    fi
    [ -n "$lan" ] || die "give the boot network's interface with -j (the one bootd serves)"
    [ "$wan" != "$lan" ] || die "WAN and LAN are the same interface ($wan)"
    check_interface "$wan"
    check_interface "$lan"
    local kind previous
    kind=$(backend)
    previous=$(cat /proc/sys/net/ipv4/ip_forward)
    case $kind in
        nft)
            nft -f - <<NFT
table ip $TABLE {
    chain forward {
        type filter hook forward priority 0; policy accept;
        iifname "$lan" oifname "$wan" accept
        iifname "$wan" oifname "$lan" ct state related,established accept
    }
    chain postrouting {
        type nat hook postrouting priority 100; policy accept;
        oifname "$wan" masquerade
    }
}
NFT
            ;;
        iptables)
            while read -r table chain rule; do
                # shellcheck disable=SC2086
                iptables -t "$table" -A "$chain" $rule
            done < <(iptables_rules)
            ;;
    esac
    echo 1 > /proc/sys/net/ipv4/ip_forward
    printf 'backend=%s\nwan=%s\nlan=%s\nip_forward=%s\n' "$kind" "$wan" "$lan" "$previous" > "$STATE"
    echo "forwarding on: $lan -> $wan (NAT with $kind); undo with: $0 off"
}

off() {
    [ -e "$STATE" ] || die "forwarding is not on (no $STATE): nothing to undo"
    local backend="" ip_forward=""
    # The state file is ours (root-only /run); read its four known keys.
    while IFS='=' read -r key value; do
        case $key in
            backend) backend=$value ;;
            wan) wan=$value ;;
            lan) lan=$value ;;
            ip_forward) ip_forward=$value ;;
        esac
    done < "$STATE"
    case $backend in
        nft) nft delete table ip "$TABLE" 2>/dev/null || echo "forward.sh: table $TABLE was already gone" >&2 ;;
        iptables)
            while read -r table chain rule; do
                # shellcheck disable=SC2086
                iptables -t "$table" -D "$chain" $rule 2>/dev/null || echo "forward.sh: rule already gone: $rule" >&2
            done < <(iptables_rules)
            ;;
        *) die "unreadable state file $STATE" ;;
    esac
    case $ip_forward in
        0|1) echo "$ip_forward" > /proc/sys/net/ipv4/ip_forward ;;
    esac
    rm -f "$STATE"
    echo "forwarding off: removed what '$0 on' added; ip_forward back to ${ip_forward:-unchanged}"
}

case $action in
    on) on ;;
    off) off ;;
    status)
        if [ -e "$STATE" ]; then cat "$STATE"; else echo "forwarding is off"; fi
        ;;
    *) echo "forward.sh: unknown action '$action'" >&2; usage 2 ;;
esac
