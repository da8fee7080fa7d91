"""The end-to-end recipe of docs/training.md, run command by command exactly as documented, on
toy data in the official KonIQ/ArtiMuse layouts, the tiny checkpoint and a scripted local
chat-completions server as teacher and judge."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tatar.cli import app

sys.path.insert(0, str(Path(__file__).parent))
from chat_server import ScriptedChatServer  # noqa: E402
from sample_rationales import IAA_THINK, IQA_THINK  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore")]

REPO = Path(__file__).resolve().parents[2]

IQA_SCORES = ("visual_fidelity", "technical_rigor", "score_consistency")
IAA_SCORES = (
    "attribute_coverage",
    "groundedness_no_fabrication",
    "reasoning_cohesion",
    "score_derivation_smoothness",
)


def documented_commands() -> list[str]:
    text = (REPO / "docs" / "training.md").read_text(encoding="utf-8")
    block = text.split("<!-- recipe-tiny:start -->", 1)[1].split("<!-- recipe-tiny:end -->", 1)[0]
    return [line.strip() for line in block.splitlines() if line.strip().startswith("tatar ")]


def answer(stage: str, key: str, body: dict) -> dict:
    """Teacher: a rationale of the right length ending in the target score; judge: keep."""
    system = body["messages"][0]["content"]
    user = body["messages"][1]["content"]
    text = user if isinstance(user, str) else " ".join(p.get("text", "") for p in user)
    iaa = "(IAA)" in system or "IAA data auditor" in system
    if stage == "teacher":
        score = re.search(r"\b(\d{1,3}\.\d\d)\b", text).group(1)
        think = IAA_THINK if iaa else IQA_THINK
        return {"content": f"<think>\n{think}\n</think>\n<answer>{score}</answer>"}
    names = IAA_SCORES if iaa else IQA_SCORES
    verdict = {
        "decision": "keep",
        "overall_confidence": 80,
        "scores": dict.fromkeys(names, 4),
        "major_issues": [],
        "minor_notes": [],
    }
    return {"content": json.dumps(verdict)}


def key_of(body: dict) -> tuple[str, str]:
    system = body["messages"][0]["content"]
    return ("judge" if "data auditor" in system else "teacher"), "any"


def test_the_documented_recipe_runs_end_to_end(tmp_path, monkeypatch):
    commands = documented_commands()
    stages = [" ".join(c.split()[1:3]) for c in commands]
    assert stages[0] == "data toy" and "sft --config" in stages and "grpo --config" in stages
    assert sum(s.startswith("rationales") for s in stages) == 4 and stages[-1].startswith("eval")
    (tmp_path / "configs").mkdir()
    for name in ("recipe-tiny.yaml", "rationales-vllm.yaml"):
        shutil.copy(REPO / "configs" / name, tmp_path / "configs" / name)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    with ScriptedChatServer(key_of, {}, answer) as server:
        monkeypatch.setenv("TATAR_TEACHER_URL", server.base_url)
        monkeypatch.setenv("TATAR_JUDGE_URL", server.base_url)
        for command in commands:
            args = shlex.split(command)[1:]
            if args[0] in ("sft", "grpo", "eval"):
                args.append("--quiet")
            if args[0] == "rationales":
                args.append("--no-progress")
            result = runner.invoke(app, args)
            assert result.exit_code == 0, f"{command}\n{result.output}"

    data = tmp_path / "data" / "toy" / "tatar"
    for name in ("koniq_train", "koniq_test", "artimuse_train", "artimuse_test"):
        assert (data / f"{name}.jsonl").is_file(), name
    for name in ("koniq", "artimuse"):
        kept = (data / f"{name}_rationales" / "kept.jsonl").read_text().splitlines()
        assert len(kept) == 8, name  # every toy training record kept by the scripted judge
    run = tmp_path / "runs" / "recipe-tiny"
    for stage in ("sft", "grpo"):
        record = json.loads((run / stage / "final" / "tatar_stage.json").read_text())
        assert record["trial"] is False and record["global_step"] == record["planned_steps"]
        assert (run / stage / "final" / "README.md").is_file()
    assert json.loads((run / "grpo" / "final" / "tatar_stage.json").read_text())["rewards"]
    for name, task in (("koniq", "iqa"), ("artimuse", "iaa")):
        summary = json.loads((run / f"eval-{name}" / "summary.json").read_text())
        assert summary["datasets"][0]["n"] == 4 and summary["datasets"][0]["task"] == task
