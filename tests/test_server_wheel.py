"""bt-server's wheel ships the sample bars the server offers as the dataset ``sample``: built
as CI builds it (sdist, then the wheel from the sdist) and straight from the checkout, the wheel
holds ``bt_server/sample.csv``, byte for byte the repository's ``examples/data/sample.csv``.
(``.ci/wheels`` proves that the installed server serves it.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "data" / "sample.csv"
UV = shutil.which("uv")

pytestmark = pytest.mark.skipif(UV is None, reason="needs uv to build the wheel")


def build(out: Path, *args: str) -> None:
    assert UV is not None
    subprocess.run(
        [UV, "build", *args, "-o", str(out), str(ROOT / "packages" / "bt-server")],
        check=True,
        capture_output=True,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
    )


def wheel_sample(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as z:
        return z.read("bt_server/sample.csv")


def test_wheel_built_from_the_sdist_ships_the_sample(tmp_path: Path) -> None:
    build(tmp_path)  # the sdist, then the wheel from the unpacked sdist
    (sdist,) = tmp_path.glob("bt_server-*.tar.gz")
    with tarfile.open(sdist) as t:
        member = next(m for m in t.getnames() if m.endswith("/src/bt_server/sample.csv"))
        f = t.extractfile(member)
        assert f is not None
        assert f.read() == SAMPLE.read_bytes()
    (wheel,) = tmp_path.glob("bt_server-*.whl")
    assert wheel_sample(wheel) == SAMPLE.read_bytes()


def test_wheel_built_from_the_checkout_ships_the_sample(tmp_path: Path) -> None:
    build(tmp_path, "--wheel")
    (wheel,) = tmp_path.glob("bt_server-*.whl")
    assert wheel_sample(wheel) == SAMPLE.read_bytes()
    # Only the one data file is added: the package is otherwise code and py.typed.
    with zipfile.ZipFile(wheel) as z:
        data = [n for n in z.namelist() if n.startswith("bt_server/") and not n.endswith(".py")]
    assert sorted(data) == ["bt_server/py.typed", "bt_server/sample.csv"]
