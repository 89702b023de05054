"""`doctor --json` on the models and the accelerator stack: the tagger loaded from a
folder, the captioner found in the Hugging Face cache (never downloaded), a missing base
model, torch, and onnxruntime with the CPU/GPU packages installed side by side."""

from __future__ import annotations

import json
import os

import pytest
import yaml
from conftest import run_cli

pytest.importorskip("onnxruntime", reason="extra 'tag' not installed")
pytest.importorskip("transformers", reason="extra 'caption' not installed")

from tiny_models import build_captioner, build_wd_tagger, fake_hub_cache  # noqa: E402

REPO = "tiny/doctor-captioner"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("doctor")
    build_wd_tagger(root / "tagger")
    fake_hub_cache(root / "hub", REPO, build_captioner(root / "captioner"))
    # what `pip install onnxruntime-gpu` beside onnxruntime leaves: a second distribution
    info = root / "site" / "onnxruntime_gpu-1.99.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: onnxruntime-gpu\n"
                                   "Version: 1.99.0\n")
    return root


def doctor(setup, annotate: dict, train: dict, site: bool) -> dict[str, dict]:
    config = setup / "config.yaml"
    config.write_text(yaml.safe_dump({"paths": {"state_dir": str(setup / "state")},
                                      "annotate": annotate, "train": train}))
    env = {**os.environ, "HF_HUB_CACHE": str(setup / "hub"), "HF_HUB_OFFLINE": "1"}
    if site:
        env["PYTHONPATH"] = os.pathsep.join([str(setup / "site"), env.get("PYTHONPATH", "")])
    done = run_cli("doctor", "--json", "--config", str(config), env=env)
    assert done.returncode == 1  # no Hydrus here, and the failures below
    return {c["name"]: c for c in json.loads(done.stdout)["checks"]}


def test_doctor_reports_models_torch_and_onnxruntime(setup):
    checks = doctor(setup, {"tagger": {"model": str(setup / "tagger")},
                            "captioner": {"model": REPO}},
                    {"pretrained_model": str(setup / "nowhere")}, site=True)
    assert checks["tagger model"]["ok"], checks["tagger model"]
    assert "tagger: loads, 9 tags, 448 px" in checks["tagger model"]["detail"]
    assert "CPUExecutionProvider" in checks["tagger model"]["detail"]
    assert checks["captioner model"]["ok"], checks["captioner model"]
    assert f"{REPO} in the Hugging Face cache: idefics3 config and processor load" in \
        checks["captioner model"]["detail"]
    assert not checks["base model"]["ok"] and "no such file" in checks["base model"]["detail"]
    assert checks["motion module"]["ok"] and "fresh module" in checks["motion module"]["detail"]
    assert checks["torch"]["ok"] and checks["torch"]["detail"].startswith("torch ")
    ort = checks["onnxruntime"]
    assert not ort["ok"] and "onnxruntime-gpu 1.99.0 are installed side by side" in ort["detail"]
    assert "CUDA silently disappears" in ort["detail"]
    assert "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu" in \
        ort["detail"]


def test_a_model_only_named_by_repo_id_is_looked_up_never_downloaded(setup):
    checks = doctor(setup, {"tagger": {"model": "nobody/not-cached-tagger"},
                            "captioner": {"model": None}}, {}, site=False)
    tagger = checks["tagger model"]
    assert not tagger["ok"]
    assert "is not in the Hugging Face cache and HF_HUB_OFFLINE is set" in tagger["detail"]
    assert checks["captioner model"] == {"name": "captioner model", "ok": True, "detail":
                                         "off (annotate.enabled or annotate.captioner.model)"}
    ort = checks["onnxruntime"]
    assert ort["ok"] and "onnxruntime " in ort["detail"] and "CPUExecutionProvider" in ort["detail"]
    assert not (setup / "hub" / "models--nobody--not-cached-tagger").exists()
