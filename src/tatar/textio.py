"""Reading user-supplied text files with errors that name the file (and line) and the problem.

`read_text` decodes UTF-8 (a leading byte-order mark, as spreadsheet and Windows editors write
it, is dropped); `read_csv` and `read_yaml` parse a table and a config file (a column named
twice in a CSV header, or a key given twice in one YAML mapping or JSON object, is an error,
not the last one silently winning); `parse_json` turns what
`json.loads` raises on a user's file (bad syntax, a document nested so deeply that the decoder
would overflow the stack) into a ValueError that starts with `where` (``file`` or ``file:line``).
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


class RepeatedKey(Exception):
    """A JSON object gives a key twice (`unique_keys`); `args[0]` is the key."""


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`object_pairs_hook` for `json.loads` that refuses a key given twice (RepeatedKey)."""
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise RepeatedKey(key)
        obj[key] = value
    return obj


def parse_json(text: str | bytes, where: str | Path, *, whole_file: bool = False) -> Any:
    """`json.loads`, with its failures as one ValueError starting with `where`.

    `whole_file`: `text` is a whole file (the message gives the line), not one JSONL line. A
    key given twice in one object is refused: `json.loads` would keep the last value without a
    word (in a ``{"<image>": score}`` label file, one image's label would be lost).
    """
    try:
        return json.loads(text, object_pairs_hook=unique_keys)
    except json.JSONDecodeError as exc:
        at = f" at line {exc.lineno}" if whole_file else ""
        raise ValueError(f"{where}: not valid JSON ({exc.msg}{at})") from None
    except RecursionError:
        raise ValueError(f"{where}: the JSON is nested too deeply") from None
    except RepeatedKey as exc:
        raise ValueError(
            f"{where}: the key {exc.args[0]!r} is given twice in one object (only the last "
            "would count); give each key once"
        ) from None


_MERGE = "tag:yaml.org,2002:merge"


class DuplicateKeyError(ValueError):
    """A YAML mapping gives one key twice (`line` counts from 1)."""

    def __init__(self, key: Any, line: int, first_line: int):
        super().__init__(f"{key!r} is given twice (first on line {first_line})")
        self.key, self.line, self.first_line = key, line, first_line


def _yaml_loader():
    """A `yaml.SafeLoader` subclass that refuses a key given twice in one mapping.

    PyYAML keeps the last value of a repeated key without a word; in a config that silently
    drops a setting. Keys brought in by a merge (``<<: *base``) may still be overridden: only
    the keys written in the mapping itself are compared.
    """
    import yaml

    class Loader(yaml.SafeLoader):
        def construct_document(self, node):
            # Checked on the composed tree, before construction flattens merges into mappings.
            seen_nodes: set[int] = set()
            todo = [node]
            while todo:
                current = todo.pop()
                if id(current) in seen_nodes:  # an alias of an anchored node
                    continue
                seen_nodes.add(id(current))
                if isinstance(current, yaml.MappingNode):
                    first: dict[Any, int] = {}
                    for key_node, value_node in current.value:
                        todo += [key_node, value_node]
                        if key_node.tag == _MERGE or not isinstance(key_node, yaml.ScalarNode):
                            continue
                        key = self.construct_object(key_node)
                        line = key_node.start_mark.line + 1
                        try:
                            if key in first:
                                raise DuplicateKeyError(key, line, first[key])
                            first[key] = line
                        except TypeError:  # not hashable: construction says so
                            pass
                elif isinstance(current, yaml.SequenceNode):
                    todo += current.value
            return super().construct_document(node)

    return Loader


def read_yaml(path: str | Path) -> Any:
    """`yaml.safe_load` of a UTF-8 file, its failures as one ValueError naming ``file:line``.

    A key given twice in one mapping is refused (``c.yaml:4: duplicate key 'lr' (first on line
    2)``) instead of PyYAML's silent last-one-wins.
    """
    import yaml

    try:
        return yaml.load(read_text(path), Loader=_yaml_loader())  # a SafeLoader subclass
    except DuplicateKeyError as exc:
        raise ValueError(
            f"{path}:{exc.line}: duplicate key {exc.key!r} (first on line {exc.first_line}); "
            "give each key once"
        ) from None
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
        # A column named twice: DictReader would keep only the last one's values.
        first: dict[str, int] = {}
        for number, name in enumerate(reader.fieldnames or [], 1):
            key = name.strip()
            if key and key in first:
                raise ValueError(
                    f"{path}:1: the column {key!r} is given twice (columns {first[key]} and "
                    f"{number}: which one holds the values?); rename or remove one"
                )
            first.setdefault(key, number)
        return list(reader)
    except csv.Error as exc:  # a field over the size limit (an unclosed quote), ...
        raise ValueError(
            f"{path}: not a readable CSV after line {reader.line_num} ({exc}; often an "
            'unclosed quote " that makes the rest of the file one field)'
        ) from None
