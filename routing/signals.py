"""Invalidate the engine's in-process config cache whenever routing config is saved."""
