"""Helpers for tests and benchmarks (a throw-away PostgreSQL server); not used by the bot."""
