"""The loop the project exists for, end to end on CPU with tiny models and the Hydrus test
server: a video dropped into the watch folder becomes tagged clips in Hydrus, a person
approves some, the nightly run exports, trains a few steps, and the samples come back
into Hydrus with their tags and note; a night without new approvals trains nothing; an
interrupted run is resumed; a failed run leaves the previous checkpoint current."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import run_cli, start_fake_hydrus, trained_on
from daemon_harness import DaemonUnderTest, stop_all

pytest.importorskip("diffusers", reason="extra 'train' not installed")
pytest.importorskip("onnxruntime", reason="extra 'tag' not installed")
pytest.importorskip("onnx", reason="extra 'dev' not installed")

from tiny_models import build_wd_tagger  # noqa: E402
from trainer_tiny import build_base  # noqa: E402

from hydrus_motion.config import load_config  # noqa: E402
from hydrus_motion.hydrus.gateway import connect_gateway  # noqa: E402

CLIPS = 4  # conftest's scenes_video: four scenes, each long enough for a clip


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("nightly-models")
    return build_wd_tagger(root / "wd"), build_base(root / "sd15")


@pytest.fixture()
def hydrus():
    fake = start_fake_hydrus()
    yield fake
    fake.stop()
    stop_all()


def tiny_training(base, **more) -> dict:
    return {"pretrained_model": str(base), "size": 64, "frames": 4, "stride": 2,
            "max_steps": 2, "mixed_precision": "no", "checkpoint_every": 1,
            "export_dtype": "fp32", "launcher": "python", "validation_steps": 2, **more}


def nightly(daemon: DaemonUnderTest) -> tuple[int, dict]:
    done = run_cli("nightly", "--json", "--config", str(daemon.config))
    return done.returncode, json.loads(done.stdout)


def samples_of(fake, run_id: str) -> list[str]:
    return [h for h in fake.db.files if f"motion run:{run_id}" in fake.current_tags(h)]


def test_drop_approve_train_and_samples_come_back(tmp_path, hydrus, models, scenes_video):
    wd, base = models
    daemon = DaemonUnderTest(tmp_path, hydrus, nightly={"enabled": False, "sample_prompts": 1},
                             sections={"annotate": {"tagger": {"model": str(wd)},
                                                    "captioner": {"model": None}},
                                       "train": tiny_training(base)}).start()
    (daemon.watch / "Film.mp4").write_bytes(scenes_video.read_bytes())
    daemon.wait_for(lambda: daemon.sources() == {"Film.mp4": "done"}, "the video")
    assert daemon.stop() == 0
    clips = [h for h in hydrus.db.files if "motion:clip" in hydrus.current_tags(h)]
    assert len(clips) == CLIPS
    for clip in clips:  # the daemon's annotate stage ran the tagger before the push
        assert "rating:general" in hydrus.current_tags(clip)

    first, second, third, fourth = sorted(clips)
    for clip in (first, second, third):
        hydrus.person_edits_tags(clip, add=["approved"])
    hydrus.person_sets_note(first, "caption", "bars slide to the right")
    code, run = nightly(daemon)
    assert code == 0, run
    details = run["details"]
    assert details["export"]["clips"] == 3 and details["export"]["new"] == 3
    train = details["train"]
    assert train["action"] == "train" and train["outcome"] == "trained" and train["steps"] == 2
    run_id = train["run"]
    samples = samples_of(hydrus, run_id)
    # one prompt: before/after side by side as mp4 and gif, and the loss curve
    assert len(samples) == 3 == details["samples"]["in_hydrus"]
    for sample in samples:
        assert hydrus.current_tags(sample) == {"motion:sample", f"motion run:{run_id}"}
        note = hydrus.db.notes[sample]["motion run"]
        assert "steps: 2, final loss" in note and "(3 clips)" in note
    assert {hydrus.db.files[s]["mime"] for s in samples} == {"video/mp4", "image/gif",
                                                            "image/png"}
    (popup,) = hydrus.popups
    assert run_id in popup["status_text_1"] and sorted(popup["hashes"]) == sorted(samples)
    current = daemon.state / "training" / "current"
    assert current.resolve().name == run_id
    assert (current / "motion_module.safetensors").is_file()
    prompts = json.loads((current / "run.json").read_text())["outputs"]["samples"]
    (prompt,) = [p["prompt"] for p in prompts]  # the first dataset caption: note, then tags
    assert prompt.startswith("bars slide to the right, rating:general")

    status = json.loads(run_cli("status", "--json", "--config", str(daemon.config)).stdout)
    (shown,) = [r for r in status["runs"] if r["kind"] == "nightly"]
    assert shown["outcome"] == "ok" and shown["details"]["train"]["steps"] == 2

    code, run = nightly(daemon)  # nothing new approved: no training, no new samples
    assert code == 0 and run["details"]["train"]["action"] == "skip"
    assert "unchanged" in run["details"]["train"]["reason"] and "samples" not in run["details"]
    assert len(hydrus.popups) == 1

    hydrus.person_edits_tags(fourth, add=["approved"])
    code, run = nightly(daemon)
    train = run["details"]["train"]
    assert code == 0 and train["action"] == "train" and train["reason"] == "the dataset changed"
    assert run["details"]["export"] == {**run["details"]["export"], "clips": 4, "new": 1}
    trained = json.loads((current / "run.json").read_text())
    assert current.resolve().name == train["run"] != run_id
    # the new run started from the checkpoint that was current
    assert str(daemon.state / "training" / "runs" / run_id) in trained["init_module"]
    assert len(samples_of(hydrus, train["run"])) == 3

    text = run_cli("status", "--config", str(daemon.config)).stdout
    assert "(4 clips; trained 2 steps, loss" in text
    assert "(3 clips; training skip: the dataset is unchanged since run" in text


def test_an_interrupted_run_is_resumed_and_a_failed_one_changes_nothing(
        tmp_path, hydrus, models, unique_mp4):
    _, base = models
    broken = tmp_path / "broken-sd15"
    shutil.copytree(base, broken)
    (broken / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"not weights")
    daemon = DaemonUnderTest(tmp_path, hydrus, sections={"train": tiny_training(broken)})
    gateway = connect_gateway(load_config(daemon.config))
    file_hash = gateway.import_file(trained_on(unique_mp4)).hash
    gateway.add_tags(file_hash, ["motion:clip", "approved", "cat"])

    code, run = nightly(daemon)  # the trainer crashes in its own process
    assert code == 1 and run["outcome"] == "failed"
    assert run["details"]["train"]["outcome"] == "failed"
    assert "training run" in run["error"] and "failed" in run["error"]
    assert not (daemon.state / "training" / "current").exists()
    assert not samples_of(hydrus, run["details"]["train"]["run"])
    status = json.loads(run_cli("status", "--json", "--config", str(daemon.config)).stdout)
    assert status["runs"][0]["outcome"] == "failed" and "failed" in status["runs"][0]["error"]

    # a run killed after its first resumable state: checkpoints, but no run.json
    daemon.config.write_text(daemon.config.read_text().replace(str(broken), str(base)))
    killed = daemon.state / "training" / "runs" / "20260101-000000"
    done = run_cli("train", "--config", str(daemon.config), "--dataset",
                   str(daemon.state / "dataset"), "--out", str(killed), "--max-steps", "1")
    assert done.returncode == 0, done.stderr
    # stderr is no terminal here (nor under the daemon): log lines, no progress bars
    assert "step 1/1: loss" in done.stderr
    assert "\r" not in done.stderr and "it/s" not in done.stderr, done.stderr
    (killed / "run.json").unlink()

    def no_imports(method: str, path: str) -> None:  # Hydrus refuses the samples
        if path == "/add_files/add_file":
            hydrus.fail_next(1)

    hydrus.on_request = no_imports
    code, run = nightly(daemon)
    hydrus.on_request = None
    train = run["details"]["train"]
    assert train["action"] == "resume" and train["run"] == killed.name
    resumed = json.loads((killed / "run.json").read_text())
    assert resumed["steps"] == 2 and resumed["resumed_from"].endswith("checkpoint-1")
    assert (daemon.state / "training" / "current").resolve() == killed
    assert code == 1 and "could not be put into Hydrus" in run["error"]

    code, run = nightly(daemon)  # nothing to train; the samples are tried again
    assert code == 0 and run["details"]["train"]["action"] == "skip"
    assert run["details"]["samples"]["in_hydrus"] == 3 == len(samples_of(hydrus, killed.name))
