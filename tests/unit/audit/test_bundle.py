"""Offline audit bundles: the writer, the verifier, and every attack a verifier exists to catch.

Bundles are written with :func:`write_bundle` under a real Ed25519 log key,
then tampered with on disk. Unless a test says otherwise the tamperer also
rewrites ``manifest.json`` to match (:func:`reseal`), so each detection shown
here comes from the signature and the Merkle tree, not from the manifest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from callvault.audit import (
    _bundle_entries,
    _bundle_files,
    _bundle_format,
    _bundle_parallel,
    _bundle_verify,
    _bundle_write,
)
from callvault.audit.bundle import (
    CHECKPOINT_FILE,
    DATA_FILES,
    ENTRIES_FILE,
    FORMAT,
    KEY_FILE,
    MANIFEST_FILE,
    BundleError,
    EntryParser,
    Verdict,
    digest_entries,
    entry_problem,
    json_failure,
    parse_key_file,
    parse_manifest,
    read_trusted_file,
    verify_bundle,
    write_bundle,
)
from callvault.audit.checkpoint import Checkpoint
from callvault.audit.merkle import EMPTY_ROOT, consistency_proof, inclusion_proof, leaf_hash, root
from callvault.audit.note import MAX_NOTE_BYTES, Signer, sign
from callvault.audit.verify import verify_consistent, verify_entry
from callvault.crypto.hazmat import Ed25519SigningKey
from callvault.errors import ProofError

ORIGIN = "callvault.localhost/audit/ten_x"
LOG = Signer(ORIGIN, Ed25519SigningKey.generate())
KEY = LOG.verifier().key_string()
IMPOSTOR = Signer(ORIGIN, Ed25519SigningKey.generate())
#: Appears in every entry; no message may ever repeat it.
MARKER = "SECRET-MARKER"

_IMPLEMENTATION = (
    _bundle_format,
    _bundle_files,
    _bundle_entries,
    _bundle_parallel,
    _bundle_verify,
    _bundle_write,
)


def _patch(monkeypatch: pytest.MonkeyPatch, name: str, value: object) -> None:
    """Patch ``name`` in every bundle module that binds it (where the code reads it)."""
    hits = [m for m in _IMPLEMENTATION if name in vars(m)]
    assert hits, name
    for module in hits:
        monkeypatch.setattr(module, name, value)


# --- helpers (also used by tests/unit/cli/test_audit_verify.py) -----------------------------


def entry(i: int, action: str = "call.read") -> bytes:
    """A canonical (RFC 8785 style: sorted keys, no spaces) entry of about 150 bytes."""
    return (
        b'{"action":"%s","actor":"prn_%06d","class_uid":6003,"detail":{"n":%d,"note":"%s"},'
        b'"outcome":"allowed","v":1}' % (action.encode(), i, i, MARKER.encode())
    )


def entries(n: int) -> list[bytes]:
    return [entry(i) for i in range(n)]


def checkpoint_of(es: list[bytes], origin: str = ORIGIN) -> Checkpoint:
    return Checkpoint(origin, len(es), root([leaf_hash(e) for e in es]))


def note_for(es: list[bytes], signer: Signer = LOG, origin: str = ORIGIN) -> bytes:
    return sign(checkpoint_of(es, origin).encode(), signer)


def make_bundle(path: Path, es: list[bytes], signer: Signer = LOG, tenant: str = "ten_x") -> Path:
    write_bundle(
        path,
        tenant=tenant,
        entries=enumerate(es),
        checkpoint_note=note_for(es, signer, signer.name),
        verifier_key=signer.verifier().key_string(),
    )
    return path


def reseal(path: Path) -> None:
    """Rewrite the manifest to match the files, as a careful tamperer would."""
    manifest = json.loads((path / MANIFEST_FILE).read_text())
    for name in DATA_FILES:
        data = (path / name).read_bytes()
        manifest["files"][name] = {
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
        }
    (path / MANIFEST_FILE).write_text(json.dumps(manifest))


def lines_of(path: Path) -> list[bytes]:
    return (path / ENTRIES_FILE).read_bytes().splitlines(keepends=True)


def set_lines(path: Path, lines: list[bytes], *, seal: bool = True) -> None:
    (path / ENTRIES_FILE).write_bytes(b"".join(lines))
    if seal:
        reseal(path)


def line(i: int, e: bytes) -> bytes:
    return b'{"index":%d,"entry":%b}\n' % (i, e)


def reasons(verdict: Verdict) -> list[str]:
    return [f.reason for f in verdict.failures]


def assert_fails(verdict: Verdict, reason: str) -> None:
    assert not verdict.ok
    assert reason in reasons(verdict), verdict.lines()
    for text in verdict.lines():
        assert text.startswith("FAILED: ")
        assert "\n" not in text
        assert MARKER not in text


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return make_bundle(tmp_path / "bundle", entries(40))


# --- happy paths ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 2, 3, 5, 64, 1000])
def test_an_honest_bundle_verifies(tmp_path: Path, size: int) -> None:
    es = entries(size)
    path = make_bundle(tmp_path / "b", es)
    verdict = verify_bundle(path)
    assert verdict.ok, verdict.lines()
    assert verdict.checkpoint == checkpoint_of(es)
    assert verdict.key == KEY
    assert verdict.key_source == "bundle"
    assert not verdict.key_pinned
    root_b64 = base64.b64encode(root([leaf_hash(e) for e in es])).decode()
    (text,) = verdict.lines()
    assert text.startswith(f"OK: {ORIGIN} size {size} root {root_b64} verified")
    pinned = verify_bundle(path, trusted_key=KEY)
    assert pinned.ok
    assert pinned.key_source == "trusted-key"


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 100])
def test_consistency_with_every_earlier_checkpoint(tmp_path: Path, size: int) -> None:
    es = entries(size)
    path = make_bundle(tmp_path / "b", es)
    for m in sorted({0, 1, size // 2, size - 1, size}):
        verdict = verify_bundle(path, trusted_checkpoint=note_for(es[:m]))
        assert verdict.ok, (m, verdict.lines())
        assert verdict.trusted_size == m
        assert verdict.key_source == "trusted-checkpoint"
        assert verdict.lines()[0].endswith(f"consistent with trusted checkpoint at size {m}")
        both = verify_bundle(path, trusted_checkpoint=note_for(es[:m]), trusted_key=KEY)
        assert both.ok
        assert both.key_source == "trusted-key"


def test_the_files_are_exactly_as_specified(bundle: Path) -> None:
    es = entries(40)
    assert sorted(p.name for p in bundle.iterdir()) == sorted([*DATA_FILES, MANIFEST_FILE])
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o700
    for path in bundle.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (bundle / ENTRIES_FILE).read_bytes() == b"".join(line(i, e) for i, e in enumerate(es))
    assert (bundle / CHECKPOINT_FILE).read_bytes() == note_for(es)
    assert (bundle / KEY_FILE).read_text() == KEY + "\n"
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    assert manifest["format"] == FORMAT
    assert (manifest["origin"], manifest["tenant"], manifest["size"]) == (ORIGIN, "ten_x", 40)
    assert parse_manifest((bundle / MANIFEST_FILE).read_bytes()).files[KEY_FILE].bytes == len(
        KEY + "\n"
    )


def test_the_writer_reports_what_it_wrote(tmp_path: Path) -> None:
    es = entries(3)
    summary = write_bundle(
        tmp_path / "b",
        tenant="ten_x",
        entries=enumerate(es),
        checkpoint_note=note_for(es),
        verifier_key=KEY,
    )
    assert (summary.origin, summary.tenant, summary.size) == (ORIGIN, "ten_x", 3)
    assert summary.root_hash == checkpoint_of(es).root_hash
    assert summary.total_bytes == sum(f.stat().st_size for f in summary.path.iterdir())


def test_an_existing_empty_directory_is_used(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    assert verify_bundle(make_bundle(tmp_path / "b", entries(2))).ok


def test_witness_cosignatures_on_the_checkpoint_are_ignored(tmp_path: Path) -> None:
    es = entries(5)
    witness = Signer("witness.example/w1", Ed25519SigningKey.generate())
    path = tmp_path / "b"
    write_bundle(
        path,
        tenant="ten_x",
        entries=enumerate(es),
        checkpoint_note=sign(checkpoint_of(es).encode(), LOG, witness),
        verifier_key=KEY,
    )
    assert verify_bundle(path, trusted_key=KEY).ok


def test_extra_files_in_the_directory_are_ignored(bundle: Path) -> None:
    (bundle / "README").write_text("hello")
    assert verify_bundle(bundle).ok


# --- the Merkle tree as the parser builds it -------------------------------------------------


@pytest.mark.parametrize("block", [1, 2, 4, 8, 4096])
def test_the_streamed_root_and_every_prefix_root_match_the_reference(block: int) -> None:
    es = [b'{"i":%d}' % i for i in range(37)]
    data = b"".join(line(i, e) for i, e in enumerate(es))
    hashes = [leaf_hash(e) for e in es]
    for n in range(len(es) + 1):
        chunk = b"".join(line(i, e) for i, e in enumerate(es[:n]))
        for prefix in range(n + 2):
            parser = EntryParser(prefix_size=prefix, block=block)
            parser.feed(chunk)
            digest = parser.finish()
            assert digest.size == n
            assert digest.root_hash == root(hashes[:n])
            assert digest.prefix_root == (root(hashes[:prefix]) if prefix <= n else None)
    assert digest_entries([data]).root_hash == root(hashes)


def test_chunk_boundaries_do_not_matter() -> None:
    data = b"".join(line(i, e) for i, e in enumerate(entries(9)))
    whole = digest_entries([data], prefix_size=4)
    for cut in range(len(data) + 1):
        assert digest_entries([data[:cut], data[cut:]], prefix_size=4) == whole
    assert digest_entries(iter([bytes([b]) for b in data]), prefix_size=4) == whole


def test_the_empty_file_is_the_empty_tree() -> None:
    assert digest_entries([]).root_hash == EMPTY_ROOT
    assert digest_entries([b""], prefix_size=0).prefix_root == EMPTY_ROOT


# --- attacks on the entries -------------------------------------------------------------------


def _swap(ls: list[bytes], i: int, j: int) -> list[bytes]:
    ls = list(ls)
    ls[i], ls[j] = ls[j], ls[i]
    return ls


def _renumber(ls: list[bytes]) -> list[bytes]:
    """Rewrite each line's index to its position: the framing then looks right."""
    out = []
    for i, ln in enumerate(ls):
        entry_bytes = ln[ln.index(b',"entry":') + len(b',"entry":') : -2]
        out.append(line(i, entry_bytes))
    return out


ENTRY_ATTACKS: dict[str, tuple[Callable[[list[bytes]], list[bytes]], str]] = {
    # One byte of one entry, still valid JSON: only the root can tell.
    "edited-entry": (
        lambda ls: [*ls[:7], ls[7].replace(b"prn_000007", b"prn_000008"), *ls[8:]],
        "root-mismatch",
    ),
    "edited-entry-one-bit": (
        lambda ls: [*ls[:3], ls[3].replace(b"allowed", b"allowee"), *ls[4:]],
        "root-mismatch",
    ),
    "deleted-entry-middle": (lambda ls: ls[:7] + ls[8:], "index-mismatch"),
    "deleted-entry-middle-renumbered": (lambda ls: _renumber(ls[:7] + ls[8:]), "size-mismatch"),
    "deleted-entry-last": (lambda ls: ls[:-1], "size-mismatch"),
    "deleted-entry-first": (lambda ls: ls[1:], "index-mismatch"),
    "reordered-entries": (lambda ls: _swap(ls, 7, 8), "index-mismatch"),
    "reordered-entries-renumbered": (lambda ls: _renumber(_swap(ls, 7, 8)), "root-mismatch"),
    "reversed-entries-renumbered": (lambda ls: _renumber(ls[::-1]), "root-mismatch"),
    "truncated-log": (lambda ls: ls[:20], "size-mismatch"),
    "emptied-log": (lambda ls: ls[:0], "size-mismatch"),
    "extra-entry": (lambda ls: [*ls, line(len(ls), entry(99))], "size-mismatch"),
    "duplicated-entry": (lambda ls: _renumber([*ls[:5], ls[5], *ls[5:]]), "size-mismatch"),
    "replaced-entry-same-size": (
        lambda ls: [*ls[:9], line(9, entry(9, "call.nope")), *ls[10:]],
        "root-mismatch",
    ),
}


@pytest.mark.parametrize("attack", ENTRY_ATTACKS.values(), ids=ENTRY_ATTACKS.keys())
def test_tampered_entries_are_detected(
    bundle: Path, attack: tuple[Callable[[list[bytes]], list[bytes]], str]
) -> None:
    tamper, reason = attack
    set_lines(bundle, tamper(lines_of(bundle)))
    assert_fails(verify_bundle(bundle), reason)
    assert_fails(verify_bundle(bundle, trusted_key=KEY), reason)


def test_tampering_without_resealing_also_trips_the_manifest(bundle: Path) -> None:
    ls = lines_of(bundle)
    set_lines(bundle, [*ls[:7], ls[7].replace(b"prn_000007", b"prn_000008"), *ls[8:]], seal=False)
    verdict = verify_bundle(bundle)
    assert_fails(verdict, "root-mismatch")
    assert_fails(verdict, "manifest-mismatch")


def test_an_index_mismatch_names_the_line_and_both_indices(bundle: Path) -> None:
    ls = lines_of(bundle)
    set_lines(bundle, ls[:7] + ls[8:])
    (failure,) = verify_bundle(bundle).failures
    assert failure.message.startswith(f"{ENTRIES_FILE} line 8 holds index 8, where index 7 belongs")


# --- attacks on the checkpoint and the key ----------------------------------------------------


def test_forked_history_re_signed_with_another_key_fails_against_the_trusted_key(
    tmp_path: Path,
) -> None:
    forked = [*entries(40)[:10], entry(10, "call.forged"), *entries(40)[11:]]
    path = make_bundle(tmp_path / "b", forked, signer=IMPOSTOR)
    verdict = verify_bundle(path, trusted_key=KEY)
    assert_fails(verdict, "untrusted-key")
    assert_fails(verdict, "bad-checkpoint")
    # Against the bundle's own key alone it is internally consistent: which is
    # why the verdict says the key is not pinned.
    alone = verify_bundle(path)
    assert alone.ok
    assert not alone.key_pinned
    assert "not pinned" in alone.lines()[0]


def test_forked_history_re_signed_with_another_key_fails_against_a_trusted_checkpoint(
    tmp_path: Path,
) -> None:
    es = entries(40)
    forked = [*es[:10], entry(10, "call.forged"), *es[11:]]
    path = make_bundle(tmp_path / "b", forked, signer=IMPOSTOR)
    assert_fails(
        verify_bundle(path, trusted_checkpoint=note_for(es[:20])), "bad-trusted-checkpoint"
    )


def test_only_the_checkpoint_re_signed_with_another_key_fails(bundle: Path) -> None:
    (bundle / CHECKPOINT_FILE).write_bytes(note_for(entries(40), IMPOSTOR))
    reseal(bundle)
    assert_fails(verify_bundle(bundle), "bad-checkpoint")
    assert_fails(verify_bundle(bundle, trusted_key=KEY), "bad-checkpoint")


def test_only_the_key_file_swapped_fails(bundle: Path) -> None:
    (bundle / KEY_FILE).write_text(IMPOSTOR.verifier().key_string() + "\n")
    reseal(bundle)
    assert_fails(verify_bundle(bundle), "bad-checkpoint")
    verdict = verify_bundle(bundle, trusted_key=KEY)
    assert reasons(verdict) == ["untrusted-key"]


def test_forked_history_signed_by_the_log_key_is_inconsistent(tmp_path: Path) -> None:
    # A split view: the log key signed two different histories.
    es = entries(40)
    forked = [*es[:10], entry(10, "call.forged"), *es[11:]]
    path = make_bundle(tmp_path / "b", forked)
    for m in (11, 20, 40):
        verdict = verify_bundle(path, trusted_checkpoint=note_for(es[:m]), trusted_key=KEY)
        assert_fails(verdict, "inconsistent")
        assert verdict.trusted_size is None
    # Before the fork point the histories agree.
    assert verify_bundle(path, trusted_checkpoint=note_for(es[:10])).ok


def test_stale_checkpoint_older_than_the_trusted_one_is_rejected(tmp_path: Path) -> None:
    es = entries(40)
    old = make_bundle(tmp_path / "old", es[:20])  # a genuine, older export
    verdict = verify_bundle(old, trusted_checkpoint=note_for(es[:30]), trusted_key=KEY)
    assert_fails(verdict, "stale-bundle")
    assert "stale or truncated" in verdict.failures[0].message


def test_truncated_log_re_checkpointed_is_stale_against_the_trusted_checkpoint(
    tmp_path: Path,
) -> None:
    # The log operator truncates its own log and signs a new, smaller checkpoint.
    es = entries(40)
    path = make_bundle(tmp_path / "b", es[:25])
    assert verify_bundle(path, trusted_key=KEY).ok  # nothing to compare with...
    assert_fails(
        verify_bundle(path, trusted_checkpoint=note_for(es), trusted_key=KEY), "stale-bundle"
    )


def test_an_old_checkpoint_over_newer_entries_is_a_size_mismatch(bundle: Path) -> None:
    (bundle / CHECKPOINT_FILE).write_bytes(note_for(entries(40)[:30]))
    reseal(bundle)
    assert_fails(verify_bundle(bundle), "size-mismatch")


def test_a_trusted_checkpoint_with_a_root_for_the_wrong_size_is_inconsistent(bundle: Path) -> None:
    es = entries(40)
    wrong = Checkpoint(ORIGIN, 10, checkpoint_of(es[:9]).root_hash)
    assert_fails(
        verify_bundle(bundle, trusted_checkpoint=sign(wrong.encode(), LOG)), "inconsistent"
    )


def test_a_proof_for_a_wrong_size_does_not_verify_against_the_bundle(bundle: Path) -> None:
    verdict = verify_bundle(bundle, trusted_key=KEY)
    assert verdict.checkpoint is not None
    hashes = [leaf_hash(e) for e in entries(40)]
    verify_entry(entries(40)[3], 3, verdict.checkpoint, inclusion_proof(hashes, 3))
    with pytest.raises(ProofError):
        verify_entry(entries(40)[3], 3, verdict.checkpoint, inclusion_proof(hashes[:33], 3))
    pinned = checkpoint_of(entries(40)[:20])
    verify_consistent(pinned, verdict.checkpoint, consistency_proof(hashes, 20))
    with pytest.raises(ProofError):
        verify_consistent(pinned, verdict.checkpoint, consistency_proof(hashes, 21))
    with pytest.raises(ProofError):
        verify_consistent(pinned, verdict.checkpoint, consistency_proof(hashes[:39], 20))


def test_a_checkpoint_for_another_log_is_rejected(tmp_path: Path) -> None:
    es = entries(5)
    path = make_bundle(tmp_path / "b", es)
    (path / CHECKPOINT_FILE).write_bytes(note_for(es, origin="callvault.localhost/audit/ten_y"))
    reseal(path)
    assert_fails(verify_bundle(path), "bad-checkpoint")
    other = note_for(es, origin="callvault.localhost/audit/ten_y")
    assert_fails(
        verify_bundle(make_bundle(tmp_path / "c", es), trusted_checkpoint=other),
        "bad-trusted-checkpoint",
    )


def _note_tricks() -> dict[str, Callable[[bytes], bytes]]:
    def sig_into_body(note: bytes) -> bytes:
        text, sig = note.split(b"\n\n")
        return text + b"\n" + sig + b"\n" + sig

    def second_sig_block(note: bytes) -> bytes:
        evil = sign("x\n", Signer("evil.example", Ed25519SigningKey.generate()))
        return note + b"\n" + evil.split(b"\n\n")[1]

    return {
        "flipped-signature-bit": lambda n: n[:-10] + bytes([n[-10] ^ 1]) + n[-9:],
        "extra-blank-line": lambda n: n.replace(b"\n\n", b"\n\n\n"),
        "blank-line-removed": lambda n: n.replace(b"\n\n", b"\n"),
        "missing-final-newline": lambda n: n[:-1],
        "crlf": lambda n: n.replace(b"\n", b"\r\n"),
        "trailing-blank-line": lambda n: n + b"\n",
        "leading-blank-line": lambda n: b"\n" + n,
        "signature-line-smuggled-into-the-body": sig_into_body,
        "signatures-appended-after-another-blank-line": second_sig_block,
        "size-edited": lambda n: n.replace(b"\n40\n", b"\n41\n"),
        "root-edited": lambda n: n.replace(n.split(b"\n")[2][:4], b"AAAA", 1),
        "no-signature": lambda n: n.split(b"\n\n")[0] + b"\n\n",
        "empty": lambda n: n[:0],
        "binary": lambda n: bytes(range(256)) + n[:0],
        "bom": lambda n: b"\xef\xbb\xbf" + n,
    }


@pytest.mark.parametrize("trick", _note_tricks().values(), ids=_note_tricks().keys())
def test_checkpoint_tricks_are_rejected(bundle: Path, trick: Callable[[bytes], bytes]) -> None:
    (bundle / CHECKPOINT_FILE).write_bytes(trick((bundle / CHECKPOINT_FILE).read_bytes()))
    reseal(bundle)
    assert_fails(verify_bundle(bundle), "bad-checkpoint")
    assert_fails(verify_bundle(bundle, trusted_key=KEY), "bad-checkpoint")
    # The same note pinned as the trusted checkpoint is refused too.
    pinned = trick(note_for(entries(40)))
    fresh = bundle.parent / "fresh"
    assert_fails(
        verify_bundle(make_bundle(fresh, entries(40)), trusted_checkpoint=pinned),
        "bad-trusted-checkpoint",
    )


# --- bad input: files -------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*DATA_FILES, MANIFEST_FILE])
def test_a_missing_file_is_named(bundle: Path, name: str) -> None:
    (bundle / name).unlink()
    verdict = verify_bundle(bundle)
    assert_fails(verdict, "missing-file")
    assert verdict.failures[0].message == f"{name} is missing"


@pytest.mark.parametrize("name", [*DATA_FILES, MANIFEST_FILE])
def test_a_symlink_instead_of_a_file_is_refused(bundle: Path, tmp_path: Path, name: str) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes((bundle / name).read_bytes())
    (bundle / name).unlink()
    (bundle / name).symlink_to(target)
    assert_fails(verify_bundle(bundle), "not-a-regular-file")


@pytest.mark.parametrize("name", [*DATA_FILES, MANIFEST_FILE])
def test_a_directory_or_fifo_instead_of_a_file_is_refused(bundle: Path, name: str) -> None:
    (bundle / name).unlink()
    (bundle / name).mkdir()
    assert_fails(verify_bundle(bundle), "not-a-regular-file")
    (bundle / name).rmdir()
    os.mkfifo(bundle / name)  # opening it must not wait for a writer
    assert_fails(verify_bundle(bundle), "not-a-regular-file")


@pytest.mark.parametrize(
    ("name", "limit"),
    [(CHECKPOINT_FILE, MAX_NOTE_BYTES), (KEY_FILE, 4096), (MANIFEST_FILE, 64 * 1024)],
)
def test_an_oversized_small_file_is_refused_unread(bundle: Path, name: str, limit: int) -> None:
    (bundle / name).write_bytes(b"a" * (limit + 1))
    assert_fails(verify_bundle(bundle), "file-too-large")


def test_the_bundle_path_must_be_a_directory(tmp_path: Path) -> None:
    assert_fails(verify_bundle(tmp_path / "nowhere"), "not-a-bundle")
    (tmp_path / "file").write_text("x")
    assert_fails(verify_bundle(tmp_path / "file"), "not-a-bundle")
    assert_fails(verify_bundle("nul\x00byte"), "not-a-bundle")
    (tmp_path / "empty").mkdir()
    verdict = verify_bundle(tmp_path / "empty")
    assert reasons(verdict) == ["missing-file"] * 4


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_named(bundle: Path) -> None:
    (bundle / ENTRIES_FILE).chmod(0)
    assert_fails(verify_bundle(bundle), "unreadable-file")


def test_garbage_in_every_file_is_a_verdict_not_a_crash(bundle: Path) -> None:
    for name in [*DATA_FILES, MANIFEST_FILE]:
        (bundle / name).write_bytes(os.urandom(3000) + b"\n\x00\xff")
    verdict = verify_bundle(bundle)
    assert {"bad-key", "bad-entry", "bad-manifest"} <= set(reasons(verdict))


# --- bad input: the manifest ------------------------------------------------------------------


def _manifest_edit(path: Path, edit: Callable[[dict[str, object]], object]) -> None:
    manifest = json.loads((path / MANIFEST_FILE).read_text())
    result = edit(manifest)
    (path / MANIFEST_FILE).write_text(json.dumps(manifest if result is None else result))


def test_a_manifest_hash_mismatch_is_detected(bundle: Path) -> None:
    _manifest_edit(bundle, lambda m: m["files"][KEY_FILE].update(sha256="0" * 64))  # type: ignore[index]
    verdict = verify_bundle(bundle)
    assert reasons(verdict) == ["manifest-mismatch"]
    assert verdict.failures[0].message.startswith(f"{KEY_FILE} does not match {MANIFEST_FILE}")


def test_a_manifest_for_another_log_or_size_is_detected(bundle: Path) -> None:
    _manifest_edit(bundle, lambda m: m.update(size=41))
    assert reasons(verify_bundle(bundle)) == ["manifest-mismatch"]
    _manifest_edit(bundle, lambda m: m.update(size=40, origin="other.example/log"))
    assert reasons(verify_bundle(bundle)) == ["manifest-mismatch"]


BAD_MANIFESTS: dict[str, bytes] = {
    "not-json": b"{",
    "not-utf8": b'{"format": "\xff"}',
    "array": b"[]",
    "duplicate-key": b'{"format": 1, "format": 2}',
    "nan": b'{"size": NaN}',
    "empty": b"",
}


@pytest.mark.parametrize("data", BAD_MANIFESTS.values(), ids=BAD_MANIFESTS.keys())
def test_a_malformed_manifest_is_refused(bundle: Path, data: bytes) -> None:
    (bundle / MANIFEST_FILE).write_bytes(data)
    assert reasons(verify_bundle(bundle)) == ["bad-manifest"]


MANIFEST_EDITS: dict[str, Callable[[dict[str, object]], object]] = {
    "other-format": lambda m: m.update(format="callvault-audit-bundle/2"),
    "extra-key": lambda m: m.update(extra=1),
    "missing-key": lambda m: m.pop("tenant"),
    "size-bool": lambda m: m.update(size=True),
    "size-negative": lambda m: m.update(size=-1),
    "size-string": lambda m: m.update(size="40"),
    "tenant-with-space": lambda m: m.update(tenant="ten x"),
    "origin-not-string": lambda m: m.update(origin=1),
    "file-missing": lambda m: m["files"].pop(KEY_FILE),  # type: ignore[attr-defined]
    "file-extra": lambda m: m["files"].update(x={"sha256": "0" * 64, "bytes": 1}),  # type: ignore[attr-defined]
    "sha-uppercase": lambda m: m["files"][KEY_FILE].update(sha256="A" * 64),  # type: ignore[index]
    "sha-short": lambda m: m["files"][KEY_FILE].update(sha256="a" * 63),  # type: ignore[index]
    "bytes-float": lambda m: m["files"][KEY_FILE].update(bytes=1.0),  # type: ignore[index]
    "file-not-object": lambda m: m["files"].update({KEY_FILE: []}),  # type: ignore[attr-defined]
}


@pytest.mark.parametrize("edit", MANIFEST_EDITS.values(), ids=MANIFEST_EDITS.keys())
def test_a_manifest_outside_the_schema_is_refused(
    bundle: Path, edit: Callable[[dict[str, object]], object]
) -> None:
    _manifest_edit(bundle, edit)
    assert reasons(verify_bundle(bundle)) == ["bad-manifest"]


# --- bad input: the key file ------------------------------------------------------------------


BAD_KEY_FILES = {
    "no-newline": KEY.encode(),
    "two-newlines": KEY.encode() + b"\n\n",
    "crlf": KEY.encode() + b"\r\n",
    "leading-space": b" " + KEY.encode() + b"\n",
    "two-keys": KEY.encode() + b"\n" + KEY.encode() + b"\n",
    "not-utf8": b"\xff\n",
    "empty-line": b"\n",
    "wrong-separators": KEY.replace("+", "-").encode() + b"\n",
}


@pytest.mark.parametrize("data", BAD_KEY_FILES.values(), ids=BAD_KEY_FILES.keys())
def test_a_malformed_key_file_is_refused(bundle: Path, data: bytes) -> None:
    (bundle / KEY_FILE).write_bytes(data)
    reseal(bundle)
    assert reasons(verify_bundle(bundle)) == ["bad-key"]
    with pytest.raises(BundleError):
        parse_key_file(data)


def test_a_malformed_trusted_key_is_a_failure(bundle: Path) -> None:
    assert_fails(verify_bundle(bundle, trusted_key="not a key"), "bad-trusted-key")


# --- bad input: entry lines -------------------------------------------------------------------


def _edit_line(i: int, edit: Callable[[bytes], bytes]) -> Callable[[list[bytes]], list[bytes]]:
    return lambda ls: [*ls[:i], edit(ls[i]), *ls[i + 1 :]]


LINE_ATTACKS: dict[str, tuple[Callable[[list[bytes]], list[bytes]], str]] = {
    "non-utf8": (_edit_line(3, lambda ln: ln.replace(b"allowed", b"allow\xff\xfe")), "bad-entry"),
    "overlong-utf8": (
        _edit_line(3, lambda ln: ln.replace(b"allowed", b"allow\xc0\xaf")),
        "bad-entry",
    ),
    "utf8-surrogate": (
        _edit_line(3, lambda ln: ln.replace(b"allowed", b"\xed\xa0\x80")),
        "bad-entry",
    ),
    "duplicate-key": (
        _edit_line(3, lambda ln: ln.replace(b'"v":1}', b'"v":1,"v":2}')),
        "bad-entry",
    ),
    "duplicate-nested-key": (
        _edit_line(3, lambda ln: ln.replace(b'"n":3,', b'"n":3,"n":4,')),
        "bad-entry",
    ),
    "nan": (_edit_line(3, lambda ln: ln.replace(b'"v":1', b'"v":NaN')), "bad-entry"),
    "infinity": (_edit_line(3, lambda ln: ln.replace(b'"v":1', b'"v":-Infinity')), "bad-entry"),
    "not-json": (_edit_line(3, lambda ln: ln.replace(b'"v":1', b'"v":')), "bad-entry"),
    "entry-is-an-array": (lambda ls: [*ls[:3], line(3, b"[1,2]"), *ls[4:]], "bad-entry"),
    "entry-is-a-string": (lambda ls: [*ls[:3], line(3, b'"x"'), *ls[4:]], "bad-entry"),
    "entry-empty": (lambda ls: [*ls[:3], line(3, b""), *ls[4:]], "bad-entry"),
    "index-not-line-number": (
        _edit_line(0, lambda ln: ln.replace(b'"index":0', b'"index":1')),
        "index-mismatch",
    ),
    "index-leading-zero": (
        _edit_line(7, lambda ln: ln.replace(b'"index":7', b'"index":07')),
        "bad-entry",
    ),
    "index-negative": (
        _edit_line(0, lambda ln: ln.replace(b'"index":0', b'"index":-0')),
        "bad-entry",
    ),
    "index-string": (
        _edit_line(2, lambda ln: ln.replace(b'"index":2', b'"index":"2"')),
        "bad-entry",
    ),
    "index-huge": (
        _edit_line(2, lambda ln: ln.replace(b'"index":2', b'"index":' + b"9" * 30)),
        "bad-entry",
    ),
    "keys-swapped": (
        lambda ls: [*ls[:3], b'{"entry":%b,"index":3}\n' % entry(3), *ls[4:]],
        "bad-entry",
    ),
    "space-after-colon": (
        _edit_line(3, lambda ln: ln.replace(b'"index":3', b'"index": 3')),
        "bad-entry",
    ),
    "trailing-space": (_edit_line(5, lambda ln: ln[:-1] + b" \n"), "bad-entry"),
    "trailing-tab": (_edit_line(5, lambda ln: ln[:-1] + b"\t\n"), "bad-entry"),
    "crlf": (_edit_line(5, lambda ln: ln[:-1] + b"\r\n"), "bad-entry"),
    "all-crlf": (lambda ls: [ln[:-1] + b"\r\n" for ln in ls], "bad-entry"),
    "whitespace-inside-wrapper": (_edit_line(5, lambda ln: ln[:-2] + b" }\n"), "bad-entry"),
    "trailing-data-in-entry": (_edit_line(5, lambda ln: ln[:-2] + b',"x":1}\n'), "bad-entry"),
    "second-object": (_edit_line(5, lambda ln: ln[:-2] + b"{}}\n"), "bad-entry"),
    "blank-line-in-the-middle": (lambda ls: [*ls[:5], b"\n", *ls[5:]], "bad-entry"),
    "blank-line-at-the-end": (lambda ls: [*ls, b"\n"], "bad-entry"),
    "missing-final-newline": (lambda ls: [*ls[:-1], ls[-1][:-1]], "truncated-file"),
    "cut-in-the-middle-of-a-line": (lambda ls: [*ls[:-1], ls[-1][:20]], "truncated-file"),
    "bom": (_edit_line(0, lambda ln: b"\xef\xbb\xbf" + ln), "bad-entry"),
    "nul-byte": (_edit_line(3, lambda ln: ln.replace(b"allowed", b"allow\x00d")), "bad-entry"),
    "raw-newline-in-string": (
        _edit_line(3, lambda ln: ln.replace(b"allowed", b"all\rowed")),
        "bad-entry",
    ),
}


@pytest.mark.parametrize("attack", LINE_ATTACKS.values(), ids=LINE_ATTACKS.keys())
def test_malformed_entry_lines_are_refused(
    bundle: Path, attack: tuple[Callable[[list[bytes]], list[bytes]], str]
) -> None:
    tamper, reason = attack
    set_lines(bundle, tamper(lines_of(bundle)))
    verdict = verify_bundle(bundle)
    assert_fails(verdict, reason)
    assert reasons(verdict) == [reason]  # framing errors stop the pass: nothing else to say


def test_an_entry_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    es = [b'{"pad":"%s"}' % (b"x" * 2000), entry(1)]
    path = make_bundle(tmp_path / "b", es)
    assert verify_bundle(path).ok
    verdict = verify_bundle(path, max_entry_bytes=1000)
    assert_fails(verdict, "bad-entry")
    assert "over the 1000-byte limit" in verdict.failures[0].message


def test_a_huge_line_without_a_newline_is_refused_early(bundle: Path) -> None:
    (bundle / ENTRIES_FILE).write_bytes(b"x" * (3 * 1024 * 1024))
    verdict = verify_bundle(bundle, max_entry_bytes=1024)
    assert_fails(verdict, "bad-entry")
    assert "longer than any entry may be" in verdict.failures[0].message


def test_deeply_nested_entries_are_refused_not_crashed(bundle: Path) -> None:
    deep = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    set_lines(bundle, [line(0, deep)])
    verdict = verify_bundle(bundle)
    assert_fails(verdict, "bad-entry")
    assert entry_problem(deep) == "entry is nested too deeply"


def test_an_integer_too_long_to_convert_is_refused() -> None:
    assert entry_problem(b'{"n":' + b"9" * 10_000 + b"}") == "entry is not valid JSON"


def test_messages_never_carry_entry_content(bundle: Path) -> None:
    for tamper, _ in [*ENTRY_ATTACKS.values(), *LINE_ATTACKS.values()]:
        path = bundle.parent / f"copy{id(tamper)}"
        make_bundle(path, entries(40))
        set_lines(path, tamper(lines_of(path)))
        assert_fails(verify_bundle(path), verify_bundle(path).failures[0].reason)


# --- the writer refuses what the verifier would ----------------------------------------------


def _write(
    path: Path, es: object, note: bytes | None = None, key: str = KEY, tenant: str = "ten_x"
) -> None:
    write_bundle(
        path,
        tenant=tenant,
        entries=es,  # type: ignore[arg-type]
        checkpoint_note=note if note is not None else note_for(entries(3)),
        verifier_key=key,
    )


WRITER_REFUSALS: dict[str, tuple[Callable[[], object], bytes | None, str]] = {
    "gap-in-indices": (
        lambda: [(0, entry(0)), (2, entry(1)), (3, entry(2))],
        None,
        "index-mismatch",
    ),
    "starts-at-one": (lambda: [(1, entry(0))], None, "index-mismatch"),
    "index-not-int": (lambda: [("0", entry(0))], None, "index-mismatch"),
    "index-bool": (lambda: [(False, entry(0))], None, "index-mismatch"),
    "fewer-than-the-checkpoint": (lambda: enumerate(entries(2)), None, "size-mismatch"),
    "more-than-the-checkpoint": (lambda: enumerate(entries(4)), None, "size-mismatch"),
    "other-entries": (lambda: enumerate([entry(0), entry(1), entry(3)]), None, "root-mismatch"),
    "entry-with-newline": (
        lambda: enumerate([entry(0), b'{"a":\n1}', entry(2)]),
        None,
        "bad-entry",
    ),
    "entry-not-bytes": (lambda: enumerate([entry(0), "{}", entry(2)]), None, "bad-entry"),
    "entry-duplicate-key": (
        lambda: enumerate([b'{"a":1,"a":2}']),
        note_for([b'{"a":1,"a":2}']),
        "bad-entry",
    ),
    "entry-not-json": (lambda: enumerate([b"{"]), note_for([b"{"]), "bad-entry"),
    "checkpoint-by-another-key": (
        lambda: enumerate(entries(3)),
        note_for(entries(3), IMPOSTOR),
        "bad-checkpoint",
    ),
    "checkpoint-garbage": (lambda: enumerate(entries(3)), b"garbage", "bad-checkpoint"),
}


@pytest.mark.parametrize("case", WRITER_REFUSALS.values(), ids=WRITER_REFUSALS.keys())
def test_the_writer_refuses_and_leaves_nothing_behind(
    tmp_path: Path, case: tuple[Callable[[], object], bytes | None, str]
) -> None:
    make_entries, note, reason = case
    with pytest.raises(BundleError) as caught:
        _write(tmp_path / "b", make_entries(), note)
    assert caught.value.reason == reason
    assert not (tmp_path / "b").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError):
        _write(tmp_path / "empty", make_entries(), note)
    assert list((tmp_path / "empty").iterdir()) == []


def test_the_writer_refuses_a_bad_key_or_tenant(tmp_path: Path) -> None:
    with pytest.raises(BundleError) as caught:
        _write(tmp_path / "b", enumerate(entries(3)), key="nope")
    assert caught.value.reason == "bad-key"
    with pytest.raises(BundleError) as caught:
        _write(tmp_path / "b", enumerate(entries(3)), tenant="ten x")
    assert caught.value.reason == "bad-manifest"
    assert not (tmp_path / "b").exists()


def test_the_writer_refuses_a_non_empty_or_symlinked_directory(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    with pytest.raises(BundleError) as caught:
        _write(tmp_path / "full", enumerate(entries(3)))
    assert caught.value.reason == "not-empty"
    assert (tmp_path / "full" / "x").read_text() == "keep me"
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(BundleError):
        _write(tmp_path / "link", enumerate(entries(3)))
    assert list((tmp_path / "real").iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(BundleError):
        _write(tmp_path / "file", enumerate(entries(3)))
    with pytest.raises(BundleError):
        _write(tmp_path / "no" / "parent", enumerate(entries(3)))


def test_an_interrupted_write_leaves_nothing_behind(tmp_path: Path) -> None:
    def boom() -> Iterator[tuple[int, bytes]]:
        yield 0, entry(0)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _write(tmp_path / "b", boom())
    assert not (tmp_path / "b").exists()


def test_writing_and_verifying_stream_in_bounded_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tracemalloc  # noqa: PLC0415 - only this test traces allocations

    _patch(monkeypatch, "_READ_CHUNK", 256 * 1024)
    pad = b"p" * 2000

    def peaks(n: int) -> tuple[int, int]:
        es = [b'{"i":%d,"pad":"%s"}' % (i, pad) for i in range(n)]
        note, path = note_for(es), tmp_path / str(n)
        tracemalloc.start()
        try:
            write_bundle(
                path,
                tenant="ten_x",
                entries=((i, e) for i, e in enumerate(es)),
                checkpoint_note=note,
                verifier_key=KEY,
            )
            _, write_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            assert verify_bundle(path, workers=0).ok
            _, verify_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return write_peak, verify_peak

    small, large = peaks(500), peaks(8000)  # 1 MB and 16 MB of entries
    for before, after in zip(small, large, strict=True):
        assert after < before * 1.5 + 512 * 1024
        assert after < 4_000_000


# --- the JSON check in helper processes ------------------------------------------------------


@pytest.fixture
def parallel(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Force the helper-process path for any file size; count its uses."""
    used: list[int] = []
    real = _bundle_parallel._digest_parallel

    def counting(*args: object, **kwargs: object) -> object:
        used.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    _patch(monkeypatch, "_PARALLEL_MIN_BYTES", 0)
    _patch(monkeypatch, "_READ_CHUNK", 512)  # many chunks, many helpers' tasks
    _patch(monkeypatch, "_can_fork", lambda: True)
    _patch(monkeypatch, "_digest_parallel", counting)
    return used


def test_helper_processes_reach_the_same_verdicts(tmp_path: Path, parallel: list[int]) -> None:
    path = make_bundle(tmp_path / "ok", entries(300))
    assert verify_bundle(path, workers=1).ok
    assert verify_bundle(path, workers=2, trusted_checkpoint=note_for(entries(300)[:150])).ok
    cases = {
        **{k: v[0] for k, v in LINE_ATTACKS.items()},
        "json-late-framing-early": lambda ls: [
            *ls[:100],
            ls[100].replace(b'"index":100', b'"index":99'),
            *ls[101:250],
            ls[250].replace(b'"v":1', b'"v":'),
            *ls[251:],
        ],
        "framing-late-json-early": lambda ls: [
            *ls[:100],
            ls[100].replace(b'"v":1', b'"v":'),
            *ls[101:250],
            ls[250].replace(b'"index":250', b'"index":249'),
            *ls[251:],
        ],
        "json-in-the-last-line": lambda ls: [*ls[:-1], ls[-1].replace(b'"v":1', b'"v":')],
    }
    for name, tamper in cases.items():
        bad = make_bundle(tmp_path / name, entries(300))
        set_lines(bad, tamper(lines_of(bad)))
        assert verify_bundle(bad, workers=1).failures == verify_bundle(bad, workers=0).failures, (
            name
        )
    assert len(parallel) == 2 + len(cases)


def test_a_lost_helper_falls_back_to_checking_in_process(
    tmp_path: Path, parallel: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    _patch(monkeypatch, "json_failure", os._exit)  # the helper dies at once
    path = make_bundle(tmp_path / "b", entries(100))
    assert verify_bundle(path, workers=1).ok
    set_lines(path, [*lines_of(path)[:50], line(50, b'{"a":1,"a":1}'), *lines_of(path)[51:]])
    assert_fails(verify_bundle(path, workers=1), "bad-entry")
    assert len(parallel) == 2


def test_small_files_are_checked_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _patch(monkeypatch, "ProcessPoolExecutor", None)  # would fail if used
    assert verify_bundle(make_bundle(tmp_path / "b", entries(50)), workers=2).ok


# --- the pure parts ---------------------------------------------------------------------------


def test_json_failure_reports_the_first_bad_line() -> None:
    data = b"".join(line(i, e) for i, e in enumerate([entry(0), b"{", b"[]"]))
    assert json_failure(data, 0) == (1, "entry is not valid JSON (at character 1)")
    assert json_failure(b"".join(line(i + 5, entry(i)) for i in range(3)), 5) is None


def test_read_trusted_file(tmp_path: Path) -> None:
    (tmp_path / "cp").write_bytes(b"x" * 10)
    assert read_trusted_file(tmp_path / "cp") == b"x" * 10
    for path, reason in [
        (tmp_path / "none", "unreadable-file"),
        (tmp_path, "not-a-regular-file"),
        (tmp_path / "nul\x00byte", "unreadable-file"),
    ]:
        with pytest.raises(BundleError) as caught:
            read_trusted_file(path)
        assert caught.value.reason == reason
    with pytest.raises(BundleError) as caught:
        read_trusted_file(tmp_path / "cp", max_bytes=9)
    assert caught.value.reason == "file-too-large"


def test_verdict_lines_and_raise() -> None:
    failed = Verdict((_bundle_format.Failure("root-mismatch", "nope"),))
    assert failed.lines() == ["FAILED: root-mismatch: nope"]
    with pytest.raises(BundleError) as caught:
        failed.raise_for_failures()
    assert caught.value.reason == "root-mismatch"
    assert Verdict().lines() == ["FAILED: internal-error: nothing was verified"]


def test_writing_and_verifying_load_no_service_stack(tmp_path: Path) -> None:
    # Beyond importing (test_verifier_dependencies): running the verifier loads nothing more.
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from callvault.audit.bundle import verify_bundle, write_bundle\n"
        "from tests.unit.audit.test_bundle import KEY, entries, note_for\n"
        "es = entries(5)\n"
        f"path = Path({str(tmp_path / 'b')!r})\n"
        "write_bundle(path, tenant='ten_x', entries=enumerate(es), checkpoint_note=note_for(es),"
        " verifier_key=KEY)\n"
        "assert verify_bundle(path, trusted_key=KEY, trusted_checkpoint=note_for(es[:2])).ok\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        "print(sorted(loaded & {'sqlalchemy', 'fastapi', 'pydantic', 'rfc8785', 'cedarpy',"
        " 'starlette', 'httpx', 'boto3', 'argon2', 'typer', 'rich'}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def _doc_blocks() -> dict[str, bytes]:
    """The appendix of docs/formats/audit-bundle.md: heading -> code block bytes."""
    doc = Path(__file__).parents[3] / "docs" / "formats" / "audit-bundle.md"
    appendix = doc.read_text().split("## Appendix")[1]
    blocks = {}
    for part in appendix.split("#### ")[1:]:
        heading, _, rest = part.partition("\n")
        body = rest.split("```text\n", 1)[1].split("```", 1)[0]
        blocks[heading.strip("`")] = body.encode()
    return blocks


def test_the_example_in_the_format_spec_verifies(tmp_path: Path) -> None:
    blocks = _doc_blocks()
    path = tmp_path / "example"
    path.mkdir()
    for name in [*DATA_FILES, MANIFEST_FILE]:
        (path / name).write_bytes(blocks[name])
    key = blocks[KEY_FILE].decode().strip()
    seed = hashlib.sha256(b"callvault audit bundle example").digest()
    assert (
        Signer("callvault.example/audit/ten_example", Ed25519SigningKey.from_seed(seed))
        .verifier()
        .key_string()
        == key
    )
    pinned = blocks["A checkpoint pinned earlier, at size 2"]
    verdict = verify_bundle(path, trusted_key=key, trusted_checkpoint=pinned)
    assert verdict.ok, verdict.lines()
    assert verdict.trusted_size == 2
