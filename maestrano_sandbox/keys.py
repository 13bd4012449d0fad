"""The sandbox IdP's signing key pairs, generated at set-up and kept in DATA_DIR.

Only the set-up commands (``manage.py demo_setup``, ``sandbox_export_idp_cert``,
``sandbox_register_app``) write keys (:func:`ensure_key_pairs`); a request only
reads them (:func:`key_pair_for_algorithm`), so no visitor can make the server
write key material.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.conf import settings

PRIVATE_KEY_FILE = "idp_private_key.pem"
CERTIFICATE_FILE = "idp_certificate.pem"
#: The historical rsa-sha1 setup keeps its own 1024-bit pair in this subfolder.
SHA1_SUBFOLDER = "sha1"
SIGNATURE_ALGORITHMS = ("sha256", "sha1")


class MissingKeyPair(LookupError):
    """The IdP has no key pair yet: the sandbox was not set up."""


@dataclass(frozen=True)
class IdpKeyPair:
    private_key_pem: str
    certificate_pem: str


def data_dir() -> Path:
    return Path(settings.MAESTRANO_SANDBOX["DATA_DIR"])


def generate_key_pair(
    *, bits: int = 2048, common_name: str = "Maestrano sandbox IdP"
) -> IdpKeyPair:
    """A self-signed RSA certificate (2048-bit by default; 1024 for the historical setup)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return IdpKeyPair(
        private_key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
    )


def ensure_idp_key_pair(*, bits: int = 2048, directory: Path | None = None) -> IdpKeyPair:
    """Load the IdP key pair from ``directory``, generating it on first use."""
    folder = directory or data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    key_path, certificate_path = folder / PRIVATE_KEY_FILE, folder / CERTIFICATE_FILE
    if not (key_path.exists() and certificate_path.exists()):
        pair = generate_key_pair(bits=bits)
        key_path.write_text(pair.private_key_pem)
        key_path.chmod(0o600)
        certificate_path.write_text(pair.certificate_pem)
    return IdpKeyPair(
        private_key_pem=key_path.read_text(), certificate_pem=certificate_path.read_text()
    )


def ensure_sha1_key_pair(*, directory: Path | None = None) -> IdpKeyPair:
    """The 1024-bit pair used for apps registered with the historical rsa-sha1 signatures."""
    return ensure_idp_key_pair(bits=1024, directory=(directory or data_dir()) / SHA1_SUBFOLDER)


def ensure_key_pairs(*, directory: Path | None = None) -> IdpKeyPair:
    """Set-up: both pairs (sha256 and the historical sha1) exist; returns the sha256 one."""
    ensure_sha1_key_pair(directory=directory)
    return ensure_idp_key_pair(directory=directory)


def _folder_for(algorithm: str, directory: Path | None) -> Path:
    folder = directory or data_dir()
    if algorithm == "sha1":
        return folder / SHA1_SUBFOLDER
    if algorithm != "sha256":
        raise ValueError(f"Unknown signature algorithm {algorithm!r}; use sha256 or sha1")
    return folder


def key_pair_for_algorithm(algorithm: str, *, directory: Path | None = None) -> IdpKeyPair:
    """The signing pair of ``algorithm`` (``"sha256"``: 2048-bit, ``"sha1"``: 1024-bit).

    Read only: raises :class:`MissingKeyPair` when the set-up command has not made it.
    """
    folder = _folder_for(algorithm, directory)
    key_path, certificate_path = folder / PRIVATE_KEY_FILE, folder / CERTIFICATE_FILE
    try:
        return IdpKeyPair(
            private_key_pem=key_path.read_text(), certificate_pem=certificate_path.read_text()
        )
    except FileNotFoundError:
        raise MissingKeyPair(
            f"The sandbox IdP has no {algorithm} key pair in {folder}: run "
            "`manage.py demo_setup` (or `manage.py sandbox_export_idp_cert"
            f" --algorithm {algorithm}`) first."
        ) from None
