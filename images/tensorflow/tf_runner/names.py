"""Keras layer names of canonical tensors: the canonical name with '.' replaced by '_'."""


def layer_name(canonical: str) -> str:
    return canonical.replace(".", "_")
