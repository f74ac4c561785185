"""Fixtures for the prefect tests (loaded by conftest.py)."""
