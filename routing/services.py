"""Writes to routing configuration."""
