"""Platform adapters: one folder per platform, each translating to and from the core's seam."""
