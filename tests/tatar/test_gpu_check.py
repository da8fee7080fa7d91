"""bench/gpu_check_tatar.py is only run for real on a lent GPU machine; its --smoke mode runs
the same code path on CPU at tiny sizes, so the script cannot rot unnoticed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_smoke_runs_sft_and_grpo_and_writes_figures(tmp_path):
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_check_tatar.py"), "--smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["smoke"] is True
    assert result["sft"]["steps"] == 4 and len(result["sft"]["step_times_s"]) == 4
    assert result["grpo"]["sampling"] == {"temperature": 1.0, "top_k": 0, "top_p": 1.0}
    assert result["grpo"]["rollout_tokens"] > 0 and result["grpo"]["rollout_tokens_per_s"] > 0
