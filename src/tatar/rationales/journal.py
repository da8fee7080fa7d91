"""Append-only journal of finished calls (what makes a run resumable), and atomic writes.

Each finished call is one JSON line, written and flushed as it completes, in completion order.
A process killed at any point loses at most the line being written: a torn last line is cut
off on the next open, named (file:line) on standard error, and its call is made again. A
damaged line anywhere else is refused with its file and line. (Flushing hands the line to the OS, which keeps it when the process is
killed; fsync per line would only add protection against power loss, at a large cost.) The first
line records the settings fingerprint, so a rerun cannot mix answers made with other prompts or
models. The ordered output files are rebuilt from the journal at the end of every run.
"""

from __future__ import annotations

import fcntl
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tatar.outputs import atomic_write_text

JOURNAL_FORMAT = "tatar-rationales-journal/1"


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def atomic_write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


class Journal:
    """The journal file of one stage in one output folder.

    `open()` reads what earlier runs finished (the latest entry per id) and opens the file for
    appending; `append()` adds one finished call.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        stage: str,
        fingerprint: str,
        warn: Callable[[str], None] | None = None,
    ):
        self.path = Path(path)
        self.stage = stage
        self.fingerprint = fingerprint
        self.warn = warn or (lambda m: print(f"warning: {m}", file=sys.stderr, flush=True))
        self._file = None

    def _header(self) -> dict[str, Any]:
        return {"journal": JOURNAL_FORMAT, "stage": self.stage, "fingerprint": self.fingerprint}

    def read(self) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
        """(latest entry per id, every entry in file order); cuts off a torn last line."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return {}, []
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # torn write from a killed run: drop it, the call is redone
            line = data[:end].count(b"\n") + 1
            self.warn(
                f"{self.path}:{line}: incomplete last line (an interrupted "
                "write); its call is made again"
            )
            with self.path.open("r+b") as f:
                f.truncate(end)
            data = data[:end]
        try:
            lines = data.decode("utf-8").splitlines()
        except UnicodeDecodeError as e:
            line = data[: e.start].count(b"\n") + 1
            raise ValueError(f"{self.path}:{line}: corrupt journal line (not UTF-8)") from None
        if not lines:
            return {}, []
        try:
            header = json.loads(lines[0])
        except json.JSONDecodeError:
            header = None
        if not isinstance(header, dict) or header.get("journal") != JOURNAL_FORMAT:
            raise ValueError(f"{self.path}: not a rationale journal (first line is not its header)")
        if header.get("stage") != self.stage or header.get("fingerprint") != self.fingerprint:
            raise ValueError(
                f"{self.path}: this folder holds a {header.get('stage')} run made with other "
                "settings (prompt version, model or sampling); use a new --out folder, or delete "
                "the journal to start over"
            )
        latest: dict[str, dict[str, Any]] = {}
        entries: list[dict[str, Any]] = []
        for n, line in enumerate(lines[1:], 2):
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(
                    f"{self.path}:{n}: corrupt journal line ({e.msg}); delete that line to have "
                    "its call made again"
                ) from None
            if not isinstance(entry, dict) or "id" not in entry or "ok" not in entry:
                raise ValueError(
                    f"{self.path}:{n}: a journal entry without 'id' and 'ok'; delete that line "
                    "to have its call made again"
                )
            entries.append(entry)
            latest[str(entry["id"])] = entry
        return latest, entries

    def open(self) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        try:
            # two runs appending to one journal would call every record twice
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.close()
            raise ValueError(
                f"{self.path}: another run is writing to this folder; wait for it or use another --out"
            ) from None
        latest, entries = self.read()
        if self.path.stat().st_size == 0:
            self._write(self._header())
        return latest, entries

    def _write(self, obj: dict[str, Any]) -> None:
        assert self._file is not None, "journal not open"
        self._file.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self._file.flush()

    def append(self, entry: dict[str, Any]) -> None:
        self._write(entry)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
