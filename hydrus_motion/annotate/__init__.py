"""Clip annotation: frame sampling, WD tagger, video captioner, quality scores.

The one entry point for other stages (ingest, the daemon) is `annotate_clips`.
"""

from hydrus_motion.annotate.annotator import ClipAnnotation, annotate_clips, provenance

__all__ = ["ClipAnnotation", "annotate_clips", "provenance"]
