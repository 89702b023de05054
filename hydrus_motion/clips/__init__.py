"""Scenes -> clip spans (pure planning) -> clip files (one ffmpeg pass per video)."""
