"""Plays DHCP clients for bootd's tests.

    dhcp_probe.py IFACE MAC [UUID-HEX-32] [TIMEOUT-SECONDS]
    dhcp_probe.py release IFACE MAC CLIENT-IP SERVER-IP
    dhcp_probe.py machines IFACE MAC-PREFIX COUNT UUID-HEX-32 SECONDS
    dhcp_probe.py nameless IFACE MAC-PREFIX COUNT
    dhcp_probe.py claim IFACE MAC CIADDR

The first sends one DHCPDISCOVER and prints `OFFER <yiaddr> <milliseconds>` or
`TIMEOUT`; with a UUID the DISCOVER looks like a BIOS PXE ROM's (options 60, 93,
94, 97). Several probes may run at once in one namespace (SO_REUSEADDR; each
matches its own xid). A RELEASE goes unicast from CLIENT-IP (which must be
configured) to SERVER-IP, as RFC 2131 says.

`machines` sends a PXE DISCOVER from each of COUNT MACs (MAC-PREFIX, 5 bytes,
then 00, 01, ...) every second, as ROMs retransmit, for SECONDS, and prints
`SENT <n>`. `nameless` sends, from each of COUNT such MACs, a DHCPREQUEST naming
no address (no option 50, no ciaddr, no server identifier) and prints
`ANSWERED <n>`: the replies seen within a second. `claim` sends a BOOTREQUEST
whose ciaddr is CIADDR and prints `ANSWERED` or `TIMEOUT` (2 s).
"""
import os
import socket
import struct
import sys
import time

def request(xid, flags, ciaddr, mac, options):
    """A BOOTREQUEST (Ethernet, no relay) padded to BOOTP's 300 bytes."""
    packet = (
        struct.pack("!BBBB", 1, 1, 6, 0)
        + xid
        + struct.pack("!HH", 0, flags)
        + ciaddr
        + bytes(12)
        + mac
        + bytes(10)
        + bytes(192)
        + bytes([99, 130, 83, 99])
        + options
    )
    return packet + bytes(max(0, 300 - len(packet)))


def pxe_discover(xid, mac, uuid):
    vendor = b"PXEClient:Arch:00000:UNDI:002001"
    options = bytes([53, 1, 1, 60, len(vendor)]) + vendor
    options += bytes([93, 2, 0, 0, 94, 3, 1, 2, 1])
    options += bytes([97, 17, 0]) + bytes.fromhex(uuid)
    options += bytes([55, 4, 1, 3, 6, 67, 255])
    return request(xid, 0x8000, bytes(4), mac, options)


def client_socket(iface):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
    sock.bind(("0.0.0.0", 68))
    return sock


def replies_to(sock, xids, seconds):
    """How many BOOTREPLYs for one of `xids` arrive within `seconds`."""
    seen = 0
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return seen
        sock.settimeout(left)
        try:
            reply, _ = sock.recvfrom(2048)
        except socket.timeout:
            continue
        if len(reply) >= 240 and reply[0] == 2 and reply[4:8] in xids:
            seen += 1


if sys.argv[1] == "nameless":
    iface, prefix, count = sys.argv[2], sys.argv[3], int(sys.argv[4])
    prefix = bytes.fromhex(prefix.replace(":", "").replace("-", ""))
    sock = client_socket(iface)
    xids = set()
    vendor = b"PXEClient:Arch:00000:UNDI:002001"
    options = bytes([53, 1, 3, 60, len(vendor)]) + vendor + bytes([255])
    for n in range(count):
        xid = os.urandom(4)
        xids.add(xid)
        sock.sendto(request(xid, 0x8000, bytes(4), prefix + bytes([n]), options), ("255.255.255.255", 67))
    print(f"ANSWERED {replies_to(sock, xids, 1.0)}", flush=True)
    sys.exit(0)

if sys.argv[1] == "claim":
    iface, mac_text, ciaddr = sys.argv[2], sys.argv[3], sys.argv[4]
    mac = bytes.fromhex(mac_text.replace(":", "").replace("-", ""))
    sock = client_socket(iface)
    xid = os.urandom(4)
    sock.sendto(request(xid, 0x8000, socket.inet_aton(ciaddr), mac, bytes([255])), ("255.255.255.255", 67))
    print("ANSWERED" if replies_to(sock, {xid}, 2.0) else "TIMEOUT", flush=True)
    sys.exit(0)

if sys.argv[1] == "machines":
    iface, prefix, count, uuid, seconds = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], float(sys.argv[6])
    prefix = bytes.fromhex(prefix.replace(":", "").replace("-", ""))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
    sock.bind(("0.0.0.0", 68))
    sent = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for n in range(count):
            sock.sendto(pxe_discover(os.urandom(4), prefix + bytes([n]), uuid), ("255.255.255.255", 67))
            sent += 1
        time.sleep(1)
    print(f"SENT {sent}", flush=True)
    sys.exit(0)

if sys.argv[1] == "release":
    iface, mac_text, client_ip, server_ip = sys.argv[2:6]
    mac = bytes.fromhex(mac_text.replace(":", "").replace("-", ""))
    options = bytes([53, 1, 7, 54, 4]) + socket.inet_aton(server_ip) + bytes([255])
    packet = request(os.urandom(4), 0, socket.inet_aton(client_ip), mac, options)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((client_ip, 68))
    sock.sendto(packet, (server_ip, 67))
    print("RELEASED", flush=True)
    sys.exit(0)

iface, mac_text = sys.argv[1], sys.argv[2]
uuid = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] != "-" else None
timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 2.0
mac = bytes.fromhex(mac_text.replace(":", "").replace("-", ""))
xid = os.urandom(4)

options = bytes([53, 1, 1])
if uuid:
    vendor = b"PXEClient:Arch:00000:UNDI:002001"
    options += bytes([60, len(vendor)]) + vendor
    options += bytes([93, 2, 0, 0, 94, 3, 1, 2, 1])
    options += bytes([97, 17, 0]) + bytes.fromhex(uuid)
options += bytes([55, 4, 1, 3, 6, 67, 255])
packet = request(xid, 0x8000, bytes(4), mac, options)

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
sock.bind(("0.0.0.0", 68))
start = time.monotonic()
sock.sendto(packet, ("255.255.255.255", 67))
deadline = start + timeout
while True:
    left = deadline - time.monotonic()
    if left <= 0:
        print("TIMEOUT", flush=True)
        sys.exit(0)
    sock.settimeout(left)
    try:
        reply, _ = sock.recvfrom(2048)
    except socket.timeout:
        continue
    if len(reply) < 240 or reply[0] != 2 or reply[4:8] != xid:
        continue
    elapsed = (time.monotonic() - start) * 1000
    print(f"OFFER {socket.inet_ntoa(reply[16:20])} {elapsed:.1f}", flush=True)
    sys.exit(0)
