#!/usr/bin/env bash
# vm-assets.sh: the boot files that the VM tests and the demo serve with bootd,
# from Debian packages only (apt), the expensive part cached.
#
#   scripts/vm-assets.sh TFTP_ROOT        (cache: $BOOTD_VM_CACHE, or target/vm-cache under $CARGO_TARGET_DIR or .)
#   scripts/vm-assets.sh --debian-installer DIR
#
# Fills TFTP_ROOT with
#   pxelinux.0, ldlinux.c32         BIOS: pxelinux and syslinux-common
#   pxelinux.cfg/default            its configuration (serve it with a [filters] rule)
#   grubx64.efi, grub/grub.cfg      x64 UEFI: a GRUB network image (grub-efi-amd64-bin)
#   undionly.kpxe, ipxe.efi,        iPXE to chainload from a PXE ROM (package ipxe)
#   snponly.efi
#   boot.ipxe                       an iPXE script loading vmlinuz and initrd.gz from
#                                   where the script came from (HTTP, on bootd)
#   vmlinuz                         Debian's kernel, as packaged (linux-image-*-amd64)
#   initrd.gz                       busybox-static, the NIC modules and /init
#   initrd-nbd.gz                   the same, with Debian's nbd and ext4 modules and
#                                   nbd-client (package nbd-client) and its libraries
# and prints TFTP_ROOT. The kernel and initramfs are cached in a directory named
# after the kernel and busybox package versions and this recipe's version, so a
# second run downloads nothing and a new package or recipe builds anew.
#
# /init is what an installed operating system does on its first boot, reduced to
# the network part: it loads the NIC driver, prints its kernel command line
#   bootd-vm: command line: …
# asks for an address by DHCP (a second time, after the firmware's PXE request), prints
#   BOOTD-VM-UP ip=ADDRESS mac=MAC server=SERVER
# on the serial console, and powers the machine off.
#
# Given `bootd.nbd=SERVER:PORT/EXPORT` on its command line (initrd-nbd.gz), /init
# then does what a diskless machine does with its root: it attaches the export with
# nbd-client, mounts it (ext4), prints
#   BOOTD-NBD-FOUND <the content of /bootd-hello>   or   BOOTD-NBD-ABSENT
# writes its MAC to /bootd-hello, unmounts, detaches (so bootd sees the machine
# go), prints BOOTD-NBD-DONE, and powers off.
#
# With --debian-installer, DIR gets instead Debian's own netboot tree (package
# debian-installer-12-netboot-amd64, the text installer: pxelinux.0, ldlinux.c32,
# debian-installer/amd64/linux and initrd.gz...), what a Debian mirror holds under
# .../installer-amd64/current/images/netboot; the package is cached unpacked.
set -euo pipefail
installer=
if [ "${1:-}" = --debian-installer ]; then
    installer=1
    shift
fi
if [ $# -ne 1 ]; then
    echo "usage: $0 [--debian-installer] DIR" >&2
    exit 2
fi
root=$(realpath -m "$1")
cd "$(dirname "$0")/.."
cache=$(realpath -m "${BOOTD_VM_CACHE:-${CARGO_TARGET_DIR:-target}/vm-cache}")
recipe=3
mkdir -p "$cache/debs" "$root"

# One builder at a time (tests run in parallel and may all ask at once).
exec 9> "$cache/.lock"
flock 9

if [ -n "$installer" ]; then
    package=debian-installer-12-netboot-amd64
    iver=$(apt-cache show --no-all-versions "$package" 2>/dev/null | sed -n 's/^Version: //p')
    if [ -z "$iver" ]; then
        apt-get update -qq >&2
        iver=$(apt-cache show --no-all-versions "$package" 2>/dev/null | sed -n 's/^Version: //p')
    fi
    if [ -z "$iver" ]; then
        echo "vm-assets.sh: apt knows no $package" >&2
        exit 1
    fi
    tree="$cache/${package}_${iver//:/_}"
    if ! [ -s "$tree/text/debian-installer/amd64/initrd.gz" ]; then
        # (Kept apart from $cache/debs, which the kernel's build prunes.)
        rm -rf "$cache/di" "$cache"/"${package}"_*
        mkdir -p "$cache/di"
        (cd "$cache/di" && apt-get download -q "$package=$iver") >&2
        work=$(mktemp -d "$cache/build.XXXXXX")
        dpkg -x "$cache"/di/*.deb "$work"
        # The text installer only: the graphical one doubles the size.
        mkdir -p "$tree"
        mv "$work/usr/lib/debian-installer/images/12/amd64/text" "$tree/text"
        rm -rf "$work" "$cache/di"
    fi
    # The text installer, symbolic links and all (a mirror's web server follows them).
    rm -rf "$root"
    cp -a "$tree/text" "$root"
    echo "$root"
    exit 0
fi

version() { apt-cache show --no-all-versions "$1" 2>/dev/null | sed -n 's/^Version: //p'; }
kernel_package() {
    apt-cache show --no-all-versions linux-image-amd64 2>/dev/null \
        | sed -n 's/^Depends: \(linux-image-[^ ,]*\).*/\1/p'
}
kpkg=$(kernel_package)
if [ -z "$kpkg" ]; then
    # No package lists yet (a fresh machine whose packages were all present).
    apt-get update -qq >&2
    kpkg=$(kernel_package)
fi
if [ -z "$kpkg" ]; then
    echo "vm-assets.sh: apt knows no linux-image-amd64" >&2
    exit 1
fi
kver=$(version "$kpkg")
bver=$(version busybox-static)
nver=$(version nbd-client)
# fetch PACKAGE VERSION: sets $deb to the cached .deb, downloading it if needed.
fetch() {
    deb=$(find "$cache/debs" -name "${1}_*${2#*:}_amd64.deb" | head -n 1)
    [ -n "$deb" ] && return 0
    if ! (cd "$cache/debs" && apt-get download -q "$1=$2") >&2; then
        # Stale package lists may name a version the mirror no longer has: update
        # them and start again (once).
        if [ -z "${BOOTD_VM_UPDATED:-}" ]; then
            apt-get update -qq >&2
            export BOOTD_VM_UPDATED=1
            exec "$(pwd)/scripts/vm-assets.sh" "$root"
        fi
        echo "vm-assets.sh: cannot download $1 $2" >&2
        exit 1
    fi
    deb=$(find "$cache/debs" -name "${1}_*${2#*:}_amd64.deb" | head -n 1)
}

# (Not indented: its here-documents end on unindented lines.)
build_kernel_and_initramfs() {
fetch "$kpkg" "$kver"
kdeb=$deb
fetch busybox-static "$bver"
bdeb=$deb
fetch nbd-client "$nver"
ndeb=$deb

work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Only the kernel image and the network and virtio drivers: the whole package
# unpacks to 400 MB.
dpkg-deb --fsys-tarfile "$kdeb" | tar -x -C "$work" --wildcards \
    './boot/vmlinuz-*' './lib/modules/*/modules.order' './lib/modules/*/modules.builtin*' \
    './lib/modules/*/kernel/drivers/net/*' './lib/modules/*/kernel/drivers/virtio/*' \
    './lib/modules/*/kernel/net/core/*' './lib/modules/*/kernel/drivers/block/nbd.ko' \
    './lib/modules/*/kernel/fs/ext4/*' './lib/modules/*/kernel/fs/jbd2/*' \
    './lib/modules/*/kernel/fs/mbcache.ko' './lib/modules/*/kernel/lib/*' \
    './lib/modules/*/kernel/crypto/*'
release=$(basename "$(ls -d "$work"/lib/modules/*)")
# The package ships no modules.dep: make one for the part unpacked.
depmod -b "$work" "$release"

init="$work/initramfs"
mkdir -p "$init"/{bin,dev,proc,sys,tmp,lib/modules}
dpkg-deb --fsys-tarfile "$bdeb" | tar -x -O ./bin/busybox > "$init/bin/busybox"
chmod 0755 "$init/bin/busybox"
# virtio-net (the tests' NIC) and e1000 (QEMU's default NIC), with what they need,
# in load order.
loads=()
for module in virtio_pci virtio_net e1000; do
    while read -r verb path _; do
        [ "$verb" = insmod ] || continue
        name=$(basename "$path")
        cp -n "$path" "$init/lib/modules/$name"
        case " ${loads[*]-} " in *" $name "*) ;; *) loads+=("$name") ;; esac
    done < <(modprobe --show-depends -d "$work" -S "$release" "$module")
done

# For initrd-nbd.gz: nbd, ext4 and what they need, and crc32c, which ext4 asks the
# crypto API for (no hard dependency names it).
nbd_loads=()
mkdir -p "$work/nbd-modules"
for module in nbd crc32c_generic ext4; do
    while read -r verb path _; do
        [ "$verb" = insmod ] || continue
        name=$(basename "$path")
        cp -n "$path" "$work/nbd-modules/$name"
        case " ${nbd_loads[*]-} " in *" $name "*) ;; *) nbd_loads+=("$name") ;; esac
    done < <(modprobe --show-depends -d "$work" -S "$release" "$module")
done

cat > "$init/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in ${loads[*]}; do insmod /lib/modules/\$m; done
ip link set lo up
iface=
for i in \$(seq 50); do
    for d in /sys/class/net/*; do
        [ "\${d##*/}" = lo ] || iface=\${d##*/}
    done
    [ -n "\$iface" ] && break
    sleep 0.1
done
ip link set "\$iface" up
# What the kernel was given, so that a test can tell it arrived verbatim.
echo "bootd-vm: command line: \$(cat /proc/cmdline)"
echo "bootd-vm: network interface \$iface, asking for an address (DHCP, as an installed OS)"
if udhcpc -i "\$iface" -f -q -n -t 10 -T 2 -s /bin/dhcp-hook; then
    . /tmp/lease
    echo "BOOTD-VM-UP ip=\$ip mac=\$(cat /sys/class/net/\$iface/address) server=\$serverid"
else
    echo "BOOTD-VM-NO-LEASE"
fi
nbd=\$(sed -n 's/.*bootd\.nbd=\([^ ]*\).*/\1/p' /proc/cmdline)
if [ -n "\$nbd" ] && [ -x /bin/nbd-root ]; then
    /bin/nbd-root "\$nbd" "\$(cat /sys/class/net/\$iface/address)"
fi
poweroff -f
EOF
cat > "$init/bin/dhcp-hook" <<'EOF'
#!/bin/sh
case "$1" in
bound|renew)
    ip addr add "$ip/$mask" dev "$interface"
    echo "ip=$ip serverid=$serverid" > /tmp/lease
    ;;
esac
EOF
chmod 0755 "$init/init" "$init/bin/dhcp-hook"

mkdir -p "$work/out"
cp "$work"/boot/vmlinuz-* "$work/out/vmlinuz"
(cd "$init" && find . | cpio -o -H newc --quiet --owner 0:0) | gzip -9 > "$work/out/initrd.gz"

# initrd-nbd.gz: the same, plus nbd-client with its libraries (the host's copies,
# which deps.sh installs with the same package), the modules, and /bin/nbd-root.
dpkg-deb --fsys-tarfile "$ndeb" | tar -x -C "$work" ./sbin/nbd-client
cp "$work/sbin/nbd-client" "$init/bin/nbd-client"
if ldd "$init/bin/nbd-client" | grep -q 'not found'; then
    echo "vm-assets.sh: nbd-client's libraries are missing here: run scripts/deps.sh" >&2
    exit 1
fi
for lib in $(ldd "$init/bin/nbd-client" | grep -o '/[^ ]*'); do
    mkdir -p "$init$(dirname "$lib")"
    cp -L "$lib" "$init$lib"
done
cp "$work"/nbd-modules/* "$init/lib/modules/"
cat > "$init/bin/nbd-root" <<EOF
#!/bin/sh
# nbd-root SERVER:PORT/EXPORT MAC
target=\$1
mac=\$2
server=\${target%%:*}
rest=\${target#*:}
port=\${rest%%/*}
name=\${rest#*/}
for m in ${nbd_loads[*]}; do insmod /lib/modules/\$m; done
if ! nbd-client "\$server" "\$port" /dev/nbd0 -N "\$name"; then
    echo "BOOTD-NBD-FAILED nbd-client"
    exit 1
fi
mkdir -p /mnt
if ! mount -t ext4 /dev/nbd0 /mnt; then
    echo "BOOTD-NBD-FAILED mount"
    nbd-client -d /dev/nbd0
    exit 1
fi
if [ -f /mnt/bootd-hello ]; then
    echo "BOOTD-NBD-FOUND \$(cat /mnt/bootd-hello)"
else
    echo "BOOTD-NBD-ABSENT"
fi
echo "written by \$mac" > /mnt/bootd-hello
umount /mnt
sync
nbd-client -d /dev/nbd0
echo "BOOTD-NBD-DONE"
EOF
chmod 0755 "$init/bin/nbd-root"
(cd "$init" && find . | cpio -o -H newc --quiet --owner 0:0) | gzip -9 > "$work/out/initrd-nbd.gz"
rm -rf "$out"
mv "$work/out" "$out"
rm -rf "$work"
# Older versions are of no more use.
find "$cache/debs" -type f ! -name "$(basename "$kdeb")" ! -name "$(basename "$bdeb")" \
    ! -name "$(basename "$ndeb")" -delete
find "$cache" -mindepth 1 -maxdepth 1 -type d -name 'linux-image-*' ! -path "$out" -exec rm -rf {} +
}

out="$cache/${kpkg}_${kver}-busybox_${bver}-nbd_${nver}-r${recipe}"
out=${out//:/_}
if ! [ -s "$out/vmlinuz" ] || ! [ -s "$out/initrd.gz" ] || ! [ -s "$out/initrd-nbd.gz" ]; then
    build_kernel_and_initramfs
fi


cmdline="console=ttyS0,115200 panic=-1"
install -m 0644 "$out/vmlinuz" "$out/initrd.gz" "$out/initrd-nbd.gz" "$root/"
install -m 0644 /usr/lib/PXELINUX/pxelinux.0 /usr/lib/syslinux/modules/bios/ldlinux.c32 "$root/"
mkdir -p "$root/pxelinux.cfg" "$root/grub"
cat > "$root/pxelinux.cfg/default" <<CFG
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL vmlinuz
  APPEND initrd=initrd.gz $cmdline
CFG
# GRUB's network image: the modules it needs built in, its prefix (tftp)/grub, so it
# reads /grub/grub.cfg from the server that booted it.
grub-mkimage -O x86_64-efi -o "$root/grubx64.efi" -p '(tftp)/grub' \
    efinet tftp net linux normal configfile echo gzio test
cat > "$root/grub/grub.cfg" <<CFG
set timeout=0
echo "grub: loading vmlinuz and initrd.gz"
linux /vmlinuz $cmdline
initrd /initrd.gz
boot
CFG
# iPXE, for PXE ROMs to chainload (package ipxe), and the script it is then given
# over HTTP: relative names are fetched from where the script came from.
install -m 0644 /usr/lib/ipxe/undionly.kpxe /usr/lib/ipxe/ipxe.efi /usr/lib/ipxe/snponly.efi "$root/"
cat > "$root/boot.ipxe" <<CFG
#!ipxe
echo bootd-vm: iPXE script loaded from \${filename}
kernel vmlinuz initrd=initrd.gz $cmdline
initrd initrd.gz
boot
CFG
echo "$root"
