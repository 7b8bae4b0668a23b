"""Files on disk: atomic writes, digests, room, safe unpacking, and OS errors as one line."""
