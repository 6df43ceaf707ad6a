"""Dependencies point down the data's path (ARCHITECTURE.md, section 2)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "moodboard"
# package -> the moodboard packages it may import
ALLOWED = {
    "data": {"errors"},  # errors is a leaf: every package may raise ours
    "errors": set(),
    "media": {"errors"},  # a leaf too: the image formats and limits every stage enforces
    # config only composes Settings from the components' own configs
    "config": {"errors", "retrieve", "understand"},
    "ingest": {"data", "errors", "config", "media"},
    "datasets": {"data", "errors", "config", "ingest"},
    "pipelines": {"data", "errors", "config", "ingest"},
    "understand": {"data", "errors", "config", "media"},
    "retrieve": {"data", "errors", "understand"},
    # the stages are pure: no config, serve or build
    "rank": {"data", "errors", "understand", "retrieve"},
    "blend": {"data", "errors", "retrieve"},
    # a surface is its prepare step over the stages, run by one runner
    "surfaces": {"data", "errors", "config", "understand", "retrieve", "rank", "blend"},
    "simulate": {"data", "errors", "config", "ingest"},
    # evaluate composes the public interfaces of the stages to measure them
    "evaluate": {
        "data",
        "errors",
        "config",
        "datasets",
        "understand",
        "retrieve",
        "rank",
        "blend",
        "pipelines",
    },
    "experiment": {"data", "errors", "config"},
    # the contract tests every component must pass
    "testing": {"data", "errors", "retrieve"},
}


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("moodboard"):
            out.add(node.module.split(".")[1] if "." in node.module else "")
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[1] for a in node.names if a.name.startswith("moodboard.")}
    return out - {""}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_is_upstream(package: str) -> None:
    files = (
        [SRC / f"{package}.py"]
        if (SRC / f"{package}.py").exists()
        else sorted((SRC / package).rglob("*.py"))
    )
    for f in files:
        bad = _imports(f) - ALLOWED[package] - {package}
        assert not bad, f"{f.relative_to(SRC)} imports {sorted(bad)}"


def test_modules_stay_small() -> None:
    big = [
        (str(p.relative_to(SRC)), n)
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 450
    ]
    assert not big, big


#: How a caller sniffs a candidate source instead of using its contract.
SNIFFING = (
    re.compile(r"\binspect\.signature\b|\bimport inspect\b"),
    re.compile(r"getattr\([^)]*(source|rec|model|neighbour|walk|interest|tower)", re.I),
    re.compile(
        r"isinstance\([^)]*(BM25Source|DenseSource|VisualSource|PopularSource|TwoTower|"
        r"SequenceRecommender|GraphWalks|UserInterests|CandidateSource|Popularity|ALS|EASE|"
        r"ItemKNN|Recommender|ItemNeighbours)\b"
    ),
    re.compile(r"hasattr\([^)]*(source|rec|model)", re.I),
)


@pytest.mark.parametrize(
    "package",
    [p for p in ("surfaces", "evaluate", "serve", "build", "cli") if (SRC / p).is_dir()],
)
def test_callers_use_the_one_source_contract_without_sniffing(package: str) -> None:
    found = [
        f"{p.relative_to(SRC)}:{n}: {line.strip()}"
        for p in sorted((SRC / package).rglob("*.py"))
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if any(rx.search(line) for rx in SNIFFING)
    ]
    assert not found, found
