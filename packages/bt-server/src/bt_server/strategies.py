"""The strategies a client may run: bt-core's built-ins and the Strategy classes found in the
modules and folders the admin configured. A client names one by id; the server never takes
code, module names or file paths from a request.

Each strategy's parameters come from its defaults (``BUILTINS`` or the class attributes that
``Strategy.parameters()`` reports) and are checked strictly against their types: ``"10"`` is
not an integer, ``1`` is not a boolean, NaN and infinities are not numbers.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import logging
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AllowInfNan,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    create_model,
)

import bt_core
from bt_core.loading import strategy_classes

log = logging.getLogger("bt_server")

_Float = Annotated[float, Strict(), AllowInfNan(False)]
_Str = Annotated[str, Strict(), StringConstraints(max_length=10_000)]
_Scalar = Annotated[bool, Strict()] | Annotated[int, Strict()] | _Float | _Str | None
_Positive = Annotated[float, Strict(), AllowInfNan(False), Field(gt=0)]

#: Types of the built-ins' parameters whose default (None) says nothing: as bt-core checks
#: them, ``size`` (units per entry) and ``pct`` (fraction of equity) are numbers > 0 or null.
BUILTIN_TYPES: dict[str, dict[str, Any]] = {
    "sma_cross": {"size": _Positive | None, "pct": _Positive | None},
}


def _annotation(value: Any) -> Any:
    """The strict type a parameter with this default accepts."""
    if isinstance(value, bool):
        return Annotated[bool, Strict()]
    if isinstance(value, int):
        return Annotated[int, Strict()]
    if isinstance(value, float):
        return _Float
    if isinstance(value, str):
        return _Str
    if isinstance(value, (list, tuple)):
        return list[_Scalar]  # type: ignore[valid-type]
    # A None (or other) default says nothing about the type: any JSON scalar.
    return _Scalar


def _json_default(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if value is None or isinstance(value, (bool, int, float, str, list)):
        return value
    return None


@dataclass
class StrategyInfo:
    """One runnable strategy."""

    id: str
    kind: str  # "builtin" or "python"
    name: str
    description: str
    defaults: dict[str, Any]
    cls: type[bt_core.Strategy] | None = field(default=None, repr=False)
    #: Parameter types that override the ones read from the defaults.
    types: dict[str, Any] = field(default_factory=dict, repr=False)
    _model: type[BaseModel] | None = field(default=None, repr=False)

    @property
    def params_model(self) -> type[BaseModel]:
        if self._model is None:
            fields: dict[str, Any] = {
                k: (self.types.get(k, _annotation(v)), _json_default(v))
                for k, v in self.defaults.items()
            }
            self._model = create_model(  # type: ignore[call-overload]
                f"Params_{self.name}",
                __config__=ConfigDict(extra="forbid", strict=True),
                **fields,
            )
        return self._model  # type: ignore[return-value]

    def schema(self) -> dict[str, Any]:
        """JSON schema of the parameters (types and defaults from the class)."""
        s = self.params_model.model_json_schema()
        s["title"] = self.name
        return s

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The given parameters, type-checked (raises pydantic's ValidationError); only those
        given are returned, the strategy keeps its own defaults for the rest."""
        model = self.params_model.model_validate(dict(params))
        return model.model_dump(exclude_unset=True)

    def target(self) -> type[bt_core.Strategy] | str:
        """What :class:`bt_core.Backtest` takes."""
        return self.cls if self.cls is not None else self.id

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "description": self.description,
            "parameters": self.schema(),
        }


def _doc(obj: Any) -> str:
    text = inspect.getdoc(obj) or ""
    return text.strip().split("\n\n")[0].replace("\n", " ")


def _classes(module: Any) -> list[type[bt_core.Strategy]]:
    # Sorted by class name, as inspect.getmembers listed them.
    return list(strategy_classes(module).values())


def _load_file(path: Path) -> Any:
    # A private module name per folder, so two folders' `strategies.py` do not collide.
    tag = hashlib.sha1(str(path.parent.resolve()).encode()).hexdigest()[:8]
    name = f"_bt_server_strategies_{tag}_{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


class StrategyRegistry:
    """Every strategy this server offers, by id."""

    def __init__(self, modules: Iterable[str] = (), dirs: Iterable[str | Path] = ()) -> None:
        self._items: dict[str, StrategyInfo] = {}
        self.problems: list[str] = []
        for name, defaults in bt_core.BUILTINS.items():
            self._items[name] = StrategyInfo(
                id=name,
                kind="builtin",
                name=name,
                description=f"built-in Rust strategy {name}",
                defaults=dict(defaults),
                types=dict(BUILTIN_TYPES.get(name, {})),
            )
        for mod_name in modules:
            try:
                module = importlib.import_module(mod_name)
            except Exception as e:  # a broken module must not take the server down
                self._problem(f"strategy module {mod_name}: {type(e).__name__}: {e}")
                continue
            for cls in _classes(module):
                self._add(f"{mod_name}.{cls.__name__}", cls)
        for d in dirs:
            folder = Path(d)
            if not folder.is_dir():
                self._problem(f"strategy folder {folder} does not exist")
                continue
            for path in sorted(folder.glob("*.py")):
                if path.name.startswith("_"):
                    continue
                try:
                    module = _load_file(path)
                except Exception as e:
                    self._problem(f"strategy file {path}: {type(e).__name__}: {e}")
                    continue
                for cls in _classes(module):
                    self._add(f"{path.stem}.{cls.__name__}", cls)

    def _problem(self, text: str) -> None:
        self.problems.append(text)
        log.warning(text)

    def _add(self, sid: str, cls: type[bt_core.Strategy]) -> None:
        if sid in self._items:
            self._problem(f"strategy id {sid} is defined twice; keeping the first")
            return
        defaults = cls.parameters()
        self._items[sid] = StrategyInfo(
            id=sid,
            kind="python",
            name=cls.__name__,
            description=_doc(cls),
            defaults=defaults,
            cls=cls,
        )
        try:
            self._items[sid].schema()
        except Exception as e:  # a default that has no JSON type: leave the class out
            del self._items[sid]
            self._problem(f"strategy {sid}: parameters have no JSON schema ({e})")

    def get(self, sid: str) -> StrategyInfo | None:
        return self._items.get(sid)

    def __iter__(self) -> Any:
        return iter(self._items.values())

    def __len__(self) -> int:
        return len(self._items)


__all__ = ["StrategyInfo", "StrategyRegistry"]
