"""Generation settings, think prefills and the vLLM adapter (against a stand-in vllm module)."""

from __future__ import annotations

import importlib.machinery
import sys
import types

import pytest
from PIL import Image

from tatar.generation import THINK_PREFILL, GenerationSettings, VLLMBackend, make_backend


def test_settings_validate_and_fingerprint():
    with pytest.raises(ValueError, match="think must be one of"):
        GenerationSettings(think="maybe")
    with pytest.raises(ValueError, match="samples"):
        GenerationSettings(samples=0)
    greedy = GenerationSettings(batch_size=4)
    assert not greedy.do_sample and greedy.prefill == ""
    # greedy results do not depend on sampling knobs or the batch size
    assert (
        greedy.fingerprint()
        == GenerationSettings(batch_size=16, temperature=0.7, seed=9).fingerprint()
    )
    sampled = GenerationSettings(samples=8)
    assert sampled.do_sample and sampled.fingerprint()["top_k"] == 0
    assert THINK_PREFILL == {"auto": "", "force": "<think>\n", "suppress": "<answer>"}


def test_unknown_backend_and_missing_model(tmp_path):
    with pytest.raises(ValueError, match="unknown backend"):
        make_backend("onnx", tmp_path)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        make_backend("hf", tmp_path)


@pytest.fixture
def fake_vllm(monkeypatch, tiny_model_dir):
    calls = {}

    class SamplingParams:
        def __init__(self, **kw):
            calls["params"] = kw
            self.n = kw["n"]

    class LLM:
        def __init__(self, **kw):
            calls["engine"] = kw

        def generate(self, requests, params, use_tqdm=False):
            calls["requests"] = requests
            out = types.SimpleNamespace
            return [
                out(outputs=[out(text=f"{i}.{k}</answer>") for k in range(params.n)])
                for i in range(len(requests))
            ]

    module = types.ModuleType("vllm")
    module.LLM, module.SamplingParams = LLM, SamplingParams
    module.__spec__ = importlib.machinery.ModuleSpec("vllm", None)
    monkeypatch.setitem(sys.modules, "vllm", module)
    return calls


def test_vllm_adapter_maps_settings_explicitly(fake_vllm, tiny_model_dir):
    backend = VLLMBackend(tiny_model_dir, max_pixels=28224)
    engine = fake_vllm["engine"]
    assert engine["generation_config"] == "vllm"  # no defaults taken from the checkpoint
    assert engine["mm_processor_kwargs"] == {"max_pixels": 28224}  # vLLM's own keywords
    assert dict(backend.processor.image_processor.size) == {
        "shortest_edge": 3136,
        "longest_edge": 28224,
    }
    images = [Image.new("RGB", (32, 32)), Image.new("RGB", (48, 32))]
    out = backend.generate(images, ["iqa", "iaa"], GenerationSettings(think="suppress"))
    assert out == [["<answer>0.0</answer>"], ["<answer>1.0</answer>"]]
    p = fake_vllm["params"]
    assert (p["n"], p["temperature"], p["top_k"], p["repetition_penalty"], p["seed"]) == (
        1,
        0.0,
        -1,
        1.0,
        None,
    )
    req = fake_vllm["requests"][0]
    assert (
        req["prompt"].endswith("<|im_start|>assistant\n<answer>")
        and req["multi_modal_data"]["image"] is images[0]
    )
    backend.generate(
        images[:1],
        ["iaa"],
        GenerationSettings(samples=4, top_k=20, temperature=0.9, top_p=0.95),
        key="x",
    )
    p = fake_vllm["params"]
    assert (p["n"], p["temperature"], p["top_k"], p["top_p"]) == (4, 0.9, 20, 0.95) and p[
        "seed"
    ] is not None
