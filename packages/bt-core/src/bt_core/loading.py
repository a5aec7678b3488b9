"""Loading strategies named on a command line (or in a server's or optimizer's settings):
a built-in's name, or a Python file defining a :class:`~bt_core.Strategy` subclass.

A file is imported the way ``python FILE`` would see it: its folder is on ``sys.path`` (a
helper module beside it imports) and it is a module named after the file, so that worker
processes of a parameter sweep can import the same class by name. Every problem is one
:class:`~bt_core.ParameterError` naming the file and, for syntax and import errors, the line.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import traceback
import zlib
from pathlib import Path
from types import ModuleType

from bt_core.backtest import BUILTINS
from bt_core.errors import ParameterError
from bt_core.strategy import Strategy


def _fail(message: str, **fields: object) -> ParameterError:
    return ParameterError(message, parameter="strategy", **fields)


def _module_name(path: Path) -> str:
    """The file's stem when that names no other module, else a name private to this file."""
    stem = path.stem
    if stem.isidentifier():
        loaded = sys.modules.get(stem)
        if loaded is None:
            try:
                spec = importlib.util.find_spec(stem)
            except (ImportError, ValueError):
                spec = None
            if spec is None or (spec.origin and Path(spec.origin).resolve() == path):
                return stem
        else:
            file = getattr(loaded, "__file__", None)
            if file and Path(file).resolve() == path:
                return stem
    return f"_bt_strategy_{zlib.crc32(str(path).encode()):08x}_{stem}"


def _line_in(path: Path, e: BaseException) -> int | None:
    frames = [f for f in traceback.extract_tb(e.__traceback__) if Path(f.filename) == path]
    return frames[-1].lineno if frames else None


def import_strategy_file(path: str | Path) -> ModuleType:
    """Import a strategy file as a module (see the module docstring)."""
    p = Path(path).resolve()
    if not p.is_file():
        raise _fail(f"strategy file not found: {path}")
    folder = str(p.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = _module_name(p)
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, p)
    if spec is None or spec.loader is None:
        raise _fail(f"{path}: cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        del sys.modules[name]
        raise _fail(f"{path}:{e.lineno}: syntax error: {e.msg}", line=e.lineno) from None
    except ImportError as e:
        del sys.modules[name]
        line = _line_in(p, e)
        where = f"{path}:{line}" if line else str(path)
        raise _fail(f"{where}: cannot import: {e}", line=line) from None
    except Exception as e:
        del sys.modules[name]
        line = _line_in(p, e)
        where = f"{path}:{line}" if line else str(path)
        raise _fail(
            f"{where}: {type(e).__name__} while loading the file: {e}", line=line
        ) from None
    return module


def strategy_classes(module: ModuleType) -> dict[str, type[Strategy]]:
    """The Strategy subclasses a module defines (not those it imports)."""
    return {
        n: c
        for n, c in inspect.getmembers(module, inspect.isclass)
        if issubclass(c, Strategy) and c is not Strategy and c.__module__ == module.__name__
    }


def load_strategy(spec: str, class_name: str | None = None) -> type[Strategy] | str:
    """A built-in's name (``sma_cross`` or ``builtin:sma_cross``), or the Strategy class of a
    file (``class_name`` picks one when the file defines several)."""
    name = spec.removeprefix("builtin:")
    if spec.startswith("builtin:") or (name in BUILTINS and not Path(spec).exists()):
        if name not in BUILTINS:
            raise _fail(f"unknown built-in {name!r}; available: {', '.join(BUILTINS)}")
        return name
    if not Path(spec).is_file():
        raise _fail(f"{spec} is neither a Python file nor a built-in ({', '.join(BUILTINS)})")
    found = strategy_classes(import_strategy_file(spec))
    if class_name:
        if class_name not in found:
            raise _fail(
                f"no Strategy subclass {class_name!r} in {spec}; found: "
                f"{', '.join(found) or 'none'}"
            )
        return found[class_name]
    if not found:
        raise _fail(
            f"{spec} defines no Strategy subclass: write `class MyStrategy(Strategy): ...` "
            "(from bt_core import Strategy)"
        )
    if len(found) > 1:
        raise _fail(
            f"{spec} defines {len(found)} Strategy subclasses ({', '.join(found)}); "
            "choose one with --class"
        )
    return next(iter(found.values()))


__all__ = ["import_strategy_file", "load_strategy", "strategy_classes"]
