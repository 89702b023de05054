"""`hydrus-motion train`: RUN.yaml from the config, the trainer as a child, exit codes."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("accelerate")
if not shutil.which("ffmpeg"):
    pytest.skip("ffmpeg is not installed", allow_module_level=True)

from trainer_tiny import build_base, make_dataset  # noqa: E402

from hydrus_motion.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_train")
    base = build_base(root / "base")
    ds = make_dataset(root / "ds", [(20, "a red ball", ["ball"]), (12, "sky", ["sky"])])
    overrides = root / "overrides.yaml"
    overrides.write_text(yaml.safe_dump({"train": {"cache_windows": 1}}))
    config = root / "config.yaml"
    train = {"pretrained_model": str(base), "size": 64, "frames": 4, "stride": 2,
             "max_steps": 2, "mixed_precision": "no", "checkpoint_every": 1,
             "export_dtype": "fp32", "run_overrides": str(overrides)}
    config.write_text(yaml.safe_dump({"train": train}))
    direct = root / "direct.yaml"  # `python -m trainer` without accelerate's launcher (faster)
    direct.write_text(yaml.safe_dump({"train": {**train, "launcher": "python"}}))
    return {"root": root, "config": config, "direct": direct, "ds": ds}


def test_train_runs_the_trainer_and_prints_run_json(setup, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--config", str(setup["config"]), "--dataset", str(setup["ds"]),
            "--out", str(out), "--json"]
    assert main(argv) == 0
    run = json.loads(capsys.readouterr().out)  # stdout holds the one document only
    assert run["steps"] == 2 and run["final_loss"] > 0
    assert run["paths"]["motion_module"] == str(out / "motion_module.safetensors")
    assert (out / "motion_module.safetensors").is_file() and (out / "motion_adapter").is_dir()
    written = yaml.safe_load((out / "run.yaml").read_text())
    assert written["train"]["cache_windows"] == 1 and written["data"]["size"] == 64

    assert main(argv) == 2  # a fresh run into a folder with states is refused
    assert "earlier run" in capsys.readouterr().err
    argv[2] = str(setup["direct"])
    assert main(argv + ["--resume", "latest", "--max-steps", "3"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["steps"] == 3 and again["resumed_from"].endswith("checkpoint-2")


def test_train_usage_and_failure_exit_codes(setup, tmp_path, capsys):
    plain = tmp_path / "plain.yaml"
    plain.write_text("train: {max_steps: 1}\n")
    assert main(["train", "--config", str(plain), "--dataset", str(setup["ds"]),
                 "--out", str(tmp_path / "a")]) == 2
    assert "train.pretrained_model is not set" in capsys.readouterr().err
    assert main(["train", "--config", str(setup["config"]), "--dataset", str(tmp_path),
                 "--out", str(tmp_path / "b")]) == 2
    bad = tmp_path / "bad_overrides.yaml"
    bad.write_text("data: {size: 100}\n")
    bad_cfg = tmp_path / "bad.yaml"
    bad_cfg.write_text(setup["direct"].read_text().replace(
        str(setup["root"] / "overrides.yaml"), str(bad)))
    assert main(["train", "--config", str(bad_cfg), "--dataset", str(setup["ds"]),
                 "--out", str(tmp_path / "d")]) == 2
    assert "data.size: 100 is not a multiple of 64" in capsys.readouterr().err
    broken = tmp_path / "broken"
    shutil.copytree(setup["ds"], broken)
    shutil.rmtree(broken / "videos")
    (broken / "videos").mkdir()
    assert main(["train", "--config", str(setup["direct"]), "--dataset", str(broken),
                 "--out", str(tmp_path / "c")]) == 1
    assert "training failed" in capsys.readouterr().err


def test_a_training_timeout_stops_the_trainer_under_the_launcher_too(tmp_path):
    """The launcher's child (the real trainer under `accelerate launch`) holds the GPU; a
    timeout must stop it as well, not only the launcher."""
    import os
    import sys
    import time

    from hydrus_motion.errors import LocalFailure
    from hydrus_motion.train import run_trainer_process

    pid_file = tmp_path / "trainer.pid"
    launcher = ("import subprocess, sys, time\n"
                "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
                f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
                "time.sleep(60)\n")
    with pytest.raises(LocalFailure, match="train.timeout_h"):
        run_trainer_process([sys.executable, "-c", launcher], 2.0, tmp_path)
    trainer = int(pid_file.read_text())

    def alive(pid: int) -> bool:
        try:
            state = open(f"/proc/{pid}/status").read()
        except FileNotFoundError:
            return False
        return "\nState:\tZ" not in state

    deadline = time.monotonic() + 5
    while alive(trainer) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(trainer):
        os.kill(trainer, 9)
        pytest.fail("the trainer under the launcher outlived the timeout")


def test_the_prompts_file_gives_prompts_negatives_and_seeds_to_the_run(tmp_path):
    import dataclasses

    from hydrus_motion.config import AppTrainConfig, Config
    from hydrus_motion.errors import UsageError
    from hydrus_motion.train import run_config
    from trainer.config import run_config_from_dict

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# the nightly prompts\na cat turns its head\n\n"
                       "waves roll in | blurry, static | 7\nsmoke rises || 3\n")
    cfg = Config(train=AppTrainConfig(pretrained_model=str(tmp_path), prompts_file=str(prompts),
                                   validation_prompts=("ignored",)))
    run = run_config(cfg, tmp_path / "ds", tmp_path / "out")
    assert run["validation"]["prompts"] == [
        "a cat turns its head",
        {"prompt": "waves roll in", "negative_prompt": "blurry, static", "seed": 7},
        {"prompt": "smoke rises", "seed": 3}]
    assert run_config_from_dict(run).validation.prompts == run["validation"]["prompts"]
    prompts.write_text("fine\nbad | x | seven\n")
    with pytest.raises(UsageError, match=r"prompts.txt:2: seed 'seven'"):
        run_config(cfg, tmp_path / "ds", tmp_path / "out")
    missing = dataclasses.replace(cfg.train, prompts_file=str(tmp_path / "none.txt"))
    with pytest.raises(UsageError, match="cannot read train.prompts_file"):
        run_config(dataclasses.replace(cfg, train=missing), tmp_path / "ds", tmp_path / "out")


def test_lora_settings_reach_the_run_config_and_need_a_base_module(tmp_path):
    from hydrus_motion.config import AppTrainConfig, Config, load_config
    from hydrus_motion.errors import ConfigError
    from hydrus_motion.train import run_config
    from trainer.config import run_config_from_dict

    base = tmp_path / "v3_sd15_mm.safetensors"
    cfg = Config(train=AppTrainConfig(pretrained_model=str(tmp_path), motion_module=str(base),
                                   method="lora", lora_rank=8, lora_alpha=4.0))
    current = tmp_path / "runs" / "1" / "motion_module.safetensors"
    run = run_config(cfg, tmp_path / "ds", tmp_path / "out", reference=current)
    parsed = run_config_from_dict(run)
    assert (parsed.train.method, parsed.train.lora_rank, parsed.train.lora_alpha) == \
        ("lora", 8, 4.0)
    assert parsed.motion_module == str(base) and parsed.eval.reference == str(current)
    assert run_config(Config(train=AppTrainConfig(pretrained_model=str(tmp_path))),
                      tmp_path / "ds", tmp_path / "out")["eval"]["reference"] is None
    config = tmp_path / "config.yaml"
    config.write_text("train:\n  method: lora\n  lora_rank: 0\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    text = str(caught.value)
    assert "train.method: 'lora' is not allowed without train.motion_module" in text
    assert "train.lora_rank: 0" in text


def test_the_daemons_training_defaults_are_the_trainers(tmp_path):
    """The daemon's train: section takes its defaults from trainer/config.py (one home);
    mapped into RUN.yaml by train.run_config, they come out as the trainer's own, so a
    key mapped to the wrong RUN.yaml field, or a daemon-side default, fails here."""
    import dataclasses

    from hydrus_motion.config import config_from_dict
    from hydrus_motion.train import run_config
    from trainer.config import RunConfig, as_dict, run_config_from_dict

    cfg = config_from_dict({"train": {"pretrained_model": str(tmp_path / "sd15")}})
    mapped = run_config_from_dict(run_config(cfg, tmp_path / "ds", tmp_path / "out"))
    trainer_defaults = dataclasses.replace(RunConfig(), dataset=mapped.dataset,
                                           output_dir=mapped.output_dir,
                                           pretrained_model=mapped.pretrained_model)
    assert as_dict(mapped) == as_dict(trainer_defaults)
