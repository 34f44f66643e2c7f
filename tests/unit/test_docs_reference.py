"""The repository explains itself (docs/README.md): every page it cites exists, nothing cites a
document outside it, and the mapping reference documents every key the parser accepts."""

from __future__ import annotations

import re
import subprocess
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from tokenfix.mapping.file import MappingFile

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "mapping.md"


def tracked_text_files() -> list[Path]:
    names = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    paths = [ROOT / name for name in names]
    return [p for p in paths if p.suffix in {".py", ".md", ".sql", ".toml", ".yml"} and p.exists()]


def sections(text: str) -> dict[str, str]:
    """The reference's `## \\`[section]\\`` headings and the text under each."""
    found: dict[str, str] = {}
    parts = re.split(r"^## `(\[\[?[\w.]+\]\]?)`\s*$", text, flags=re.M)
    for heading, body in zip(parts[1::2], parts[2::2], strict=True):
        found[heading] = body.split("\n## ")[0]
    return found


def model_of(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = model_of(argument)
        if found is not None:
            return found
    return None


def accepted_keys() -> list[tuple[str, str]]:
    """(section heading, key) for every key of every table the parser accepts."""
    keys: list[tuple[str, str]] = []
    for name, field in MappingFile.model_fields.items():
        model = model_of(field.annotation)
        assert model is not None, name
        is_list = typing.get_origin(field.annotation) is list
        heading = f"[[{name}]]" if is_list else f"[{name}]"
        keys += [(heading, key) for key in model.model_fields]
    return keys


@pytest.mark.parametrize(("heading", "key"), accepted_keys())
def test_the_mapping_reference_documents_every_key_the_parser_accepts(
    heading: str, key: str
) -> None:
    documented = sections(REFERENCE.read_text(encoding="utf-8"))
    assert heading in documented, f"docs/mapping.md has no section {heading}"
    assert f"`{key}`" in documented[heading], f"docs/mapping.md {heading} lacks `{key}`"


def test_every_docs_page_cited_in_the_repository_exists() -> None:
    cited: set[str] = set()
    for path in tracked_text_files():
        cited |= set(re.findall(r"docs/[\w-]+\.md", path.read_text(encoding="utf-8")))
    missing = sorted(page for page in cited if not (ROOT / page).is_file())
    assert missing == []


def test_nothing_cites_a_document_the_repository_does_not_ship() -> None:
    citing = [
        str(path.relative_to(ROOT))
        for path in tracked_text_files()
        if re.search(r"\bSPEC\b|§\d", path.read_text(encoding="utf-8"))
    ]
    assert citing == []


def test_the_readme_links_every_docs_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert [p for p in pages if f"docs/{p}" not in readme] == []
