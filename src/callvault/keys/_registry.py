"""Which key providers this installation has, built from settings on first use.

Provider instance names are what ``keks.provider`` stores:

- ``local``: the local keyring (always present);
- ``aws-kms:<region>``, ``gcp-kms:<region>``: one instance per deployment
  region, so a deployment's KEK lives in KMS in the deployment's own region
  (residency covers keys too);
- ``pkcs11``, ``vault-transit``: one instance each.

A kind that is not configured is refused where a deployment asks for it (a
422 naming ``key_provider``), and again, fail closed, if a stored KEK names
it (a ``KeyUnavailableError`` naming the provider).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping

from callvault.config import Settings
from callvault.errors import InvalidInputError, KeyUnavailableError
from callvault.keys._provider import KeyProvider

KINDS = ("local", "aws-kms", "gcp-kms", "pkcs11", "vault-transit")
REGIONAL = frozenset({"aws-kms", "gcp-kms"})

#: Our region names to Google Cloud locations (same metro area).
GCP_LOCATIONS = {
    "eu-west-2": "europe-west2",
    "eu-west-1": "europe-west1",
    "eu-central-1": "europe-west3",
    "us-east-1": "us-east4",
    "us-west-2": "us-west1",
    "ap-southeast-2": "australia-southeast1",
    "ca-central-1": "northamerica-northeast1",
    "sa-east-1": "southamerica-east1",
    "ap-northeast-1": "asia-northeast1",
}


def instance_name(kind: str, region: str) -> str:
    """The provider instance a deployment of ``kind`` in ``region`` uses."""
    return f"{kind}:{region}" if kind in REGIONAL else kind


class ProviderRegistry(Mapping[str, KeyProvider]):
    """A lazily built mapping of provider instance name → provider."""

    def __init__(self, settings: Settings, local: KeyProvider) -> None:
        self._settings = settings
        self._built: dict[str, KeyProvider] = {"local": local}
        self._lock = threading.Lock()

    def configured(self, kind: str) -> bool:
        s = self._settings
        return {
            "local": True,
            "aws-kms": s.aws_kms_enabled,
            "gcp-kms": s.gcp_kms_project is not None and s.gcp_kms_key_ring is not None,
            "pkcs11": s.pkcs11_module is not None and s.pkcs11_token_label is not None,
            "vault-transit": s.vault_addr is not None and s.vault_token is not None,
        }.get(kind, False)

    def require(self, kind: str) -> None:
        """Refuse a deployment setting that names a provider this installation lacks."""
        if not self.configured(kind):
            raise InvalidInputError(
                f"key provider {kind} is not configured on this installation",
                field="key_provider",
            )

    def check(self) -> None:
        """Build every configured provider that is not per region and prove it usable now,
        so a wrong PIN, token or address stops startup with one line naming it. (KMS
        providers are per deployment region; they are checked on first use and fail
        the request with a line naming provider, key and deployment.)"""
        for kind in ("pkcs11", "vault-transit"):
            if self.configured(kind):
                self[kind].ready()
        for provider in list(self._built.values()):
            provider.ready()

    def __getitem__(self, name: str) -> KeyProvider:
        hit = self._built.get(name)
        if hit is not None:
            return hit
        with self._lock:
            hit = self._built.get(name)
            if hit is None:
                hit = self._build(name)
                self._built[name] = hit
        return hit

    def __iter__(self) -> Iterator[str]:
        return iter(dict(self._built))

    def __len__(self) -> int:
        return len(self._built)

    def _build(self, name: str) -> KeyProvider:
        kind, _, region = name.partition(":")
        if kind not in KINDS or not self.configured(kind) or (kind in REGIONAL) != bool(region):
            raise KeyUnavailableError(f"key provider {name} is not configured")
        builders: dict[str, Callable[[str], KeyProvider]] = {
            "aws-kms": self._aws,
            "gcp-kms": self._gcp,
            "pkcs11": lambda _r: self._pkcs11(),
            "vault-transit": lambda _r: self._vault(),
        }
        return builders[kind](region)

    # -- builders (imports deferred: each SDK is an optional extra) -------------------

    def _aws(self, region: str) -> KeyProvider:
        from callvault.keys._aws_kms import AwsKmsKeyProvider  # noqa: PLC0415 - optional SDK

        return AwsKmsKeyProvider(region=region, endpoint_url=self._settings.aws_kms_endpoint_url)

    def _gcp(self, region: str) -> KeyProvider:
        s = self._settings
        location = GCP_LOCATIONS.get(region)
        if location is None or s.gcp_kms_project is None or s.gcp_kms_key_ring is None:
            raise KeyUnavailableError(f"gcp-kms: no location for region {region}")
        from callvault.keys._gcp_kms import GcpKmsKeyProvider  # noqa: PLC0415 - optional SDK

        return GcpKmsKeyProvider(
            project=s.gcp_kms_project, location=location, key_ring=s.gcp_kms_key_ring
        )

    def _pkcs11(self) -> KeyProvider:
        from callvault.keys._pkcs11 import Pkcs11KeyProvider  # noqa: PLC0415 - optional SDK

        s = self._settings
        if s.pkcs11_module is None or s.pkcs11_token_label is None or s.pkcs11_pin is None:
            raise KeyUnavailableError("pkcs11: module, token label and PIN are required")
        return Pkcs11KeyProvider(
            module_path=s.pkcs11_module, token_label=s.pkcs11_token_label, user_pin=s.pkcs11_pin
        )

    def _vault(self) -> KeyProvider:
        from callvault.keys._vault_transit import VaultTransitKeyProvider  # noqa: PLC0415

        s = self._settings
        if s.vault_addr is None or s.vault_token is None:
            raise KeyUnavailableError("vault-transit: address and token are required")
        return VaultTransitKeyProvider(
            s.vault_addr,
            s.vault_token,
            mount=s.vault_mount,
            namespace=s.vault_namespace,
            ca_file=s.vault_ca_file,
        )
