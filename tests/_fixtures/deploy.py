"""Fixtures for the deploy tests (loaded by conftest.py)."""
