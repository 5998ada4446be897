"""The docs that are generated from the code stay in step with it."""

import re
from pathlib import Path

from semg_hht.cli.reference import reference

ROOT = Path(__file__).resolve().parent.parent


def test_cli_reference_matches_the_parsers():
    """docs/cli.md is what `python -m semg_hht.cli.reference` prints: regenerate it after changing a flag."""
    assert (ROOT / "docs" / "cli.md").read_text(encoding="utf-8") == reference()


def test_cli_reference_names_every_flag():
    from semg_hht.cli import infer, train

    text = reference()
    for module in (train, infer):
        for action in module.build_parser()._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert f"`{flag}`" in text, flag


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.lstrip("#").strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    lines, inside_code = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        inside_code ^= line.startswith("```")
        if not inside_code and line.startswith("#"):
            lines.append(_anchor(line))
    return set(lines)


def test_links_between_the_docs_resolve():
    pages = [ROOT / "README.md", ROOT / "TRAINING_GUIDE.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+://", target):
                continue
            file, _, fragment = target.partition("#")
            resolved = (page.parent / file).resolve() if file else page
            if not resolved.exists() or (fragment and resolved.suffix == ".md" and fragment not in _anchors(resolved)):
                broken.append(f"{page.name}: {target}")
    assert not broken
