"""The README stays a short guide for a user, and every relative link in it and in
docs/ resolves (to a file, and to a heading when it names one)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCUMENTS = [README, *sorted((ROOT / "docs").rglob("*.md"))]
MAX_README_LINES = 250

# [text](target) and ![alt](target), outside code; the target up to a space or ")".
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
# A commit hash: 7 to 40 hex digits with at least one letter and one digit, alone.
HEX = re.compile(r"(?<![\w-])[0-9a-f]{7,40}(?![\w-])")
DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


def _prose(text: str) -> str:
    return CODE_SPAN.sub("", FENCE.sub("", text))


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    text = CODE_SPAN.sub(lambda m: m.group(0).strip("`"), heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    return {_anchor(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.MULTILINE)}


def broken_links(path: Path) -> list[str]:
    broken = []
    for target in LINK.findall(_prose(path.read_text())):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists():
            broken.append(f"{target}: no {resolved}")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {resolved.name}")
    return broken


def commit_hashes(text: str) -> list[str]:
    return [
        token
        for token in HEX.findall(text)
        if re.search(r"[a-f]", token) and re.search(r"\d", token)
    ]


def test_the_readme_is_at_most_250_lines() -> None:
    lines = README.read_text().count("\n")
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines"


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path) -> None:
    assert broken_links(path) == []


def test_the_readme_holds_no_commit_hash_nor_date() -> None:
    text = README.read_text()
    assert commit_hashes(text) == []
    assert DATE.findall(text) == []


def test_the_checks_catch_what_they_look_for(tmp_path: Path) -> None:
    """The link, hash and date checks themselves find a broken link, a hash, a date."""
    (tmp_path / "there.md").write_text("# A heading: `with code`\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md#a-heading-with-code) [gone](missing.md) [bad](there.md#nope)\n"
        "`[in code](missing.md)` ![plot](../nowhere.png) [web](https://example.com)\n"
    )
    assert [b.split(":")[0] for b in broken_links(page)] == [
        "missing.md",
        "there.md#nope",
        "../nowhere.png",
    ]
    assert commit_hashes("at deeb183, not in decade or 1234567") == ["deeb183"]
    assert DATE.findall("run on 2026-12-02 at 14:07") == ["2026-12-02"]
