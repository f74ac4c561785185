"""Fixtures for the build tests (loaded by conftest.py)."""
