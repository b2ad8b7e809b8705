"""Helpers the tests share: drivers, setup steps and waits, defined once (test modules import from here only)."""
