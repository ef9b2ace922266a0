"""docs/architecture.md stays true: every anchor `gan_platform/FILE.py:LINE` `symbol` names a file that
exists and the line that defines the symbol, every repository path it shows exists, and the
README links it. When code moves, the failing anchor is named here: update its line in the doc."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"

# `gan_platform/x/y.py:123` `symbol` (the symbol may be dotted: Class.method)
ANCHOR = re.compile(r"`(gan_platform/[\w/]+\.py):(\d+)`\s+`([A-Za-z_][\w.]*)`")
# any `...py:N` at all, to catch an anchor written without its symbol
LOOSE_ANCHOR = re.compile(r"`[\w/.]+\.py:\d+`")
# a backticked text that is, as a whole, a path in the repository (<placeholders> allowed)
REPO_PATH = re.compile(r"`((?:gan_platform|tests|conf|docs|outputs|benchmarks|scripts)/[\w./<>-]*?)(?::\d+)?`")


def anchors(text: str) -> list[tuple[str, int, str]]:
    return [(m.group(1), int(m.group(2)), m.group(3)) for m in ANCHOR.finditer(text)]


def defines(line: str, name: str) -> bool:
    """Does `line` define `name`: `def name`, `class name`, `name = ...` or `name: type = ...`?"""
    n = re.escape(name)
    return re.match(rf"\s*(?:async\s+)?(?:def|class)\s+{n}\b|\s*{n}\s*(?::[^=]*)?=", line) is not None


def anchor_problems(text: str, root: Path = ROOT) -> list[str]:
    """One line per anchor whose file is missing or whose line does not define its symbol."""
    problems = []
    lines_of: dict[str, list[str]] = {}
    for path, line, symbol in anchors(text):
        file = root / path
        if not file.is_file():
            problems.append(f"{path}:{line} `{symbol}`: no such file")
            continue
        lines = lines_of.setdefault(path, file.read_text(encoding="utf-8").splitlines())
        name = symbol.rsplit(".", 1)[-1]
        if not 1 <= line <= len(lines):
            problems.append(f"{path}:{line} `{symbol}`: the file has {len(lines)} lines")
        elif not defines(lines[line - 1], name):
            found = [i + 1 for i, text_line in enumerate(lines) if defines(text_line, name)]
            problems.append(f"{path}:{line} `{symbol}`: line {line} does not define it"
                            + (f" (defined at line {', '.join(map(str, found))})" if found else ""))
    return problems


def path_problems(text: str, root: Path = ROOT) -> list[str]:
    """One line per backticked repository path that does not exist; a path with a <placeholder>
    needs the folder before the placeholder."""
    problems = []
    for m in REPO_PATH.finditer(text):
        path = m.group(1).rstrip("/")
        if "<" in path:
            path = path[:path.index("<")].rsplit("/", 1)[0]
        if not (root / path).exists():
            problems.append(m.group(1))
    return problems


def test_every_anchor_names_an_existing_file_and_the_symbol_on_its_line():
    text = DOC.read_text(encoding="utf-8")
    found = anchors(text)
    assert len(found) >= 15, f"only {len(found)} anchors in {DOC.name}"
    assert not anchor_problems(text), "\n".join(anchor_problems(text))


def test_every_anchor_is_written_with_its_symbol():
    text = DOC.read_text(encoding="utf-8")
    loose = [m.group(0) for m in LOOSE_ANCHOR.finditer(text)]
    assert len(loose) == len(anchors(text)), sorted(set(loose) - {f"`{p}:{n}`" for p, n, _ in anchors(text)})


def test_every_repository_path_in_the_doc_exists():
    text = DOC.read_text(encoding="utf-8")
    assert len(REPO_PATH.findall(text)) >= 15
    assert not path_problems(text), path_problems(text)


def test_the_readme_links_the_doc():
    assert "](docs/architecture.md)" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_checks_catch_a_moved_line_a_missing_file_and_a_missing_path():
    wrong_symbol = "`gan_platform/run.py:1` `x`"
    lines = (ROOT / "gan_platform" / "run.py").read_text(encoding="utf-8").splitlines()
    line = next(i + 1 for i, t in enumerate(lines) if t.startswith("def build_trainer"))
    assert anchor_problems(f"`gan_platform/run.py:{line}` `build_trainer`") == []
    (moved,) = anchor_problems(f"`gan_platform/run.py:{line + 1}` `build_trainer`")
    assert f"defined at line {line}" in moved
    used = next(i + 1 for i, t in enumerate(lines) if "= build_trainer(" in t)  # a call names it, not defines it
    assert anchor_problems(f"`gan_platform/run.py:{used}` `build_trainer`")
    assert anchor_problems("`gan_platform/nowhere.py:3` `x`") == ["gan_platform/nowhere.py:3 `x`: no such file"]
    assert anchor_problems(wrong_symbol) and path_problems("`tests/test_nowhere.py` and `conf/nowhere/<name>.yaml`") == [
        "tests/test_nowhere.py", "conf/nowhere/<name>.yaml"]
    assert path_problems("`conf/loss/<name>.yaml` `gan_platform/run.py:9`") == []
