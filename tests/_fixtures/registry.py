"""Fixtures for the registry tests (loaded by conftest.py)."""
