"""Tests of callvault.sso: the login core here; the adapters in saml/ and oidc/."""
