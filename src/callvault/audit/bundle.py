"""Offline audit bundles: the directory format, a streaming writer and a verifier.

A bundle is a directory a customer can verify with nothing but this module
(stdlib and `cryptography`): ``docs/formats/audit-bundle.md`` is the format.

This module is the public face; the work is done in private modules:

- :mod:`~callvault.audit._bundle_format`: the file names, limits, reasons,
  :class:`BundleError`, the result types, and the manifest and key file parsers;
- :mod:`~callvault.audit._bundle_entries`: the ``entries.ndjson`` line checks
  and the streaming tree digest (:class:`EntryParser`);
- :mod:`~callvault.audit._bundle_parallel`: one pass over the entries file,
  its JSON checked by helper processes when it is big;
- :mod:`~callvault.audit._bundle_files`: bounded reads of regular files;
- :mod:`~callvault.audit._bundle_verify`: :func:`verify_bundle`;
- :mod:`~callvault.audit._bundle_write`: :func:`write_bundle`.
"""

from __future__ import annotations

from callvault.audit._bundle_entries import (
    EntryParser,
    digest_entries,
    entry_problem,
    json_failure,
)
from callvault.audit._bundle_files import read_trusted_file
from callvault.audit._bundle_format import (
    CHECKPOINT_FILE,
    DATA_FILES,
    ENTRIES_FILE,
    FORMAT,
    KEY_FILE,
    MANIFEST_FILE,
    MAX_ENTRY_BYTES,
    MAX_KEY_FILE_BYTES,
    MAX_MANIFEST_BYTES,
    MAX_TENANT_CHARS,
    BundleError,
    BundleSummary,
    EntriesDigest,
    Failure,
    FileDigest,
    KeySource,
    Manifest,
    Reason,
    Verdict,
    parse_key_file,
    parse_manifest,
)
from callvault.audit._bundle_parallel import default_workers
from callvault.audit._bundle_verify import verify_bundle
from callvault.audit._bundle_write import write_bundle

__all__ = [
    "CHECKPOINT_FILE",
    "DATA_FILES",
    "ENTRIES_FILE",
    "FORMAT",
    "KEY_FILE",
    "MANIFEST_FILE",
    "MAX_ENTRY_BYTES",
    "MAX_KEY_FILE_BYTES",
    "MAX_MANIFEST_BYTES",
    "MAX_TENANT_CHARS",
    "BundleError",
    "BundleSummary",
    "EntriesDigest",
    "EntryParser",
    "Failure",
    "FileDigest",
    "KeySource",
    "Manifest",
    "Reason",
    "Verdict",
    "default_workers",
    "digest_entries",
    "entry_problem",
    "json_failure",
    "parse_key_file",
    "parse_manifest",
    "read_trusted_file",
    "verify_bundle",
    "write_bundle",
]
