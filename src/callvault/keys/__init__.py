"""Key hierarchy and providers (ADR 7).

Providers with optional SDKs are imported from their modules
(``callvault.keys._aws_kms``, ``_vault_transit``, ``_pkcs11``) by the runtime
when a deployment uses them, so the core does not need their SDKs.

A KEK per deployment held by a :class:`KeyProvider` (``local`` keyring today;
AWS KMS, GCP KMS, PKCS#11 and Vault transit to come), a data key per call or
stored object wrapped by it (:class:`KeyHierarchy`), unwrapped keys only in
memory (:class:`DataKeyCache`), and the :class:`EnvelopeSealer` the service
seals with. The root key (or passphrase) seals the local keyring.
"""

from callvault.keys._cache import DataKeyCache
from callvault.keys._context import WrapContext
from callvault.keys._hierarchy import KeyHierarchy, KeyOwner
from callvault.keys._local import LocalKeyProvider
from callvault.keys._local_root import ROOT_KEY_FILE, create_root_key, load_root_key
from callvault.keys._operations import (
    RotationResult,
    destroy_deployment_keys,
    rotate,
    shred_call,
)
from callvault.keys._provider import KeyProvider
from callvault.keys._registry import ProviderRegistry
from callvault.keys._sealer import EnvelopeSealer

KEYRING_FILE = "keyring.json"

__all__ = [
    "KEYRING_FILE",
    "ROOT_KEY_FILE",
    "DataKeyCache",
    "EnvelopeSealer",
    "KeyHierarchy",
    "KeyOwner",
    "KeyProvider",
    "LocalKeyProvider",
    "ProviderRegistry",
    "RotationResult",
    "WrapContext",
    "create_root_key",
    "destroy_deployment_keys",
    "load_root_key",
    "rotate",
    "shred_call",
]
