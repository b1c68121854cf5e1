"""Self-signed TLS certificate for SIP/MSRP over TLS and HTTPS, generated on first start.

Blink's Bonjour account does not verify the certificate, so a self-signed one is enough on a LAN;
an uploaded certificate simply replaces the two files. The certificate (RFC 5280) carries the
common name in subjectAltName (RFC 5280 section 4.2.1.6; RFC 5922 section 7.1 for SIP) plus the
loopback addresses, and is valid for ten years.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import tempfile
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CERT_FILE", "KEY_FILE", "VALIDITY", "KeyType", "ensure_certificate"]

log = logging.getLogger(__name__)

CERT_FILE = "sylkbox.crt"
KEY_FILE = "sylkbox.key"
VALIDITY = datetime.timedelta(days=3650)
_CLOCK_SKEW = datetime.timedelta(days=1)

KeyType = Literal["rsa", "ec"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def ensure_certificate(
    directory: Path, common_name: str, *, key_type: KeyType = "rsa"
) -> tuple[Path, Path]:
    """Return (certificate path, key path) in `directory`, generating them if needed.

    Existing files are reused when they load, match each other and have not expired. The key is
    written with mode 0600; both files are written atomically (temporary file, fsync, rename),
    key first, so a crash never leaves a certificate without its key.
    """
    cert_path = directory / CERT_FILE
    key_path = directory / KEY_FILE
    if _usable(cert_path, key_path):
        log.debug("reusing TLS certificate %s", cert_path)
        return cert_path, key_path
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    key: PrivateKey
    if key_type == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif key_type == "ec":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        raise ValueError(f"unknown key type {key_type!r}")
    certificate = _self_signed(key, common_name)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_atomic(key_path, key_pem, 0o600)
    _write_atomic(cert_path, certificate.public_bytes(serialization.Encoding.PEM), 0o644)
    log.info("generated self-signed %s certificate for %s in %s", key_type, common_name, directory)
    return cert_path, key_path


def _self_signed(key: PrivateKey, common_name: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    alt_names: list[x509.GeneralName] = []
    for value in (common_name, "127.0.0.1", "::1"):
        try:
            entry: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(value))
        except ValueError:
            entry = x509.DNSName(value)
        if entry not in alt_names:
            alt_names.append(entry)
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _usable(cert_path: Path, key_path: Path) -> bool:
    """True when both files exist, parse, belong together and the certificate is valid now."""
    if not (cert_path.is_file() and key_path.is_file()):
        return False
    try:
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError, OSError) as exc:
        log.warning("existing TLS certificate or key unusable (%s), generating a new one", exc)
        return False
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if certificate.public_key().public_bytes(
        serialization.Encoding.DER, public
    ) != key.public_key().public_bytes(serialization.Encoding.DER, public):
        log.warning("TLS certificate %s does not match its key, generating a new one", cert_path)
        return False
    if certificate.not_valid_after_utc <= datetime.datetime.now(datetime.UTC):
        log.warning("TLS certificate %s has expired, generating a new one", cert_path)
        return False
    return True


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), mode)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
