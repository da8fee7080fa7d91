"""The tiny checkpoint loads through the normal from_pretrained paths and generates."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from PIL import Image

from tatar.generation import GenerationSettings, HFBackend, processor_pixel_kwargs, prompt_text
from tatar.tiny_model import SPECIAL_TOKENS, build_tiny_model, count_parameters


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    return HFBackend(tiny_model_dir, device="cpu")


def images(n=2):
    return [Image.new("RGB", (96 + 40 * i, 80), (30 * i, 120, 200)) for i in range(n)]


def test_checkpoint_loads_with_auto_classes(tiny_model_dir):
    from transformers import (
        AutoModelForImageTextToText,
        AutoProcessor,
        AutoTokenizer,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
    )
    from trl.chat_template_utils import qwen2_5_vl_chat_template

    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    assert isinstance(model, Qwen2_5_VLForConditionalGeneration)
    assert isinstance(
        Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_model_dir),
        Qwen2_5_VLForConditionalGeneration,
    )
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    assert isinstance(processor, Qwen2_5_VLProcessor)  # the full processor, not just a tokenizer
    assert processor.chat_template == qwen2_5_vl_chat_template
    assert processor.image_processor.size["longest_edge"] == 12544
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    assert tok.chat_template == qwen2_5_vl_chat_template
    for special in SPECIAL_TOKENS:  # each one token, and skipped when decoding
        ids = tok(special, add_special_tokens=False).input_ids
        assert len(ids) == 1 and tok.convert_ids_to_tokens(ids[0]) == special
        assert tok.decode(ids, skip_special_tokens=True) == ""
    # <think>/<answer> survive skip_special_tokens (GRPO decodes completions that way)
    text = "<think>\nsharp\n</think>\n<answer>73.42</answer>"
    assert tok.decode(tok(text).input_ids, skip_special_tokens=True) == text
    assert model.config.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert 150_000 < count_parameters(tiny_model_dir) < 600_000
    spec = json.loads((tiny_model_dir / "tiny_model_spec.json").read_text())
    assert spec["max_pixels"] == 12544


def _image_call(processor, image):
    """One processor call on `image`; a FutureWarning (e.g. transformers' deprecated
    min_pixels/max_pixels call keywords) is an error here."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        inputs = processor(
            text=[prompt_text(processor, "iqa")], images=[image], return_tensors="pt"
        )
    image_id = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    return (inputs["input_ids"] == image_id).sum().item(), inputs["image_grid_thw"].tolist()


def test_pixel_limits_reach_the_processor_as_size(tiny_model_dir, tmp_path):
    from transformers import AutoProcessor

    from tatar.train.model import load_processor

    assert processor_pixel_kwargs() == {} and processor_pixel_kwargs(None, 0) == {}
    assert processor_pixel_kwargs(3136, 28224) == {
        "size": {"shortest_edge": 3136, "longest_edge": 28224}
    }
    with pytest.raises(ValueError, match="model_path"):
        processor_pixel_kwargs(max_pixels=28224)
    photo = Image.new("RGB", (320, 240), (120, 60, 30))
    # the trainer's set-up (config `processor:` keys) and `tatar eval --max-pixels`
    trainer = load_processor(str(tiny_model_dir), {"min_pixels": 3136, "max_pixels": 28224})
    hf = HFBackend(tiny_model_dir, device="cpu", max_pixels=28224).processor
    for processor in (trainer, hf):
        assert dict(processor.image_processor.size) == {
            "shortest_edge": 3136,
            "longest_edge": 28224,
        }
        assert _image_call(processor, photo) == (30, [[1, 10, 12]])  # as with the old keywords
    # one limit given: the other stays the checkpoint's (3136 / 12544)
    only_min = HFBackend(tiny_model_dir, device="cpu", min_pixels=6000).processor
    assert dict(only_min.image_processor.size) == {"shortest_edge": 6000, "longest_edge": 12544}
    assert _image_call(only_min, Image.new("RGB", (40, 30))) == (12, [[1, 6, 8]])
    assert _image_call(only_min, photo) == (12, [[1, 6, 8]])
    # a trained model's saved processor (SFT/GRPO `final/`) carries no deprecated keywords
    trainer.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert "min_pixels" not in saved and "max_pixels" not in saved
    assert _image_call(AutoProcessor.from_pretrained(tmp_path), photo) == (30, [[1, 10, 12]])


def test_chat_templated_image_prompt_generates(backend):
    text = prompt_text(backend.processor, "iqa")
    assert text.count("<|image_pad|>") == 1 and text.endswith("<|im_start|>assistant\n")
    big = Image.new("RGB", (400, 400), (10, 200, 90))
    inputs = backend.processor(text=[text], images=[big], return_tensors="pt")
    n_image_tokens = (inputs["input_ids"] == backend.model.config.image_token_id).sum().item()
    assert n_image_tokens == 16  # 400x400 resized under the 112x112-pixel limit: 8x8 patches / 4
    out = backend.model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert (
        out.shape[1] == inputs["input_ids"].shape[1] + 5
        or out[0, -1].item() in backend.model.generation_config.eos_token_id
    )


def test_greedy_is_deterministic_and_prefill_is_kept(backend):
    s = GenerationSettings(max_new_tokens=6, think="suppress")
    a = backend.generate(images(), ["iqa", "iaa"], s)
    b = backend.generate(images(), ["iqa", "iaa"], s)
    assert a == b and len(a) == 2 and len(a[0]) == 1
    assert all(c[0].startswith("<answer>") for c in a)
    forced = backend.generate(
        images(1), ["iaa"], GenerationSettings(max_new_tokens=4, think="force")
    )
    assert forced[0][0].startswith("<think>\n")


def test_sampling_settings_override_the_checkpoints_near_greedy_config(backend):
    # The checkpoint ships Qwen-like top_k=1 / top_p=0.001: merged in, all samples would match.
    assert backend.model.generation_config.top_k == 1
    s = GenerationSettings(max_new_tokens=8, samples=4, seed=3)
    out = backend.generate(images(1), ["iaa"], s, key="k")
    assert len(out[0]) == 4 and len(set(out[0])) > 1
    again = backend.generate(images(1), ["iaa"], s, key="k")
    assert again == out  # seeded per batch: reproducible
    cfg = backend.generation_config(s)
    assert (cfg.do_sample, cfg.top_k, cfg.top_p, cfg.temperature, cfg.repetition_penalty) == (
        True,
        0,
        1.0,
        1.0,
        1.0,
    )


def test_builder_refuses_to_overwrite(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "x").write_text("keep")
    with pytest.raises(FileExistsError, match="--overwrite"):
        build_tiny_model(tmp_path / "m")
    assert torch.__version__  # torch present for the builder
