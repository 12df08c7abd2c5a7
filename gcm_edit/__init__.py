"""gcm-edit: find the heads that causally mediate a concept and bake steering into them."""

__version__ = "0.1.0"
