"""The house: one sub-package per concern, imports that flow one way, a few modules at the top.

Layers, highest first (a module may import its own package and any lower layer, never a higher one):

    entry points   __main__ > sweep/; sample, translate, report, evaluate   what people type
    run            run.py                                                builds the parts from the config
    config         conf/ (gan_platform.conf), config/                    schema, checks, pre-flight
    training       training/                                             the loop and its parts
    tasks          tasks/                                                what one step means
    losses, models losses/, models/, augment/                            pure objectives; networks; augmentation
    evaluation, tracking                                                 leaves: measure; record
    data           data/                                                 a leaf: datasets
    runs           runs/                                                 the run dir, checkpoints, loading
    errors         errors.py                                             one-sentence errors

Imports inside functions count as much as those at the top of a file.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gan_platform"
LAYERS = {
    "__main__": 9, "sweep": 8, "sample": 8, "evaluate": 8, "translate": 8, "report": 8,
    "run": 7,
    "conf": 6.5, "config": 6,
    "training": 5,
    "tasks": 4,
    "losses": 3, "models": 3, "augment": 3,
    "evaluation": 2, "tracking": 2,
    "data": 1,
    "runs": 0, "errors": -1, "__init__": -1,
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {m for m in found if m.split(".")[0] == "gan_platform"}


def _concern(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


MODULES = _modules()
GRAPH = {m: {i for i in _imports(p) if i in MODULES and i != m} for m, p in MODULES.items()}


def test_every_concern_has_a_layer_and_the_top_holds_at_most_eight_modules():
    assert {_concern(m) for m in MODULES} <= set(LAYERS), "a new top-level module or package needs a layer here"
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 8, top


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_one_way(module):
    mine = _concern(module)
    upward = sorted(i for i in GRAPH[module]
                    if _concern(i) != mine and _concern(i) != "__init__" and LAYERS[_concern(i)] >= LAYERS[mine])
    assert not upward, f"{module} (layer {mine}) imports {upward} from the same or a higher layer"


def test_no_two_modules_import_each_other():
    pairs = sorted((a, b) for a, deps in GRAPH.items() for b in deps
                   if a < b and a in GRAPH.get(b, ()) and not (b.startswith(a + ".") or a.startswith(b + ".")))
    assert not pairs, pairs


def test_every_package_folder_is_a_package():
    """A folder of Python modules without __init__.py is a namespace package: an editable install then
    misses it. A folder of data files (evaluation/weights/, package data) holds no module."""
    missing = [p for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__" and not (p / "__init__.py").exists()
               and any(p.glob("*.py"))]
    assert not missing, missing
    data = [p for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__" and not (p / "__init__.py").exists()]
    assert [p.relative_to(PACKAGE).as_posix() for p in data] == ["evaluation/weights"]  # declared in pyproject's package-data


def test_the_training_path_imports_no_torchmetrics():
    """Importing torchmetrics costs a process seconds (scipy.signal, torchvision, matplotlib): the
    command line, the run builder, the evaluator and the sample/evaluate commands import it only
    where Inception features or the Inception Score are used (evaluation/metric.py says why)."""
    import subprocess
    import sys

    code = ("import sys, gan_platform.__main__, gan_platform.run, gan_platform.evaluation.gan_evaluator, "
            "gan_platform.evaluation.cyclegan_metrics, gan_platform.sample, gan_platform.evaluate; "
            "print(sorted(m for m in ('torchmetrics', 'torchvision', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PACKAGE.parent, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
