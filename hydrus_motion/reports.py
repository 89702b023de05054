"""What `ingest` and a nightly run did, as typed reports.

The CLI prints them (`--json`: `as_json()`, whose shape the tests pin), `status` renders
the nightly ones from the run history, and the runs table stores a nightly report's
`details` as JSON. Reading one back (`NightlyDetails.from_json`) accepts rows written by
any earlier version: a part a run never reached is None.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hydrus_motion.store.states import RunOutcome

# -- ingest ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClipLine:
    """One clip of an ingested video: where it is and how its push went."""

    path: str
    sha256: str
    scene: int
    start_frame: int
    end_frame: int
    push: str  # a PushResult when pushed in this run, else the stored PushStatus
    error: str | None
    annotation_errors: list[str]


@dataclass
class VideoReport:
    video: str
    ok: bool = True
    error: str | None = None
    clips: list[ClipLine] = field(default_factory=list)
    source_sha256: str | None = None  # None: it failed before it was hashed
    plan: dict[str, Any] | None = None  # ClipPlan.as_json: scene count, dropped scenes

    @property
    def dropped_scenes(self) -> int:
        return len((self.plan or {}).get("dropped_scenes", []))

    @property
    def dropped_summary(self) -> str | None:
        return (self.plan or {}).get("dropped_summary")

    def as_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"video": self.video, "ok": self.ok, "error": self.error,
                               "clips": [vars(c) for c in self.clips]}
        if self.source_sha256 is not None:
            doc["source_sha256"] = self.source_sha256
        doc.update(self.plan or {})
        return doc


@dataclass
class IngestReport:
    videos: list[VideoReport] = field(default_factory=list)
    pushes: Counter[str] = field(default_factory=Counter)  # PushResult -> clips, this run
    hydrus_error: str | None = None  # Hydrus unreachable or refusing: the rest stay queued

    @property
    def clips(self) -> list[ClipLine]:
        return [c for v in self.videos for c in v.clips]

    @property
    def failed_videos(self) -> int:
        return sum(not v.ok for v in self.videos)

    @property
    def ok(self) -> bool:
        return not self.failed_videos and self.hydrus_error is None and \
            not self.pushes.get("failed")

    def summary(self) -> dict[str, int]:
        clips = self.clips
        return {"videos": len(self.videos), "failed_videos": self.failed_videos,
                "clips": len(clips), "queued": sum(c.push == "queued" for c in clips),
                **self.pushes,
                # recorded and pushed without (part of) their annotation
                "not_annotated": sum(bool(c.annotation_errors) for c in clips),
                "dropped_scenes": sum(v.dropped_scenes for v in self.videos)}

    def as_json(self) -> dict[str, Any]:
        return {"videos": [v.as_json() for v in self.videos], "hydrus_error": self.hydrus_error,
                "summary": self.summary()}


# -- nightly -----------------------------------------------------------------------------


@dataclass
class ExportReport:
    dataset_id: str
    changed: bool
    clips: int
    new: int
    removed: int
    skipped: int
    frames: int


@dataclass
class TrainReport:
    action: str  # train | resume | skip (TrainingPlan.action)
    reason: str
    run: str | None
    outcome: str | None = None  # trained | failed; None when skipped
    error: str | None = None
    steps: int | None = None
    final_loss: float | None = None
    seconds: float | None = None
    dataset_clips: int | None = None
    eval: dict[str, Any] | None = None  # held-out loss before and after, clips measured

    def as_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"action": self.action, "reason": self.reason, "run": self.run}
        if self.outcome == "failed":
            doc.update(outcome=self.outcome, error=self.error)
        elif self.outcome is not None:
            doc.update(outcome=self.outcome, steps=self.steps, final_loss=self.final_loss,
                       seconds=self.seconds, dataset_clips=self.dataset_clips, eval=self.eval)
        return doc


@dataclass
class NightlyDetails:
    """What one nightly run did, part by part (a part it never reached is None)."""

    reconcile: dict[str, int] | None = None  # checked, and clips per PushResult
    export: ExportReport | None = None
    train: TrainReport | None = None
    promotion: dict[str, Any] | None = None  # the gate's decision (promotion.py)
    samples: dict[str, Any] | None = None  # what went into Hydrus (nightly.publish_run_to_hydrus)

    def as_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        if self.reconcile is not None:
            doc["reconcile"] = self.reconcile
        if self.export is not None:
            doc["export"] = vars(self.export)
        if self.train is not None:
            doc["train"] = self.train.as_json()
        if self.promotion is not None:
            doc["promotion"] = self.promotion
        if self.samples is not None:
            doc["samples"] = self.samples
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any] | None) -> NightlyDetails:
        doc = doc or {}
        export, train = doc.get("export"), doc.get("train")
        return cls(reconcile=doc.get("reconcile"),
                   export=ExportReport(**{k: export.get(k) for k in _fields(ExportReport)})
                   if export else None,
                   train=TrainReport(**{k: train.get(k) for k in _fields(TrainReport)})
                   if train else None,
                   promotion=doc.get("promotion"), samples=doc.get("samples"))

    def summary(self) -> str:
        """' (12 clips, trained 500 steps, loss 0.1234, 1840 s)' for `status`."""
        parts = []
        if self.export is not None:
            parts.append(f"{self.export.clips} clips")
        train = self.train
        if train is not None and train.outcome == "trained":
            loss = train.final_loss
            loss_text = f", loss {loss:.4f}" if isinstance(loss, (int, float)) else ""
            parts.append(f"trained {train.steps} steps{loss_text}, {train.seconds:.0f} s")
        elif train is not None:
            parts.append(f"training {train.outcome or train.action}: {train.reason}")
        if self.promotion:
            verdict = "promoted" if self.promotion.get("promoted") else "NOT promoted"
            parts.append(f"run {self.promotion.get('run')} {verdict}: "
                         f"{self.promotion.get('reason')}")
        return f" ({'; '.join(parts)})" if parts else ""


@dataclass
class NightlyReport:
    """One `hydrus-motion nightly`: its row in the run history and what it did."""

    run: int
    outcome: RunOutcome
    error: str | None
    details: NightlyDetails

    def as_json(self) -> dict[str, Any]:
        return {"run": self.run, "outcome": self.outcome, "error": self.error,
                "details": self.details.as_json()}


def _fields(cls: type) -> tuple[str, ...]:
    return tuple(cls.__dataclass_fields__)
