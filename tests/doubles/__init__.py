"""Test doubles of external services (clearly not the real ones): Heroku, SageMaker runtime."""
