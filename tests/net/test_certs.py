"""Tests for sylkbox.net.certs."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sylkbox.net.certs import CERT_FILE, KEY_FILE, ensure_certificate


def load(cert: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(cert.read_bytes())


def test_generates_rsa_certificate_with_san_and_ten_years(tmp_path: Path) -> None:
    directory = tmp_path / "data" / "tls"
    cert, key = ensure_certificate(directory, "sylkbox.local")
    assert (cert, key) == (directory / CERT_FILE, directory / KEY_FILE)
    certificate = load(cert)
    cn = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    assert [a.value for a in cn] == ["sylkbox.local"]
    assert certificate.issuer == certificate.subject
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["sylkbox.local"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    lifetime = certificate.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(days=3649) < lifetime <= datetime.timedelta(days=3650)
    public = certificate.public_key()
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048
    private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert not list(directory.glob("*.tmp"))
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)


def test_ec_key_and_ip_common_name(tmp_path: Path) -> None:
    cert, key = ensure_certificate(tmp_path, "192.0.2.7", key_type="ec")
    certificate = load(cert)
    public = certificate.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert isinstance(public.curve, ec.SECP256R1)
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == []
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == [
        "192.0.2.7",
        "127.0.0.1",
        "::1",
    ]
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)


def test_reused_across_calls(tmp_path: Path) -> None:
    cert, key = ensure_certificate(tmp_path, "sylkbox.local")
    cert_bytes, key_bytes = cert.read_bytes(), key.read_bytes()
    again = ensure_certificate(tmp_path, "sylkbox.local")
    assert again == (cert, key)
    assert (cert.read_bytes(), key.read_bytes()) == (cert_bytes, key_bytes)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_regenerated_when_key_missing_or_corrupt(tmp_path: Path) -> None:
    cert, key = ensure_certificate(tmp_path, "sylkbox.local")
    first = cert.read_bytes()
    key.unlink()
    ensure_certificate(tmp_path, "sylkbox.local")
    second = cert.read_bytes()
    assert second != first and key.is_file()
    key.write_bytes(b"not a key")
    ensure_certificate(tmp_path, "sylkbox.local")
    assert cert.read_bytes() != second
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)


def test_regenerated_when_certificate_does_not_match_key(tmp_path: Path) -> None:
    cert, key = ensure_certificate(tmp_path / "a", "sylkbox.local")
    other_cert, _ = ensure_certificate(tmp_path / "b", "sylkbox.local")
    cert.write_bytes(other_cert.read_bytes())
    ensure_certificate(tmp_path / "a", "sylkbox.local")
    assert cert.read_bytes() != other_cert.read_bytes()
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
