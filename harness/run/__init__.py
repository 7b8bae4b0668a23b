"""One study's run: its directory and owner lock, record, resume, progress and verdict."""
