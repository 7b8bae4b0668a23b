"""Files on disk: atomic writes, digests, room, and OS errors as one line."""
