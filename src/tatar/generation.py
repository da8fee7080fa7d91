"""Batched generation of TATAR answers: HF transformers backend, vLLM backend when installed.

Both backends build the same prompt (`tatar.prompts.build_messages` through the checkpoint's
chat template, with a generation prompt) and return, per image, the requested number of
completions as plain text with special tokens stripped (what the GRPO rewards see). The
assistant turn can be prefilled:

``auto``
    nothing; the model decides whether to think.
``force``
    ``<think>\\n``: the model must write a rationale first.
``suppress``
    ``<answer>``: the model answers at once. This is exactly the format of a think-free SFT
    target (thought dropout removes the whole ``<think>`` block), so the prompt is
    in-distribution for a TATAR model; an empty ``<think></think>`` would not be.

The prefill is part of the returned completion text, so the strict parser sees the whole answer.

Decoding is greedy by default. With ``samples > 1`` it samples, and temperature, top_p and top_k
are always passed explicitly: a checkpoint's generation_config (Qwen2.5-VL-Instruct ships
near-greedy ``top_k=1, top_p=0.001``) cannot silently override them. The repetition penalty is
pinned to 1.0 for the same reason.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from tatar.prompts import build_messages, check_task

THINK_PREFILL = {"auto": "", "force": "<think>\n", "suppress": "<answer>"}


@dataclass(frozen=True)
class GenerationSettings:
    """How completions are drawn; `fingerprint()` is what a resumed evaluation must match."""

    max_new_tokens: int = 256
    samples: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 = off
    think: str = "auto"
    seed: int = 0
    batch_size: int = 8

    def __post_init__(self) -> None:
        if self.think not in THINK_PREFILL:
            raise ValueError(f"think must be one of {', '.join(THINK_PREFILL)}, got {self.think!r}")
        if self.samples < 1:
            raise ValueError(f"samples must be at least 1, got {self.samples}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must lie in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 = off), got {self.top_k}")

    @property
    def do_sample(self) -> bool:
        return self.samples > 1

    @property
    def prefill(self) -> str:
        return THINK_PREFILL[self.think]

    def fingerprint(self) -> dict:
        """The settings that change results (batch size does not, for greedy decoding)."""
        d = asdict(self)
        d.pop("batch_size")
        if not self.do_sample:
            for k in ("temperature", "top_p", "top_k", "seed"):
                d.pop(k)
        return d


class Backend(Protocol):
    name: str

    def generate(
        self,
        images: Sequence[Image.Image],
        tasks: Sequence[str],
        settings: GenerationSettings,
        *,
        key: str = "",
    ) -> list[list[str]]:
        """`settings.samples` completions per image (prefill included), in input order."""


def load_image(path: str | Path) -> Image.Image:
    """An RGB PIL image, or a ValueError naming the file when it cannot be read.

    A 16-bit greyscale image (PIL mode ``I;16``/``I``) is mapped to 8 bits as a viewer shows it
    (value / 257); PIL's own ``convert("RGB")`` clips every value above 255 to white. A
    floating-point greyscale image (mode ``F``, a float TIFF) is read as 0–1 when its values
    lie in [0, 1] (the float convention of scikit-image and OpenCV) and as 0–255 when they lie
    in [0, 255]; other ranges, NaN or infinity are a ValueError (PIL cast them to bytes,
    so a 0–1 image came out black).
    """
    try:
        with Image.open(path) as im:
            if im.mode.startswith("I"):
                values = np.clip(np.asarray(im, dtype=np.float64), 0, 65535)
                return Image.fromarray(np.round(values / 257).astype(np.uint8)).convert("RGB")
            if im.mode == "F":
                return Image.fromarray(_float_to_uint8(np.asarray(im, np.float64))).convert("RGB")
            return im.convert("RGB")
    except FileNotFoundError:
        raise
    except _FloatRange as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from None
    except Exception as exc:  # PIL raises several unrelated types for broken files
        raise ValueError(f"cannot read image {path}: {exc}") from exc


class _FloatRange(ValueError):
    """A floating-point image whose values are no picture we know how to show."""


def _float_to_uint8(values: np.ndarray) -> np.ndarray:
    if not np.isfinite(values).all():
        raise _FloatRange("a floating-point image with NaN or infinite values")
    lo, hi = float(values.min()), float(values.max())
    if lo >= 0 and hi <= 1:
        return np.round(values * 255).astype(np.uint8)
    if lo >= 0 and hi <= 255:
        return np.round(values).astype(np.uint8)
    raise _FloatRange(
        f"a floating-point image with values from {lo:g} to {hi:g}; TATAR reads floats in "
        "0–1 or 0–255: save it as 8 or 16 bits"
    )


def processor_pixel_kwargs(
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    model_path: str | Path | None = None,
) -> dict:
    """Processor keyword arguments for our pixel limits: ``size={"shortest_edge": min_pixels,
    "longest_edge": max_pixels}``, or nothing when neither limit is set.

    transformers 5.x deprecates ``min_pixels=``/``max_pixels=`` (a FutureWarning; to be removed):
    given to ``AutoProcessor.from_pretrained`` they also land in the tokenizer's init kwargs (and
    its saved config), which the processor passes on to every image call. ``size`` replaces the
    image processor's whole dict, so a limit not given is the checkpoint's (read from
    `model_path`)."""
    if not (min_pixels or max_pixels):
        return {}
    if not (min_pixels and max_pixels):
        if model_path is None:
            raise ValueError("one pixel limit given: the other needs the checkpoint (model_path)")
        from transformers import AutoImageProcessor

        saved = AutoImageProcessor.from_pretrained(model_path).size
        min_pixels = min_pixels or saved["shortest_edge"]
        max_pixels = max_pixels or saved["longest_edge"]
    return {"size": {"shortest_edge": min_pixels, "longest_edge": max_pixels}}


def prompt_text(processor, task: str, prefill: str = "") -> str:
    """The chat-templated prompt for one image and task, ending in the assistant turn."""
    text = processor.apply_chat_template(
        build_messages(check_task(task)), add_generation_prompt=True, tokenize=False
    )
    return text + prefill


def _batch_seed(seed: int, key: str) -> int:
    # Sampling depends on the global torch RNG; seeding each batch from its content keeps a
    # resumed run identical to an uninterrupted one with the same batches.
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


class HFBackend:
    """transformers generation, batched and left-padded, on CPU or one GPU."""

    name = "hf"

    def __init__(
        self,
        model_path: str | Path,
        *,
        device: str | None = None,
        dtype: str | None = None,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
    ):
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        path = Path(model_path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path} is not a model folder (no config.json)")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if dtype is None:
            torch_dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        else:
            torch_dtype = getattr(torch, dtype)
        self.processor = AutoProcessor.from_pretrained(
            path, **processor_pixel_kwargs(min_pixels, max_pixels, path)
        )
        if not hasattr(self.processor, "image_processor"):
            raise ValueError(
                f"{path}: AutoProcessor returned {type(self.processor).__name__}, not an image processor"
            )
        self.processor.tokenizer.padding_side = "left"
        self.model = (
            AutoModelForImageTextToText.from_pretrained(path, dtype=torch_dtype)
            .to(self.device)
            .eval()
        )
        tok = self.processor.tokenizer
        eos = self.model.generation_config.eos_token_id
        self.eos_token_id = eos if eos is not None else tok.eos_token_id
        self.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def generation_config(self, settings: GenerationSettings):
        from transformers import GenerationConfig

        common = {
            "max_new_tokens": settings.max_new_tokens,
            "num_return_sequences": settings.samples,
            "num_beams": 1,
            "repetition_penalty": 1.0,
            "eos_token_id": self.eos_token_id,
            "pad_token_id": self.pad_token_id,
        }
        if settings.do_sample:
            return GenerationConfig(
                do_sample=True,
                temperature=settings.temperature,
                top_p=settings.top_p,
                top_k=settings.top_k,
                **common,
            )
        # Neutral sampling fields so the checkpoint's values are not merged in (they would only
        # trigger warnings under greedy decoding, but keep the config unambiguous).
        return GenerationConfig(do_sample=False, temperature=1.0, top_p=1.0, top_k=50, **common)

    def generate(self, images, tasks, settings, *, key: str = "") -> list[list[str]]:
        import torch

        if len(images) != len(tasks):
            raise ValueError(f"{len(images)} images but {len(tasks)} tasks")
        if not images:
            return []
        texts = [prompt_text(self.processor, t, settings.prefill) for t in tasks]
        inputs = self.processor(
            text=texts, images=list(images), padding=True, return_tensors="pt"
        ).to(self.device)
        if settings.do_sample:
            torch.manual_seed(_batch_seed(settings.seed, key))
        with torch.inference_mode():
            out = self.model.generate(**inputs, generation_config=self.generation_config(settings))
        new_tokens = out[:, inputs["input_ids"].shape[1] :]
        decoded = self.processor.batch_decode(new_tokens, skip_special_tokens=True)
        n = settings.samples
        return [
            [settings.prefill + d for d in decoded[i * n : (i + 1) * n]] for i in range(len(images))
        ]


class VLLMBackend:
    """vLLM offline generation (GPU). Used only when vLLM is installed."""

    name = "vllm"

    def __init__(
        self,
        model_path: str | Path,
        *,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        gpu_memory_utilization: float = 0.85,
        seed: int = 0,
    ):
        if not vllm_available():
            raise ValueError("the vLLM backend needs `pip install 'tatar-yoho[vllm]'` (GPU only)")
        from transformers import AutoProcessor
        from vllm import LLM

        pixel_kwargs = {
            k: v for k, v in (("min_pixels", min_pixels), ("max_pixels", max_pixels)) if v
        }
        # This processor only renders the prompt text; mm_processor_kwargs keep vLLM's form.
        self.processor = AutoProcessor.from_pretrained(
            model_path, **processor_pixel_kwargs(min_pixels, max_pixels, model_path)
        )
        self.llm = LLM(
            model=str(model_path),
            limit_mm_per_prompt={"image": 1},
            mm_processor_kwargs=pixel_kwargs or None,
            gpu_memory_utilization=gpu_memory_utilization,
            seed=seed,
            # Our sampling parameters are explicit; do not take defaults from the checkpoint.
            generation_config="vllm",
        )

    def generate(self, images, tasks, settings, *, key: str = "") -> list[list[str]]:
        from vllm import SamplingParams

        params = SamplingParams(
            n=settings.samples,
            temperature=settings.temperature if settings.do_sample else 0.0,
            top_p=settings.top_p if settings.do_sample else 1.0,
            top_k=(settings.top_k or -1) if settings.do_sample else -1,  # vLLM: -1 = off
            repetition_penalty=1.0,
            max_tokens=settings.max_new_tokens,
            seed=_batch_seed(settings.seed, key) if settings.do_sample else None,
            skip_special_tokens=True,
        )
        requests = [
            {
                "prompt": prompt_text(self.processor, t, settings.prefill),
                "multi_modal_data": {"image": im},
            }
            for im, t in zip(images, tasks, strict=True)
        ]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        return [[settings.prefill + o.text for o in out.outputs] for out in outputs]


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


def make_backend(
    name: str,
    model_path: str | Path,
    *,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    device: str | None = None,
) -> Backend:
    """``hf``, ``vllm``, or ``auto`` (vLLM when installed and a GPU is present, else HF).

    The device is checked first: a GPU asked for on a machine without one is a ValueError, not
    a failure deep inside model loading.
    """
    from tatar.devices import check_device

    check_device(device)
    if name == "auto":
        import torch

        name = "vllm" if vllm_available() and torch.cuda.is_available() else "hf"
    if name == "hf":
        return HFBackend(model_path, device=device, min_pixels=min_pixels, max_pixels=max_pixels)
    if name == "vllm":
        return VLLMBackend(model_path, min_pixels=min_pixels, max_pixels=max_pixels)
    raise ValueError(f"unknown backend {name!r}: expected auto, hf or vllm")
