"""Fixtures for the serve tests (loaded by conftest.py)."""
