"""The runner images: build, base-image lock, identity, and publishing to a registry."""
