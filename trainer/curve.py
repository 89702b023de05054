"""loss_curve.png: the training loss per step and the held-out figures, drawn with PIL.

Grey: the loss of each step; blue: its running mean; the orange square (step 0) is the
held-out loss of the starting weights, the green one (last step) of the result, joined
by a dashed line so the change reads at a glance. The y axis is logarithmic when the
losses span more than a factor of 20 (a run that blew up stays readable).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

W, H, LEFT, RIGHT, TOP, BOTTOM = 800, 420, 70, 20, 40, 50
GREY, BLUE, ORANGE, GREEN = (170, 170, 170), (40, 90, 200), (230, 120, 20), (30, 150, 60)


def read_losses(loss_jsonl: Path) -> list[tuple[int, float]]:
    """(step, loss), the latest try of each step (a resumed run logs some twice)."""
    by_step: dict[int, float] = {}
    try:
        lines = Path(loss_jsonl).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            rec = json.loads(line)
            by_step[int(rec["step"])] = float(rec["loss"])
        except (ValueError, KeyError, TypeError):
            continue
    return sorted((s, v) for s, v in by_step.items() if math.isfinite(v))


def draw_loss_curve(losses: list[tuple[int, float]], before: float | None,
                    after: float | None, last_step: int, path: Path, title: str) -> Path:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(image)
    values = [v for _, v in losses] + [v for v in (before, after) if v is not None]
    positive = [v for v in values if v > 0] or [1.0]
    lo, hi = min(positive), max(positive)
    log_scale = hi / lo > 20
    if hi == lo:
        lo, hi = lo * 0.9, hi * 1.1
    steps = max(1, last_step)

    def x(step: float) -> float:
        return LEFT + (W - LEFT - RIGHT) * step / steps

    def y(value: float) -> float:
        value = max(value, lo)
        part = (math.log(value / lo) / math.log(hi / lo)) if log_scale else \
            (value - lo) / (hi - lo)
        return H - BOTTOM - (H - TOP - BOTTOM) * part

    draw.rectangle([LEFT, TOP, W - RIGHT, H - BOTTOM], outline=(0, 0, 0))
    for frac in (0, 0.5, 1):
        value = lo * (hi / lo) ** frac if log_scale else lo + (hi - lo) * frac
        draw.text((4, y(value) - 6), f"{value:.4g}", fill=(0, 0, 0))
    draw.text((LEFT, H - BOTTOM + 8), "step 0", fill=(0, 0, 0))
    draw.text((W - RIGHT - 70, H - BOTTOM + 8), f"step {last_step}", fill=(0, 0, 0))
    draw.text((LEFT, 10), title + ("  (log scale)" if log_scale else ""), fill=(0, 0, 0))
    if len(losses) > 1:
        draw.line([(x(s), y(v)) for s, v in losses], fill=GREY, width=1)
        window, smooth = max(1, len(losses) // 20), []
        for i in range(len(losses)):
            part = [v for _, v in losses[max(0, i - window + 1): i + 1]]
            smooth.append((x(losses[i][0]), y(sum(part) / len(part))))
        draw.line(smooth, fill=BLUE, width=2)
    elif losses:
        s, v = losses[0]
        draw.ellipse([x(s) - 3, y(v) - 3, x(s) + 3, y(v) + 3], fill=BLUE)
    marks = [(0, before, ORANGE, "held-out before"), (last_step, after, GREEN, "held-out after")]
    for step, value, color, label in marks:
        if value is None:
            continue
        cx, cy = x(step), y(value)
        draw.rectangle([cx - 5, cy - 5, cx + 5, cy + 5], fill=color)
        draw.text((min(cx + 8, W - RIGHT - 150), cy - 16), f"{label} {value:.4g}", fill=color)
    if before is not None and after is not None:
        x0, y0, x1, y1 = x(0), y(before), x(last_step), y(after)
        for k in range(0, 40, 2):  # dashed
            a, b = k / 40, (k + 1) / 40
            draw.line([(x0 + (x1 - x0) * a, y0 + (y1 - y0) * a),
                       (x0 + (x1 - x0) * b, y0 + (y1 - y0) * b)], fill=GREEN, width=2)
    draw.text((W - RIGHT - 330, H - 20), "grey: step loss  blue: running mean", fill=BLUE)
    tmp = path.with_name(f".{path.name}.tmp")
    image.save(tmp, format="PNG")
    os.replace(tmp, path)
    return path
