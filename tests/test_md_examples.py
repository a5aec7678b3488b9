"""The python examples of the READMEs and of docs/ run (tests/md_examples.py says how blocks are
found and how one is marked as not runnable), and every package README has a runnable one.

Each file runs in its own interpreter, in a temporary working directory that holds a link to
the repository's ``examples/`` folder: examples read ``examples/data/sample.csv`` as a user in a
clone would, and whatever they write lands in the temporary directory.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_spec = importlib.util.spec_from_file_location("md_examples", ROOT / "tests" / "md_examples.py")
assert _spec and _spec.loader
md = importlib.util.module_from_spec(_spec)
sys.modules["md_examples"] = md  # dataclasses look their module up
_spec.loader.exec_module(md)

PACKAGE_READMES = sorted((ROOT / "packages").glob("*/README.md"))
APP_READMES = sorted((ROOT / "apps").glob("*/README.md"))
DOCS = sorted((ROOT / "docs").rglob("*.md"))
FILES = [ROOT / "README.md", *PACKAGE_READMES, *APP_READMES, *DOCS]


def rel(p: Path) -> str:
    return str(p.relative_to(ROOT))


def run_file(path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    (cwd / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    return subprocess.run(
        [sys.executable, str(ROOT / "tests" / "md_examples.py"), str(path)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize(
    "path", [p for p in FILES if any(b.runnable for b in md.python_blocks(p))], ids=rel
)
def test_examples_run(path: Path, tmp_path: Path) -> None:
    res = run_file(path, tmp_path)
    n = sum(b.runnable for b in md.python_blocks(path))
    assert res.returncode == 0, f"{rel(path)}:\n{res.stdout}\n{res.stderr}"
    assert f"{n} example block(s) ran" in res.stdout


@pytest.mark.parametrize("path", PACKAGE_READMES, ids=rel)
def test_every_package_readme_has_a_runnable_example(path: Path) -> None:
    assert any(b.runnable for b in md.python_blocks(path)), f"{rel(path)} has no runnable example"


@pytest.mark.parametrize("path", FILES, ids=rel)
def test_every_not_run_block_says_why(path: Path) -> None:
    for b in md.python_blocks(path):  # raises on a stray or misplaced marker
        assert b.runnable or len(b.skip_reason or "") >= 10, f"{rel(path)}:{b.line}"


# ----- the extractor itself ------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "x.md"
    p.write_text(text)
    return p


def test_blocks_markers_and_languages(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "text\n```python\na = 1\n```\n\n```bash\nexit 1\n```\n"
        "<!-- not-run: needs a server -->\n```python\nraise SystemExit(3)\n```\n"
        "````py\nb = a + 1\n```\nstill inside\n````\n",
    )
    blocks = md.python_blocks(p)
    assert [(b.line, b.runnable) for b in blocks] == [(2, True), (10, False), (13, True)]
    assert blocks[1].skip_reason == "needs a server"
    assert blocks[2].code == "b = a + 1\n```\nstill inside\n"  # a shorter fence does not close
    assert md.script(p).splitlines()[13] == "b = a + 1"  # markdown line 14, same line


def test_a_failing_example_points_at_its_markdown_line(tmp_path: Path) -> None:
    p = write(tmp_path, "# t\n\n```python\nx = 1\n\nraise ValueError('boom')\n```\n")
    with pytest.raises(ValueError, match="boom") as e:
        md.run(p)
    assert e.traceback[-1].lineno + 1 == 6 and str(e.traceback[-1].path) == str(p)


@pytest.mark.parametrize(
    "text, match",
    [
        ("<!-- not-run: why -->\n\n```python\nx\n```\n", "right before"),
        ("<!-- not-run: why -->\n```bash\nx\n```\n", "before a 'bash' block"),
        ("text\n<!-- not-run: why -->\n", "without a python block"),
        ("```python\nx = 1\n", "never closed"),
    ],
)
def test_misplaced_markers_and_open_fences_are_errors(
    tmp_path: Path, text: str, match: str
) -> None:
    with pytest.raises(md.ExampleError, match=match):
        md.python_blocks(write(tmp_path, text))
