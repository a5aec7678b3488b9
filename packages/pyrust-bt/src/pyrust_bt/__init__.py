"""pyrust-bt: the meta-distribution. It holds no code of its own; installing it (with extras)
installs the parts: ``bt_core`` and ``bt_engine`` always, ``bt_data``, ``bt_analysis``,
``bt_server`` and ``bt_app`` with ``[data]``, ``[analysis]``, ``[server]``, ``[app]``.

:data:`PARTS` maps each import name to its distribution name, so that a program can say which
parts are installed (:func:`installed`) without knowing that ``bt_data`` ships as
``pyrust-bt-data``.
"""

from __future__ import annotations

from importlib import metadata

__version__ = "0.1.0"

#: import name -> distribution name of every part of pyrust-bt.
PARTS: dict[str, str] = {
    "bt_core": "bt-core",
    "bt_engine": "bt-engine",
    "bt_data": "pyrust-bt-data",
    "bt_analysis": "bt-analysis",
    "bt_server": "bt-server",
    "bt_app": "bt-app",
}


def installed() -> dict[str, str | None]:
    """The version of each part's distribution, or None when it is not installed."""
    out: dict[str, str | None] = {}
    for dist in PARTS.values():
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


__all__ = ["PARTS", "__version__", "installed"]
