"""Random bytes, strings and XML fed to finish_login: only SsoError ever comes out."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callvault.errors import SsoError
from callvault.sso.saml import MemoryReplayGuard, SamlAdapter, SamlConfig
from tests.integration.simplesamlphp import KeyPair
from tests.unit.sso.saml.conftest import metadata

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"


@pytest.fixture(scope="module")
def setup(idp_keys: KeyPair) -> tuple[SamlAdapter, SamlConfig, dict[str, str]]:
    adapter = SamlAdapter()
    cfg = adapter.parse_config(
        {
            "sp_entity_id": "https://callvault.example/sso/t1/c1",
            "acs_url": "https://callvault.example/sso/t1/c1/saml/acs",
            "idp_metadata_xml": metadata(idp_keys.cert_b64),
        }
    )
    start = adapter.start_login(cfg, tenant_id="t1", connection_id="c1")
    return adapter, cfg, dict(start.pending)


def _finish(setup: tuple[SamlAdapter, SamlConfig, dict[str, str]], value: str) -> None:
    adapter, cfg, pending = setup
    with pytest.raises(SsoError) as exc:
        adapter.finish_login(
            cfg,
            tenant_id="t1",
            connection_id="c1",
            params={"SAMLResponse": value},
            pending=pending,
            now=datetime.now(UTC),
            replay=MemoryReplayGuard(),
        )
    assert exc.value.reason


_names = st.sampled_from(
    [
        f"{{{SAMLP}}}Response",
        f"{{{SAMLP}}}Status",
        f"{{{SAMLP}}}StatusCode",
        f"{{{SAML}}}Assertion",
        f"{{{SAML}}}Issuer",
        f"{{{SAML}}}Subject",
        f"{{{SAML}}}NameID",
        f"{{{SAML}}}Conditions",
        f"{{{DS}}}Signature",
        f"{{{DS}}}Reference",
        "x",
    ]
)
_attrs = st.dictionaries(
    st.sampled_from(["ID", "Version", "InResponseTo", "Destination", "URI", "Value"]),
    st.text(alphabet=st.characters(codec="ascii", exclude_categories=["Cc"]), max_size=12),
    max_size=3,
)
_tree = st.recursive(
    st.tuples(_names, _attrs, st.just(())),
    lambda children: st.tuples(_names, _attrs, st.lists(children, max_size=4)),
    max_leaves=12,
)


def _xml(node: tuple[str, dict[str, str], object], root: bool = True) -> str:
    name, attrs, children = node
    ns, _, local = name.rpartition("}")
    ns = ns.lstrip("{")
    prefix = {SAMLP: "samlp", SAML: "saml", DS: "ds"}.get(ns, "")
    tag = f"{prefix}:{local}" if prefix else local
    decl = f' xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" xmlns:ds="{DS}"' if root else ""
    attr_text = "".join(
        f' {k}="{v.replace("&", "&amp;").replace(chr(34), "&quot;").replace("<", "&lt;")}"'
        for k, v in attrs.items()
    )
    inner = "".join(_xml(c, root=False) for c in children)  # type: ignore[attr-defined]
    return f"<{tag}{decl}{attr_text}>{inner}</{tag}>"


FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(data=st.binary(max_size=2048))
def test_random_bytes_only_raise_sso_error(setup, data: bytes) -> None:  # type: ignore[no-untyped-def]
    _finish(setup, base64.b64encode(data).decode())


@FUZZ
@given(text=st.text(max_size=512))
def test_random_form_values_only_raise_sso_error(setup, text: str) -> None:  # type: ignore[no-untyped-def]
    _finish(setup, text or "x")


@FUZZ
@given(tree=_tree)
def test_random_saml_shaped_xml_only_raises_sso_error(setup, tree) -> None:  # type: ignore[no-untyped-def]
    _finish(setup, base64.b64encode(_xml(tree).encode()).decode())
