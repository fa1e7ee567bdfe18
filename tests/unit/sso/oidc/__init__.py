"""Tests of callvault.sso.oidc: configuration, discovery, ID token checks, provider profiles."""
