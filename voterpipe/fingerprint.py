"""A stage's identity: a hash of everything it read (raw checksums, upstream fingerprints,
settings, config files, rule versions), recorded in its manifest and compared on every check.

Like gokart's parameter hash, but over content: a stage is complete only when the fingerprint
its manifest records equals the one its inputs give now. File checksums are reused while a
file's size and mtime are unchanged, so a check never re-hashes an unchanged raw drop.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import sys
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voterpipe import storage

# (path, size, mtime_ns) -> sha256, for this process; manifests carry it across processes
_checksums: dict[tuple[str, int, int], str] = {}


@dataclass(frozen=True)
class Fingerprint:
    """`value` hashes `parts`; `observed` holds file sizes and mtimes (not hashed) so the next
    check can reuse the checksums in `parts` without reading the files again."""

    value: str
    parts: dict
    observed: dict = field(default_factory=dict)

    @classmethod
    def of(cls, parts: dict, observed: dict | None = None) -> "Fingerprint":
        text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
        return cls("sha256:" + hashlib.sha256(text.encode()).hexdigest(), parts, observed or {})

    def to_json(self) -> dict:
        return {"value": self.value, "parts": self.parts, "observed": self.observed}

    @classmethod
    def from_json(cls, body: dict | None) -> "Fingerprint | None":
        if not isinstance(body, dict) or "value" not in body:
            return None
        return cls(body["value"], body.get("parts", {}), body.get("observed", {}))

    def changes_from(self, recorded: "Fingerprint | None") -> list[str]:
        """What differs from `recorded`, as dotted paths: 'config_files.cohorts.toml changed'."""
        if recorded is None:
            return ["no fingerprint recorded (built by an older version)"]
        return _differences(recorded.parts, self.parts, "") or ["fingerprint differs"]


def _differences(old: Any, new: Any, where: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new), key=str):
            path = f"{where}.{key}" if where else str(key)
            if key not in old:
                found.append(f"{path} added")
            elif key not in new:
                found.append(f"{path} removed")
            else:
                found += _differences(old[key], new[key], path)
        return found
    return [] if old == new else [f"{where} changed ({_short(old)} -> {_short(new)})"]


def _short(value: Any) -> str:
    text = str(value)
    return text[:19] + "…" if len(text) > 20 else text


def file_checksum(path: Path, known: dict | None = None) -> tuple[str, dict]:
    """(sha256, {size, mtime_ns}) of a file; `known` is an earlier {size, mtime_ns, sha256} of it
    whose checksum is reused when the size and mtime still match."""
    stat = Path(path).stat()
    observed = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    if known and known.get("size") == stat.st_size and known.get("mtime_ns") == stat.st_mtime_ns \
            and known.get("sha256"):
        return known["sha256"], observed
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _checksums:
        _checksums[key] = "sha256:" + storage.file_sha256(path)
    return _checksums[key], observed


def raw_file_checksums(files: list[Path], base: Path, recorded: "Fingerprint | None"
                       ) -> tuple[dict[str, str], dict[str, dict]]:
    """Checksums of a drop's files by name relative to `base`, reusing the recorded ones."""
    earlier = (recorded.observed.get("raw") if recorded else None) or {}
    earlier_sums = (recorded.parts.get("raw") if recorded else None) or {}
    sums, observed = {}, {}
    for path in sorted(files):
        name = path.relative_to(base).as_posix()
        known = dict(earlier.get(name) or {}, sha256=earlier_sums.get(name))
        sums[name], observed[name] = file_checksum(path, known)
    return sums, observed


def reuse_checksums(observed: dict[str, dict], recorded: "Fingerprint | None"
                    ) -> tuple[dict[str, str], dict[str, dict]] | None:
    """The recorded raw checksums when the drop holds the same files with the same {size,
    mtime_ns} as recorded (a listing of an object store, say); None when any file differs."""
    earlier = (recorded.observed.get("raw") if recorded else None) or {}
    earlier_sums = (recorded.parts.get("raw") if recorded else None) or {}
    if not observed or set(observed) != set(earlier_sums):
        return None
    for name, seen in observed.items():
        known = earlier.get(name) or {}
        if (known.get("size"), known.get("mtime_ns")) != (seen["size"], seen["mtime_ns"]):
            return None
    return {name: earlier_sums[name] for name in sorted(observed)}, {name: observed[name] for name in sorted(observed)}


def config_file_hashes(paths: list[Path]) -> dict[str, str]:
    """sha256 of each config file, by file name."""
    return {path.name: file_checksum(path)[0] for path in sorted(paths, key=lambda p: p.name)}


def layout_files_for_state(directories: list[Path], state: str) -> list[Path]:
    """The layout TOMLs that describe `state` (and the layouts they extend); a later directory's
    file of the same name overrides an earlier one's."""
    by_stem: dict[str, Path] = {}
    for directory in directories:
        if Path(directory).is_dir():
            for path in sorted(Path(directory).glob("*.toml")):
                by_stem[path.stem] = path
    documents = {stem: _layout_header(path) for stem, path in by_stem.items()}

    def chain(stem: str) -> list[str]:
        seen = [stem]
        while "extends" in documents.get(seen[-1], {}) and documents[seen[-1]]["extends"] not in seen:
            seen.append(documents[seen[-1]]["extends"])
        return seen

    wanted = set()
    for stem in documents:
        lineage = chain(stem)
        states = [documents[s].get("state") for s in lineage if documents.get(s, {}).get("state")]
        if states and str(states[0]).lower() == state.lower():
            wanted.update(s for s in lineage if s in by_stem)
    return [by_stem[s] for s in sorted(wanted)]


def _layout_header(path: Path) -> dict:
    """A layout's `state` and `extends` (parsed once per file version)."""
    stat = path.stat()
    return _parsed_header(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=1024)
def _parsed_header(path: str, size: int, mtime_ns: int) -> dict:
    with open(path, "rb") as handle:
        try:
            document = tomllib.load(handle)
        except tomllib.TOMLDecodeError:
            return {}  # the import names the broken file; here it only has to count as a change
    return {key: document[key] for key in ("state", "extends") if key in document}


def rule_version(spec: str) -> str:
    """'package.module:CONSTANT' -> str(value); 'tiger_data' -> the imported TIGER data's identity.

    A constant assigned a literal is read from the module's source, so checking a stage does not
    import what only building it needs (matplotlib for the report takes over a second)."""
    if spec == "tiger_data":
        return tiger_data_identity(storage.cache_dir("tiger", sync=False))  # manifests only: no TIGER data fetched
    module, _, attribute = spec.partition(":")
    if module not in sys.modules:
        literal = _literal_constant(module, attribute)
        if literal is not None:
            return literal
    return str(getattr(importlib.import_module(module), attribute))


@functools.lru_cache(maxsize=None)
def _literal_constant(module: str, attribute: str) -> str | None:
    """`attribute = <str or int literal>` at the top of the module's source file, if it is one."""
    base = Path(__file__).resolve().parent.parent.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            for node in ast.parse(path.read_text(encoding="utf-8")).body:
                if isinstance(node, ast.Assign) and any(
                        isinstance(t, ast.Name) and t.id == attribute for t in node.targets):
                    value = node.value
                    return str(value.value) if isinstance(value, ast.Constant) else None
    return None


def tiger_data_identity(directory: Path) -> str:
    """A hash of every imported TIGER county's manifest (its source files' checksums, year and
    rules): importing new or other TIGER files changes it."""
    digest = hashlib.sha256()
    for county, manifest in sorted(storage.published_children(directory).items()):
        digest.update(county.encode())
        digest.update(json.dumps(manifest, sort_keys=True, default=str).encode())
    return "sha256:" + digest.hexdigest()
