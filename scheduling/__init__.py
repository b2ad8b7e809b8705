"""Digest scheduling: the periodic tick, the due-digest planner and the fan-out (to come)."""
