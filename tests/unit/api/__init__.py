"""API tests: access matrix, bad input, fail-closed audit."""
