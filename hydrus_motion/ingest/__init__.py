"""Getting videos in: content hashing (watch folder, settling and quarantine join here)."""
