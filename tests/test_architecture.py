"""Dependencies point down the data's path (ARCHITECTURE.md, section 2)."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "moodboard"
# package -> the moodboard packages it may import
ALLOWED = {
    "data": {"errors"},  # errors is a leaf: every package may raise ours
    "errors": set(),
    "media": {"errors"},  # a leaf too: the image formats and limits every stage enforces
    # config only composes Settings from the components' own configs
    "config": {"errors", "retrieve", "understand", "rank", "blend", "experiment"},
    # experiments: their specs (config holds the declared ones), assignment, metrics over the
    # event log (Ibis, as the pipelines), statistics, reports
    "experiment": {"data", "errors", "config", "ingest", "pipelines"},
    "ingest": {"data", "errors", "config", "media"},
    "datasets": {"data", "errors", "config", "ingest"},
    "pipelines": {"data", "errors", "config", "ingest"},
    "understand": {"data", "errors", "config", "media"},
    # the stages are pure: data in, Candidates out; no config, build or serve
    "retrieve": {"data", "errors", "understand"},
    # the stages are pure: no config, serve or build
    "rank": {"data", "errors", "understand", "retrieve"},
    "blend": {"data", "errors", "retrieve"},
    # a surface is its prepare step over the stages, run by one runner
    "surfaces": {"data", "errors", "config", "understand", "retrieve", "rank", "blend"},
    # the simulated shoppers shop through the engine: its surfaces, its server's page logging
    # (serve.pages) and its build
    "simulate": {
        "data",
        "errors",
        "config",
        "ingest",
        "retrieve",
        "surfaces",
        "serve",
        "build",
        "experiment",
    },
    # build composes stages and pipelines into artifacts (evaluate measures through it)
    "build": {
        "data",
        "errors",
        "config",
        "media",
        "ingest",
        "pipelines",
        "understand",
        "retrieve",
        "rank",
        "surfaces",
    },
    # serve is HTTP: it loads artifacts through build's layout, never trains
    "serve": {
        "data",
        "errors",
        "config",
        "media",
        "ingest",
        "understand",
        "retrieve",
        "rank",
        "surfaces",
        "build",
        "ui",
        "experiment",
    },
    # evaluate composes the public interfaces of the stages and the build steps to measure them,
    # and scores through the surfaces' own chains (on a workspace's logs too: ingest) and
    # through the served app itself (serve)
    "evaluate": {
        "data",
        "errors",
        "config",
        "datasets",
        "ingest",
        "understand",
        "retrieve",
        "rank",
        "blend",
        "pipelines",
        "build",
        "surfaces",
        "serve",
    },
    # the contract tests every component must pass
    "testing": {"data", "errors", "retrieve"},
    "ui": set(),  # templates and static files
}
# cli composes everything
ALLOWED["cli"] = set(ALLOWED) - {"testing"}
#: The only modules of build that serve may import: where things are, and the version lock.
SERVE_READS_FROM_BUILD = {"moodboard.build.layout", "moodboard.build.artifact"}


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
        if (n := len(p.read_text().splitlines())) > 400
    ]
    assert not big, big


def test_every_package_has_a_rule_and_every_rule_a_package() -> None:
    packages = {
        p.stem
        for p in SRC.iterdir()
        if not p.name.startswith("_")
        and ((p.is_dir() and any(p.glob("*.py"))) or p.suffix == ".py")
    }
    assert packages == set(ALLOWED), (
        f"no rule for {sorted(packages - set(ALLOWED))}, "
        f"a rule for missing {sorted(set(ALLOWED) - packages)}"
    )


def test_serve_reads_build_layout_only_and_loads_no_training_code() -> None:
    for f in sorted((SRC / "serve").rglob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "moodboard.build"
            ):
                assert node.module in SERVE_READS_FROM_BUILD, f"{f.name} imports {node.module}"
    code = (
        "import json, sys, moodboard.serve.app, moodboard.serve.registry; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('moodboard.'))))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(run.stdout)
    packages = {m.split(".")[1] for m in loaded}
    build = {m for m in loaded if m.startswith("moodboard.build.")}
    assert not {"pipelines", "evaluate"} & set(packages), packages
    assert set(build) <= SERVE_READS_FROM_BUILD, build


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
