"""A small TLS client for `.t` exec sections: handshake with a chosen SNI (and optional
client certificate), print which certificate the server presented, send requests.

    $PYTHON $REPO/t/lib/tls_client.py --sni test.com [--cn] [--key-type] \
        [--cert F --key F] [--tls1.2] [--ecdsa|--rsa] [--host-header H] [GET /path ...]

Prints, one line each: `cn: <server certificate CN>` (--cn), `key: RSA|EC` (--key-type),
`proto: TLSv1.3` (--proto), then for each request `<status> <body>` (body stripped);
`handshake failed: <reason>` when the handshake fails (exit code 0: tests compare output).
Several requests go over one connection (keep-alive).
"""

from __future__ import annotations

import argparse
import socket
import ssl
import sys

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def read_response(f) -> tuple[int, bytes, dict]:
    status = f.readline()
    if not status:
        raise ConnectionError("connection closed")
    code = int(status.split()[1])
    headers = {}
    while True:
        line = f.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        k, _, v = line.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        body = f.read(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int(f.readline().strip(), 16)
            if size == 0:
                f.readline()
                break
            body += f.read(size)
            f.readline()
    else:
        body = f.read()
    return code, body, headers


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9443)
    p.add_argument("--sni")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--cn", action="store_true")
    p.add_argument("--key-type", action="store_true")
    p.add_argument("--proto", action="store_true")
    p.add_argument("--tls1.2", dest="tls12", action="store_true")
    p.add_argument("--tls1.1", dest="tls11", action="store_true")
    p.add_argument("--ecdsa", action="store_true")
    p.add_argument("--rsa", action="store_true")
    p.add_argument("--host-header")
    p.add_argument("--header", action="append", default=[])
    p.add_argument("--body-size", type=int, default=0)
    p.add_argument("--print-header", action="append", default=[])
    p.add_argument("requests", nargs="*", help="METHOD PATH pairs")
    a = p.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if a.tls12 or a.ecdsa or a.rsa:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if a.tls11:
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    if a.ecdsa:
        ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    if a.rsa:
        ctx.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256")
    if a.cert:
        ctx.load_cert_chain(a.cert, a.key)
    raw = socket.create_connection((a.host, a.port), timeout=10)
    try:
        conn = ctx.wrap_socket(raw, server_hostname=a.sni)
    except (ssl.SSLError, OSError) as e:
        print("handshake failed: %s" % (getattr(e, "reason", None) or type(e).__name__))
        return 0
    try:
        if a.cn or a.key_type:
            cert = x509.load_der_x509_certificate(conn.getpeercert(binary_form=True))
            if a.cn:
                cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
                print("cn: %s" % (cn[0].value if cn else "?"))
            if a.key_type:
                pub = cert.public_key()
                print("key: %s" % ("RSA" if isinstance(pub, rsa.RSAPublicKey) else
                                   "EC" if isinstance(pub, ec.EllipticCurvePublicKey) else "?"))
        if a.proto:
            print("proto: %s" % conn.version())
        f = conn.makefile("rb")
        host = a.host_header or a.sni or a.host
        reqs = list(zip(a.requests[::2], a.requests[1::2]))
        for method, path in reqs:
            body = b"x" * a.body_size
            head = "%s %s HTTP/1.1\r\nHost: %s\r\n" % (method, path, host)
            head += "".join(h + "\r\n" for h in a.header)
            if body:
                head += "Content-Length: %d\r\n" % len(body)
            conn.sendall(head.encode() + b"\r\n" + body)
            try:
                code, data, hdrs = read_response(f)
            except (ConnectionError, ssl.SSLError, OSError) as e:
                print("request failed: %s" % (getattr(e, "reason", None) or type(e).__name__))
                return 0
            text = data.decode("latin-1").strip()
            print("%d %s" % (code, text if len(text) < 200 else "<%d bytes>" % len(data)))
            for name in a.print_header:
                print("%s: %s" % (name.lower(), hdrs.get(name.lower())))
    except (ssl.SSLError, OSError) as e:
        print("failed: %s" % (getattr(e, "reason", None) or type(e).__name__))
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
