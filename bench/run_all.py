"""`make bench`: run every benchmark in this folder, one after the other.

Each benchmark prints its figures and writes bench/results/<name>.json itself; this runner only
reports which ones ran and how long each took. Pass names to run a subset:
`python bench/run_all.py yoho_speed tatar_rewards`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    # gpu_check_* belong to bench/gpu_check.sh, for a GPU machine only.
    scripts = sorted(
        p
        for p in HERE.glob("*.py")
        if p.name != Path(__file__).name and not p.name.startswith("gpu_check")
    )
    if argv:
        wanted = set(argv)
        scripts = [p for p in scripts if p.stem in wanted]
    failed = []
    for script in scripts:
        print(f"\n=== {script.stem}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(script)])
        print(f"=== {script.stem}: exit {rc} after {time.perf_counter() - t0:.0f} s", flush=True)
        if rc:
            failed.append(script.stem)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
