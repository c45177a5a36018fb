"""The project's structure keeps its promises: datasets are named only in their own package,
and packages do not import each other in circles."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

from em_assets.datasets.registry import DATASETS

PACKAGE = Path(__file__).resolve().parents[1] / "em_assets"
DATASETS_PACKAGE = PACKAGE / "datasets"


def outside_datasets() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if DATASETS_PACKAGE not in p.parents]


def test_no_module_outside_datasets_names_a_dataset():
    """Everything else iterates the registry: a dataset named elsewhere is a place that a
    sixth dataset would have to edit."""
    keys = re.compile(r"\b(" + "|".join(re.escape(spec.name) for spec in DATASETS) + r")\b")
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}"
        for path in outside_datasets()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if keys.search(line)
    ]
    assert found == [], "dataset keys outside em_assets/datasets/:\n" + "\n".join(found)


def test_no_hard_coded_dataset_count_outside_datasets():
    # "five datasets", "the five manifests", "all five": not "five times faster".
    count = re.compile(
        r"\b(?:all|the)\s+five\b|\bfive\s+(?:\w+\s+)?(?:datasets|manifests|assets|checks)\b",
        re.IGNORECASE,
    )
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}"
        for path in outside_datasets()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if count.search(line)
    ]
    assert found == [], "a hard-coded dataset count:\n" + "\n".join(found)


def package_imports() -> dict[tuple[str, str], list[str]]:
    """(importing package, imported package) -> the modules importing, from the source."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if len(parts) < 2:
            continue  # top-level modules (definitions, resources) assemble the packages
        source = parts[0]
        for node in ast.walk(ast.parse(path.read_text())):
            modules = []
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            for module in modules:
                target = module.split(".")
                if target[0] == "em_assets" and len(target) > 2 and target[1] != source:
                    edges[(source, target[1])].append(str(path.relative_to(PACKAGE.parent)))
    return edges


def test_packages_named_in_the_issue_do_not_import_each_other_in_circles():
    edges = package_imports()
    for a, b in [("manifest", "crops"), ("manifest", "storage"), ("datasets", "refresh")]:
        both = [edges.get((a, b)), edges.get((b, a))]
        assert not all(both), f"{a} <-> {b}: {both}"


def test_packages_import_each_other_in_a_hierarchy():
    """No two packages import each other (the shared `Logger` protocol lives in its own
    module, below them all, so storage need not import transfer to log)."""
    edges = package_imports()
    cycles = sorted({tuple(sorted(pair)) for pair in edges if (pair[1], pair[0]) in edges})
    assert cycles == [], {c: edges[c] for c in cycles}


def test_readme_table_lists_the_registry(pytestconfig):
    """The README's front table names exactly the registered datasets and the report."""
    readme = (pytestconfig.rootpath / "README.md").read_text()
    table = readme[readme.index("| asset | source |") :].split("\n\n", 1)[0]
    rows = [line.split("|")[1].strip().strip("`") for line in table.splitlines()[2:]]
    assert sorted(rows) == sorted([*(spec.name for spec in DATASETS), "consolidated_report"])
