"""Persistence of resource versions and their search index."""
