"""Motion-module layouts: full-size key/shape layout, exact round trips, loader detection."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from trainer.convert import (  # noqa: E402
    diffusers_to_original,
    original_to_diffusers,
    sinusoidal_pe,
)
from trainer.export import original_layout, verify_round_trip  # noqa: E402
from trainer.models import ModelLoadError, load_adapter  # noqa: E402
from trainer.selfcheck import check_exported, detect_versions  # noqa: E402

# From the reference (section 1.6): the 28 tensors of one original module, C = channels.
PER_MODULE = {
    "norm.weight": "C", "norm.bias": "C", "proj_in.weight": "CC", "proj_in.bias": "C",
    "proj_out.weight": "CC", "proj_out.bias": "C",
    "transformer_blocks.0.ff.net.0.proj.weight": "8C,C", "transformer_blocks.0.ff.net.0.proj.bias":
    "8C", "transformer_blocks.0.ff.net.2.weight": "C,4C", "transformer_blocks.0.ff.net.2.bias": "C",
    "transformer_blocks.0.ff_norm.weight": "C", "transformer_blocks.0.ff_norm.bias": "C",
}
for _a in (0, 1):
    for _p in ("to_q.weight", "to_k.weight", "to_v.weight", "to_out.0.weight"):
        PER_MODULE[f"transformer_blocks.0.attention_blocks.{_a}.{_p}"] = "CC"
    PER_MODULE[f"transformer_blocks.0.attention_blocks.{_a}.to_out.0.bias"] = "C"
    PER_MODULE[f"transformer_blocks.0.attention_blocks.{_a}.pos_encoder.pe"] = "1,32,C"
    for _n in ("weight", "bias"):
        PER_MODULE[f"transformer_blocks.0.norms.{_a}.{_n}"] = "C"


def _shape(spec: str, c: int) -> tuple:
    parts = "C,C".split(",") if spec == "CC" else spec.split(",")
    return tuple(int(p[:-1] or 1) * c if p.endswith("C") else int(p) for p in parts)


def _reference_layout(mid: bool) -> dict:
    chans = {"down_blocks.0": 320, "down_blocks.1": 640, "down_blocks.2": 1280,
             "down_blocks.3": 1280, "up_blocks.0": 1280, "up_blocks.1": 1280,
             "up_blocks.2": 640, "up_blocks.3": 320}
    out = {}
    for block, c in chans.items():
        for m in range(2 if block.startswith("down") else 3):
            for name, spec in PER_MODULE.items():
                out[f"{block}.motion_modules.{m}.temporal_transformer.{name}"] = _shape(spec, c)
    if mid:
        for name, spec in PER_MODULE.items():
            out[f"mid_block.motion_modules.0.temporal_transformer.{name}"] = _shape(spec, 1280)
    return out


@pytest.mark.parametrize("variant", ["v2", "v3"])
def test_full_size_adapter_exports_the_reference_layout(variant):
    from diffusers import MotionAdapter

    with torch.device("meta"):  # 450 M parameters, no memory
        adapter = MotionAdapter(use_motion_mid_block=variant == "v2")
    original = diffusers_to_original(adapter.state_dict())
    expected = _reference_layout(mid=variant == "v2")
    assert len(PER_MODULE) == 28
    assert len(original) == (588 if variant == "v2" else 560)
    assert {k: tuple(v.shape) for k, v in original.items()} == expected
    assert detect_versions(original) == {"diffusers": variant, "ade": variant, "a1111": variant}
    assert check_exported(original, variant) == []


def _tiny_original(mid: bool = False) -> dict:
    from diffusers import MotionAdapter

    torch.manual_seed(1)
    adapter = MotionAdapter(block_out_channels=(16, 16, 32, 32), motion_norm_num_groups=8,
                            use_motion_mid_block=mid)
    for p in adapter.parameters():
        torch.nn.init.normal_(p)  # every tensor distinct, none left at an init constant
    return original_layout(adapter.state_dict(), "fp32")


def test_original_diffusers_original_is_exact():
    original = _tiny_original(mid=True)
    assert verify_round_trip(original) == []
    there = original_to_diffusers(original)
    assert not any("temporal_transformer" in k or "pos_encoder" in k for k in there)
    back = diffusers_to_original(there)
    assert set(back) == set(original)
    assert all(torch.equal(back[k], original[k]) for k in original)
    # and the other direction
    again = original_to_diffusers(back)
    assert set(again) == set(there) and all(torch.equal(again[k], there[k]) for k in there)


def test_round_trip_check_catches_a_changed_table():
    original = _tiny_original()
    key = next(k for k in original if k.endswith("attention_blocks.1.pos_encoder.pe"))
    original[key] = original[key] + 1  # the two per-block copies now disagree
    assert verify_round_trip(original)


def test_pe_is_the_standard_sinusoid_diffusers_uses():
    from diffusers import MotionAdapter

    adapter = MotionAdapter(block_out_channels=(16, 16, 32, 32), motion_norm_num_groups=8,
                            use_motion_mid_block=False)
    pe = adapter.state_dict()["down_blocks.0.motion_modules.0.transformer_blocks.0.pos_embed.pe"]
    assert torch.allclose(pe, sinusoidal_pe(32, 16), atol=1e-6)


def test_v1_length_24_is_extended_to_32_on_export():
    original = _tiny_original()
    v1 = {k: (v[:, :24] if k.endswith(".pe") else v) for k, v in original.items()}
    assert detect_versions(v1) == {"diffusers": "v1", "ade": "v1", "a1111": "v1"}
    exported = diffusers_to_original(original_to_diffusers(v1))
    pe_key = next(k for k in exported if k.endswith(".pe"))
    assert exported[pe_key].shape[1] == 32
    assert torch.equal(exported[pe_key][:, :24], v1[pe_key])
    assert detect_versions(exported)["ade"] == "v3"


def test_loader_rules_reject_what_uis_reject():
    original = _tiny_original()
    prefixed = {f"module.{k}": v for k, v in original.items()}
    assert detect_versions(prefixed)["ade"] is None  # "contained -1 downblocks"
    assert check_exported(prefixed, "v3")
    no_pe = {k: v for k, v in original.items() if "pos_encoder" not in k}
    assert detect_versions(no_pe) == {"diffusers": None, "ade": "animatelcm", "a1111": None}
    short = {k: (v[:, :24] if k.endswith(".pe") else v) for k, v in original.items()}
    assert any("v1" in p for p in check_exported(short, "v3"))
    extra = dict(original)
    extra["down_blocks.0.motion_modules.0.temporal_transformer.x"] = torch.ones(1)
    assert any("unexpected" in p for p in check_exported(extra, "v3"))
    assert check_exported(original, "v3") == []


@pytest.mark.parametrize("container", ["ckpt-wrapped", "safetensors"])
def test_load_adapter_from_original_files(tmp_path, container):
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    unet = UNet2DConditionModel(block_out_channels=(16, 16, 32, 32), norm_num_groups=8,
                                cross_attention_dim=32, attention_head_dim=4, sample_size=8)
    original = _tiny_original(mid=True)
    if container == "safetensors":
        path = tmp_path / "mm.safetensors"
        save_file(original, str(path))
    else:  # what the official train.py writes: DDP prefix, whole dict under state_dict
        path = tmp_path / "mm.ckpt"
        torch.save({"global_step": 7, "state_dict": {
            **{f"module.{k}": v for k, v in original.items()},
            "module.conv_in.weight": torch.zeros(1)}}, path)
    adapter, desc = load_adapter(str(path), unet)
    assert "v2" in desc and adapter.config.use_motion_mid_block
    state = adapter.state_dict()
    for k, v in original_to_diffusers(original).items():
        assert torch.equal(state[k], v), k


def test_load_adapter_names_the_file_when_it_is_not_a_motion_module(tmp_path):
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    unet = UNet2DConditionModel(block_out_channels=(16, 16, 32, 32), norm_num_groups=8,
                                cross_attention_dim=32, attention_head_dim=4, sample_size=8)
    path = tmp_path / "lora.safetensors"
    save_file({"conv_in.weight": torch.zeros(2)}, str(path))
    with pytest.raises(ModelLoadError, match="lora.safetensors.*not a motion module"):
        load_adapter(str(path), unet)
    garbage = tmp_path / "broken.ckpt"
    garbage.write_bytes(b"not a pickle")
    with pytest.raises(ModelLoadError, match="broken.ckpt"):
        load_adapter(str(garbage), unet)


def test_selfcheck_command_reports_what_each_loader_sees(tmp_path, capsys):
    import json

    from safetensors.torch import save_file

    from trainer.selfcheck import main

    good = tmp_path / "good.safetensors"
    save_file(_tiny_original(mid=True), str(good))
    assert main([str(good)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["detected"] == {"diffusers": "v2", "ade": "v2", "a1111": "v2"}
    bad = tmp_path / "prefixed.ckpt"
    torch.save({f"module.{k}": v for k, v in _tiny_original().items()}, bad)
    assert main([str(bad), "--variant", "v3"]) == 1
    assert json.loads(capsys.readouterr().out)["problems"]
