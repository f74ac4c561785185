"""Fixtures for the apply tests (loaded by conftest.py)."""
