"""concierge: a loyalty concierge bot core, independent of any chat platform."""

__version__ = "0.1.0"
