"""Reading user-supplied text files with errors that name the file (and line) and the problem.

`read_text` decodes UTF-8 (a leading byte-order mark, as spreadsheet and Windows editors write
it, is dropped); `read_csv` and `read_yaml` parse a table and a config file; `parse_json` turns what `json.loads` raises on a user's file (bad syntax, a
document nested so deeply that the decoder would overflow the stack) into a ValueError that
starts with `where` (``file`` or ``file:line``).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any


def not_utf8(path: str | Path, data: bytes, exc: UnicodeDecodeError) -> ValueError:
    """The error for a file that is not UTF-8: names the file, the line and the byte."""
    line = data[: exc.start].count(b"\n") + 1
    byte = data[exc.start : exc.start + 1].hex()
    return ValueError(f"{path}:{line}: not UTF-8 text (byte 0x{byte}); save the file as UTF-8")


def read_text(path: str | Path) -> str:
    """The text of a UTF-8 file (a leading byte-order mark removed)."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise not_utf8(path, data, exc) from None


def parse_json(text: str | bytes, where: str | Path, *, whole_file: bool = False) -> Any:
    """`json.loads`, with its failures as one ValueError starting with `where`.

    `whole_file`: `text` is a whole file (the message gives the line), not one JSONL line.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        at = f" at line {exc.lineno}" if whole_file else ""
        raise ValueError(f"{where}: not valid JSON ({exc.msg}{at})") from None
    except RecursionError:
        raise ValueError(f"{where}: the JSON is nested too deeply") from None


def read_yaml(path: str | Path) -> Any:
    """`yaml.safe_load` of a UTF-8 file, its failures as one ValueError naming ``file:line``."""
    import yaml

    try:
        return yaml.safe_load(read_text(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValueError(f"{path}{where}: not valid YAML ({problem})") from None
    except RecursionError:
        raise ValueError(f"{path}: not valid YAML (nested too deeply)") from None


def read_csv(path: str | Path) -> list[dict]:
    """The rows of a UTF-8 CSV file as dicts (`csv.DictReader`); a damaged file is a ValueError."""
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    try:
        return list(reader)
    except csv.Error as exc:  # a field over the size limit (an unclosed quote), ...
        raise ValueError(
            f"{path}: not a readable CSV after line {reader.line_num} ({exc}; often an "
            'unclosed quote " that makes the rest of the file one field)'
        ) from None
