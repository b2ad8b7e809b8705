"""Digests members choose: the catalogue, the consent ledger, cadence, planning, audit."""
