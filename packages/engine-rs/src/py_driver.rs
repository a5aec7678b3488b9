//! The Python strategy as a driver of the core's one bar loop: `next(bar)` once per bar,
//! `on_order`/`on_trade` on events (only when the strategy defines them), progress every k
//! bars. A Python exception stops the loop; it is kept here and re-raised as a
//! `StrategyError` that names the callback and the bar.
//!
//! While Python code runs, the broker the loop lent us is reachable through
//! `Engine::with_live` (the strategy calls `engine.position(...)`, `engine.submit(...)`);
//! Rust code here never touches its `&mut Broker` at the same time.

use bt_engine_core::drivers::Driver;
use bt_engine_core::time::format_ts;
use bt_engine_core::{Bars, Broker, EngineError, Event, Result};
use std::cell::Cell;

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::convert::PyOrderRequest;
use crate::engine::Engine;
use crate::errors::{attach_fields, strategy_error, to_py, StrategyError};
use crate::views::{FillInfo, OrderInfo};

pub struct Callbacks<'py> {
    pub next: Bound<'py, PyAny>,
    /// Called with `next`'s return value when it is not None; returns OrderRequests.
    pub normalize: Bound<'py, PyAny>,
    pub on_order: Option<Bound<'py, PyAny>>,
    pub on_trade: Option<Bound<'py, PyAny>>,
    pub progress: Option<Bound<'py, PyAny>>,
}

pub struct PyDriver<'a, 'py> {
    pub engine: &'a Engine,
    pub cb: Callbacks<'py>,
    /// `(bar,)`: built once, reused for every call of `next`.
    pub args: Bound<'py, PyTuple>,
    pub symbols: &'a [String],
    pub ts: &'a [i64],
    /// Events dispatched to callbacks within one bar before the run stops: callbacks that
    /// answer every event with a new order would otherwise loop forever within the bar.
    pub max_events_per_bar: usize,
    /// Events dispatched so far on bar `events_bar`.
    pub events_seen: Cell<usize>,
    pub events_bar: Cell<usize>,
    /// The Python error that stopped the run, if any.
    pub error: Option<PyErr>,
}

impl<'py> PyDriver<'_, 'py> {
    fn py(&self) -> Python<'py> {
        self.args.py()
    }

    /// `e` raised in `phase` at bar `t`, as a StrategyError (kept as is if it already is one).
    fn wrap(&self, phase: &str, t: usize, e: PyErr) -> PyErr {
        let py = self.py();
        if e.is_instance_of::<StrategyError>(py) {
            return e;
        }
        strategy_error(py, phase, t, format_ts(self.ts[t]), e)
    }

    /// Keep `e` and stop the loop.
    fn stop(&mut self, e: PyErr) -> EngineError {
        self.error = Some(e);
        EngineError::driver("the strategy raised")
    }

    fn decide(&self, t: usize) -> PyResult<()> {
        let ret = self
            .cb
            .next
            .call1(&self.args)
            .map_err(|e| self.wrap("next", t, e))?;
        if ret.is_none() {
            return Ok(());
        }
        let reqs = self
            .cb
            .normalize
            .call1((ret,))
            .map_err(|e| self.wrap("next", t, e))?;
        for item in reqs.try_iter()? {
            let item = item?;
            let req = item.cast::<PyOrderRequest>()?.get().inner;
            self.engine
                .with_broker(|b| b.submit(req))?
                .map_err(|e| self.wrap("next", t, to_py(e)))?;
        }
        Ok(())
    }

    fn dispatch(&self, t: usize) -> PyResult<()> {
        if self.events_bar.replace(t) != t {
            self.events_seen.set(0);
        }
        // Callbacks may submit or cancel orders, which records new events: loop until quiet.
        loop {
            let events = self.engine.with_broker(|b| b.drain_events())?;
            if events.is_empty() {
                return Ok(());
            }
            let seen = self.events_seen.get() + events.len();
            self.events_seen.set(seen);
            if seen > self.max_events_per_bar {
                let py = self.py();
                let err = StrategyError::new_err(format!(
                    "strategy callbacks produced more than {} order/fill events within bar {t} \
                     ({}): do on_order/on_trade submit an order for every event? \
                     (the limit is RunConfig.max_events_per_bar)",
                    self.max_events_per_bar,
                    format_ts(self.ts[t])
                ));
                attach_fields(
                    py,
                    &err,
                    "strategy",
                    &[
                        ("phase", "on_order/on_trade".to_string()),
                        ("bar", t.to_string()),
                        ("time", format_ts(self.ts[t])),
                        ("check", "max_events_per_bar".to_string()),
                    ],
                );
                return Err(err);
            }
            for ev in events {
                match ev {
                    Event::Order {
                        order,
                        what,
                        filled,
                    } => {
                        if let Some(f) = &self.cb.on_order {
                            let info = self.engine.with_broker(|b| {
                                OrderInfo::from_event(
                                    &b.orders()[order],
                                    self.symbols,
                                    what,
                                    filled,
                                )
                            })?;
                            f.call1((info,)).map_err(|e| self.wrap("on_order", t, e))?;
                        }
                    }
                    Event::Fill(i) => {
                        if let Some(f) = &self.cb.on_trade {
                            let info = self.engine.with_broker(|b| {
                                let fill = &b.fills()[i];
                                FillInfo::from_fill(fill, self.symbols, self.ts[fill.bar])
                            })?;
                            f.call1((info,)).map_err(|e| self.wrap("on_trade", t, e))?;
                        }
                    }
                }
            }
        }
    }
}

impl Driver for PyDriver<'_, '_> {
    fn on_bar(&mut self, t: usize, _bars: &Bars, broker: &mut Broker) -> Result<()> {
        self.engine.set_now(t);
        match self.engine.with_live(broker, || self.decide(t)) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.stop(e)),
        }
    }

    fn wants_events(&self) -> bool {
        self.cb.on_order.is_some() || self.cb.on_trade.is_some()
    }

    fn on_events(&mut self, t: usize, broker: &mut Broker) -> Result<()> {
        self.engine.set_now(t);
        match self.engine.with_live(broker, || self.dispatch(t)) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.stop(e)),
        }
    }

    fn on_progress(&mut self, done: usize, _total: usize) -> Result<()> {
        let Some(p) = &self.cb.progress else {
            return Ok(());
        };
        match p.call1((done,)) {
            Ok(_) => Ok(()),
            Err(e) => Err(self.stop(e)),
        }
    }
}
