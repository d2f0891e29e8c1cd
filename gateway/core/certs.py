"""Certificate and private-key checks for `ssls` objects (Admin API writes, the master's
certificate store): both parse as PEM, and the key belongs to the certificate.

Values that are secret references (`$secret://...`, `$env://...`) are resolved elsewhere and
skipped here, as APISIX does.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization

_REF_PREFIXES = ("$secret://", "$env://", "$ENV://")


def is_reference(value: str) -> bool:
    return isinstance(value, str) and value.startswith(_REF_PREFIXES)


def check_pair(cert: str, key: str) -> str | None:
    """None when `key` is the private key of `cert`, else APISIX-style reason."""
    if is_reference(cert) or is_reference(key):
        return None
    try:
        parsed = x509.load_pem_x509_certificate(cert.encode())
    except ValueError:
        return "failed to parse cert: PEM_read_bio_X509_AUX() failed"
    try:
        private = serialization.load_pem_private_key(key.encode(), password=None)
    except (ValueError, TypeError):
        return "failed to parse key: PEM_read_bio_PrivateKey() failed"
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if parsed.public_key().public_bytes(*fmt) != private.public_key().public_bytes(*fmt):
        return "failed to match the cert and key: the key is not the certificate's"
    return None


def check_ssl(ssl: dict, decrypt=lambda text: text) -> str | None:
    """Every (cert, key) pair of an ssls object: `cert`/`key`, then `certs[i]`/`keys[i]`."""
    pairs = [(ssl.get("cert"), ssl.get("key"))]
    pairs += list(zip(ssl.get("certs") or [], ssl.get("keys") or []))
    for cert, key in pairs:
        if cert is None or key is None:
            continue
        problem = check_pair(cert, decrypt(key))
        if problem:
            return problem
    return None
