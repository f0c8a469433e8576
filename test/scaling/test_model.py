"""docs/scaling.md holds the tables test/scaling/model.py prints, between its
`scaling-model` markers: this test fails when they differ (the model or an input
changed and the doc was not regenerated, or the doc was edited by hand).
UPDATE_SCALING=1 pytest test/scaling rewrites the block."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from scaling import model

REPO_ROOT = Path(__file__).resolve().parents[2]
DOC = REPO_ROOT / "docs" / "scaling.md"
MODEL = Path(model.__file__).resolve()
BEGIN = "<!-- scaling-model:begin"
END = "<!-- scaling-model:end -->"


def split(text: str) -> tuple[str, str, str]:
    start = text.index(BEGIN)
    body = text.index("\n", start) + 1
    end = text.index(END, body)
    return text[:body], text[body:end], text[end:]


def test_the_script_prints_what_the_model_computes():
    # Run as docs/scaling.md says to: a plain interpreter, no dependencies.
    done = subprocess.run([sys.executable, str(MODEL)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == model.render()


def test_docs_scaling_holds_the_tables_the_model_prints():
    wanted = model.render()
    head, block, tail = split(DOC.read_text())
    if os.environ.get("UPDATE_SCALING") == "1":
        DOC.write_text(head + wanted + tail)
        block = wanted
    assert block == wanted, (
        f"{DOC} is stale: UPDATE_SCALING=1 test/.venv/bin/python -m pytest test/scaling")


def test_every_input_says_what_it_is_and_where_it_comes_from():
    for i in model.INPUTS:
        assert i.kind in {"measured", "config", "assumption"}, i
        assert i.source, i
    measured = [i for i in model.INPUTS if i.kind == "measured"]
    assert all("BENCHMARKS.md" in i.source or "docs/" in i.source or i.source.startswith("same")
               for i in measured)


def test_the_reference_fleet_reproduces_the_redis_figure_in_benchmarks_md():
    # BENCHMARKS.md: "<= 68.2 GiB for the fleet" of 50 x 200 x 6 series, 30 days.
    assert round(model.model(1)["redis_bytes"] / model.GIB, 1) == 68.2
