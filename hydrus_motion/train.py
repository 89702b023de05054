"""`hydrus-motion train`: write a RUN.yaml from the config and run the trainer as a child.

The trainer is its own package (`trainer/`, extra `train`) launched as
`accelerate launch -m trainer --config RUN.yaml`, so a crash or an out-of-memory in
training never takes this process down, and the same RUN.yaml can be re-run by hand.

    run = run_training(cfg, dataset_dir, out_dir, resume="latest")   # the nightly job
    run["outputs"]["motion_module"]
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

from hydrus_motion.config import AppTrainConfig, Config
from hydrus_motion.errors import HydrusMotionError, LocalFailure, MissingExtra, UsageError
from hydrus_motion.files import atomic_write_text
from hydrus_motion.tools import kill_process_group, start_process

log = logging.getLogger("hydrus_motion.train")
TRAIN_MODULES = ("torch", "diffusers", "accelerate", "transformers", "safetensors")


def run_config(cfg: Config, dataset_dir: Path, out_dir: Path, max_steps: int | None = None,
               reference: Path | None = None) -> dict[str, Any]:
    """The trainer's RUN.yaml content for this config (overrides file merged on top);
    `reference`: a motion module the run also measures on its held-out set (the gate's)."""
    t = cfg.train
    if not t.pretrained_model:
        raise UsageError("train.pretrained_model is not set",
                         hint="point it at an SD 1.5 diffusers folder or .safetensors file")
    run: dict[str, Any] = {
        "dataset": str(Path(dataset_dir).expanduser().resolve()),
        "output_dir": str(Path(out_dir).expanduser().resolve()),
        "pretrained_model": str(Path(t.pretrained_model).expanduser()),
        "motion_module": str(Path(t.motion_module).expanduser()) if t.motion_module else None,
        "fresh_variant": t.fresh_variant,
        "export_dtype": t.export_dtype,
        "data": {"size": t.size, "frames": t.frames, "stride": t.stride},
        "train": {"max_steps": max_steps or t.max_steps, "batch_size": t.batch_size,
                  "gradient_accumulation": t.gradient_accumulation,
                  "learning_rate": t.learning_rate, "mixed_precision": t.mixed_precision,
                  "gradient_checkpointing": t.gradient_checkpointing, "cache": t.cache,
                  "ema": t.ema, "seed": t.seed, "report_to": t.report_to,
                  "method": t.method, "lora_rank": t.lora_rank, "lora_alpha": t.lora_alpha},
        "checkpoints": {"every_steps": t.checkpoint_every, "limit": t.checkpoint_limit},
        "eval": {"holdout": t.holdout, "timesteps": t.eval_timesteps,
                 "reference": str(reference) if reference else None},
        "validation": {"prompts": validation_prompts(t),
                       "num_inference_steps": t.validation_steps,
                       "before_after": t.before_after},
    }
    if t.run_overrides:
        _merge(run, _read_yaml(Path(t.run_overrides).expanduser()))
        if max_steps:
            run["train"]["max_steps"] = max_steps
    return run


def validation_prompts(t: AppTrainConfig) -> list[Any]:
    """train.prompts_file (when set) else train.validation_prompts, as RUN.yaml items."""
    if not t.prompts_file:
        return list(t.validation_prompts)
    return read_prompts_file(Path(t.prompts_file).expanduser())


def read_prompts_file(path: Path) -> list[Any]:
    """`prompt | negative prompt | seed` per line; the last two parts are optional."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read train.prompts_file ({exc.strerror})",
                         hint="one prompt per line: prompt | negative prompt | seed") from None
    prompts: list[Any] = []
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [part.strip() for part in line.split("|")]
        if len(parts) > 3 or not parts[0]:
            raise UsageError(f"{path}:{number}: expected `prompt | negative prompt | seed`, "
                             f"got {line.strip()!r}")
        item: dict[str, Any] = {"prompt": parts[0]}
        if len(parts) > 1 and parts[1]:
            item["negative_prompt"] = parts[1]
        if len(parts) > 2 and parts[2]:
            if not parts[2].isdigit():
                raise UsageError(f"{path}:{number}: seed {parts[2]!r} is not a whole number")
            item["seed"] = int(parts[2])
        prompts.append(item if len(item) > 1 else parts[0])
    return prompts


def run_training(cfg: Config, dataset_dir: Path, out_dir: Path, resume: str | None = None,
                 max_steps: int | None = None, reference: Path | None = None
                 ) -> dict[str, Any]:
    """Train once; returns run.json's content plus `paths`. Raises HydrusMotionError."""
    needed = TRAIN_MODULES + (("peft",) if cfg.train.method == "lora" else ())
    missing = [m for m in needed if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtra("training", "train", missing[0])
    dataset_dir, out_dir = Path(dataset_dir), Path(out_dir)
    if not ((dataset_dir / "manifest.jsonl").is_file() or (dataset_dir / "metadata.csv")
            .is_file()):
        raise UsageError(f"{dataset_dir}: not a dataset folder (no manifest.jsonl or "
                         "metadata.csv)", hint="hydrus-motion export --out DIR writes one")
    if not resume and any((out_dir / "checkpoints").glob("checkpoint-*")):
        raise UsageError(f"{out_dir}: holds checkpoints of an earlier run",
                         hint="continue it with --resume latest, or use a new --out folder")
    run = run_config(cfg, dataset_dir, out_dir, max_steps, reference)
    _check_run_config(run)
    out_dir.mkdir(parents=True, exist_ok=True)
    run_yaml = _write_run_yaml(out_dir, run)
    argv = _launcher(cfg.train.launcher) + ["-m", "trainer", "--config", str(run_yaml)]
    if resume:
        argv += ["--resume", resume]
    log.info("training: %s", " ".join(argv))
    (out_dir / "run.json").unlink(missing_ok=True)  # run.json appears only when this run ends
    code, stdout = run_trainer_process(argv, cfg.train.timeout_h * 3600, out_dir,
                                       hint=f"continue it: hydrus-motion train --dataset "
                                            f"{dataset_dir} --out {out_dir} --resume latest")
    sys.stderr.write(stdout)
    if code != 0 or not (out_dir / "run.json").is_file():
        raise HydrusMotionError(f"training failed (trainer exit code {code}); "
                                "the log above says why",
                                hint=f"after a crash, --resume latest continues from the last "
                                     f"state in {out_dir / 'checkpoints'}")
    run = json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
    run["paths"] = {"out": str(out_dir), "run_yaml": str(run_yaml),
                    "run_json": str(out_dir / "run.json"),
                    "motion_module": run["outputs"]["motion_module"],
                    "motion_adapter": run["outputs"]["motion_adapter"],
                    "motion_lora": run["outputs"].get("motion_lora"),
                    "motion_lora_diffusers": run["outputs"].get("motion_lora_diffusers")}
    return run


def run_trainer_process(argv: list[str], timeout_s: float, out_dir: Path,
                        hint: str | None = None) -> tuple[int, str]:
    """(exit code, stdout) of the trainer, started in its own process group: on a timeout
    or a stop (KeyboardInterrupt from SIGTERM) the whole group goes, so the trainer under
    `accelerate launch` never keeps the GPU. Logs and progress reach stderr live."""
    proc = start_process(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        stdout, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_process_group(proc)
        raise LocalFailure(out_dir, f"training ran past train.timeout_h "
                                    f"({timeout_s / 3600:g} h); stopped", hint) from None
    except BaseException:
        kill_process_group(proc)
        raise
    return proc.returncode, stdout.decode("utf-8", "replace")


def train_for_nightly(cfg: Config, dataset_dir: Path, run_dir: Path, *, resume: bool,
                      init_module: Path | None, sample_prompts: int) -> dict[str, Any]:
    """One nightly run, with the captions of a few dataset clips as sample prompts unless
    prompts are configured. `init_module` is the current checkpoint's module: a full run
    starts from it; a LoRA run starts from the fixed train.motion_module (no stacking of
    nights) and measures the current module beside it, for the gate."""
    t = cfg.train
    prompts = t.validation_prompts or tuple(_captions(dataset_dir, sample_prompts))
    lora = t.method == "lora"
    train = dataclasses.replace(t, validation_prompts=prompts, motion_module=(
        str(init_module) if init_module is not None and not lora else t.motion_module))
    return run_training(dataclasses.replace(cfg, train=train), dataset_dir, run_dir,
                        resume="latest" if resume else None,
                        reference=init_module if lora else None)


def _captions(dataset_dir: Path, count: int) -> list[str]:
    captions = []
    try:
        with (dataset_dir / "manifest.jsonl").open(encoding="utf-8") as fh:
            for line in fh:
                caption = json.loads(line).get("caption")
                if caption and len(captions) < count:
                    captions.append(caption)
    except (OSError, ValueError):  # no manifest (a hand-made dataset): no samples
        pass
    return captions


def _check_run_config(run: dict[str, Any]) -> None:
    """Refuse a bad RUN.yaml here, with exit code 2, rather than inside the launcher (which
    turns every child failure into exit code 1). trainer.config needs only PyYAML."""
    from trainer.config import RunConfigError, run_config_from_dict

    try:
        run_config_from_dict(run, "train config (with train.run_overrides)")
    except RunConfigError as exc:
        raise UsageError(str(exc)) from None


def _launcher(choice: str) -> list[str]:
    has_accelerate = importlib.util.find_spec("accelerate") is not None
    if choice == "accelerate" or (choice == "auto" and has_accelerate):
        return [sys.executable, "-m", "hydrus_motion.launch"]  # accelerate launch, quieter
    return [sys.executable]


def _write_run_yaml(out_dir: Path, run: dict[str, Any]) -> Path:
    import yaml

    target = out_dir / "run.yaml"
    atomic_write_text(target, yaml.safe_dump(run, sort_keys=False))
    return target


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"{path}: cannot read train.run_overrides: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: train.run_overrides must hold a mapping of RUN.yaml keys")
    return data


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


class SubprocessTrainer:
    """The Trainer seam (hydrus_motion/base.py) as the nightly job uses it: the trainer
    package under `accelerate launch` in its own process group (run_training)."""

    def train(self, cfg: Config, dataset_dir: Path, run_dir: Path, *, resume: bool,
              init_module: Path | None, sample_prompts: int) -> dict[str, Any]:
        return train_for_nightly(cfg, dataset_dir, run_dir, resume=resume,
                                 init_module=init_module, sample_prompts=sample_prompts)
