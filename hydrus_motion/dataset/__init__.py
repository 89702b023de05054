"""Approved clips from Hydrus -> the dataset folder the trainer reads (DESIGN.md contract)."""
