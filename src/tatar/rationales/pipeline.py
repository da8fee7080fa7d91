"""The two runners: `generate` (teacher + rule checks) and `judge` (rule checks + judge).

Both are resumable and deterministic in their output: every finished call goes to the stage's
journal as it completes (any order); at the end of each run the ordered output files are
rebuilt from the journal in input order and written atomically. A rerun skips the ids whose
call already succeeded and retries the failed ones. Rules and the judge's keep policy are
applied when the files are rebuilt, so changing a word range or a threshold and rerunning
re-sorts the records without a single new call (the teacher prompt states the word range, so
for `generate` a new range also changes the fingerprint and needs a new folder).

Output folder (both stages may share one):
  generate: rationales.jsonl (passed the rules: the judge's input), generate.rejected.jsonl,
            generate.failed.jsonl, generate.summary.json, generate.meta.json, generate.journal.jsonl
  judge:    kept.jsonl (the SFT input), judge.rejected.jsonl, judge.failed.jsonl,
            judge.summary.json, judge.meta.json, judge.journal.jsonl
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

from tatar import __version__
from tatar.outputs import folder_lock
from tatar.parsing import format_completion
from tatar.progress import progress_bar
from tatar.rationales.client import ChatCallError, ChatClient
from tatar.rationales.config import Endpoint, RationaleConfig, StageConfig
from tatar.rationales.journal import Journal, atomic_write_json, atomic_write_jsonl
from tatar.rationales.judge import VerdictError, parse_verdict, policy_violations
from tatar.rationales.messages import judge_request, teacher_request
from tatar.rationales.prompts import PROMPT_VERSION, catalog, catalog_sha256
from tatar.rationales.records import Item, load_items
from tatar.rationales.rules import RuleResult, check_completion


@dataclass(frozen=True)
class StageFiles:
    journal: str
    passed: str
    rejected: str
    failed: str
    summary: str
    meta: str


GENERATE_FILES = StageFiles(
    journal="generate.journal.jsonl",
    passed="rationales.jsonl",
    rejected="generate.rejected.jsonl",
    failed="generate.failed.jsonl",
    summary="generate.summary.json",
    meta="generate.meta.json",
)
JUDGE_FILES = StageFiles(
    journal="judge.journal.jsonl",
    passed="kept.jsonl",
    rejected="judge.rejected.jsonl",
    failed="judge.failed.jsonl",
    summary="judge.summary.json",
    meta="judge.meta.json",
)


# ----------------------------------------------------------------------------- helpers


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fingerprint(stage: str, stage_cfg: StageConfig, config: RationaleConfig) -> str:
    """What shapes the answers of a stage's calls; a journal only resumes under the same one."""
    settings = {
        "stage": stage,
        "prompt_version": PROMPT_VERSION,
        "prompts_sha256": catalog_sha256(),
        "endpoints": {t: e.call_settings() for t, e in sorted(stage_cfg.endpoints.items())},
        "rules": config.rules.public_dict(),
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode("utf-8")).hexdigest()


def _check_inputs(items: list[Item], stage_cfg: StageConfig, source: Path, stage: str) -> None:
    """Fail before any call when a record cannot be sent (missing image, no notes, ...)."""
    problems: list[str] = []
    for it in items:
        ep = stage_cfg.endpoint(it.task)
        if ep.vision and not it.image_path.is_file():
            problems.append(f"line {it.line}: image not found: {it.image_path}")
        elif not ep.vision and it.task == "iqa" and stage == "teacher":
            problems.append(f"line {it.line}: an IQA teacher must see the image (vision: true)")
        elif not ep.vision and it.task == "iaa" and stage == "teacher" and not it.attributes:
            problems.append(
                f"line {it.line}: a text-only IAA teacher needs the record's 'attributes'"
            )
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ValueError(
            f"{source}: {len(problems)} record(s) cannot be sent: " + "; ".join(problems[:3]) + more
        )


def _progress(enabled: bool, label: str):
    # a bar on a terminal, plain lines in a log file
    return progress_bar(
        TextColumn(f"[bold]{label}[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeRemainingColumn(),
        enabled=enabled,
    )


async def _run_calls(
    pending: list[Item],
    stage_cfg: StageConfig,
    build: Callable[[Item, Endpoint], dict[str, Any]],
    journal: Journal,
    on_done: Callable[[dict[str, Any]], None],
) -> None:
    """Call the endpoint for every pending item, `concurrency` at a time; journal each result."""
    clients: dict[tuple[str, str | None], ChatClient] = {}

    def client_for(ep: Endpoint) -> ChatClient:
        key = (ep.base_url, ep.api_key)
        if key not in clients:
            clients[key] = ChatClient(
                ep.base_url,
                api_key=ep.api_key,
                timeout_s=stage_cfg.timeout_s,
                max_retries=stage_cfg.max_retries,
                backoff_s=stage_cfg.backoff_s,
                backoff_max_s=stage_cfg.backoff_max_s,
                concurrency=stage_cfg.concurrency,
            )
        return clients[key]

    queue: asyncio.Queue[Item] = asyncio.Queue()
    for it in pending:
        queue.put_nowait(it)

    async def one(it: Item) -> dict[str, Any]:
        ep = stage_cfg.endpoint(it.task)
        try:
            # image reading and base64 encoding off the event loop
            body = await asyncio.to_thread(build, it, ep)
        except (OSError, ValueError) as e:
            return {
                "id": it.id,
                "ok": False,
                "code": "bad_input",
                "error": f"cannot build the request ({it.image_path}): {e}",
                "attempts": 0,
            }
        try:
            reply = await client_for(ep).complete(body)
        except ChatCallError as e:
            return {
                "id": it.id,
                "ok": False,
                "code": e.code,
                "error": str(e),
                "status": e.status,
                "attempts": e.attempts,
            }
        return {
            "id": it.id,
            "ok": True,
            "text": reply.text,
            "finish_reason": reply.finish_reason,
            "usage": reply.usage,
            "attempts": reply.attempts,
            "model": reply.model or ep.model,
            "latency_s": round(reply.latency_s, 3),
        }

    async def worker() -> None:
        while True:
            try:
                it = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            entry = await one(it)
            journal.append(entry)
            on_done(entry)

    try:
        await asyncio.gather(*(worker() for _ in range(min(stage_cfg.concurrency, len(pending)))))
    finally:
        for c in clients.values():
            await c.aclose()


def _call_stats(entries: list[dict[str, Any]], this_run: int, elapsed_s: float) -> dict[str, Any]:
    attempts = sum(int(e.get("attempts", 0)) for e in entries)
    sent = sum(1 for e in entries if e.get("attempts", 0) > 0)
    return {
        "calls": len(entries),
        "calls_this_run": this_run,
        "http_attempts": attempts,
        "retries": attempts - sent,
        "prompt_tokens": sum(int((e.get("usage") or {}).get("prompt_tokens", 0)) for e in entries),
        "completion_tokens": sum(
            int((e.get("usage") or {}).get("completion_tokens", 0)) for e in entries
        ),
        "elapsed_s_this_run": round(elapsed_s, 2),
    }


def _reasons(rows: list[dict[str, Any]], key: str) -> dict[str, int]:
    c: Counter[str] = Counter()
    for r in rows:
        if key == "error":
            c[r["error"]["code"]] += 1
        else:
            c.update({v["code"] for v in r["reject"]["reasons"]})
    return dict(sorted(c.items()))


def _restore_stop(text: str, finish_reason: str | None, ep: Endpoint) -> str:
    """Servers drop a matched stop string: put back a `</answer>` used as one."""
    stop = ep.sampling.get("stop")
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    if (
        "</answer>" in stops
        and finish_reason == "stop"
        and "<answer>" in text
        and "</answer>" not in text
    ):
        return text + "</answer>"
    return text


def _run_stage(
    stage: str,
    files: StageFiles,
    to_call: list[Item],
    stage_cfg: StageConfig,
    config: RationaleConfig,
    out_dir: Path,
    build: Callable[[Item, Endpoint], dict[str, Any]],
    progress: bool,
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Resume from the journal, call what is left, return (latest entries, all entries, stats)."""
    journal = Journal(
        out_dir / files.journal,
        stage=stage,
        fingerprint=_fingerprint(stage, stage_cfg, config),
    )
    start = time.monotonic()
    made = 0
    with journal:
        latest, _ = journal.open()
        pending = [it for it in to_call if not latest.get(it.id, {}).get("ok")]
        done_before = len(to_call) - len(pending)
        ok = failed = 0
        with _progress(progress, stage) as bar:
            task_id = bar.add_task(stage, total=len(to_call), completed=done_before, status="")

            def on_done(entry: dict[str, Any]) -> None:
                nonlocal made, ok, failed
                made += 1
                ok += bool(entry["ok"])
                failed += not entry["ok"]
                bar.update(task_id, advance=1, status=f"ok {ok}  failed {failed}")

            if pending:
                asyncio.run(_run_calls(pending, stage_cfg, build, journal, on_done))
    latest, entries = journal.read()
    return latest, entries, _call_stats(entries, made, time.monotonic() - start)


def _meta(
    stage: str,
    config: RationaleConfig,
    stage_cfg: StageConfig,
    in_path: Path,
    items: list[Item],
    limit: int | None,
    upstream: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "stage": stage,
        "prompt_version": PROMPT_VERSION,
        "prompts_sha256": catalog_sha256(),
        "prompts": catalog(),
        "models": {t: e.model for t, e in sorted(stage_cfg.endpoints.items())},
        "fingerprint": _fingerprint(stage, stage_cfg, config),
        "config": config.public_dict(),
        "input": {"path": str(in_path), "sha256": _sha256_file(in_path), "records": len(items)},
        "limit": limit,
        "tatar_version": __version__,
        "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "upstream": upstream,
    }


def _load(in_path: Path, config: RationaleConfig, image_root: str | Path | None, limit, **kw):
    root = image_root if image_root is not None else config.image_root
    items = load_items(in_path, image_root=root, **kw)
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        items = items[:limit]
    return items


# ----------------------------------------------------------------------------- generate


def run_generate(
    config: RationaleConfig,
    in_path: str | Path,
    out_dir: str | Path,
    *,
    image_root: str | Path | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Write a rationale for every record with the teacher and sort the results by the rules.

    Parameters
    ----------
    config : the pipeline config (needs a `teacher` section).
    in_path : training records (JSONL).
    out_dir : output folder (created; an earlier run there is resumed).
    image_root : folder of relative image paths (default: the config's, else the records' folder).
    limit : only the first `limit` records (a trial run).
    progress : show a progress bar on stderr.

    Returns
    -------
    The summary (also written to `generate.summary.json`).
    """
    if config.teacher is None:
        raise ValueError(f"{config.source}: no 'teacher' section; generate needs one")
    in_path, out_dir = Path(in_path), Path(out_dir)
    items = _load(in_path, config, image_root, limit)
    teacher = config.teacher
    _check_inputs(items, teacher, in_path, "teacher")
    rules = config.rules

    with folder_lock(out_dir):  # one run per output folder

        def build(it: Item, ep: Endpoint) -> dict[str, Any]:
            return teacher_request(it, ep, rules)

        latest, entries, stats = _run_stage(
            "generate", GENERATE_FILES, items, teacher, config, out_dir, build, progress
        )

        passed, rejected, failed = [], [], []
        for it in items:
            e = latest.get(it.id)
            if e is None:  # only when interrupted
                continue
            if not e["ok"]:
                failed.append(
                    it.output(
                        error={
                            "stage": "teacher",
                            "code": e["code"],
                            "message": e["error"],
                            "attempts": e["attempts"],
                        }
                    )
                )
                continue
            ep = teacher.endpoint(it.task)
            text = _restore_stop(e["text"], e.get("finish_reason"), ep)
            res = check_completion(text, it.task, it.target, rules, native_score=it.native)
            if res.ok:
                passed.append(it.output(rationale=res.rationale))
            else:
                rejected.append(
                    it.output(
                        rationale=res.rationale,
                        teacher_output=text,
                        reject={
                            "stage": "rule",
                            "reasons": [v.as_dict() for v in res.violations],
                            "local_checks": res.local_checks(),
                        },
                    )
                )

        summary = {
            "stage": "generate",
            "records": len(items),
            "passed_rules": len(passed),
            "rejected_rule": len(rejected),
            "failed": len(failed),
            "reasons": {
                "rejected_rule": _reasons(rejected, "reject"),
                "failed": _reasons(failed, "error"),
            },
            **stats,
            "prompt_version": PROMPT_VERSION,
            "out_dir": str(out_dir),
        }
        f = GENERATE_FILES
        atomic_write_jsonl(out_dir / f.passed, passed)
        atomic_write_jsonl(out_dir / f.rejected, rejected)
        atomic_write_jsonl(out_dir / f.failed, failed)
        atomic_write_json(
            out_dir / f.meta, _meta("generate", config, teacher, in_path, items, limit, None)
        )
        atomic_write_json(out_dir / f.summary, summary)
        return summary


# ----------------------------------------------------------------------------- judge


def resolve_judge_input(in_path: str | Path) -> Path:
    """A generate output folder means its `rationales.jsonl`; a file is taken as given."""
    p = Path(in_path)
    if p.is_dir():
        p = p / GENERATE_FILES.passed
        if not p.is_file():
            raise FileNotFoundError(
                f"{p} not found: run `tatar rationales generate` into {p.parent}"
            )
    return p


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _judge_rules(it: Item, config: RationaleConfig) -> RuleResult:
    completion = format_completion(it.target, it.rationale or "")
    return check_completion(completion, it.task, it.target, config.rules, native_score=it.native)


def run_judge(
    config: RationaleConfig,
    in_path: str | Path,
    out_dir: str | Path,
    *,
    image_root: str | Path | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Rule-check and judge every rationale; keep those the judge's policy accepts.

    Parameters
    ----------
    config : the pipeline config (needs a `judge` section).
    in_path : records with `rationale` (JSONL), or a `generate` output folder.
    out_dir : output folder (may be the generate folder; an earlier run is resumed).
    image_root, limit, progress : as for `run_generate`.

    Returns
    -------
    The summary (also written to `judge.summary.json`); `kept.jsonl` is the SFT input.
    """
    if config.judge is None:
        raise ValueError(f"{config.source}: no 'judge' section; judge needs one")
    in_path, out_dir = resolve_judge_input(in_path), Path(out_dir)
    items = _load(in_path, config, image_root, limit, need_rationale=True)
    judge_cfg = config.judge
    checks = {it.id: _judge_rules(it, config) for it in items}
    to_call = [it for it in items if checks[it.id].ok]
    _check_inputs(to_call, judge_cfg, in_path, "judge")

    with folder_lock(out_dir):  # one run per output folder

        def build(it: Item, ep: Endpoint) -> dict[str, Any]:
            return judge_request(it, ep, config.rules)

        latest, entries, stats = _run_stage(
            "judge", JUDGE_FILES, to_call, judge_cfg, config, out_dir, build, progress
        )

        kept, rejected, failed = [], [], []
        n_rule = 0
        for it in items:
            res = checks[it.id]
            if not res.ok:
                n_rule += 1
                rejected.append(
                    it.output(
                        reject={
                            "stage": "rule",
                            "reasons": [v.as_dict() for v in res.violations],
                            "local_checks": res.local_checks(),
                        }
                    )
                )
                continue
            e = latest.get(it.id)
            if e is None:
                continue
            if not e["ok"]:
                failed.append(
                    it.output(
                        error={
                            "stage": "judge",
                            "code": e["code"],
                            "message": e["error"],
                            "attempts": e["attempts"],
                        }
                    )
                )
                continue
            judge_obj: dict[str, Any] = {
                "model": e.get("model"),
                "prompt_version": PROMPT_VERSION,
                "local_checks": res.local_checks(),
            }
            try:
                verdict = parse_verdict(e["text"], it.task)
            except VerdictError as err:
                judge_obj.update(kept=False, answer=e["text"])
                rejected.append(
                    it.output(
                        judge=judge_obj,
                        reject={"stage": "judge", "reasons": [err.violation().as_dict()]},
                    )
                )
                continue
            why = policy_violations(verdict, it.task, config.judge_policy)
            judge_obj.update(
                decision=verdict.decision, scores=verdict.scores, verdict=verdict.raw, kept=not why
            )
            if why:
                rejected.append(
                    it.output(
                        judge=judge_obj,
                        reject={"stage": "judge", "reasons": [v.as_dict() for v in why]},
                    )
                )
            else:
                kept.append(it.output(judge=judge_obj))

        rule_rows = [r for r in rejected if r["reject"]["stage"] == "rule"]
        judge_rows = [r for r in rejected if r["reject"]["stage"] == "judge"]
        upstream_summary = _read_json(in_path.parent / GENERATE_FILES.summary)
        summary: dict[str, Any] = {
            "stage": "judge",
            "records": len(items),
            "kept": len(kept),
            "rejected_rule": n_rule,
            "rejected_judge": len(judge_rows),
            "failed": len(failed),
            "reasons": {
                "rejected_rule": _reasons(rule_rows, "reject"),
                "rejected_judge": _reasons(judge_rows, "reject"),
                "failed": _reasons(failed, "error"),
            },
            **stats,
            "prompt_version": PROMPT_VERSION,
            "out_dir": str(out_dir),
        }
        if upstream_summary is not None and upstream_summary.get("stage") == "generate":
            summary["pipeline"] = {
                "records": upstream_summary["records"],
                "kept": len(kept),
                "rejected_rule": upstream_summary["rejected_rule"] + n_rule,
                "rejected_judge": len(judge_rows),
                "failed_teacher": upstream_summary["failed"],
                "failed_judge": len(failed),
            }
        f = JUDGE_FILES
        atomic_write_jsonl(out_dir / f.passed, kept)
        atomic_write_jsonl(out_dir / f.rejected, rejected)
        atomic_write_jsonl(out_dir / f.failed, failed)
        upstream_meta = _read_json(in_path.parent / GENERATE_FILES.meta)
        atomic_write_json(
            out_dir / f.meta,
            _meta("judge", config, judge_cfg, in_path, items, limit, upstream_meta),
        )
        atomic_write_json(out_dir / f.summary, summary)
        return summary
