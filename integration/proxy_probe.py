"""Plays PXE firmware for bootd's proxyDHCP tests: sends one crafted BOOTP
datagram and prints what comes back.

    proxy_probe.py IFACE LOCAL-PORT DEST-IP DEST-PORT HEX [SECONDS]

sends the datagram HEX from LOCAL-PORT on IFACE (the interface's own address is
the source: 0.0.0.0 before it has one) to DEST-IP:DEST-PORT, then prints, for
every BOOTREPLY carrying the request's xid within SECONDS (default 2), one line
`REPLY <source-ip>:<source-port> <hex>`, and `DONE` at the end.
"""
import socket
import sys
import time

iface, local_port, dest_ip, dest_port, payload = sys.argv[1:6]
seconds = float(sys.argv[6]) if len(sys.argv) > 6 else 2.0
packet = bytes.fromhex(payload)
xid = packet[4:8]

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
sock.bind(("0.0.0.0", int(local_port)))
sock.sendto(packet, (dest_ip, int(dest_port)))
deadline = time.monotonic() + seconds
while True:
    left = deadline - time.monotonic()
    if left <= 0:
        break
    sock.settimeout(left)
    try:
        reply, (ip, port) = sock.recvfrom(4096)
    except socket.timeout:
        continue
    if len(reply) >= 240 and reply[0] == 2 and reply[4:8] == xid:
        print(f"REPLY {ip}:{port} {reply.hex()}", flush=True)
print("DONE", flush=True)
