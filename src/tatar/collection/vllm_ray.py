"""`--engine ray --backend vllm`: Ray Data LLM (`ray.data.llm`) with vLLM engines, GPU only.

Written against the documented offline batch API of Ray Data LLM (`vLLMEngineProcessorConfig`,
`build_processor`): one vLLM engine per replica, fed prompt text plus the image as
``multimodal_data`` (the same prompt text as every other backend: `prompt_text` with the
checkpoint's chat template and the think prefill, built once on the driver). Ray Data LLM keeps
one output per request, so `--samples N` sends N requests per image and task, each with its own
seed. The rows are the local engine's rows (same schema, same parsing), but vLLM's kernels are
not batch-invariant, so scores match the HF backend only approximately.

An image that cannot be read is sent as a tiny blank image (the request stream cannot branch)
and its rows carry the read error, as on the other engines. Nothing here runs on CPU: the pure
row functions (`requests_of`, `Preprocess`, `collect_rows`) are tested there with fake rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa

from tatar.collection.engines import RayOptions, _configure_data_context, ray_dataset, start_ray
from tatar.collection.rows import RowOptions, make_row
from tatar.generation import GenerationSettings, _batch_seed, load_image, vllm_available
from tatar.scoring import ImageScore, image_score


def requests_of(row: dict, tasks: list[str], samples: int) -> list[dict]:
    """One request row per task and sample of an item (Dataset.flat_map)."""
    return [
        {"id": row["id"], "path": row["path"], "task": t, "sample": k}
        for t in tasks
        for k in range(samples)
    ]


class Preprocess:
    """Request row -> prompt, image and sampling parameters for the vLLM stage."""

    def __init__(self, prompts: dict[str, str], settings: GenerationSettings):
        self.prompts = prompts
        self.settings = settings

    def __call__(self, row: dict) -> dict:
        from PIL import Image

        s = self.settings
        try:
            image, error = load_image(row["path"]), None
        except FileNotFoundError:
            image, error = None, f"image not found: {row['path']}"
        except (ValueError, OSError) as exc:
            image, error = None, str(exc)
        params: dict[str, Any] = {
            "max_tokens": s.max_new_tokens,
            "temperature": s.temperature if s.do_sample else 0.0,
            "top_p": s.top_p if s.do_sample else 1.0,
            "top_k": (s.top_k or -1) if s.do_sample else -1,  # vLLM: -1 = off
            "repetition_penalty": 1.0,
            "skip_special_tokens": True,
        }
        if s.do_sample:
            params["seed"] = _batch_seed(s.seed, f"{row['path']}:{row['task']}:{row['sample']}")
        return {
            **row,
            "prompt": self.prompts[row["task"]],
            "multimodal_data": {"image": image or Image.new("RGB", (28, 28))},
            "sampling_params": params,
            "read_error": error,
        }


def postprocess(row: dict) -> dict:
    """Keep what the rows need; a failed request's error is kept like a read error."""
    error = row.get("read_error") or row.get("__inference_error__") or None
    return {
        "id": row["id"],
        "path": row["path"],
        "task": row["task"],
        "sample": row["sample"],
        "text": row.get("generated_text") or "",
        "error": str(error) if error else None,
    }


def collect_rows(
    outputs: Iterable[dict], settings: GenerationSettings, opts: RowOptions
) -> Iterator[dict]:
    """Gather the `samples` outputs of each (id, task), in order, into one output row."""
    group: list[dict] = []
    for out in outputs:
        group.append(out)
        if len(group) < settings.samples:
            continue
        first = group[0]
        if any((g["id"], g["task"]) != (first["id"], first["task"]) for g in group):
            raise RuntimeError("vLLM outputs arrived out of order (preserve_order is off?)")
        error = next((g["error"] for g in group if g["error"]), None)
        if error:
            r = ImageScore(first["path"], first["task"], None, None, 0.0, None, [], error=error)
        else:
            texts = [settings.prefill + g["text"] for g in group]
            r = image_score(first["path"], first["task"], texts)
        yield make_row(first["id"], r, opts, settings.samples)
        group = []


def vllm_ray_batches(
    pending: pa.Table,
    model_path: str,
    settings: GenerationSettings,
    opts: RowOptions,
    batch_size: int,
    ray_options: RayOptions,
    *,
    pixels: dict | None = None,
) -> Iterator[list[dict]]:
    if not vllm_available():
        raise ValueError("--backend vllm needs vLLM (pip install 'tatar-yoho[vllm]', GPU only)")
    import ray
    from ray.data.llm import build_processor, vLLMEngineProcessorConfig
    from transformers import AutoProcessor

    from tatar.generation import processor_pixel_kwargs, prompt_text

    processor = AutoProcessor.from_pretrained(
        model_path, **processor_pixel_kwargs(**(pixels or {}), model_path=model_path)
    )
    prompts = {t: prompt_text(processor, t, settings.prefill) for t in opts.tasks}
    started = start_ray(ray_options.address, ray_options.num_cpus)
    try:
        replicas, gpus = ray_options.resolve(ray.cluster_resources().get("GPU", 0.0))
        if gpus < 1:
            raise ValueError("--backend vllm on Ray needs a GPU per replica; the cluster has none")
        _configure_data_context()
        config = vLLMEngineProcessorConfig(
            model_source=str(model_path),
            engine_kwargs={
                "limit_mm_per_prompt": {"image": 1},
                "mm_processor_kwargs": pixels or None,
                "generation_config": "vllm",  # our sampling parameters, not the checkpoint's
                "seed": settings.seed,
            },
            batch_size=batch_size * len(opts.tasks) * settings.samples,
            concurrency=replicas,
            chat_template_stage=False,  # the prompt is already templated
            tokenize_stage=False,  # vLLM tokenizes prompt text itself
            detokenize_stage=False,  # and returns the generated text
            should_continue_on_error=True,  # a failed request is an error row, not a crash
        )
        llm = build_processor(
            config, preprocess=Preprocess(prompts, settings), postprocess=postprocess
        )
        ds = ray_dataset(pending, batch_size, replicas).flat_map(
            requests_of, fn_args=(opts.tasks, settings.samples)
        )
        outputs = (
            row
            for batch in llm(ds).iter_batches(batch_size=None, batch_format="pyarrow")
            for row in batch.to_pylist()
        )
        chunk: list[dict] = []
        for row in collect_rows(outputs, settings, opts):
            chunk.append(row)
            if len(chunk) >= batch_size * len(opts.tasks):
                yield chunk
                chunk = []
        if chunk:
            yield chunk
    finally:
        if started:
            ray.shutdown()
