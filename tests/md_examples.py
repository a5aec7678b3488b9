"""The python examples of our Markdown files (package READMEs, docs/), extracted and run.

Every fenced block whose info string is ``python`` (or ``py``) is an example and is run; the
blocks of one file run in order in one namespace, as one script, so a later block may use what
an earlier one defined. A block that cannot run (it needs a running server, a Windows-only
provider, names defined elsewhere, ...) is marked by an HTML comment on the line right before
its fence, with the reason::

    <!-- not-run: needs a MiniQMT client on Windows -->
    ```python
    ...
    ```

The comment is invisible on GitHub and in the docs site. A marker that is not directly followed
by a python fence is an error, so markers cannot drift away from their blocks. Blocks in other
languages (bash, toml, text) are never run.

Standard library only: the wheelhouse CI (``.ci/wheels``) runs it in fresh virtual environments
that hold just the wheels under test::

    python tests/md_examples.py packages/bt-analysis/README.md   # run one file's examples
    python tests/md_examples.py --list docs/*.md                # show what would run
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

MARKER = re.compile(r"^\s*<!--\s*not-run:\s*(?P<reason>\S.*?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
PYTHON = {"python", "py", "python3"}


class ExampleError(ValueError):
    """A Markdown file whose examples cannot be extracted (an unclosed fence, a stray marker)."""


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    code: str
    skip_reason: str | None

    @property
    def runnable(self) -> bool:
        return self.skip_reason is None


def _closes(line: str, fence: str) -> bool:
    """CommonMark: a closing fence is the opening's character, at least as many, alone."""
    text = line.strip()
    return len(text) >= len(fence) and set(text) == {fence[0]}


def python_blocks(path: Path) -> list[Block]:
    """Every python block of ``path`` in order, with the not-run reason of marked ones."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    pending: tuple[int, str] | None = None  # (line, reason) of a marker awaiting its fence
    i = 0
    while i < len(lines):
        m = MARKER.match(lines[i])
        if m:
            if pending is not None:
                raise ExampleError(f"{path}:{pending[0]}: not-run marker without a python block")
            pending = (i + 1, m["reason"])
            i += 1
            continue
        f = FENCE.match(lines[i])
        if not f:
            if pending is not None:
                raise ExampleError(
                    f"{path}:{pending[0]}: a not-run marker must be on the line right before "
                    "a ```python fence"
                )
            i += 1
            continue
        start, fence, indent = i, f["fence"], f["indent"]
        lang = (f["info"].split() or [""])[0].lower()
        body: list[str] = []
        i += 1
        while i < len(lines) and not _closes(lines[i], fence):
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        if i == len(lines):
            raise ExampleError(f"{path}:{start + 1}: the {fence} fence is never closed")
        i += 1  # the closing fence
        if lang in PYTHON:
            reason = pending[1] if pending is not None else None
            out.append(Block(path, start + 1, "\n".join(body) + "\n", reason))
        elif pending is not None:
            raise ExampleError(f"{path}:{pending[0]}: not-run marker before a {lang!r} block")
        pending = None
    if pending is not None:
        raise ExampleError(f"{path}:{pending[0]}: not-run marker without a python block")
    return out


def script(path: Path) -> str:
    """The runnable blocks of ``path`` as one script; each block keeps its line numbers, so a
    traceback points at the Markdown line."""
    lines: list[str] = []
    for b in python_blocks(path):
        if not b.runnable:
            continue
        lines.extend([""] * (b.line - len(lines)))  # pad: block line k is script line b.line+k
        lines.extend(b.code.splitlines())
    return "\n".join(lines) + "\n"


def run(path: Path) -> int:
    """Run the runnable examples of ``path`` as ``__main__``; returns how many blocks ran."""
    n = sum(b.runnable for b in python_blocks(path))
    code = compile(script(path), str(path), "exec")
    exec(code, {"__name__": "__main__", "__file__": str(path)})
    return n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--list", action="store_true", help="list the blocks, run nothing")
    args = parser.parse_args(argv)
    for path in args.files:
        if args.list:
            for b in python_blocks(path):
                state = "run" if b.runnable else f"not run ({b.skip_reason})"
                print(f"{path}:{b.line}: {state}")
            continue
        n = run(path)
        print(f"{path}: {n} example block(s) ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
