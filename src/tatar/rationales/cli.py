"""`tatar rationales ...`: teacher generation, judge filtering and a cost estimate."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import typer

app = typer.Typer(
    name="rationales",
    help="Fast-slow rationale construction: a teacher writes rationales, rules and a judge filter them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _fail(e: Exception) -> NoReturn:
    typer.echo(f"error: {e}", err=True)
    raise typer.Exit(2)


def _counts(d: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items()) or "-"


def _report(summary: dict[str, Any], files: list[str]) -> None:
    s = summary
    if s["stage"] == "generate":
        typer.echo(
            f"generate: {s['records']} records -> {s['passed_rules']} passed the rules, "
            f"{s['rejected_rule']} rejected by rule, {s['failed']} failed calls"
        )
    else:
        typer.echo(
            f"judge: {s['records']} records -> {s['kept']} kept, {s['rejected_rule']} rejected by "
            f"rule, {s['rejected_judge']} rejected by the judge, {s['failed']} failed calls"
        )
    labels = {
        "rejected_rule": "rejected by rule",
        "rejected_judge": "rejected by the judge",
        "failed": "failed",
    }
    for key, counts in s["reasons"].items():
        if counts:
            typer.echo(f"  {labels[key]}: {_counts(counts)}")
    typer.echo(
        f"  calls {s['calls']} ({s['calls_this_run']} this run), retries {s['retries']}, "
        f"tokens {s['prompt_tokens']} in / {s['completion_tokens']} out"
    )
    if "pipeline" in s:
        typer.echo(f"  whole pipeline: {_counts(s['pipeline'])}")
    typer.echo(f"  wrote {', '.join(files)} in {s['out_dir']}")
    if s["failed"]:
        typer.echo(f"{s['failed']} call(s) failed; rerun the same command to retry them", err=True)


@app.command()
def generate(
    config: Path = typer.Option(..., "--config", "-c", help="Pipeline config (YAML)."),
    in_path: Path = typer.Option(..., "--in", help="Training records (JSONL)."),
    out: Path = typer.Option(..., "--out", help="Output folder (an earlier run there resumes)."),
    image_root: Path | None = typer.Option(
        None, "--image-root", help="Folder of relative image paths (overrides the config)."
    ),
    limit: int | None = typer.Option(None, "--limit", help="Only the first N records."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Write a rationale per record with the teacher, then sort them by the rule checks."""
    from tatar.rationales.config import load_config
    from tatar.rationales.pipeline import GENERATE_FILES as F
    from tatar.rationales.pipeline import run_generate

    try:
        summary = run_generate(
            load_config(config), in_path, out, image_root=image_root, limit=limit, progress=progress
        )
    except (ValueError, FileNotFoundError) as e:
        _fail(e)
    except KeyboardInterrupt:
        typer.echo("interrupted; rerun the same command to resume", err=True)
        raise typer.Exit(130) from None
    _report(summary, [F.passed, F.rejected, F.failed, F.summary, F.meta])
    if summary["failed"]:
        raise typer.Exit(1)


@app.command()
def judge(
    config: Path = typer.Option(..., "--config", "-c", help="Pipeline config (YAML)."),
    in_path: Path = typer.Option(
        ..., "--in", help="Records with rationales (JSONL), or a generate output folder."
    ),
    out: Path = typer.Option(..., "--out", help="Output folder (may be the generate folder)."),
    image_root: Path | None = typer.Option(
        None, "--image-root", help="Folder of relative image paths (overrides the config)."
    ),
    limit: int | None = typer.Option(None, "--limit", help="Only the first N records."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Rule-check and judge every rationale; kept.jsonl is the SFT input."""
    from tatar.rationales.config import load_config
    from tatar.rationales.pipeline import JUDGE_FILES as F
    from tatar.rationales.pipeline import run_judge

    try:
        summary = run_judge(
            load_config(config), in_path, out, image_root=image_root, limit=limit, progress=progress
        )
    except (ValueError, FileNotFoundError) as e:
        _fail(e)
    except KeyboardInterrupt:
        typer.echo("interrupted; rerun the same command to resume", err=True)
        raise typer.Exit(130) from None
    _report(summary, [F.passed, F.rejected, F.failed, F.summary, F.meta])
    if summary["failed"]:
        raise typer.Exit(1)


def _size(text: str, option: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w > 0 and h > 0:
            return w, h
    except ValueError:
        pass
    _fail(ValueError(f"{option}: expected WIDTHxHEIGHT, e.g. 1024x768, got {text!r}"))


@app.command()
def estimate(
    iqa: int = typer.Option(7058, "--iqa", help="IQA records (KonIQ train: 7,058)."),
    iaa: int = typer.Option(8998, "--iaa", help="IAA records (ArtiMuse-10K train: 8,998)."),
    iqa_size: str = typer.Option("1024x768", "--iqa-size", help="IQA image size, WxH."),
    iaa_size: str = typer.Option("1024x1024", "--iaa-size", help="IAA image size, WxH."),
    patch: int = typer.Option(
        28, "--patch", help="Pixels per image token side (28 Qwen2.5-VL, 32 Qwen3-VL)."
    ),
    iaa_text_teacher: bool = typer.Option(
        False, "--iaa-text-teacher", help="IAA teacher is text-only (reads the expert notes)."
    ),
    attribute_chars: int = typer.Option(
        4000, "--attribute-chars", help="Expert-note characters per IAA record."
    ),
    rule_pass_rate: float = typer.Option(1.0, "--rule-pass-rate", help="Share reaching the judge."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the estimate here."),
) -> None:
    """Estimate calls and tokens of a full run from record counts."""
    from tatar.rationales.cost import CostAssumptions
    from tatar.rationales.cost import estimate as run_estimate
    from tatar.rationales.journal import atomic_write_json

    if not 0.0 <= rule_pass_rate <= 1.0:
        _fail(ValueError(f"--rule-pass-rate must be within 0-1, got {rule_pass_rate}"))
    if iqa < 0 or iaa < 0 or patch < 1 or attribute_chars < 0:
        _fail(ValueError("--iqa, --iaa and --attribute-chars must be >= 0 and --patch >= 1"))
    a = CostAssumptions(
        iqa_image=_size(iqa_size, "--iqa-size"),
        iaa_image=_size(iaa_size, "--iaa-size"),
        patch=patch,
        iaa_teacher_vision=not iaa_text_teacher,
        attribute_chars=attribute_chars,
        rule_pass_rate=rule_pass_rate,
    )
    est = run_estimate(iqa, iaa, a)
    typer.echo(
        f"{'stage':8} {'task':4} {'calls':>7} {'in/call':>8} {'out/call':>8} {'in total':>12} {'out total':>11}"
    )
    for r in est["rows"]:
        typer.echo(
            f"{r['stage']:8} {r['task']:4} {r['calls']:>7,} {r['prompt_tokens_per_call']:>8,} "
            f"{r['completion_tokens_per_call']:>8,} {r['prompt_tokens']:>12,} {r['completion_tokens']:>11,}"
        )
    t = est["totals"]
    typer.echo(
        f"{'total':13} {t['calls']:>7,} {'':8} {'':8} {t['prompt_tokens']:>12,} {t['completion_tokens']:>11,}"
    )
    if json_out is not None:
        atomic_write_json(json_out, est)
        typer.echo(f"wrote {json_out}")


if __name__ == "__main__":
    app()
