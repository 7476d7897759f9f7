"""The Celery door into the domain: thin tasks that look up ids and call one domain function."""

from tasks.app import app

__all__ = ["app"]
