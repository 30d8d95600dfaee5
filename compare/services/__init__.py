"""Writes for compare runs and drills (see the modules: runs, cells, drills, votes)."""
