"""The canonical JSON fast path produces exactly what the reference RFC 8785 encoder does."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from callvault import canonical

_scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1) | st.text()
)
_keys = st.text(alphabet=st.characters(max_codepoint=127), max_size=8)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=5),
    max_leaves=20,
)
_anything = st.recursive(
    _scalars
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(min_value=-(2**60), max_value=2**60),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=20,
)


def _reference(value: Any) -> bytes | type[Exception]:
    try:
        return rfc8785.dumps(value)
    except Exception as exc:  # noqa: BLE001 - comparing which error each side raises
        return type(exc)


def _ours(value: Any) -> bytes | type[Exception]:
    try:
        return canonical.dumps(value)
    except Exception as exc:  # noqa: BLE001 - comparing which error each side raises
        return type(exc)


@settings(max_examples=1500, deadline=None)
@given(_json)
def test_fast_path_values_encode_exactly_as_the_reference(value: Any) -> None:
    assert _ours(value) == _reference(value)


@settings(max_examples=500, deadline=None)
@given(_anything)
def test_every_value_encodes_exactly_as_the_reference(value: Any) -> None:
    assert _ours(value) == _reference(value)


@pytest.mark.parametrize(
    "value",
    [
        {"b": 1, "a": [True, None, "x"]},
        {"ctl": "\x00\x01\x08\x09\x0a\x0c\x0d\x1f\x7f", "q": '"\\/'},
        {"u": "é€😀\u2028\u2029"},
        {"z": 2**53 - 1, "n": -(2**53) + 1},
        {"f": 1.5, "g": 1e21, "h": 5e-324},  # floats: outside the fast path
        {"é": 1, "e": 2, "😀": 3, "\ue000": 4},  # non-ASCII keys: UTF-16 order
    ],
)
def test_edge_values(value: Any) -> None:
    assert canonical.dumps(value) == rfc8785.dumps(value)


def test_a_lone_surrogate_is_refused_as_the_reference_refuses_it() -> None:
    assert _ours({"s": "\ud800"}) == _reference({"s": "\ud800"})


def test_integers_beyond_ecmascripts_safe_range_are_refused_as_the_reference_does() -> None:
    assert _ours({"big": 2**53}) == _reference({"big": 2**53})
    assert isinstance(_ours({"big": 2**53}), type)
