"""Checks over the test files themselves: a test must be able to fail, and an override list must
hold every override it shows."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

TESTS = Path(__file__).resolve().parent
# a quoted override followed by a comma, inside a comment: code the comment swallowed
SWALLOWED = re.compile(r'"[+~]*[\w./]+=[^"]*"\s*,')


def swallowed_overrides(source: str) -> list[tuple[int, str]]:
    """(line, comment) for every comment that holds quoted `key=value` words followed by a comma: what
    a `#` placed in the middle of a list literal turns into a comment (the list then silently lacks them)."""
    found = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT and SWALLOWED.search(token.string):
            found.append((token.start[0], token.string))
    return found


def test_no_comment_swallows_overrides_of_a_list():
    offenders = [f"{path.name}:{line}: {comment[:80]}" for path in sorted(TESTS.rglob("*.py"))
                 for line, comment in swallowed_overrides(path.read_text())]
    assert not offenders, offenders


def test_the_check_catches_the_pattern_it_is_for():
    bad = 'ARGS = ["a=1",  # the plain groups "model.generator.hidden=32", "trainer.steps=5",\n        "b=2"]\n'
    good = 'ARGS = ["a=1",  # the plain groups\n        "model.generator.hidden=32"]  # e.g. "x=1" alone is prose\n'
    assert [line for line, _ in swallowed_overrides(bad)] == [1]
    assert swallowed_overrides(good) == []
