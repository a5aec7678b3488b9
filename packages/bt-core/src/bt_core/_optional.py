"""Optional dependencies, imported when a feature first needs them.

A missing one raises an ImportError that names the feature, the package and the bt-core extra
that installs it (``pip install 'bt-core[report]'``), so a user of the minimal install
(``bt-core`` + ``bt-engine``) learns what to install instead of reading a bare
``No module named 'plotly'``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: extra name -> the distributions it installs (as in bt-core's pyproject.toml).
EXTRAS: dict[str, str] = {"report": "plotly", "optimize": "optuna", "ray": "ray"}


def require(module: str, *, extra: str, feature: str) -> ModuleType:
    """Import ``module`` (e.g. ``"plotly.graph_objects"``) or raise an ImportError saying that
    ``feature`` needs the bt-core ``extra``."""
    if extra not in EXTRAS:
        raise ValueError(f"unknown bt-core extra {extra!r}; known: {sorted(EXTRAS)}")
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        raise ImportError(
            f"{feature} needs {EXTRAS[extra]}, an optional dependency of bt-core that is not "
            f"installed: pip install 'bt-core[{extra}]'",
            name=top,
        ) from exc
