"""Reads for the dashboard and the call log (see the modules)."""
