"""Perceptual clip signatures: one 64-bit difference hash (dHash) per sampled frame.

dHash: the frame as a 9x8 grey thumbnail, one bit per horizontal neighbour pair (is the
left brighter?). Resizing, re-encoding at another quality, small colour shifts and
letterbox-free crops of the same picture keep almost every bit; a different picture flips
about half of them. Nearly flat frames (black, a fade's end) hash to noise or zeros and
would match each other, so they get no hash.

Two clips are compared frame set against frame set: for each hash of one, the nearest
hash of the other, averaged. So a re-cut that starts a few frames later, or samples other
frames of the same shot, still matches. Against a library: the stored hashes are one
numpy array and the comparison is a XOR and a popcount over all of them at once (10,000
clips x 5 frames is a few milliseconds).

    sig = signature(frames.tagger_frames)               # tuple of ints
    nearest(sig, library_ids, library_matrix, max_distance=6)
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

FLAT_STD = 6.0  # grey levels on the 9x8 thumbnail: a frame this flat gets no hash
MAX_FRAMES = 8  # hashes per clip (rows of the library matrix; shorter ones are padded)
NO_HASH = np.uint64(0)  # padding; a real hash of 0 is a flat frame, which we skip anyway


def dhash(frame: np.ndarray) -> int | None:
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    small = cv2.resize(grey, (9, 8), interpolation=cv2.INTER_AREA).astype(np.float32)
    if small.std() < FLAT_STD:
        return None
    bits = (small[:, :-1] > small[:, 1:]).ravel()
    return int(np.packbits(bits).view(">u8")[0])


def signature(frames: Sequence[np.ndarray]) -> tuple[int, ...]:
    hashes = [h for f in frames[:MAX_FRAMES] if (h := dhash(f)) is not None]
    return tuple(hashes)


def as_row(sig: Sequence[int]) -> np.ndarray:
    row = np.zeros(MAX_FRAMES, np.uint64)
    row[:len(sig)] = np.array(sig, np.uint64)
    return row


def distances(sig: Sequence[int], matrix: np.ndarray) -> np.ndarray:
    """Mean over `sig`'s hashes of the nearest hash of each library row (bits, 0-64).

    `matrix`: (clips, MAX_FRAMES) uint64, rows padded with NO_HASH."""
    if not len(sig) or not len(matrix):
        return np.full(len(matrix), 64.0)
    query = np.array(sig, np.uint64)
    bits = np.bitwise_count(matrix[:, None, :] ^ query[None, :, None]).astype(np.float32)
    bits[np.broadcast_to((matrix == NO_HASH)[:, None, :], bits.shape)] = 64  # padding
    return bits.min(axis=2).mean(axis=1)


def nearest(sig: Sequence[int], matrix: np.ndarray, max_distance: float) -> int | None:
    """Row index of the closest library clip within `max_distance` bits, else None."""
    d = distances(sig, matrix)
    if not len(d):
        return None
    best = int(np.argmin(d))
    return best if d[best] <= max_distance else None
