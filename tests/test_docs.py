"""The README is a short entry page, and the guides it leads to are all reachable and link correctly."""
from __future__ import annotations

import collections
import re
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def prose(path: Path) -> list[str]:
    """The file's lines outside fenced code blocks (a `# comment` in a bash block is no heading)."""
    lines, fenced = [], False
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def anchors(path: Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens, repeats numbered -1, -2, ..."""
    seen: collections.Counter[str] = collections.Counter()
    ids = set()
    for line in prose(path):
        if match := re.match(r"#{1,6}\s+(.*)", line):
            slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
            ids.add(slug if not seen[slug] else f"{slug}-{seen[slug]}")
            seen[slug] += 1
    return ids


def relative_links(path: Path) -> list[tuple[Path, str]]:
    """(target file, anchor or "") of every link that is not a URL."""
    links = []
    for line in prose(path):
        for target in LINK.findall(line):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = unquote(target).partition("#")
            links.append(((path.parent / file).resolve() if file else path, anchor))
    return links


def test_readme_is_a_short_entry_page():
    text = README.read_text()
    assert len(text.splitlines()) < 250
    assert "<!-- END OF FIRST SCREEN -->" in text
    for path in ("For NAS researchers", "For RL researchers", "For cluster users"):
        assert f"## {path}" in text


def test_every_relative_link_in_the_readme_and_docs_points_to_a_file_and_heading_that_exist():
    broken = []
    for page in [README, *DOCS]:
        for target, anchor in relative_links(page):
            if not target.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} does not exist")
            elif anchor and target.suffix == ".md" and anchor not in anchors(target):
                broken.append(f"{page.relative_to(ROOT)}: no heading #{anchor} in {target.relative_to(ROOT)}")
    assert not broken, "\n".join(broken)


def test_every_guide_in_docs_is_reachable_from_the_readme():
    reached, todo = set(), [README.resolve()]
    while todo:
        page = todo.pop()
        for target, _ in relative_links(page):
            if target.suffix == ".md" and target.exists() and target not in reached:
                reached.add(target)
                todo.append(target)
    assert not [doc.name for doc in DOCS if doc.resolve() not in reached]


def test_the_configs_the_readme_runs_exist():
    named = set(re.findall(r"configs/[\w.]+\.yaml", README.read_text()))
    assert named and all((ROOT / config).is_file() for config in named)
