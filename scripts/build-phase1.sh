#!/usr/bin/env bash
# build-phase1.sh: phase 1 of a room full of machines, from Debian packages only:
# Debian's kernel, busybox, aria2c and kexec-tools with their libraries, in an
# initramfs of its own. The iPXE menu boots it for `kexec` and `bin` entries.
#
#   sudo scripts/build-phase1.sh HTTP_ROOT
#       (cache: $BOOTD_VM_CACHE, or target/vm-cache under $CARGO_TARGET_DIR or .)
#
# Writes HTTP_ROOT/phase1/vmlinuz and HTTP_ROOT/phase1/initrd.img (the names
# [menu] phase1_kernel and phase1_initrd give by default). Both are kept in the
# cache under a name made from the versions of every package they hold and this
# recipe's version: a second run downloads and builds nothing, a new package
# version or recipe builds anew.
#
# Its /init reads from the kernel command line what the menu puts there:
#   bootd.os=NAME bootd.url=http://SERVER bootd.torrent=URL bootd.seed_time=SECONDS
# (and console=ttyS0,115200 from [menu] phase1_cmdline for a serial console),
# brings the network up with DHCP, fetches the torrent and NAME.boot (what to start:
# kernel=, initrd=, cmdline=, bin=, binargs=, one per line), downloads the OS into
# RAM with aria2c while sharing pieces with the other machines (local peer discovery
# on the boot network, the tracker if the torrent names one, bootd as web seed), keeps
# sharing for seed_time seconds once complete, says on the console how many bytes
# of pieces each other machine sent it (from aria2's own log), then starts the
# kernel with kexec and the configured command line verbatim, or runs the program.
# On any failure it says why on the console and opens a shell there.
set -euo pipefail
if [ $# -ne 1 ]; then
    echo "usage: $0 HTTP_ROOT" >&2
    exit 2
fi
out=$(realpath -m "$1")/phase1
cd "$(dirname "$0")/.."
cache=$(realpath -m "${BOOTD_VM_CACHE:-${CARGO_TARGET_DIR:-target}/vm-cache}")
recipe=3
# Apart from scripts/vm-assets.sh's debs, which it prunes to its own.
debs=$cache/phase1-debs
mkdir -p "$debs" "$out"
exec 9>"$cache/.lock"
flock 9

kernel_package() {
    apt-cache show --no-all-versions linux-image-amd64 2>/dev/null |
        sed -n 's/^Depends: \(linux-image-[^ ,]*\).*/\1/p'
}
kpkg=$(kernel_package)
if [ -z "$kpkg" ]; then
    apt-get update -qq >&2
    kpkg=$(kernel_package)
fi
[ -n "$kpkg" ] || { echo "build-phase1.sh: apt knows no linux-image-amd64" >&2; exit 1; }

# The packages of the programs and every library they depend on, unpacked into one
# tree: the programs' libraries are taken from there, not from this host.
runtime_packages() {
    apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
        --no-breaks --no-replaces --no-enhances --no-pre-depends "$@" |
        grep -E '^[a-z0-9]' | sort -u |
        # Packages of data or scripts only are not needed for the two programs.
        grep -vxE 'debconf|perl-base|dpkg|tar|init-system-helpers|lsb-base'
}
packages=$(runtime_packages aria2 kexec-tools busybox-static)
# PACKAGE=VERSION of each candidate, asked of apt once.
# shellcheck disable=SC2086
versions=$(apt-cache show --no-all-versions $packages "$kpkg" |
    awk '/^Package: / { p = $2 } /^Version: / { print p "=" $2 }' | sort -u)
for p in $packages "$kpkg"; do
    grep -q "^$p=" <<<"$versions" || { echo "build-phase1.sh: apt knows no $p" >&2; exit 1; }
done
built=$cache/phase1-$(printf '%s\nrecipe %s\n' "$versions" "$recipe" | sha256sum | cut -c1-16)

# cached PACKAGE: sets $deb to the cached .deb of its candidate version, if any.
cached() {
    local v
    v=$(sed -n "s/^$1=//p" <<<"$versions")
    deb=$(find "$debs" -name "${1}_*${v#*:}_amd64.deb" -o -name "${1}_*${v#*:}_all.deb" | head -n 1)
    [ -n "$deb" ]
}
# fetch PACKAGE: sets $deb to its .deb (all were downloaded at once below).
fetch() {
    cached "$1" || { echo "build-phase1.sh: no .deb of $1 was downloaded" >&2; exit 1; }
}

install_built() {
    install -m 0644 "$built/vmlinuz" "$out/vmlinuz"
    install -m 0644 "$built/initrd.img" "$out/initrd.img.tmp"
    mv "$out/initrd.img.tmp" "$out/initrd.img"
    echo "phase 1: $out/vmlinuz ($(cat "$built/release")), $out/initrd.img ($(du -h "$out/initrd.img" | cut -f1))"
}
if [ -s "$built/vmlinuz" ] && [ -s "$built/initrd.img" ]; then
    install_built
    exit 0
fi

# Every package not cached yet, in one apt-get call.
missing=()
for p in $packages "$kpkg"; do
    cached "$p" || missing+=("$(grep "^$p=" <<<"$versions")")
done
if [ ${#missing[@]} -gt 0 ]; then
    (cd "$debs" && apt-get download -q "${missing[@]}") >&2
fi

work=$(mktemp -d "$cache/phase1.XXXXXX")
trap 'rm -rf "$work"' EXIT
stage=$work/stage
init=$work/initramfs
mkdir -p "$stage" "$init"/{bin,sbin,dev,proc,sys,tmp,os,etc,lib/modules}

for p in $packages; do
    fetch "$p"
    dpkg-deb -x "$deb" "$stage"
done

# The kernel and the NICs a classroom or a VM has, with what they need.
fetch "$kpkg"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" --wildcards \
    './boot/vmlinuz-*' './lib/modules/*/modules.order' './lib/modules/*/modules.builtin*' \
    './lib/modules/*/kernel/drivers/net/*' './lib/modules/*/kernel/drivers/virtio/*' \
    './lib/modules/*/kernel/net/core/*' './lib/modules/*/kernel/lib/*' \
    './lib/modules/*/kernel/drivers/ptp/*' './lib/modules/*/kernel/drivers/pps/*' \
    './lib/modules/*/kernel/drivers/dca/*' \
    './lib/modules/*/kernel/crypto/*'
release=$(basename "$(ls -d "$work"/lib/modules/*)")
depmod -b "$work" "$release"
loads=()
for module in virtio_pci virtio_net e1000 e1000e igb r8169 tg3; do
    while read -r verb path _; do
        [ "$verb" = insmod ] || continue
        name=$(basename "$path")
        cp -n "$path" "$init/lib/modules/$name"
        case " ${loads[*]-} " in *" $name "*) ;; *) loads+=("$name") ;; esac
    done < <(modprobe --show-depends -d "$work" -S "$release" "$module" 2>/dev/null || true)
done

# The programs, and the libraries ldd finds for them in the unpacked tree.
cp "$stage/bin/busybox" "$init/bin/busybox"
cp "$stage/usr/bin/aria2c" "$init/bin/aria2c"
cp "$stage/sbin/kexec" "$init/bin/kexec" 2>/dev/null || cp "$stage/usr/sbin/kexec" "$init/bin/kexec"
libpath="$stage/lib/x86_64-linux-gnu:$stage/usr/lib/x86_64-linux-gnu"
for program in aria2c kexec; do
    if LD_LIBRARY_PATH=$libpath ldd "$init/bin/$program" | grep -q 'not found'; then
        LD_LIBRARY_PATH=$libpath ldd "$init/bin/$program" >&2
        echo "build-phase1.sh: $program misses a library" >&2
        exit 1
    fi
    for lib in $(LD_LIBRARY_PATH=$libpath ldd "$init/bin/$program" | grep -o '/[^ ]*'); do
        # A library found in the unpacked tree goes where the package puts it; the
        # loader (named by its absolute path) is taken from the tree too.
        dest=${lib#"$stage"}
        [ -e "$stage$dest" ] && lib=$stage$dest
        mkdir -p "$init$(dirname "$dest")"
        cp -nL "$lib" "$init$dest"
    done
done

cat >"$init/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in ${loads[*]}; do insmod /lib/modules/\$m 2>/dev/null; done
exec /bin/phase1
EOF
cat >"$init/bin/phase1" <<'EOF'
#!/bin/sh
# Phase 1: fetch the chosen OS by BitTorrent, share it, start it.
fail() {
    echo "phase 1: $*" >&2
    echo "phase 1: a shell, to look around (the log is /os/aria2.log)" >&2
    exec setsid cttyhack sh
}
for word in $(cat /proc/cmdline); do
    case $word in
    bootd.os=*) os=${word#bootd.os=} ;;
    bootd.url=*) url=${word#bootd.url=} ;;
    bootd.torrent=*) torrent=${word#bootd.torrent=} ;;
    bootd.seed_time=*) seed_time=${word#bootd.seed_time=} ;;
    esac
done
[ -n "$os" ] && [ -n "$url" ] && [ -n "$torrent" ] || fail "no bootd.os, bootd.url or bootd.torrent on the command line"
seed_time=${seed_time:-30}
ip link set lo up
iface=
for i in $(seq 100); do
    for d in /sys/class/net/*; do
        [ "${d##*/}" = lo ] || { iface=${d##*/}; break; }
    done
    [ -n "$iface" ] && break
    sleep 0.1
done
[ -n "$iface" ] || fail "no network interface"
ip link set "$iface" up
udhcpc -i "$iface" -f -q -n -t 10 -T 2 -s /bin/dhcp-hook || fail "no DHCP answer on $iface"
# LPD's multicast leaves by the boot network even without a default route.
ip route add 224.0.0.0/4 dev "$iface" 2>/dev/null
# The OS is held in RAM.
mount -t tmpfs -o size=90% tmpfs /os
wget -q -O "/os/$os.torrent" "$torrent" || fail "cannot fetch $torrent"
wget -q -O "/os/$os.boot" "$url/torrents/$os.boot" || fail "cannot fetch $url/torrents/$os.boot"
value() { sed -n "s/^$1=//p" "/os/$os.boot" | head -n 1; }
# aria2 counts seed time in minutes, fractions allowed: seed_time stays seconds.
minutes=$(awk -v s="$seed_time" 'BEGIN { printf "%.4f", s / 60 }')
echo "phase 1: fetching $os by BitTorrent (sharing for $seed_time s after)"
# At info, aria2's log names the peer each received piece came from. Each machine
# asks the web seed for pieces at random places rather than all from the start, so
# that they hold different pieces to pass to each other.
aria2c --dir=/os --log=/os/aria2.log --log-level=info --console-log-level=warn \
    --summary-interval=10 --stream-piece-selector=random \
    --enable-dht=false --enable-dht6=false --disable-ipv6=true \
    --bt-enable-lpd=true --bt-lpd-interface="$iface" --check-integrity=true \
    --file-allocation=none --seed-ratio=0.0 --seed-time="$minutes" \
    --torrent-file="/os/$os.torrent" || fail "aria2c could not fetch $os"
# What the other machines sent, as aria2 logged each block it received
# ("From: IP:PORT piece index=…, begin=…, length=…"); the rest came from the web seed.
awk '/ - From: .* piece index=/ {
        ip = $0; sub(/.* - From: /, "", ip); sub(/:.*/, "", ip)
        n = $0; sub(/.*length=/, "", n); sub(/[^0-9].*/, "", n)
        got[ip] += n
    }
    END { for (ip in got) printf "phase 1: aria2 received %d bytes of pieces from peer %s\n", got[ip], ip }' /os/aria2.log
dir=/os/$os
case $(value method) in
kexec)
    kernel=$(value kernel)
    initrd=$(value initrd)
    cmdline=$(value cmdline)
    # One argument each, no quotes added: the command line reaches the kernel as written.
    if [ -n "$initrd" ]; then
        kexec -l "$dir/$kernel" --initrd="$dir/$initrd" --append="$cmdline" || fail "kexec cannot load $kernel"
    else
        kexec -l "$dir/$kernel" --append="$cmdline" || fail "kexec cannot load $kernel"
    fi
    echo "phase 1: starting $os"
    kexec -e || fail "kexec -e failed"
    ;;
bin)
    bin=$(value bin)
    chmod +x "$dir/$bin"
    cd "$dir" || fail "no $dir"
    # binargs is split at spaces, as BootTorrent did.
    # shellcheck disable=SC2046
    exec "./$bin" $(value binargs)
    ;;
*) fail "$os.boot names no method phase 1 knows" ;;
esac
EOF
cat >"$init/bin/dhcp-hook" <<'EOF'
#!/bin/sh
case "$1" in
bound | renew)
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface"
    ;;
esac
EOF
chmod 0755 "$init/init" "$init/bin/phase1" "$init/bin/dhcp-hook" "$init/bin/busybox"

mkdir -p "$work/out"
cp "$work"/boot/vmlinuz-* "$work/out/vmlinuz"
echo "$release" >"$work/out/release"
(cd "$init" && find . | cpio -o -H newc --quiet --owner 0:0) | gzip -9 >"$work/out/initrd.img"
rm -rf "$built"
mv "$work/out" "$built"
# Older builds and packages are of no more use.
find "$cache" -mindepth 1 -maxdepth 1 -type d -name 'phase1-*' ! -path "$built" ! -path "$debs" -exec rm -rf {} +
keep=()
for p in $packages "$kpkg"; do
    fetch "$p"
    keep+=(! -name "$(basename "$deb")")
done
find "$debs" -type f "${keep[@]}" -delete
install_built
