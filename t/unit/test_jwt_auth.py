"""jwt-auth's pure logic: parsing, signature verification per algorithm (only the
consumer's algorithm is ever accepted), claims."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from plugins import jwt_auth

RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC = ec.generate_private_key(ec.SECP256R1())
ED = ed25519.Ed25519PrivateKey.generate()


def pem(key) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo
                                         ).decode()


def b64u(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def token(alg: str, payload: dict, sign) -> str:
    head = b64u(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64u(json.dumps(payload).encode())
    signing_input = (head + "." + body).encode()
    return head + "." + body + "." + b64u(sign(signing_input))


def hs256(secret: bytes):
    return lambda data: hmac.new(secret, data, hashlib.sha256).digest()


def es256(data: bytes) -> bytes:
    r, s = decode_dss_signature(EC.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def accepted(conf: dict, raw: str) -> bool:
    """What the plugin decides for a token whose key matched this consumer conf."""
    verifier = jwt_auth.Verifier(conf)
    parsed, reason = jwt_auth.parse(raw)
    assert parsed is not None, reason
    return parsed.header.get("alg") == verifier.algorithm and \
        verifier.verify(raw, parsed.signing_input, parsed.signature)


@pytest.mark.parametrize("conf,raw", [
    ({"algorithm": "HS256", "secret": "s3cret"}, token("HS256", {"key": "k"}, hs256(b"s3cret"))),
    ({"algorithm": "HS256", "secret": base64.b64encode(b"\x00\xffraw").decode(),
      "base64_secret": True}, token("HS256", {"key": "k"}, hs256(b"\x00\xffraw"))),
    ({"algorithm": "RS256", "public_key": pem(RSA)},
     token("RS256", {"key": "k"}, lambda d: RSA.sign(d, padding.PKCS1v15(), hashes.SHA256()))),
    ({"algorithm": "ES256", "public_key": pem(EC)}, token("ES256", {"key": "k"}, es256)),
    ({"algorithm": "PS256", "public_key": pem(RSA)},
     token("PS256", {"key": "k"}, lambda d: RSA.sign(
         d, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256()))),
    ({"algorithm": "EdDSA", "public_key": pem(ED)}, token("EdDSA", {"key": "k"}, ED.sign)),
])
def test_each_algorithm_verifies(conf, raw):
    assert accepted(conf, raw)


def test_wrong_secret_refused():
    raw = token("HS256", {"key": "k"}, hs256(b"other"))
    assert not accepted({"algorithm": "HS256", "secret": "s3cret"}, raw)


def test_alg_none_refused():
    raw = token("none", {"key": "k"}, lambda d: b"")
    assert not accepted({"algorithm": "HS256", "secret": "s3cret"}, raw)
    # even handed straight to the verifier (no alg comparison first)
    verifier = jwt_auth.Verifier({"algorithm": "HS256", "secret": "s3cret"})
    parsed, _ = jwt_auth.parse(raw)
    assert not verifier.verify(raw, parsed.signing_input, parsed.signature)


def test_hs256_token_keyed_with_the_rsa_public_key_refused():
    """Algorithm confusion: the attacker MACs with the (public) RSA key as HMAC secret."""
    public = pem(RSA)
    raw = token("HS256", {"key": "k"}, hs256(public.encode()))
    conf = {"algorithm": "RS256", "public_key": public}
    assert not accepted(conf, raw)
    verifier = jwt_auth.Verifier(conf)
    parsed, _ = jwt_auth.parse(raw)
    assert not verifier.verify(raw, parsed.signing_input, parsed.signature)
    # with the DER encoding of the same key as the HMAC secret
    der = RSA.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    raw = token("HS256", {"key": "k"}, hs256(der))
    parsed, _ = jwt_auth.parse(raw)
    assert not verifier.verify(raw, parsed.signing_input, parsed.signature)


def test_rs256_token_for_an_es256_consumer_refused():
    raw = token("RS256", {"key": "k"}, lambda d: RSA.sign(d, padding.PKCS1v15(), hashes.SHA256()))
    assert not accepted({"algorithm": "ES256", "public_key": pem(EC)}, raw)


def test_bad_public_key_fails_requests_not_the_build():
    verifier = jwt_auth.Verifier({"algorithm": "RS256", "public_key": "not a pem"})
    assert verifier.error is not None
    assert not verifier.verify("a.b.c", b"a.b", b"c")


@pytest.mark.parametrize("raw", ["abc", "a.b", "a.b.c.d", "!!!.???.x",
                                 b64u(b"[1]") + "." + b64u(b"{}") + ".x"])
def test_parse_errors(raw):
    parsed, reason = jwt_auth.parse(raw)
    assert parsed is None and reason


def test_claims():
    now = 1_000_000.0
    check = jwt_auth.verify_claims
    assert check({}, (), 0, now) is None
    assert check({"exp": now + 10}, (), 0, now) is None
    assert check({"exp": now - 10}, (), 0, now).startswith("'exp' claim expired at")
    assert check({"exp": now - 10}, (), 60, now) is None
    assert check({"nbf": now + 10}, (), 0, now).startswith("'nbf' claim not valid until")
    assert check({"nbf": now + 10}, (), 60, now) is None
    assert check({"exp": "x"}, (), 0, now) == "claim exp is not a number"
    assert check({"exp": True}, (), 0, now) == "claim exp is not a number"
    assert check({}, ("exp",), 0, now) == "claim exp is missing"
    assert check({"exp": now + 1, "nbf": now - 1}, ("exp", "nbf"), 0, now) is None


def test_consumer_check_schema():
    hs = {"algorithm": "HS256"}
    assert jwt_auth.check_schema(hs, "consumer") == \
        'property "secret" is required when using HS based algorithms'
    assert jwt_auth.check_schema({"algorithm": "HS256", "secret": "%%",
                                  "base64_secret": True}, "consumer") == \
        "base64_secret required but the secret is not in base64 format"
    assert jwt_auth.check_schema({"algorithm": "RS256"}, "consumer") == \
        "missing valid public key"
    assert jwt_auth.check_schema({}, "schema") is None
