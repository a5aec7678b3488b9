"""Strategy classes the test server's admin "configured" (a server-side folder)."""

from __future__ import annotations

import time

import numpy as np

from bt_core import Strategy
from bt_core.indicators import sma


class PyCross(Strategy):
    """Python SMA cross: buys on a golden cross, closes on a death cross."""

    fast = 10
    slow = 30
    order_size = 100.0
    long_only = True
    label = "x"

    def on_start(self):
        self.f = self.I(sma, self.data.close, self.fast)
        self.s = self.I(sma, self.data.close, self.slow)
        self.warmup = self.slow

    def next(self, bar):
        if self.f.crossed_above(self.s) and self.position == 0:
            self.buy(size=self.order_size)
        elif self.f.crossed_below(self.s) and self.position > 0:
            self.close()


class Boom(Strategy):
    """Raises in next() at bar ``at_bar``."""

    at_bar = 20

    def next(self, bar):
        if bar.i >= self.at_bar:
            raise ValueError("boom")


class Slow(Strategy):
    """Sleeps on every bar: a run that takes long."""

    delay = 0.02

    def next(self, bar):
        time.sleep(self.delay)


class Hog(Strategy):
    """Allocates ``mb`` MiB at the start."""

    mb = 4096

    def on_start(self):
        self.blob = np.ones(self.mb * 1024 * 1024 // 8)


class Nap(Strategy):
    """Sleeps ``seconds`` before its run: each trial of an optimisation takes that long."""

    seconds = 0.3

    def on_start(self):
        time.sleep(self.seconds)

    def next(self, bar):
        return None


class HogHold(Strategy):
    """Allocates ``mb`` MiB at the start and keeps it ``hold`` seconds before running."""

    mb = 400
    hold = 3.0

    def on_start(self):
        self.blob = np.ones(self.mb * 1024 * 1024 // 8)
        time.sleep(self.hold)
