"""The package version, recorded in every cache key and manifest."""

__version__ = "0.2.0"
