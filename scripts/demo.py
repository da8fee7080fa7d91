"""`make demo`: run the embedded demo of each system (nothing is downloaded).

Each system provides `<package>.demo.run(out_dir)`; a system without a demo yet is only
reported with what is installed.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "demo-output"


def _versions() -> None:
    from importlib.metadata import PackageNotFoundError, version

    names = [
        "torch",
        "torchvision",
        "transformers",
        "trl",
        "peft",
        "accelerate",
        "opencv-python-headless",
        "scikit-image",
        "ray",
        "fastapi",
    ]
    for name in names:
        try:
            print(f"  {name:24s} {version(name)}")
        except PackageNotFoundError:
            print(f"  {name:24s} (not installed)")


def main() -> int:
    print("Installed:")
    _versions()
    status = 0
    for package in ("yoho", "tatar"):
        if importlib.util.find_spec(f"{package}.demo") is None:
            print(f"\n[{package}] no demo yet")
            continue
        print(f"\n[{package}] demo -> {OUT / package}")
        module = importlib.import_module(f"{package}.demo")
        try:
            module.run(OUT / package)
        except Exception as exc:  # report and carry on with the other system
            print(f"[{package}] demo FAILED: {exc!r}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
