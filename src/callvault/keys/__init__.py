"""Key providers. For now: the local root key that the local sealer derives from.

The encryption-at-rest issue adds the per-deployment KEK hierarchy and the
KMS/HSM providers behind a template-method base class.
"""

from callvault.keys._local_root import ROOT_KEY_FILE, create_root_key, load_root_key

__all__ = ["ROOT_KEY_FILE", "create_root_key", "load_root_key"]
