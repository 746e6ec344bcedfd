"""Helpers the platform fakes share: fixtures, time shifting, bearer-token bookkeeping."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
from pathlib import Path
from typing import Any

from tests.fakes.server import Reply, Request

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def fixture(platform: str, name: str) -> Any:
    """A JSON fixture body."""
    return json.loads((FIXTURES / platform / name).read_text(encoding="utf-8"))


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def shift_times(obj: Any, delta: dt.timedelta, keys: tuple[str, ...]) -> Any:
    """A deep copy of ``obj`` with the ISO timestamps under ``keys`` moved by ``delta``.

    Fixtures carry the dates of the documentation examples; the APIs only keep a few
    months, so tests move them next to "now".
    """
    if isinstance(obj, list):
        return [shift_times(x, delta, keys) for x in obj]
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            # 1970-01-01 is Webex's "not available": a sentinel, not a time.
            if k in keys and isinstance(v, str) and v and not v.startswith("1970-01-01"):
                out[k] = iso(parse(v) + delta)
            else:
                out[k] = shift_times(v, delta, keys)
        return out
    return obj


class Tokens:
    """Bearer tokens a fake issued, with expiry by the test (``expire_all``)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.valid: set[str] = set()
        self.issued: list[str] = []
        self._lock = threading.Lock()

    def issue(self) -> str:
        token = f"{self.prefix}-{secrets.token_hex(8)}"
        with self._lock:
            self.valid.add(token)
            self.issued.append(token)
        return token

    def expire_all(self) -> None:
        with self._lock:
            self.valid.clear()

    def ok(self, req: Request) -> bool:
        auth = req.header("Authorization") or ""
        return auth.startswith("Bearer ") and auth[7:] in self.valid


def unauthorized(message: str = "Invalid access token.") -> Reply:
    return Reply(401, {"code": 124, "message": message})


def tls_files(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate for 127.0.0.1 signed by it: (ca.pem, cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("Pref gateway CA"))
        .issuer_name(name("Pref gateway CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths
