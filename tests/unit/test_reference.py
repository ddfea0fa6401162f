"""The committed command reference and man page match what docs/generate.py writes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

GENERATOR = Path(__file__).resolve().parents[2] / "docs" / "generate.py"


def load_generator():
    spec = importlib.util.spec_from_file_location("docs_generate", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    # dataclasses look the module up in sys.modules while the class is made.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["reference.md", "lvmvol.8"])
def test_generated_doc_current(name: str) -> None:
    generated = {path.name: text for path, text in load_generator().generate().items()}

    committed = (GENERATOR.parent / name).read_text()

    assert generated[name] == committed, f"docs/{name} is stale: run .venv/bin/python docs/generate.py"


def test_man_page_lists_every_command() -> None:
    generator = load_generator()
    from lvmvol.cli import cli

    man_page = generator.generate()[generator.MAN_PAGE]

    for doc in generator.walk(cli, "lvmvol")[1:]:
        assert ".SS " + generator._roff(doc.path) in man_page
