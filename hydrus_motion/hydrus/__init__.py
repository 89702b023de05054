"""Hydrus side: the gateway (the only code that talks to Hydrus), push and review."""
