"""Search spaces: integer and float ranges (linear or log), categorical choices, and the
constraint that keeps a parameter set out before anything runs.

A space is a mapping of parameter name -> dimension, where a dimension is an :class:`Int`,
:class:`Float` or :class:`Categorical`, or a shorthand: a ``range``, a list or tuple of
values, a single value (fixed), or range text as on the command line (:func:`parse_dimension`:
``"5:50:5"``, ``"0.1:0.9:0.2"``, ``"log:0.001:1"``, ``"a,b,c"``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bt_core.errors import ParameterError

Params = dict[str, Any]
Constraint = Callable[[Params], bool]


def _plain_number(name: str, what: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.number)):
        raise ParameterError(
            f"parameter {name}: {what} must be a number, got {v!r}", parameter=name
        )
    f = float(v)
    if not math.isfinite(f):
        raise ParameterError(f"parameter {name}: {what} must be finite, got {v!r}", parameter=name)
    return f


@dataclass(frozen=True)
class Int:
    """Integers from ``low`` to ``high`` inclusive, every ``step`` (grid) or drawn uniformly
    (log-uniformly when ``log``) by random and Bayesian search."""

    low: int
    high: int
    step: int = 1
    log: bool = False

    def check(self, name: str) -> None:
        for what, v in (("low", self.low), ("high", self.high), ("step", self.step)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise ParameterError(
                    f"parameter {name}: {what} must be an integer, got {v!r}", parameter=name
                )
        if self.step <= 0:
            raise ParameterError(
                f"parameter {name}: step must be > 0, got {self.step}", parameter=name
            )
        if self.low > self.high:
            raise ParameterError(
                f"parameter {name}: empty range, low {self.low} > high {self.high}",
                parameter=name,
            )
        if self.log and (self.low <= 0 or self.step != 1):
            raise ParameterError(
                f"parameter {name}: a log range needs low > 0 and step 1", parameter=name
            )

    def values(self, name: str) -> list[Any]:
        if self.log:
            raise ParameterError(
                f"parameter {name}: a log range has no grid; give a list or use "
                "method='random'/'bayes'",
                parameter=name,
            )
        return list(range(int(self.low), int(self.high) + 1, int(self.step)))

    def sample(self, rng: np.random.Generator) -> int:
        if self.log:
            x = math.exp(rng.uniform(math.log(self.low), math.log(self.high + 1)))
            return int(min(self.high, max(self.low, math.floor(x))))
        k = int(rng.integers(0, (self.high - self.low) // self.step + 1))
        return int(self.low + k * self.step)

    def suggest(self, trial: Any, name: str) -> int:
        return int(trial.suggest_int(name, self.low, self.high, step=self.step, log=self.log))


@dataclass(frozen=True)
class Float:
    """Floats from ``low`` to ``high``: every ``step`` (grid, inclusive), or drawn uniformly
    (log-uniformly when ``log``). A float range without a step has no grid."""

    low: float
    high: float
    step: float | None = None
    log: bool = False

    def check(self, name: str) -> None:
        low = _plain_number(name, "low", self.low)
        high = _plain_number(name, "high", self.high)
        if self.step is not None and _plain_number(name, "step", self.step) <= 0:
            raise ParameterError(
                f"parameter {name}: step must be > 0, got {self.step}", parameter=name
            )
        if low > high:
            raise ParameterError(
                f"parameter {name}: empty range, low {low} > high {high}", parameter=name
            )
        if self.log and (low <= 0 or self.step is not None):
            raise ParameterError(
                f"parameter {name}: a log range needs low > 0 and no step", parameter=name
            )

    def values(self, name: str) -> list[Any]:
        if self.step is None:
            raise ParameterError(
                f"parameter {name}: a float range needs a step for a grid "
                "(e.g. 0.1:0.9:0.1), or use method='random'/'bayes'",
                parameter=name,
            )
        n = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        # Each value from low by multiplication (no accumulated drift), rounded to the
        # precision the user wrote so that 0.1:0.3:0.1 gives 0.3, not 0.30000000000000004.
        digits = max(_decimals(self.low), _decimals(self.step))
        return [round(self.low + k * self.step, digits) for k in range(n)]

    def sample(self, rng: np.random.Generator) -> float:
        if self.log:
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        if self.step is not None:
            return float(rng.choice(self.values("")))
        return float(rng.uniform(self.low, self.high))

    def suggest(self, trial: Any, name: str) -> float:
        return float(trial.suggest_float(name, self.low, self.high, step=self.step, log=self.log))


def _decimals(x: float) -> int:
    text = repr(float(x))
    if "e" in text:
        mantissa, exp = text.split("e")
        frac = mantissa.split(".")[1] if "." in mantissa else ""
        return max(0, len(frac.rstrip("0")) - int(exp))
    return len(text.split(".")[1].rstrip("0")) if "." in text else 0


@dataclass(frozen=True)
class Categorical:
    """One of ``choices`` (numbers, strings, bools, None)."""

    choices: tuple[Any, ...]

    def __init__(self, choices: Sequence[Any]) -> None:
        object.__setattr__(self, "choices", tuple(choices))

    def check(self, name: str) -> None:
        if not self.choices:
            raise ParameterError(f"parameter {name}: no values to choose from", parameter=name)
        for c in self.choices:
            if isinstance(c, (float, np.floating)) and not math.isfinite(c):
                raise ParameterError(f"parameter {name}: value {c!r} is not finite", parameter=name)

    def values(self, name: str) -> list[Any]:
        return list(self.choices)

    def sample(self, rng: np.random.Generator) -> Any:
        return self.choices[int(rng.integers(0, len(self.choices)))]

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.choices))


Dimension = Int | Float | Categorical


def _number_text(name: str, text: str) -> int | float:
    t = text.strip()
    try:
        return int(t)
    except ValueError:
        pass
    try:
        f = float(t)
    except ValueError:
        raise ParameterError(
            f"parameter {name}: {text!r} is not a number in range {name}=...", parameter=name
        ) from None
    if not math.isfinite(f):
        raise ParameterError(f"parameter {name}: {text!r} is not finite", parameter=name)
    return f


def _value_text(text: str) -> Any:
    t = text.strip()
    lowered = t.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        return t


def parse_dimension(name: str, text: str) -> Dimension:
    """Range text -> a dimension.

    ``low:high:step`` (inclusive; integers when all three are, else floats), ``low:high``
    (integers: step 1; floats: a continuous range), ``log:low:high`` (log-uniform),
    ``a,b,c`` (a list; numbers, ``true``/``false``, ``none`` or text), or one value.
    """
    raw = text.strip()
    if not raw:
        raise ParameterError(f"parameter {name}: empty range", parameter=name)
    if ":" in raw:
        parts = raw.split(":")
        log = parts[0].strip().lower() == "log"
        if log:
            parts = parts[1:]
        if len(parts) not in (2, 3) or any(not p.strip() for p in parts):
            raise ParameterError(
                f"parameter {name}: bad range {text!r}; expected low:high[:step] or log:low:high",
                parameter=name,
            )
        nums = [_number_text(name, p) for p in parts]
        if log and len(nums) == 3:
            raise ParameterError(
                f"parameter {name}: a log range takes no step ({text!r})", parameter=name
            )
        dim: Dimension
        if all(isinstance(n, int) for n in nums) and not log:
            dim = Int(int(nums[0]), int(nums[1]), int(nums[2]) if len(nums) == 3 else 1)
        elif all(isinstance(n, int) for n in nums):
            dim = Int(int(nums[0]), int(nums[1]), 1, log=True)
        else:
            dim = Float(
                float(nums[0]), float(nums[1]), float(nums[2]) if len(nums) == 3 else None, log
            )
        dim.check(name)
        return dim
    values = [_value_text(v) for v in raw.split(",")]
    if any(v == "" for v in values):
        raise ParameterError(f"parameter {name}: empty value in {text!r}", parameter=name)
    return Categorical(values)


def as_dimension(name: str, spec: Any) -> Dimension:
    """A dimension from any accepted form (see the module docstring)."""
    if isinstance(spec, (Int, Float, Categorical)):
        spec.check(name)
        return spec
    if isinstance(spec, str):
        return parse_dimension(name, spec)
    if isinstance(spec, range):
        if len(spec) == 0:
            raise ParameterError(f"parameter {name}: empty range {spec!r}", parameter=name)
        if spec.step < 0:
            return Categorical(list(spec))
        dim: Dimension = Int(spec.start, spec[-1], spec.step)
        dim.check(name)
        return dim
    if isinstance(spec, (list, tuple, np.ndarray)):
        values = [v.item() if isinstance(v, np.generic) else v for v in spec]
        dim = Categorical(values)
        dim.check(name)
        return dim
    dim = Categorical([spec])
    dim.check(name)
    return dim


class Space:
    """Named dimensions, in the order given (the grid's order: the last varies fastest)."""

    def __init__(self, spec: Mapping[str, Any] | Space) -> None:
        if isinstance(spec, Space):
            self.dims: dict[str, Dimension] = dict(spec.dims)
            return
        if not isinstance(spec, Mapping):
            raise ParameterError(
                f"space must be a mapping of parameter name -> range/values, got "
                f"{type(spec).__name__}",
                parameter="space",
            )
        if not spec:
            raise ParameterError(
                "the search space is empty: give at least one parameter", parameter="space"
            )
        self.dims = {}
        for name, s in spec.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ParameterError(f"bad parameter name {name!r}", parameter=str(name))
            self.dims[name] = as_dimension(name, s)

    @classmethod
    def from_strings(cls, items: Sequence[str]) -> Space:
        """``["fast=5:50:5", "slow=20:200:10"]`` (the CLI's ``--param`` form)."""
        spec: dict[str, Dimension] = {}
        for item in items:
            key, sep, raw = item.partition("=")
            key = key.strip()
            if not sep or not key:
                raise ParameterError(
                    f"--param expects name=range (e.g. fast=5:50:5), got {item!r}",
                    parameter=key or item,
                )
            if key in spec:
                raise ParameterError(f"parameter {key} given twice", parameter=key)
            spec[key] = parse_dimension(key, raw)
        return cls(spec)

    @property
    def names(self) -> list[str]:
        return list(self.dims)

    def check_known(self, known: Sequence[str], strategy: str) -> None:
        unknown = [n for n in self.dims if n not in known]
        if unknown:
            raise ParameterError(
                f"unknown parameter(s) {unknown} for {strategy}; its parameters are: "
                f"{', '.join(sorted(known)) or 'none'}",
                parameter=unknown[0],
            )

    def grid_size(self) -> int:
        return math.prod(len(d.values(n)) for n, d in self.dims.items())

    def grid(self) -> Iterator[Params]:
        """Every combination (Cartesian product), the last dimension varying fastest."""
        axes = [(n, d.values(n)) for n, d in self.dims.items()]

        def rec(i: int, acc: Params) -> Iterator[Params]:
            if i == len(axes):
                yield dict(acc)
                return
            name, values = axes[i]
            for v in values:
                acc[name] = v
                yield from rec(i + 1, acc)
            acc.pop(name, None)

        return rec(0, {})

    def sample(self, rng: np.random.Generator) -> Params:
        return {n: d.sample(rng) for n, d in self.dims.items()}

    def suggest(self, trial: Any) -> Params:
        return {n: d.suggest(trial, n) for n, d in self.dims.items()}

    def __repr__(self) -> str:
        return f"Space({self.dims!r})"


def feasible(constraint: Constraint | None, params: Params) -> bool:
    """Does ``params`` satisfy ``constraint``? An exception in it is the user's bug: raised
    as a ParameterError naming the parameter set."""
    if constraint is None:
        return True
    try:
        return bool(constraint(params))
    except Exception as e:
        raise ParameterError(
            f"the constraint raised {type(e).__name__} for {params}: {e}", parameter="constraint"
        ) from e


__all__ = [
    "Categorical",
    "Constraint",
    "Dimension",
    "Float",
    "Int",
    "Params",
    "Space",
    "as_dimension",
    "feasible",
    "parse_dimension",
]
