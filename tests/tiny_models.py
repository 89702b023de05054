"""Tiny models built inside the tests (no weights can be downloaded here).

`build_wd_tagger` writes model.onnx + selected_tags.csv with the WD tagger's conventions
(NHWC float32 [batch, 448, 448, 3], BGR, 0-255, sigmoid outputs, rating rows first) whose
outputs are a known function of the pixels:

- red frame / blue frame / ^_^ (green) read the mean B, G, R of the centre: they fire for
  the right colour only if the frames reach the model in BGR order;
- letterboxed fires only if rows 0-79 and 368-447 are both white: a 16:9 frame padded to
  a square with white, centred, then resized to 448 (bands of 98 rows);
- red hero (series) is a character tag with the same score as red frame;
- rating: general is a constant 0.88; sensitive beats it on red frames.

`build_captioner` saves a random 2-layer Idefics3 (the SmolVLM architecture) with a
byte-level tokenizer and a chat template, as `save_pretrained` would publish it.
`fake_hub_cache` puts a folder into a Hugging Face cache as repo `owner/name`, so the
code path of a repo id (snapshot_download, offline) can be tested.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np

SIZE = 448
TAGS = [  # name, category, weights for (b, g, r, band), bias
    ("general", 9, (0, 0, 0, 0), 2.0),
    ("sensitive", 9, (-20, 0, 20, 0), -5.0),
    ("questionable", 9, (0, 0, 0, 0), -10.0),
    ("explicit", 9, (0, 0, 0, 0), -10.0),
    ("red_frame", 0, (-20, 0, 20, 0), -10.0),
    ("blue_frame", 0, (20, 0, -20, 0), -10.0),
    ("letterboxed", 0, (0, 0, 0, 100), -95.0),
    ("^_^", 0, (0, 20, -20, 0), -10.0),
    ("red_hero_(series)", 4, (-20, 0, 20, 0), -10.0),
]


def write_tags_csv(path: Path, tags=TAGS) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["tag_id", "name", "category", "count"])
        for i, (name, category, *_rest) in enumerate(tags):
            w.writerow([1000 + i, name, category, 100])


def build_wd_tagger(folder: Path, *, nchw: bool = False, fixed_batch: int | None = None,
                    tags=TAGS) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    batch = fixed_batch or "batch"
    shape = [batch, 3, SIZE, SIZE] if nchw else [batch, SIZE, SIZE, 3]
    weights = np.array([t[2] for t in TAGS], np.float32).T  # (4, K)
    bias = np.array([t[3] for t in TAGS], np.float32)

    def const(name, values, dtype=np.int64):
        return numpy_helper.from_array(np.array(values, dtype), name)

    inits = [const("c_start", [192, 192]), const("c_end", [256, 256]), const("hw", [1, 2]),
             const("t_start", [0]), const("t_end", [80]), const("b_start", [368]),
             const("b_end", [448]), const("h", [1]), const("all3", [1, 2, 3]),
             const("scale", 1 / 255.0, np.float32), const("W", weights, np.float32),
             const("bias", bias, np.float32)]
    nodes = [helper.make_node("Transpose", ["pixels"], ["input"], perm=[0, 2, 3, 1])] \
        if nchw else [helper.make_node("Identity", ["pixels"], ["input"])]
    nodes += [
        helper.make_node("Slice", ["input", "c_start", "c_end", "hw"], ["centre"]),
        helper.make_node("ReduceMean", ["centre", "hw"], ["bgr"], keepdims=0),
        helper.make_node("Slice", ["input", "t_start", "t_end", "h"], ["top"]),
        helper.make_node("ReduceMean", ["top", "all3"], ["top_mean"], keepdims=1),
        helper.make_node("Slice", ["input", "b_start", "b_end", "h"], ["bottom"]),
        helper.make_node("ReduceMean", ["bottom", "all3"], ["bottom_mean"], keepdims=1),
        helper.make_node("Min", ["top_mean", "bottom_mean"], ["band3"]),
        helper.make_node("Squeeze", ["band3", "hw"], ["band"]),  # (N, 1, 1, 1) -> (N, 1)
        helper.make_node("Concat", ["bgr", "band"], ["raw"], axis=1),
        helper.make_node("Mul", ["raw", "scale"], ["features"]),
        helper.make_node("MatMul", ["features", "W"], ["mm"]),
        helper.make_node("Add", ["mm", "bias"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny_wd", [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, len(TAGS)])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, folder / "model.onnx")
    write_tags_csv(folder / "selected_tags.csv", tags)
    return folder


CHAT_TEMPLATE = (
    "<|im_start|>{% for m in messages %}{{ m['role'] | capitalize }}:"
    "{% for part in m['content'] %}{% if part['type'] == 'image' %}<image>"
    "{% else %} {{ part['text'] }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}")


def byte_level_tokenizer(extra: list[str] = ()) -> object:
    """A byte-level BPE tokenizer with no merges and SmolVLM's special tokens, built
    offline (one token per byte: any text encodes)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(set(pre_tokenizers.ByteLevel.alphabet()))
    tok = Tokenizer(models.BPE(vocab={ch: i for i, ch in enumerate(alphabet)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<end_of_utterance>",
        pad_token="<pad>", additional_special_tokens=[
            "<image>", "<fake_token_around_image>", "<global-img>", *extra])


def build_captioner(folder: Path, seed: int = 0) -> Path:
    import torch
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessorPil,
        Idefics3Processor,
    )

    tokenizer = byte_level_tokenizer(
        [f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)])
    images = Idefics3ImageProcessorPil(do_image_splitting=False, size={"longest_edge": 32},
                                       max_image_size={"longest_edge": 32})
    processor = Idefics3Processor(image_processor=images, tokenizer=tokenizer, image_seq_len=4,
                                  chat_template=CHAT_TEMPLATE)
    config = Idefics3Config(
        text_config={"model_type": "llama", "vocab_size": len(tokenizer), "hidden_size": 32,
                     "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                     "num_key_value_heads": 2, "max_position_embeddings": 1024,
                     "pad_token_id": tokenizer.pad_token_id,
                     "bos_token_id": tokenizer.bos_token_id,
                     "eos_token_id": tokenizer.eos_token_id},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
        scale_factor=2, image_token_id=tokenizer.convert_tokens_to_ids("<image>"))
    torch.manual_seed(seed)
    Idefics3ForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def fake_hub_cache(cache: Path, repo_id: str, folder: Path) -> None:
    """Lay `folder` out as the cached snapshot of `repo_id` (what a download leaves)."""
    commit = "0" * 40
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(folder, repo / "snapshots" / commit, dirs_exist_ok=True)
