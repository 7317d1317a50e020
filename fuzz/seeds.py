"""Writes the fuzzers' seed inputs into fuzz/corpus/<target>/seed-*.

    python3 fuzz/seeds.py

The seeds are the byte-exact inputs of the unit tests (the TFTP packets written
out in hex in src/tftp/wire.rs, the DHCP packets of src/bootp/wire.rs's tests and
of the integration clients, the lease-file lines of src/bootp/leases.rs, the
configuration samples of conf/ and src/config/tests.rs, HTTP requests as boot
clients send them), so that the fuzzers
start from what real clients, disks and sysadmins send. Re-running it rewrites
the same files; inputs the fuzzers found are kept beside them.
"""
import pathlib
import re
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
COOKIE = bytes([99, 130, 83, 99])


def write(target, name, data):
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"seed-{name}").write_bytes(data)


def hex_literals(path):
    """The bytes of every `hex("…")` literal in a Rust file (`#` comments removed)."""
    text = path.read_text()
    for literal in re.findall(r'hex\("((?:[^"\\]|\\.)*)"\)', text, re.S):
        digits = "".join(
            c for line in literal.splitlines() for c in line.split("#")[0] if c in "0123456789abcdefABCDEF"
        )
        if len(digits) % 2 == 0:
            yield bytes.fromhex(digits)


def header(op, xid, flags, mac, ciaddr=bytes(4)):
    """A 236-byte BOOTP header, as src/bootp/wire.rs's tests build it."""
    b = bytearray(236)
    b[0], b[1], b[2] = op, 1, 6
    b[4:8] = struct.pack("!I", xid)
    b[10:12] = struct.pack("!H", flags)
    b[12:16] = ciaddr
    b[28:34] = mac
    return b


def dhcp_seeds():
    mac = bytes([2, 0, 0, 0, 0, 1])
    with_options = lambda options: bytes(header(1, 1, 0, mac)) + COOKIE + bytes(options)
    yield "plain-bootp", bytes(header(1, 0x01020304, 0x8000, mac)) + bytes(64)
    fields = bytearray(header(1, 0xDEADBEEF, 0x8000, bytes.fromhex("525400123456")))
    fields[3] = 2
    fields[8:10] = struct.pack("!H", 5)
    fields[12:28] = bytes([10, 0, 0, 5, 10, 0, 0, 6, 10, 0, 0, 7, 10, 0, 0, 8])
    fields[44:48] = b"srv\0"
    fields[108:115] = b"boot.0\0"
    yield "header-fields", bytes(fields) + COOKIE + bytes([53, 1, 1, 255])
    yield "missing-end", with_options([53, 1, 1, 50, 4, 10, 0, 0, 9])
    yield "after-end", with_options([53, 1, 3, 255, 77, 200, 1])
    yield "pad-run", with_options([0] * 1000 + [53, 1, 1, 255])
    yield "truncated-option", with_options([53, 1, 1, 60, 10, ord("P")])
    yield "concatenated", with_options([43, 2, 1, 2, 53, 1, 1, 43, 1, 3, 255])
    overload = bytearray(header(1, 1, 0, mac))
    overload[44:50] = bytes([12, 3]) + b"abc" + bytes([255])
    overload[108:115] = bytes([60, 3]) + b"PXE" + bytes([255, 0x42])
    yield "overload", bytes(overload) + COOKIE + bytes([53, 1, 1, 52, 1, 3, 255])
    typed = [53, 1, 3, 50, 4, 192, 168, 1, 25, 54, 4, 192, 168, 1, 1, 55, 3, 1, 3, 6,
             57, 2, 0x05, 0xDC, 60, 9, *b"PXEClient", 61, 7, 1, 2, 0, 0, 0, 0, 1,
             77, 4, *b"iPXE", 82, 4, 1, 2, 0xAB, 0xCD, 93, 4, 0, 7, 0, 0, 94, 3, 1, 3, 16,
             97, 3, 0, 1, 2, 43, 3, 6, 1, 8, 255]
    yield "typed-options", with_options(typed)
    yield "user-class-counted", with_options([77, 6, 2, *b"ab", 2, *b"cd"])
    yield "malformed-fixed", with_options([50, 3, 1, 2, 3, 57, 1, 9, 94, 2, 1, 2])
    # A BIOS PXE ROM's DISCOVER, as integration/dhcp_probe.py sends it.
    vendor = b"PXEClient:Arch:00000:UNDI:002001"
    pxe = [53, 1, 1, 60, len(vendor), *vendor, 93, 2, 0, 0, 94, 3, 1, 2, 1,
           97, 17, 0, *bytes.fromhex("78563412cdab00ef1111abcdefabcdef"), 55, 4, 1, 3, 6, 67, 255]
    packet = bytes(header(1, 0x11223344, 0x8000, bytes.fromhex("525400123456"))) + COOKIE + bytes(pxe)
    yield "pxe-discover", packet + bytes(max(0, 300 - len(packet)))
    # SELECTING: REQUEST with the offered address and the server identifier.
    request = [53, 1, 3, 50, 4, 10, 0, 0, 100, 54, 4, 10, 0, 0, 1, 255]
    packet = bytes(header(1, 7, 0x8000, mac)) + COOKIE + bytes(request)
    yield "request", packet + bytes(max(0, 300 - len(packet)))
    # RELEASE from a bound client (ciaddr set), unicast.
    release = [53, 1, 7, 54, 4, 10, 0, 0, 1, 255]
    packet = bytes(header(1, 9, 0, mac, bytes([10, 0, 0, 100]))) + COOKIE + bytes(release)
    yield "release", packet + bytes(max(0, 300 - len(packet)))


LEASES = """# bootd leases
52-54-00-12-34-56 192.168.25.100 1718000000 bound pxe uuid=01020304-0506-0708-090a-0b0c0d0e0f10
52-54-00-12-34-57 192.168.25.101 1718000042 released
52-54-00-12-34-58 192.168.25.102 1718000043 declined
02-00-00-00-00-01 10.0.0.100 1718000044 bound
52-54-00-12-34-59 192.168.25.103 17180000
"""


def config_samples():
    for path in sorted((ROOT / "conf").glob("*.ini")):
        yield path.stem, path.read_bytes()
    tests = (ROOT / "src" / "config" / "tests.rs").read_text()
    for name, body in re.findall(r'const ([A-Z0-9_]+): &str = "((?:[^"\\]|\\.)*)";', tests, re.S):
        text = body.encode().decode("unicode_escape")
        yield name.lower().replace("_", "-"), text.encode()


# Requests as firmware, iPXE, curl and wget send them, and the ones the HTTP
# endpoint's tests refuse (src/http/endpoint.rs, src/http/wire.rs).
HTTP_REQUESTS = {
    "get": b"GET /boot/grubx64.efi HTTP/1.1\r\nHost: 10.0.0.1\r\nAccept: */*\r\nUser-Agent: UefiHttpBoot/1.0\r\n\r\n",
    "head": b"HEAD /vmlinuz HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n",
    "range": b"GET /vmlinuz HTTP/1.1\r\nHost: h\r\nRange: bytes=100-199\r\n\r\n",
    "suffix-range": b"GET /vmlinuz HTTP/1.1\r\nHost: h\r\nRange: bytes=-10\r\n\r\n",
    "open-range": b"GET /vmlinuz HTTP/1.1\r\nHost: h\r\nRange: bytes=999-\r\nIf-Range: \"x\"\r\n\r\n",
    "pipelined": b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    "http10": b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "absolute": b"GET http://10.0.0.1/pxelinux.0?x=1#f HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n",
    "escaped": b"GET /%2e%2e/%252e%2fetc%00passwd HTTP/1.1\r\nHost: h\r\n\r\n",
    "post-body": b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
    "chunked": b"PUT /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "no-host": b"GET /x HTTP/1.1\r\n\r\n",
    "wget": b"GET /big.bin HTTP/1.1\r\nUser-Agent: Wget/1.21.3\r\nAccept: */*\r\nAccept-Encoding: identity\r\nHost: 10.96.0.1\r\nConnection: Keep-Alive\r\n\r\n",
    "partial": b"GET /vmlinuz HT",
    "tls": bytes.fromhex("160301020001000001fc0303"),
}


def main():
    for n, packet in enumerate(hex_literals(ROOT / "src" / "tftp" / "wire.rs")):
        write("tftp_packet", f"unit-{n:02}", packet)
    for name, packet in dhcp_seeds():
        write("dhcp_message", name, packet)
    write("lease_file", "journal", LEASES.encode())
    for name, text in config_samples():
        write("config_ini", name, text)
    for name, request in HTTP_REQUESTS.items():
        write("http_request", name, request)


main()
