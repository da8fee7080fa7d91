"""`make demo` for TATAR: the whole scoring pipeline on a tiny random checkpoint, on CPU.

Builds the tiny Qwen2.5-VL checkpoint, evaluates it on 8 CLIVE (IQA) and 8 PARA (IAA) images
and shows the rewards on a few hand-written completions. The checkpoint is random, so its
answers do not parse and it scores at chance: the demo shows the pipeline, not a result.
"""

from __future__ import annotations

import time
from pathlib import Path

DEMO_IMAGES = 8


def _reward_table() -> str:
    from tatar.rewards import score_completions

    completions = [
        "<answer>60.00</answer>",
        "<think>\nSharp, clean exposure; slight noise in the shadows.\n</think>\n<answer>52.50</answer>",
        "<answer>around 80</answer>",
        "<think>\nBalanced composition and warm light.\n</think>\n<answer>72.00</answer>",
        "<think>\nFlat light and a cluttered frame.\n</think>\n<answer>35.00</answer>",
        "<think>\nPleasant colours, the subject is centred.\n</think>\n<answer>58.00</answer>",
    ]
    columns = {
        "task": ["iqa", "iqa", "iqa", "iaa", "iaa", "iaa"],
        "solution": [60.0, 60.0, 60.0, 70.0, 30.0, 55.0],
        "group": [0, 1, 2, 3, 4, 5],
    }
    lines = ["completion | task | gt | " + " | ".join(["format", "gaussian", "thurstone", "total"])]
    terms = score_completions(completions, "paper", **columns)
    names = ["format_reward", "score_gaussian", "iaa_thurstone", "total"]
    for i, c in enumerate(completions):
        short = c.replace("\n", " ")[-40:]
        values = " | ".join(f"{terms[n][i]:.3f}" for n in names)
        lines.append(f"...{short} | {columns['task'][i]} | {columns['solution'][i]:g} | {values}")
    return "\n".join(lines)


def run(out_dir: Path) -> None:
    """Build the tiny checkpoint into `out_dir`/tiny-model and evaluate it into `out_dir`/eval."""
    from tatar.datasets import load_dataset
    from tatar.evaluate import evaluate
    from tatar.generation import GenerationSettings, HFBackend
    from tatar.tiny_model import build_tiny_model, count_parameters

    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    model_dir = out_dir / "tiny-model"
    if not (model_dir / "config.json").is_file():
        build_tiny_model(model_dir, overwrite=True)
    print(
        f"tiny checkpoint: {model_dir} ({count_parameters(model_dir):,} parameters, random weights)"
    )

    datasets = [load_dataset("clive", limit=DEMO_IMAGES), load_dataset("para", limit=DEMO_IMAGES)]
    settings = GenerationSettings(max_new_tokens=24, batch_size=8)

    def run_eval(overwrite: bool):
        return evaluate(
            lambda: HFBackend(model_dir),
            datasets,
            out_dir / "eval",
            settings,
            model=str(model_dir.resolve()),
            n_resamples=200,
            overwrite=overwrite,
            progress=False,
        )

    results = run_eval(overwrite=True)
    print((out_dir / "eval" / "summary.md").read_text())
    rerun = run_eval(overwrite=False)
    print(
        f"rerun into the same folder: {sum(r.generated for r in rerun)} images generated (resumed)"
    )
    first = results[0]
    record = (first.folder / "samples.jsonl").read_text().splitlines()[0]
    print(f"one record of {first.folder / 'samples.jsonl'}:\n  {record[:300]}...")
    print(
        "\nThe checkpoint is randomly initialised: its answers do not parse, every image is scored "
        "as the same fallback value and the correlations are undefined (n/a) - chance level. The "
        "demo shows the pipeline (prompting, batched generation, strict parsing, metrics under "
        "both parse-failure conventions, resumable outputs, plots), not a trained model."
    )
    print("\nRewards (paper preset) on hand-written completions:")
    print(_reward_table())
    print(
        f"\nOutputs: {out_dir / 'eval'} (summary.md, */metrics.json, */samples.jsonl, */scatter.png)"
    )
    print(f"TATAR demo finished in {time.perf_counter() - t0:.0f} s")
