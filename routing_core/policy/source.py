"""Reading policy YAML with the file and line of every value, merging a folder in name order.

Values are built from YAML's composed node tree (not `safe_load`) so that each YAML path
(`teams.uk_retail.licenses[1].products[2]`) keeps the file and line it came from; load errors
then point at the exact place. Duplicate keys, which plain YAML silently lets the later one
win, are errors. YAML 1.1's yes/no/on/off booleans are NOT booleans here: `NO` is Norway.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class SourceError(Exception):
    def __init__(self, message: str, file: str, line: int | None, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.path = path


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader whose booleans are only true/false (so NO, ON, Y stay strings)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _first in "tTfF":
    _Loader.yaml_implicit_resolvers.setdefault(_first, []).insert(
        0, ("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")))


@dataclass
class Located:
    """Plain data of one policy plus where every YAML path came from."""

    data: dict[str, Any] = field(default_factory=dict)
    where: dict[str, tuple[str, int]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def locate(self, path: str) -> tuple[str, int | None]:
        """File and line of `path`, or of its nearest ancestor that exists."""
        current = path
        while True:
            if current in self.where:
                return self.where[current]
            if not current:
                return (self.files[0] if self.files else "<policy>", None)
            current = parent_path(current)


def parent_path(path: str) -> str:
    if path.endswith("]"):
        return path[: path.rindex("[")]
    return path.rsplit(".", 1)[0] if "." in path else ""


def child_path(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _build(node: yaml.Node, loader: _Loader, path: str, file: str,
           where: dict[str, tuple[str, int]], line: int | None = None) -> Any:
    # a mapping's value is placed at its key's line (a block value starts on the next line)
    where[path] = (file, line or node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves `<<` merge keys
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise SourceError(f"key {key!r} must be a name", file,
                                  key_node.start_mark.line + 1, path)
            key = str(key)
            if key in out:
                raise SourceError(f"duplicate key {key!r}", file,
                                  key_node.start_mark.line + 1, child_path(path, key))
            out[key] = _build(value_node, loader, child_path(path, key), file, where,
                              key_node.start_mark.line + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, loader, child_path(path, i), file, where)
                for i, item in enumerate(node.value)]
    try:
        return loader.construct_object(node, deep=True)
    except ValueError as exc:  # a date such as 2026-13-01: YAML's pattern, no such day
        what = "a date or time" if node.tag.endswith(":timestamp") else "a value"
        raise SourceError(f"{node.value!r} is not {what} that exists ({exc})", file,
                          where[path][1], path) from None


def read_file(file: Path) -> tuple[dict[str, Any], dict[str, tuple[str, int]]]:
    name = str(file)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceError(f"cannot read: {exc.strerror or exc}", name, None) from exc
    except UnicodeDecodeError as exc:
        raise SourceError("not UTF-8 text", name, None) from exc
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        where: dict[str, tuple[str, int]] = {}
        if node is None:
            return {}, where
        data = _build(node, loader, "", name, where)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise SourceError(f"not valid YAML: {exc.problem or exc}", name, line) from exc
    except yaml.YAMLError as exc:
        raise SourceError(f"not valid YAML: {exc}", name, None) from exc
    except (ValueError, TypeError, AttributeError) as exc:  # PyYAML constructor edge cases
        raise SourceError(f"a value cannot be read ({exc})", name, None) from exc
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise SourceError("a policy file must be a mapping of sections (policy:, teams:, ...)",
                          name, 1)
    return data, where


# How sections from several files combine: mappings of named things merge (a name defined twice
# is an error), lists concatenate in file-name order, single blocks may appear in one file only.
NAMED_SECTIONS = frozenset({"products", "teams", "jurisdiction_groups"})
LIST_SECTIONS = frozenset({"gates", "rules", "conduct", "cooling_off", "tests", "channels"})


def _is_yaml(path: Path) -> bool:
    return path.suffix.lower() in (".yaml", ".yml") and not path.name.startswith(".")


def policy_files(path: Path) -> list[Path]:
    if path.is_dir():
        # Fail closed: a file skipped for the case of its suffix (40-gates.YAML) or its place
        # (gates/uk.yaml) would be a policy loaded without its gates, and no error.
        entries = list(path.iterdir())
        files = sorted((p for p in entries if _is_yaml(p) and p.is_file()), key=lambda p: p.name)
        folders = [d for d in entries if d.is_dir() and not d.name.startswith(".")]
        nested = sorted(str(f.relative_to(path)) for d in folders for f in d.rglob("*")
                        if _is_yaml(f))
        if nested:
            raise SourceError(f"YAML file {nested[0]} is in a subfolder: only the policy "
                              "folder's own files are read (fix: move it up, or rename it "
                              "if it is not part of the policy)", str(path), None)
        if not files:
            raise SourceError("folder holds no .yaml or .yml files", str(path), None)
        return files
    if not path.exists():
        raise SourceError("no such file or folder", str(path), None)
    return [path]


def _rebase(where: dict[str, tuple[str, int]], old: str, new: str) -> Iterator[
        tuple[str, tuple[str, int]]]:
    for path, loc in where.items():
        if path == old or path.startswith(old + ".") or path.startswith(old + "["):
            yield new + path[len(old):], loc


def read_policy(path: str | Path) -> Located:
    """Read one policy file, or a folder of them merged in file-name order."""
    located = Located()
    for file in policy_files(Path(path)):
        data, where = read_file(file)
        located.files.append(str(file))
        for section, value in data.items():
            section_where = {p: loc for p, loc in _rebase(where, section, section)}
            if section not in located.data:
                located.data[section] = value
                located.where.update(section_where)
                continue
            line = where[section][1]
            first = located.where.get(section, ("?", 0))[0]
            if section in LIST_SECTIONS and isinstance(value, list) and isinstance(
                    located.data[section], list):
                offset = len(located.data[section])
                located.data[section].extend(value)
                for i in range(len(value)):
                    located.where.update(_rebase(where, f"{section}[{i}]",
                                                 f"{section}[{offset + i}]"))
            elif section in NAMED_SECTIONS and isinstance(value, dict) and isinstance(
                    located.data[section], dict):
                for key, item in value.items():
                    sub = child_path(section, key)
                    if key in located.data[section]:
                        raise SourceError(
                            f"{key!r} is defined in both {first} and this file", str(file),
                            where[sub][1], sub)
                    located.data[section][key] = item
                    located.where.update(_rebase(where, sub, sub))
            else:
                raise SourceError(f"section {section!r} is already defined in {first}; "
                                  "define it in one file only", str(file), line, section)
    return located
