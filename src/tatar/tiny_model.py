"""A complete, tiny, randomly initialised Qwen2.5-VL checkpoint for CPU runs and tests.

No weights can be downloaded on the development machines, so every pipeline stage (SFT, GRPO,
evaluation, scoring) is exercised on this checkpoint exactly as on the 7B model: same model
class, same processor class, same chat template (TRL's own copy of the Qwen2.5-VL template, which
TRL's assistant-only loss requires), Qwen's special tokens, and a generation config shaped like
Qwen2.5-VL-Instruct's (near-greedy sampling defaults that explicit settings must override).

The tokenizer is a byte-level BPE trained on the spot on the project's prompts and a small
IQA/IAA vocabulary. `<think>`/`<answer>` are ordinary text, not special tokens: GRPO strips
special tokens from the text the rewards see.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from tatar.prompts import SYSTEM_PROMPT, TASK_PROMPTS

# Qwen2.5-VL's special tokens, in Qwen's id order (ids differ: the vocabulary is tiny).
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

_VOCABULARY = (
    "sharp sharpness blur blurry focus noise noisy grain compression artifacts blocking ringing "
    "exposure overexposed underexposed dark bright contrast colour color cast saturation detail "
    "texture edges highlights shadows dynamic range motion shake jpeg quality technical clean "
    "composition lighting harmony subject presentation balance style emotional impact framing "
    "depth symmetry palette mood narrative aesthetic aesthetics beautiful pleasing striking dull "
    "cluttered centred rule of thirds leading lines foreground background portrait landscape "
    "the image is a with and but of in on at to from by for its this that shows has have "
    "slightly very moderately strong weak low high overall good poor excellent fair average "
)


@dataclass(frozen=True)
class TinyModelSpec:
    """Sizes of the tiny checkpoint (the defaults give about 0.4 M parameters)."""

    vocab_size: int = 1024
    hidden_size: int = 64
    intermediate_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    vision_depth: int = 2
    vision_hidden_size: int = 32
    vision_intermediate_size: int = 64
    vision_heads: int = 2
    min_pixels: int = 3136
    # 112 x 112 pixels -> 64 patches -> 16 image tokens: quick on a CPU; override per run with
    # `tatar eval --max-pixels` (tatar.generation.processor_pixel_kwargs).
    max_pixels: int = 12544
    seed: int = 0


def _training_corpus() -> list[str]:
    numbers = [f"{v / 4:.2f}" for v in range(0, 401)]
    lines = [SYSTEM_PROMPT, *TASK_PROMPTS.values(), _VOCABULARY]
    lines += [
        f"<think>\n{_VOCABULARY[i : i + 120]}\n</think>\n<answer>{n}</answer>"
        for i, n in enumerate(numbers)
    ]
    return lines * 2


def build_tokenizer(vocab_size: int = 1024):
    """A byte-level BPE tokenizer with Qwen2's pre-tokenizer and Qwen's special tokens."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX, Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    # The same normaliser / pre-tokeniser / decoder as Qwen2Tokenizer, so that the saved files
    # load back through AutoTokenizer into an identical tokenizer.
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_training_corpus(), trainer)
    # The trained vocabulary and merges, handed to the stock Qwen2Tokenizer class.
    saved = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in saved["merges"]]
    return Qwen2Tokenizer(
        vocab=saved["vocab"],
        merges=merges,
        unk_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=SPECIAL_TOKENS[1:],
    )


def instruct_generation_config(ids: dict[str, int]):
    """Qwen2.5-VL-Instruct's generation_config.json for token ids `ids`: near-greedy sampling
    defaults (top_k 1, top_p 0.001), which every caller must override to really sample."""
    from transformers import GenerationConfig

    return GenerationConfig(
        bos_token_id=ids["<|endoftext|>"],
        pad_token_id=ids["<|endoftext|>"],
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        do_sample=True,
        temperature=0.1,
        top_p=0.001,
        top_k=1,
        repetition_penalty=1.05,
    )


def build_tiny_model(
    out_dir: str | os.PathLike, spec: TinyModelSpec | None = None, *, overwrite: bool = False
) -> Path:
    """Write a complete HF-format Qwen2.5-VL checkpoint (model, tokenizer, processor) to `out_dir`.

    The folder loads with ``AutoModelForImageTextToText.from_pretrained`` /
    ``Qwen2_5_VLForConditionalGeneration.from_pretrained`` and ``AutoProcessor.from_pretrained``
    (which returns the full ``Qwen2_5_VLProcessor``). It is written to a temporary sibling folder
    and moved into place, so an interrupted build never leaves a half checkpoint.
    """
    import torch
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
    )
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor
    from trl.chat_template_utils import qwen2_5_vl_chat_template

    from tatar.generation import processor_pixel_kwargs

    spec = spec or TinyModelSpec()
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(
            f"{out} exists and is not empty; pass overwrite=True (--overwrite) to replace it"
        )
    head_dim = spec.hidden_size // spec.num_attention_heads
    if head_dim % 2 or spec.hidden_size % spec.num_attention_heads:
        raise ValueError(
            f"hidden_size {spec.hidden_size} must split into an even head size over {spec.num_attention_heads} heads"
        )

    tokenizer = build_tokenizer(spec.vocab_size)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    half = head_dim // 2
    # Qwen splits the rotary half-dimension 2:3:3 over (time, height, width), e.g. 16/24/24.
    section = [half - 2 * (3 * half // 8), 3 * half // 8, 3 * half // 8]
    text_config = {
        "vocab_size": len(tokenizer),
        "hidden_size": spec.hidden_size,
        "intermediate_size": spec.intermediate_size,
        "num_hidden_layers": spec.num_hidden_layers,
        "num_attention_heads": spec.num_attention_heads,
        "num_key_value_heads": spec.num_key_value_heads,
        "max_position_embeddings": 4096,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 1000000.0,
            "mrope_section": section,
        },
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }
    vision_config = {
        "depth": spec.vision_depth,
        "hidden_size": spec.vision_hidden_size,
        "intermediate_size": spec.vision_intermediate_size,
        "num_heads": spec.vision_heads,
        "out_hidden_size": spec.hidden_size,
        "fullatt_block_indexes": [spec.vision_depth - 1],
        "window_size": 112,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
    }
    config = Qwen2_5_VLConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(spec.seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    # Shaped like Qwen2.5-VL-Instruct's generation_config.json: near-greedy sampling defaults,
    # which every caller must override explicitly when it wants real sampling.
    model.generation_config = instruct_generation_config(ids)
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(
            **processor_pixel_kwargs(spec.min_pixels, spec.max_pixels)
        ),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=qwen2_5_vl_chat_template,
    )

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        (tmp / "tiny_model_spec.json").write_text(json.dumps(asdict(spec), indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def count_parameters(model_dir: str | os.PathLike) -> int:
    """Number of parameters of a saved checkpoint (read from its safetensors headers)."""
    from safetensors import safe_open

    total = 0
    for f in sorted(Path(model_dir).glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as st:
            for name in st.keys():  # noqa: SIM118 - safe_open is not iterable
                n = 1
                for dim in st.get_slice(name).get_shape():
                    n *= int(dim)
                total += n
    return total
