"""Certificate preparation (master) and SNI selection (worker), with real handshakes over a
socketpair: exact beats wildcard, RSA and ECDSA on one name, fallback, unknown names fail."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest

from gateway.core.crypto import Keyring
from gateway.master.certstore import CertStore
from gateway.worker.tls import CertIndex, listener_context

CERTS = Path(__file__).resolve().parents[1] / "certs"
CERT, KEY = (CERTS / "test.crt").read_text(), (CERTS / "test.key").read_text()
ECC_CERT, ECC_KEY = (CERTS / "test-ecc.crt").read_text(), (CERTS / "test-ecc.key").read_text()
CONF = {"apisix": {"ssl": {"ssl_protocols": "TLSv1.2 TLSv1.3"},
                   "data_encryption": {"keyring": ["qeddd145sfvddff3"]}}}


def _prepared(ident, snis, **extra):
    store = CertStore(CONF)
    obj = {"id": ident, "cert": CERT, "key": Keyring(["qeddd145sfvddff3"]).encrypt(KEY),
           "snis": snis, **extra}
    return store.prepare("/apisix/ssls/%s" % ident, obj)


def test_store_decrypts_and_drops_bad_pairs():
    ready = _prepared("1", ["Test.com"])
    assert ready["pairs"] == [[CERT, KEY]] and ready["snis"] == ["test.com"]
    bad = CertStore(CONF).prepare("/apisix/ssls/2", {"cert": CERT,
                                                     "key": (CERTS / "other.key").read_text(),
                                                     "sni": "x.com"})
    assert bad is None
    assert CertStore(CONF).prepare("/apisix/routes/1", {"uri": "/"}) == {"uri": "/"}


def handshake(index, server_name, ciphers=None):
    a, b = socket.socketpair()
    server = listener_context(CONF, lambda: index).wrap_socket(a, server_side=True,
                                                               do_handshake_on_connect=False)
    client_ctx = ssl.create_default_context()
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    if ciphers:
        client_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        client_ctx.set_ciphers(ciphers)
    client = client_ctx.wrap_socket(b, server_hostname=server_name,
                                    do_handshake_on_connect=False)
    errors = []

    def serve():
        try:
            server.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            errors.append(exc)
            server.close()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        client.do_handshake()
        return client.getpeercert(binary_form=True), client.cipher()[0]
    finally:
        thread.join()
        client.close()
        server.close()


def test_sni_exact_wildcard_and_unknown():
    objs = {"/apisix/ssls/1": _prepared("1", ["*.test.com"]),
            "/apisix/ssls/2": _prepared("2", ["www.test.com"])}
    index = CertIndex.build(objs, CONF)
    assert index.find("www.test.com").id == "2"
    assert index.find("a.b.test.com").id == "1"
    assert index.find("test.com") is None
    assert handshake(index, "api.test.com")[0]
    with pytest.raises(ssl.SSLError):
        handshake(index, "other.org")


def test_rsa_and_ecdsa_on_one_name():
    obj = _prepared("1", ["test.com"], certs=[ECC_CERT], keys=[ECC_KEY])
    index = CertIndex.build({"/apisix/ssls/1": obj}, CONF)
    _, rsa_cipher = handshake(index, "test.com", "ECDHE-RSA-AES128-GCM-SHA256")
    _, ecc_cipher = handshake(index, "test.com", "ECDHE-ECDSA-AES128-GCM-SHA256")
    assert (rsa_cipher, ecc_cipher) == ("ECDHE-RSA-AES128-GCM-SHA256",
                                        "ECDHE-ECDSA-AES128-GCM-SHA256")
