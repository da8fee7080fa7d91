"""The rationale pipeline end to end against a real chat-completions server on 127.0.0.1:
exact kept / rejected / failed sets with their reasons, retries, input-order output, resume
after a rerun and after the process is killed half-way, metadata, and the CLI."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from tatar.rationales.config import load_config
from tatar.rationales.pipeline import run_generate, run_judge
from tatar.rationales.prompts import PROMPT_VERSION

sys.path.insert(0, str(Path(__file__).parent))
from chat_server import ScriptedChatServer  # noqa: E402
from sample_rationales import IAA_THINK, IQA_THINK  # noqa: E402

KEY = "sekrit-key-123"


def teacher_answer(think: str, score: str) -> dict:
    return {"content": f"<think>\n{think}\n</think>\n<answer>{score}</answer>"}


def verdict(task: str, decision: str = "keep", low: str | None = None) -> dict:
    names = (
        ("visual_fidelity", "technical_rigor", "score_consistency")
        if task == "iqa"
        else (
            "attribute_coverage",
            "groundedness_no_fabrication",
            "reasoning_cohesion",
            "score_derivation_smoothness",
        )
    )
    scores = {n: (2 if n == low else 4) for n in names}
    obj = {
        "decision": decision,
        "overall_confidence": 80,
        "scores": scores,
        "major_issues": [],
        "minor_notes": [],
    }
    return {"content": json.dumps(obj)}


class Fixture:
    """Records with one tiny distinct image each; the server maps an image back to its id."""

    def __init__(self, root: Path, rows: list[dict]):
        self.root = root
        self.images = root / "images"
        self.images.mkdir(parents=True, exist_ok=True)
        self.by_hash: dict[str, str] = {}
        for i, row in enumerate(rows):
            path = self.images / row["image"]
            Image.new("RGB", (8, 6), (i * 7 % 256, 255 - i * 11 % 256, i * 13 % 256)).save(path)
            self.by_hash[hashlib.sha256(path.read_bytes()).hexdigest()] = row["id"]
        self.records = root / "records.jsonl"
        self.records.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        self.ids = [r["id"] for r in rows]

    def key_of(self, body: dict) -> tuple[str, str]:
        system = body["messages"][0]["content"]
        stage = "judge" if "data auditor" in system else "teacher"
        user = body["messages"][1]["content"]
        if isinstance(user, list):
            url = next(p["image_url"]["url"] for p in user if p["type"] == "image_url")
            data = base64.b64decode(url.split(",", 1)[1])
            return stage, self.by_hash[hashlib.sha256(data).hexdigest()]
        return stage, re.search(r"rid-\d+", user).group(0)

    def config(self, server_url: str, extra: str = "", teacher_extra: str = "") -> Path:
        text = f"""
image_root: images
teacher:
  base_url: {server_url}
  model: teacher-model
  api_key_env: TEST_RATIONALE_KEY
  concurrency: 3
  timeout_s: 2.0
  max_retries: 2
  backoff_s: 0.01
  backoff_max_s: 0.05
{teacher_extra}
judge:
  base_url: {server_url}
  model: judge-model
  api_key_env: TEST_RATIONALE_KEY
  concurrency: 3
  timeout_s: 2.0
  max_retries: 2
  backoff_s: 0.01
  backoff_max_s: 0.05
{extra}
"""
        path = self.root / "config.yaml"
        path.write_text(text, encoding="utf-8")
        return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def reasons(row: dict) -> list[str]:
    return [r["code"] for r in row["reject"]["reasons"]]


def iqa(i: int, **kw) -> dict:
    return {
        "id": f"rid-{i}",
        "task": "iqa",
        "image": f"r{i}.png",
        "gt_score": 61.254,
        "dataset": "koniq",
        **kw,
    }


ROWS = [
    iqa(0),  # slow: finishes last, still first in the output
    iqa(1),  # teacher 429, then fine
    iqa(2, gt_score=3.45, dataset="kadid"),  # teacher times out once; native 1-5 -> 61.25
    iqa(3),  # too-long rationale
    iqa(4),  # states the score in <think>
    iqa(5),  # judge answers malformed JSON
    iqa(6),  # judge: visual_fidelity 2
    {"id": "rid-7", "task": "iaa", "image": "r7.png", "gt_score": 2.3, "dataset": "artimuse"},
    {"id": "rid-8", "task": "iaa", "image": "r8.png", "gt_score": 2.3, "dataset": "artimuse"},
    iqa(9),  # teacher 500 forever
    iqa(10),  # teacher 400
    iqa(11),  # judge 429, then fine
    iqa(12),  # teacher returns a non-JSON body once
]

SCRIPT = {
    ("teacher", "rid-0"): [{**teacher_answer(IQA_THINK, "61.25"), "delay": 0.4}],
    ("teacher", "rid-1"): [{"status": 429, "retry_after": "0"}, teacher_answer(IQA_THINK, "61.25")],
    ("teacher", "rid-2"): [
        # past the client's 2 s timeout; the 2 s leave room for a loaded machine elsewhere
        {"sleep": 4.0, **teacher_answer(IQA_THINK, "61.25")},
        teacher_answer(IQA_THINK, "61.25"),
    ],
    ("teacher", "rid-3"): [teacher_answer(IQA_THINK + " " + IQA_THINK, "61.25")],
    ("teacher", "rid-4"): [teacher_answer(IQA_THINK + " It earns about 61.", "61.25")],
    ("teacher", "rid-7"): [teacher_answer(IAA_THINK, "23.00")],
    ("teacher", "rid-8"): [teacher_answer(IAA_THINK, "50.00")],
    ("teacher", "rid-9"): [{"status": 500}],
    ("teacher", "rid-10"): [{"status": 400, "body": "image too large"}],
    ("teacher", "rid-12"): [
        {"raw": "<html>bad gateway</html>"},
        teacher_answer(IQA_THINK, "61.25"),
    ],
    ("judge", "rid-5"): [{"content": '{"decision": "keep", "scores": {"visual_fidelity": 4,'}],
    ("judge", "rid-6"): [verdict("iqa", low="visual_fidelity")],
    ("judge", "rid-7"): [verdict("iaa")],
    ("judge", "rid-11"): [{"status": 429, "retry_after": "0"}, verdict("iqa")],
}


def default_answer(stage: str, key: str, body: dict) -> dict:
    if stage == "teacher":
        return teacher_answer(IQA_THINK, "61.25")
    return verdict("iqa")


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("TEST_RATIONALE_KEY", KEY)


def test_a_timed_out_request_stops_counting_at_the_server_when_the_client_gives_up():
    """The server's in-flight count is what the client waits for: a request it abandoned (timed
    out, connection closed) plus its retry are one request in flight, not two."""
    import asyncio

    from tatar.rationales.client import ChatClient

    script = {("teacher", "x"): [{"sleep": 3.0, "content": "late"}, {"content": "on time"}]}
    with ScriptedChatServer(lambda body: ("teacher", "x"), script) as server:

        async def call():
            async with ChatClient(
                server.base_url, timeout_s=0.3, max_retries=1, backoff_s=0.01, concurrency=1
            ) as client:
                return await client.complete({"messages": []})

        reply = asyncio.run(call())
        assert reply.text == "on time" and reply.attempts == 2
        assert server.count() == 2 and server.max_in_flight == 1


def test_generate_and_judge_keep_and_reject_exactly_what_they_should(tmp_path, env):
    fx = Fixture(tmp_path, ROWS)
    with ScriptedChatServer(fx.key_of, SCRIPT, default_answer) as server:
        cfg = load_config(fx.config(server.base_url))
        out = tmp_path / "run"
        gen = run_generate(cfg, fx.records, out, progress=False)

        # --- generate: rules and failures
        passed = read_jsonl(out / "rationales.jsonl")
        rejected = read_jsonl(out / "generate.rejected.jsonl")
        failed = read_jsonl(out / "generate.failed.jsonl")
        assert [r["id"] for r in passed] == [
            "rid-0",
            "rid-1",
            "rid-2",
            "rid-5",
            "rid-6",
            "rid-7",
            "rid-11",
            "rid-12",
        ]
        assert {r["id"]: reasons(r) for r in rejected} == {
            "rid-3": ["word_count"],
            "rid-4": ["score_in_think"],
            "rid-8": ["answer_mismatch"],
        }
        assert "72 words; allowed 30-50" in rejected[0]["reject"]["reasons"][0]["detail"]
        assert rejected[0]["teacher_output"].startswith("<think>")
        assert {r["id"]: (r["error"]["code"], r["error"]["attempts"]) for r in failed} == {
            "rid-9": ("http_500", 3),
            "rid-10": ("http_400", 1),
        }
        assert "image too large" in failed[1]["error"]["message"]
        # the output record is the input record plus `rationale` (the think text only)
        assert passed[0] == {**ROWS[0], "rationale": IQA_THINK}
        assert passed[5]["rationale"] == IAA_THINK

        # --- retries and concurrency, seen from the server
        assert server.count("teacher", "rid-1") == 2
        assert server.count("teacher", "rid-2") == 2  # the timed-out attempt and the retry
        assert server.count("teacher", "rid-12") == 2
        assert server.count("teacher", "rid-9") == 3
        assert server.count("teacher", "rid-10") == 1
        assert 1 < server.max_in_flight <= 3
        journal_ids = [
            json.loads(x)["id"]
            for x in (out / "generate.journal.jsonl").read_text().splitlines()[1:]
        ]
        assert journal_ids != fx.ids  # completion order differed ...
        assert gen["passed_rules"] == 8 and gen["rejected_rule"] == 3 and gen["failed"] == 2
        assert gen["reasons"] == {
            "rejected_rule": {"answer_mismatch": 1, "score_in_think": 1, "word_count": 1},
            "failed": {"http_400": 1, "http_500": 1},
        }
        assert gen["calls"] == 13 and gen["retries"] == 3 + 2
        assert gen["prompt_tokens"] == 100 * 11  # the server reports 100 per answered call

        # --- the teacher saw the score on 0-100 and the image inline, with the key
        req = next(r for r in server.requests if r.stage == "teacher" and r.key == "rid-2")
        assert req.authorization == f"Bearer {KEY}"
        assert req.body["model"] == "teacher-model" and req.body["max_tokens"] == 256
        user = req.body["messages"][1]["content"]
        assert user[0]["image_url"]["url"].startswith("data:image/png;base64,")
        assert "Ground-truth quality score: 61.25" in user[1]["text"]

        # --- judge
        jud = run_judge(cfg, out, out, progress=False)
        kept = read_jsonl(out / "kept.jsonl")
        jrej = read_jsonl(out / "judge.rejected.jsonl")
        assert [r["id"] for r in kept] == ["rid-0", "rid-1", "rid-2", "rid-7", "rid-11", "rid-12"]
        assert {r["id"]: reasons(r) for r in jrej} == {
            "rid-5": ["judge_unparseable"],
            "rid-6": ["judge_score"],
        }
        assert jrej[1]["reject"]["reasons"][0]["detail"] == "visual_fidelity = 2, must exceed 2"
        assert jrej[1]["judge"]["scores"]["visual_fidelity"] == 2.0
        assert server.count("judge", "rid-11") == 2
        assert server.count("judge") == 9  # 8 rationales, one retried
        k0 = kept[0]
        assert k0["rationale"] == IQA_THINK and k0["judge"]["decision"] == "keep"
        assert (
            k0["judge"]["model"] == "judge-model"
            and k0["judge"]["prompt_version"] == PROMPT_VERSION
        )
        assert set(k0) == set(ROWS[0]) | {"rationale", "judge"}
        assert kept[3]["judge"]["local_checks"]["aspects_touched"] == 7
        judge_req = next(r for r in server.requests if r.stage == "judge" and r.key == "rid-7")
        assert IAA_THINK in judge_req.body["messages"][1]["content"][1]["text"]
        assert jud["kept"] == 6 and jud["rejected_judge"] == 2 and jud["rejected_rule"] == 0
        assert jud["pipeline"] == {
            "records": 13,
            "kept": 6,
            "rejected_rule": 3,
            "rejected_judge": 2,
            "failed_teacher": 2,
            "failed_judge": 0,
        }

        # --- metadata says how the data was made, and never holds the key
        meta = json.loads((out / "judge.meta.json").read_text())
        assert meta["prompt_version"] == PROMPT_VERSION
        assert "data auditor" in meta["prompts"]["iqa_judge_system"]
        assert meta["models"] == {"iaa": "judge-model", "iqa": "judge-model"}
        assert meta["upstream"]["models"] == {"iaa": "teacher-model", "iqa": "teacher-model"}
        assert meta["upstream"]["prompts"]["iqa_teacher_user"].startswith("Ground-truth quality")
        for f in out.iterdir():
            assert KEY not in f.read_text(encoding="utf-8"), f

        # --- rerun: only the failed teacher calls are retried; nothing is duplicated
        before = server.count()
        gen2 = run_generate(cfg, fx.records, out, progress=False)
        assert server.count() - before == 3 + 1  # rid-9 three attempts, rid-10 one
        assert gen2["calls_this_run"] == 2
        assert read_jsonl(out / "rationales.jsonl") == passed
        jud2 = run_judge(cfg, out, out, progress=False)
        assert jud2["calls_this_run"] == 0 and read_jsonl(out / "kept.jsonl") == kept

        # --- a looser threshold re-sorts the judged records without a single call
        loose = fx.config(
            server.base_url,
            extra="judge_policy: {must_exceed: {iqa: {visual_fidelity: 1, score_consistency: 2}}}",
        )
        before = server.count()
        jud3 = run_judge(load_config(loose), out, out, progress=False)
        assert server.count() == before
        assert jud3["kept"] == 7 and "rid-6" in [r["id"] for r in read_jsonl(out / "kept.jsonl")]

        # --- other settings in the same folder are refused
        other = fx.config(server.base_url, teacher_extra="  sampling: {temperature: 0.9}")
        with pytest.raises(ValueError, match="made with other settings"):
            run_generate(load_config(other), fx.records, out, progress=False)


def test_text_only_iaa_teacher_reads_the_expert_notes(tmp_path, env):
    notes = {
        "visual_elements": "Soft warm light, muted colours (rid-20).",
        "composition_structure": "Boats on a diagonal toward a lighthouse.",
    }
    rows = [
        {
            "id": "rid-20",
            "task": "iaa",
            "image": "h.png",
            "gt_score": 2.3,
            "dataset": "artimuse",
            "attributes": notes,
        }
    ]
    fx = Fixture(tmp_path, rows)
    script = {("teacher", "rid-20"): [teacher_answer(IAA_THINK, "23.00")]}
    with ScriptedChatServer(fx.key_of, script) as server:
        cfg = load_config(
            fx.config(server.base_url, teacher_extra="  per_task: {iaa: {vision: false}}")
        )
        summary = run_generate(cfg, fx.records, tmp_path / "out", progress=False)
        assert summary["passed_rules"] == 1
        (req,) = server.requests
        user = req.body["messages"][1]["content"]
        assert isinstance(user, str)  # no image sent
        assert "1. Visual elements (colour, light, tone, texture): Soft warm light" in user
        assert "You cannot see the image" in req.body["messages"][0]["content"]
        # without notes a text-only teacher cannot work: refused before any call
        bare = tmp_path / "bare.jsonl"
        bare.write_text(json.dumps({**rows[0], "attributes": None}) + "\n")
        with pytest.raises(
            ValueError, match=r"bare.jsonl: 1 record\(s\) cannot be sent: line 1: a text-only IAA"
        ):
            run_generate(cfg, bare, tmp_path / "out2", progress=False)
        assert len(server.requests) == 1


def test_missing_images_are_reported_before_any_call(tmp_path, env):
    fx = Fixture(tmp_path, [iqa(0), iqa(1)])
    (fx.images / "r1.png").unlink()
    with ScriptedChatServer(fx.key_of, {}, default_answer) as server:
        cfg = load_config(fx.config(server.base_url))
        with pytest.raises(ValueError, match=r"line 2: image not found: .*r1.png"):
            run_generate(cfg, fx.records, tmp_path / "out", progress=False)
        assert server.count() == 0


def test_killed_run_resumes_without_losing_or_duplicating_records(tmp_path, env):
    rows = [iqa(i) for i in range(12)]
    fx = Fixture(tmp_path, rows)
    pace = {
        ("teacher", f"rid-{i}"): [{**teacher_answer(IQA_THINK, "61.25"), "delay": 0.15}]
        for i in range(12)
    }
    with ScriptedChatServer(fx.key_of, pace) as server:
        cfg_path = fx.config(server.base_url)
        cfg_path.write_text(cfg_path.read_text().replace("concurrency: 3", "concurrency: 2"))
        out = tmp_path / "out"
        journal = out / "generate.journal.jsonl"
        cmd = [
            sys.executable,
            "-m",
            "tatar.rationales.cli",
            "generate",
            "--config",
            str(cfg_path),
            "--in",
            str(fx.records),
            "--out",
            str(out),
            "--no-progress",
        ]
        proc = subprocess.Popen(
            cmd, env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if journal.exists() and len(journal.read_text().splitlines()) >= 5:  # header + 4
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        done_before = [json.loads(x)["id"] for x in journal.read_text().splitlines()[1:]]
        assert 4 <= len(done_before) < 12
        assert not (out / "rationales.jsonl").exists()  # the ordered files come at the end
        with journal.open("a") as f:  # as if killed in the middle of writing a line
            f.write('{"id": "rid-11", "ok": tr')

        summary = run_generate(load_config(cfg_path), fx.records, out, progress=False)
        passed = read_jsonl(out / "rationales.jsonl")
        assert [r["id"] for r in passed] == fx.ids  # all 12, in input order, once each
        assert summary["calls_this_run"] == 12 - len(done_before)
        for rid in done_before:
            assert server.count("teacher", rid) == 1  # not asked again
        assert server.count("teacher") <= 12 + 2  # at most the two calls in flight were redone
        entries = [json.loads(x) for x in journal.read_text().splitlines()[1:]]
        assert sorted(e["id"] for e in entries) == sorted(fx.ids)


# ----------------------------------------------------------------------------- CLI


def test_cli_errors_are_one_line_with_exit_code_2(tmp_path, env):
    from tatar.rationales.cli import app

    runner = CliRunner()
    res = runner.invoke(
        app, ["generate", "--config", str(tmp_path / "none.yaml"), "--in", "x", "--out", "y"]
    )
    assert res.exit_code == 2 and res.output.strip().startswith("error: config file not found")
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
    fx = Fixture(tmp_path, [iqa(0)])
    fx.records.write_text('{"task": "iqa"}\n')
    res = runner.invoke(
        app,
        [
            "judge",
            "--config",
            str(fx.config("http://127.0.0.1:9/v1")),
            "--in",
            str(fx.records),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert res.exit_code == 2 and "records.jsonl:1: missing 'image'" in res.output


def test_cli_generate_reports_and_exits_1_when_calls_failed(tmp_path, env):
    from tatar.rationales.cli import app

    fx = Fixture(tmp_path, [iqa(0), iqa(9)])
    script = {("teacher", "rid-9"): [{"status": 500}]}
    with ScriptedChatServer(fx.key_of, script, default_answer) as server:
        res = CliRunner().invoke(
            app,
            [
                "generate",
                "-c",
                str(fx.config(server.base_url)),
                "--in",
                str(fx.records),
                "--out",
                str(tmp_path / "o"),
                "--no-progress",
            ],
        )
    assert res.exit_code == 1
    assert (
        "generate: 2 records -> 1 passed the rules, 0 rejected by rule, 1 failed calls"
        in res.output
    )
    assert "failed: http_500 1" in res.output


def test_rationales_is_a_tatar_subcommand():
    from tatar.cli import app

    res = CliRunner().invoke(app, ["rationales", "--help"])
    assert res.exit_code == 0
    for cmd in ("generate", "judge", "estimate"):
        assert cmd in res.output


def test_cli_estimate_prints_and_writes_json(tmp_path):
    from tatar.rationales.cli import app

    res = CliRunner().invoke(app, ["estimate", "--json", str(tmp_path / "e.json")])
    assert res.exit_code == 0 and "teacher  iqa    7,058" in res.output
    est = json.loads((tmp_path / "e.json").read_text())
    assert est["records"] == {"iqa": 7058, "iaa": 8998} and est["totals"]["calls"] == 32112
    res = CliRunner().invoke(app, ["estimate", "--iqa-size", "big"])
    assert res.exit_code == 2 and "WIDTHxHEIGHT" in res.output


def test_unreadable_image_is_a_failed_record_not_a_crash(tmp_path, env):
    fx = Fixture(tmp_path, [iqa(0), iqa(1)])
    (fx.images / "r1.png").write_bytes(b"not an image")
    with ScriptedChatServer(fx.key_of, {}, default_answer) as server:
        summary = run_generate(
            load_config(fx.config(server.base_url)), fx.records, tmp_path / "o", progress=False
        )
        assert server.count() == 1
    (row,) = read_jsonl(tmp_path / "o" / "generate.failed.jsonl")
    assert row["id"] == "rid-1" and row["error"]["code"] == "bad_input"
    assert "r1.png" in row["error"]["message"] and row["error"]["attempts"] == 0
    assert summary["passed_rules"] == 1 and summary["failed"] == 1


def test_a_stop_string_answer_end_is_restored(tmp_path, env):
    fx = Fixture(tmp_path, [iqa(0)])
    cut = {"content": f"<think>\n{IQA_THINK}\n</think>\n<answer>61.25", "finish_reason": "stop"}
    with ScriptedChatServer(fx.key_of, {("teacher", "rid-0"): [cut]}) as server:
        cfg = fx.config(server.base_url, teacher_extra='  sampling: {stop: ["</answer>"]}')
        summary = run_generate(load_config(cfg), fx.records, tmp_path / "o", progress=False)
        assert server.requests[0].body["stop"] == ["</answer>"]
    assert summary["passed_rules"] == 1
