"""The promotion gate in the nightly job, on tiny models and the Hydrus test server: the
first run becomes current, a run trained with a learning rate that blows up is kept as a
candidate (current unchanged, `status` and the Hydrus note say why), and `promote` makes it
current by hand, recorded in the run history. In LoRA mode every night trains from the
same fixed base, and a run better than the current module passes the gate."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli, start_fake_hydrus
from daemon_harness import DaemonUnderTest, stop_all

pytest.importorskip("diffusers", reason="extra 'train' not installed")

from trainer_tiny import build_base  # noqa: E402

from hydrus_motion.config import load_config  # noqa: E402
from hydrus_motion.hydrus.gateway import connect_gateway  # noqa: E402
from hydrus_motion.ingest.content import file_sha256  # noqa: E402
from hydrus_motion.status import gather, render  # noqa: E402
from trainer.evaluate import holdout_bucket  # noqa: E402


@pytest.fixture()
def hydrus():
    fake = start_fake_hydrus()
    yield fake
    fake.stop()
    stop_all()


def nightly(daemon: DaemonUnderTest) -> dict:
    done = run_cli("nightly", "--json", "--config", str(daemon.config))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)["details"]


def _clips_with_one_held_out(unique_mp4) -> tuple[list, float]:
    clips = [unique_mp4() for _ in range(3)]
    while min(holdout_bucket(file_sha256(c)) for c in clips) >= 800:  # one must be held out
        clips = [unique_mp4() for _ in range(3)]
    return clips, (min(holdout_bucket(file_sha256(c)) for c in clips) + 1) / 1000


def _tiny_train(base, holdout: float, **more) -> dict:
    return {"pretrained_model": str(base), "size": 64, "frames": 4, "stride": 2,
            "max_steps": 2, "mixed_precision": "no", "checkpoint_every": 2,
            "export_dtype": "fp32", "launcher": "python", "validation_steps": 1,
            "holdout": holdout, "learning_rate": 0.003, "gradient_checkpointing": False,
            **more}


def _approver(daemon: DaemonUnderTest):
    gateway = connect_gateway(load_config(daemon.config))

    def approve(path) -> None:
        gateway.add_tags(gateway.import_file(path).hash, ["motion:clip", "approved", "cat"])

    return approve


def test_the_gate_keeps_back_a_blown_up_run_and_promote_overrides_it(tmp_path, hydrus,
                                                                     unique_mp4):
    base = build_base(tmp_path / "sd15")
    clips, holdout = _clips_with_one_held_out(unique_mp4)
    publish = tmp_path / "ComfyUI" / "models" / "animatediff_models"
    daemon = DaemonUnderTest(tmp_path, hydrus, nightly={"enabled": False, "sample_prompts": 1,
                                                        "publish_dir": str(publish)},
                             sections={"train": _tiny_train(base, holdout, max_steps=20,
                                                            checkpoint_every=20)})
    approve = _approver(daemon)
    for clip in clips:
        approve(clip)
    current = daemon.state / "training" / "current"

    first = nightly(daemon)  # no current module yet: promoted; it learns the clips' motion
    run1 = first["train"]["run"]
    assert first["promotion"]["promoted"] and "no current module" in first["promotion"]["reason"]
    assert first["train"]["eval"]["clips"] == 1
    assert current.resolve().name == run1
    assert (current / f"hydrus-motion-{run1}.safetensors").is_file()
    assert (publish / f"hydrus-motion-{run1}.safetensors").read_bytes() == \
        (current / "motion_module.safetensors").read_bytes()

    approve(unique_mp4())
    daemon.config.write_text(daemon.config.read_text().replace(
        '"learning_rate": 0.003', '"learning_rate": 1.0').replace('"max_steps": 20',
                                                                  '"max_steps": 2'))
    second = nightly(daemon)  # the learning rate blows the module's motion away: kept back
    run2, ev = second["train"]["run"], second["train"]["eval"]
    assert ev["after"] > ev["before"] * 1.02
    assert not second["promotion"]["promoted"] and "gate_margin" in second["promotion"]["reason"]
    assert current.resolve().name == run1  # unchanged
    assert not (publish / f"hydrus-motion-{run2}.safetensors").exists()
    samples = [h for h in hydrus.db.files if f"motion run:{run2}" in hydrus.current_tags(h)]
    assert {hydrus.db.files[s]["mime"] for s in samples} == {"video/mp4", "image/gif",
                                                            "image/png"}
    note = hydrus.db.notes[samples[0]]["motion run"]
    assert "NOT promoted" in note and f"hydrus-motion promote {run2}" in note
    assert "held-out loss" in note and "left" in note
    status = json.loads(run_cli("status", "--json", "--config", str(daemon.config)).stdout)
    assert status["training"]["current"] == run1
    assert [c["run"] for c in status["training"]["candidates"]][:1] == [run2]
    text = render(status)  # what `status` prints, without another process start
    assert f"candidate {run2}:" in text and f"run {run2} NOT promoted" in text

    done = run_cli("promote", run2, "--json", "--config", str(daemon.config))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["previous"] == run1 and current.resolve().name == run2
    assert (publish / f"hydrus-motion-{run2}.safetensors").is_file()
    status = gather(load_config(daemon.config))
    (by_hand,) = [r for r in status["runs"] if r["kind"] == "promote"]
    assert by_hand["details"]["promotion"]["by"] == "hand"
    assert run_cli("promote", "nope", "--config", str(daemon.config)).returncode == 2


def test_lora_nights_train_from_the_fixed_base_and_a_better_run_passes_the_gate(
        tmp_path, hydrus, unique_mp4):
    from diffusers import MotionAdapter
    from safetensors.torch import save_file
    from trainer_tiny import UNET_CHANNELS

    from trainer.export import original_layout

    base = build_base(tmp_path / "sd15")
    adapter = MotionAdapter(block_out_channels=UNET_CHANNELS, motion_norm_num_groups=8,
                            use_motion_mid_block=False)
    module = tmp_path / "base_mm.safetensors"
    save_file(original_layout(adapter.state_dict(), "fp32"), str(module))
    base_bytes = module.read_bytes()
    clips, holdout = _clips_with_one_held_out(unique_mp4)
    loras = tmp_path / "ComfyUI" / "models" / "animatediff_motion_lora"
    train = _tiny_train(base, holdout, method="lora", motion_module=str(module), lora_rank=4,
                        lora_alpha=4.0, learning_rate=0.0001)
    daemon = DaemonUnderTest(tmp_path, hydrus, nightly={
        "enabled": False, "sample_prompts": 0, "publish_lora_dir": str(loras)},
        sections={"train": train})
    approve = _approver(daemon)
    for clip in clips:
        approve(clip)
    current = daemon.state / "training" / "current"

    first = nightly(daemon)  # a learning rate too low to learn anything: about the base
    run1 = first["train"]["run"]
    assert first["promotion"]["promoted"] and current.resolve().name == run1
    assert (current / "motion_lora.safetensors").is_file()
    assert (current / "motion_lora_diffusers" / "pytorch_lora_weights.safetensors").is_file()
    assert (loras / f"hydrus-motion-lora-{run1}.safetensors").read_bytes() == \
        (current / "motion_lora.safetensors").read_bytes() == \
        (current / f"hydrus-motion-lora-{run1}.safetensors").read_bytes()

    approve(unique_mp4())
    daemon.config.write_text(daemon.config.read_text().replace('"learning_rate": 0.0001',
                                                               '"learning_rate": 0.3'))
    second = nightly(daemon)  # from the same base again, measured against run 1's module
    run2, ev = second["train"]["run"], second["train"]["eval"]
    run = json.loads((daemon.state / "training" / "runs" / run2 / "run.json").read_text())
    assert run["init_module"] == f"original v3 file {module}"  # not yesterday's result
    assert run["eval"]["reference"]["module"].endswith(f"{run1}/motion_module.safetensors")
    decision = second["promotion"]
    assert decision["promoted"] and "held-out loss" in decision["reason"]
    assert decision["current_loss"] == ev["reference"] and decision["new_loss"] == ev["after"]
    assert ev["after"] < ev["reference"] * 0.99  # it learned: better than the current one
    assert current.resolve().name == run2
    assert (loras / f"hydrus-motion-lora-{run2}.safetensors").is_file()
    assert module.read_bytes() == base_bytes  # the base never changes


def test_gate_decision_compares_like_for_like(tmp_path):
    from hydrus_motion.config import NightlyConfig
    from hydrus_motion.promotion import gate_decision

    current = tmp_path / "runs" / "20260101-000000"
    gate = NightlyConfig(gate_margin=0.05)

    def run(before, after, init=f"original v3 file {current}/motion_module.safetensors",
            set_id="s1"):
        return {"init_module": init, "eval": {"set_id": set_id, "before": {"loss": before},
                                              "after": {"loss": after}}}

    assert gate_decision(run(1.0, 0.9), None, None, gate).promoted  # nothing to compare with
    assert gate_decision(run(1.0, 1.04), current, None, gate).promoted  # within the margin
    kept = gate_decision(run(1.0, 1.06), current, None, gate)
    assert not kept.promoted and "+6.0%" in kept.reason and kept.current_loss == 1.0
    assert gate_decision(run(1.0, 9.0), current, None,
                         NightlyConfig(gate=False)).promoted  # the gate is off
    # started elsewhere: compared with the current run's own result on the same set only
    theirs = {"eval": {"set_id": "s1", "after": {"loss": 0.5}}}
    elsewhere = run(1.0, 0.8, init="fresh")
    assert not gate_decision(elsewhere, current, theirs, gate).promoted
    other_set = gate_decision(run(1.0, 0.8, init="fresh", set_id="s2"), current, theirs, gate)
    assert other_set.promoted and "unmeasured" in other_set.reason
