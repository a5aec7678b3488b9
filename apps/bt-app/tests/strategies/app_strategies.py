"""Strategies of the app tests' server (its strategy folder)."""

from __future__ import annotations

import time

from bt_core import Strategy


class Slow(Strategy):
    """Sleeps on every bar, so a run stays running long enough to be watched or cancelled."""

    delay = 0.01

    def next(self, bar):
        time.sleep(self.delay)


class Nap(Strategy):
    """Sleeps before each run: every trial of an optimisation takes that long, so the trials
    can be watched arriving."""

    seconds = 0.6
    k = 1

    def on_start(self):
        time.sleep(self.seconds)

    def next(self, bar):
        return None
