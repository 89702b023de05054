"""Local state in SQLite: every clip we cut and where its push to Hydrus stands."""

from hydrus_motion.store.db import ClipRecord, Store, open_store

__all__ = ["ClipRecord", "Store", "open_store"]
