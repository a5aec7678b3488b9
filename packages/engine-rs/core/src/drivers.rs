//! The one bar loop, the `Driver` trait every way of deciding implements (Python callbacks
//! in the binding, signal arrays, target weights, built-in strategies), and the Rust drivers.

use crate::broker::Broker;
use crate::data::Bars;
use crate::error::{EngineError, Result};
use crate::indicators::{RollingMean, SeriesScan};
use crate::types::{OrderRequest, Side, Sizing};

/// A decision maker. The one bar loop ([`run_with`]) calls `on_bar` once per bar, after the
/// bar's fills and before its close fills. Drivers that forward order and fill events (the
/// Python driver) say so with `wants_events`; the others pay nothing for events.
pub trait Driver {
    fn on_bar(&mut self, t: usize, bars: &Bars, broker: &mut Broker) -> Result<()>;

    /// Should the broker record events and the loop call [`Driver::on_events`]?
    fn wants_events(&self) -> bool {
        false
    }

    /// Called after each phase of bar `t` (fills at the open, the decision, fills at the
    /// close) while the broker has recorded events; drain them with `Broker::drain_events`.
    fn on_events(&mut self, _t: usize, _broker: &mut Broker) -> Result<()> {
        Ok(())
    }

    /// Called every `RunOptions::progress_every` bars with (bars done, total bars).
    fn on_progress(&mut self, _done: usize, _total: usize) -> Result<()> {
        Ok(())
    }
}

/// How the loop runs: the first bar the driver decides on (earlier bars still fill orders and
/// record equity: a warm-up), and how often progress is reported (0: never).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunOptions {
    pub start: usize,
    pub progress_every: usize,
}

/// Run `driver` over every bar.
pub fn run<D: Driver + ?Sized>(bars: &Bars, broker: &mut Broker, driver: &mut D) -> Result<()> {
    run_with(bars, broker, driver, RunOptions::default())
}

/// The one bar loop every driver runs in.
pub fn run_with<D: Driver + ?Sized>(
    bars: &Bars,
    broker: &mut Broker,
    driver: &mut D,
    opts: RunOptions,
) -> Result<()> {
    if broker.n_symbols() != bars.n_symbols {
        return Err(EngineError::config(format!(
            "broker has {} symbols but the data has {}",
            broker.n_symbols(),
            bars.n_symbols
        )));
    }
    let n = bars.n_bars;
    broker.reserve(n);
    let events = driver.wants_events();
    broker.set_record_events(events);
    for t in 0..n {
        broker.begin_bar(bars, t);
        if events && broker.has_events() {
            driver.on_events(t, broker)?;
        }
        if t >= opts.start {
            driver.on_bar(t, bars, broker)?;
            if events && broker.has_events() {
                driver.on_events(t, broker)?;
            }
        }
        broker.end_bar(bars, t);
        if events && broker.has_events() {
            driver.on_events(t, broker)?;
        }
        if opts.progress_every > 0 && (t + 1) % opts.progress_every == 0 {
            driver.on_progress(t + 1, n)?;
        }
    }
    Ok(())
}

fn check_matrix(name: &str, len: usize, bars: &Bars) -> Result<()> {
    let cells = bars.n_bars * bars.n_symbols;
    if len != cells {
        return Err(EngineError::config(format!(
            "{name} has {len} values, expected {} bars x {} symbols = {cells}",
            bars.n_bars, bars.n_symbols
        )));
    }
    Ok(())
}

/// Entry/exit signal arrays (time x symbols). Flat and entry -> buy `size` (per `sizing`:
/// units, cash value or fraction of equity); long and exit -> sell the whole position. Exits
/// win over entries on the same bar. With short arrays (shorting allowed): flat and short
/// entry -> sell `size`; short and short exit -> buy the whole position back. A long entry
/// wins over a short entry on the same bar.
pub struct Signals<'a> {
    pub entries: &'a [bool],
    pub exits: &'a [bool],
    pub size: f64,
    pub sizing: Sizing,
    pub short_entries: Option<&'a [bool]>,
    pub short_exits: Option<&'a [bool]>,
}

impl Signals<'_> {
    pub fn validate(&self, bars: &Bars, broker: &Broker) -> Result<()> {
        check_matrix("entries", self.entries.len(), bars)?;
        check_matrix("exits", self.exits.len(), bars)?;
        if let Some(se) = self.short_entries {
            check_matrix("short_entries", se.len(), bars)?;
            for (s, inst) in broker.instruments().iter().enumerate() {
                let k = (0..bars.n_bars).find(|&t| se[t * bars.n_symbols + s]);
                if let (false, Some(t)) = (inst.shortable, k) {
                    return Err(EngineError::config(format!(
                        "short entry at bar {t} for {}, which may not be shorted (set allow_short)",
                        inst.name
                    ))
                    .with_field("symbol", inst.name.clone()));
                }
            }
        }
        if let Some(sx) = self.short_exits {
            check_matrix("short_exits", sx.len(), bars)?;
        }
        if !self.size.is_finite() || self.size <= 0.0 {
            return Err(EngineError::config(format!(
                "parameter size must be a finite number > 0, got {}",
                self.size
            )));
        }
        Ok(())
    }
}

impl Driver for Signals<'_> {
    fn on_bar(&mut self, t: usize, bars: &Bars, broker: &mut Broker) -> Result<()> {
        for s in 0..bars.n_symbols {
            let k = bars.idx(t, s);
            if !bars.has_bar(t, s) || broker.has_active_order(s) {
                continue;
            }
            let pos = broker.position(s);
            if pos > 0.0 {
                if self.exits[k] {
                    broker.submit(OrderRequest::market(s, Side::Sell, pos))?;
                }
            } else if pos < 0.0 {
                if self.short_exits.is_some_and(|x| x[k]) {
                    broker.submit(OrderRequest::market(s, Side::Buy, -pos))?;
                }
            } else if self.entries[k] && !self.exits[k] {
                broker.submit(OrderRequest {
                    sizing: self.sizing,
                    ..OrderRequest::market(s, Side::Buy, self.size)
                })?;
            } else if let Some(se) = self.short_entries {
                if se[k] && !self.short_exits.is_some_and(|x| x[k]) {
                    broker.submit(OrderRequest {
                        sizing: self.sizing,
                        ..OrderRequest::market(s, Side::Sell, self.size)
                    })?;
                }
            }
        }
        Ok(())
    }
}

/// Target weights (time x symbols, fraction of equity per symbol). A row that is all NaN
/// means "no rebalance on this bar"; NaN inside a rebalancing row means weight 0. Orders are
/// sized on the decision bar's close and filled by the broker (next open by default); sells
/// are submitted before buys so that they free cash first.
pub struct Weights<'a> {
    pub weights: &'a [f64],
    /// Trades smaller than this many units are skipped (avoids dust orders).
    pub min_trade: f64,
}

impl Weights<'_> {
    /// Weights must be finite; a negative weight needs a shortable symbol; a row's gross
    /// weight (sum of absolute weights) is at most 1 in a cash account (a margin account's
    /// limit is its margin, checked per fill).
    pub fn validate(&self, bars: &Bars, broker: &Broker) -> Result<()> {
        check_matrix("weights", self.weights.len(), bars)?;
        let insts = broker.instruments();
        for (i, w) in self.weights.iter().enumerate() {
            let (t, s) = (i / bars.n_symbols, i % bars.n_symbols);
            if w.is_infinite() {
                return Err(EngineError::config(format!(
                    "weight at bar {t}, symbol {} must be finite, got {w}",
                    insts[s].name
                )));
            }
            if *w < 0.0 && !insts[s].shortable {
                return Err(EngineError::config(format!(
                    "weight at bar {t}, symbol {} is {w} < 0, but it may not be shorted (set allow_short)",
                    insts[s].name
                ))
                .with_field("symbol", insts[s].name.clone()));
            }
        }
        if broker.config().account == crate::config::AccountKind::Cash {
            for t in 0..bars.n_bars {
                let row = &self.weights[t * bars.n_symbols..(t + 1) * bars.n_symbols];
                let total: f64 = row.iter().filter(|w| !w.is_nan()).map(|w| w.abs()).sum();
                if total > 1.0 + 1e-9 {
                    return Err(EngineError::config(format!(
                        "weights at bar {t} have a gross sum of {total} > 1 (a cash account has no leverage; use account='margin')"
                    )));
                }
            }
        }
        Ok(())
    }
}

impl Driver for Weights<'_> {
    fn on_bar(&mut self, t: usize, bars: &Bars, broker: &mut Broker) -> Result<()> {
        let n = bars.n_symbols;
        let row = &self.weights[t * n..(t + 1) * n];
        if row.iter().all(|w| w.is_nan()) {
            return Ok(());
        }
        let equity = broker.equity();
        let mut buys = Vec::new();
        for (s, &w) in row.iter().enumerate() {
            if !bars.has_bar(t, s) {
                continue; // cannot price or trade a symbol without a bar
            }
            let price = bars.close[bars.idx(t, s)];
            let w = if w.is_nan() { 0.0 } else { w };
            let delta = w * equity / price - broker.position(s);
            if delta.abs() <= self.min_trade {
                continue;
            }
            if delta < 0.0 {
                broker.submit(OrderRequest::market(s, Side::Sell, -delta))?;
            } else {
                buys.push((s, delta));
            }
        }
        for (s, q) in buys {
            broker.submit(OrderRequest::market(s, Side::Buy, q))?;
        }
        Ok(())
    }
}

/// Built-in SMA crossover: buy `size` when the fast SMA crosses above the slow one while
/// flat; sell the whole position when it crosses below. A cross needs fast < slow on the
/// previous bar and fast > slow on this bar (strict, as in backtesting.py's `crossover`).
///
/// The averages are computed bar by bar inside the loop ([`RollingMean`], the same arithmetic
/// as [`crate::indicators::sma`], so results equal a strategy that precomputes them), which
/// saves two indicator arrays per symbol.
pub struct SmaCross {
    state: Vec<CrossState>,
    size: f64,
    sizing: Sizing,
}

/// One symbol's averages and their values on the previous bar (NaN where it had no bar).
struct CrossState {
    fast: RollingMean,
    slow: RollingMean,
    prev: (f64, f64),
}

/// The parameter checks of the SMA cross (also used by the batch sweep, with the same messages).
pub fn check_sma_cross(fast: usize, slow: usize, size: f64) -> Result<()> {
    if fast == 0 || slow == 0 || fast >= slow {
        return Err(EngineError::config(format!(
            "sma_cross needs 0 < fast < slow, got fast={fast}, slow={slow}"
        )));
    }
    if !size.is_finite() || size <= 0.0 {
        return Err(EngineError::config(format!(
            "parameter size must be a finite number > 0, got {size}"
        )));
    }
    Ok(())
}

impl SmaCross {
    pub fn new(bars: &Bars, fast: usize, slow: usize, size: f64) -> Result<Self> {
        check_sma_cross(fast, slow, size)?;
        // Each symbol's closes are scanned once so that its averages use the same arithmetic
        // as `indicators::sma` on that column; `on_bar` pushes exactly those closes.
        let ns = bars.n_symbols;
        let state = (0..ns)
            .map(|s| {
                let scan = SeriesScan::of_column(bars.close, s, ns);
                Ok(CrossState {
                    fast: RollingMean::for_scanned(fast, &scan)?,
                    slow: RollingMean::for_scanned(slow, &scan)?,
                    prev: (f64::NAN, f64::NAN),
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            state,
            size,
            sizing: Sizing::Units,
        })
    }

    /// Entries sized by `sizing` (the `size` given to `new` is then a cash value or a fraction
    /// of equity).
    pub fn with_sizing(mut self, sizing: Sizing) -> Self {
        self.sizing = sizing;
        self
    }
}

impl Driver for SmaCross {
    fn on_bar(&mut self, t: usize, bars: &Bars, broker: &mut Broker) -> Result<()> {
        let ns = bars.n_symbols;
        let row = &bars.close[t * ns..(t + 1) * ns];
        for (s, (st, &c)) in self.state.iter_mut().zip(row).enumerate() {
            let (f0, s0) = if c.is_nan() {
                (f64::NAN, f64::NAN)
            } else {
                (st.fast.push(c), st.slow.push(c))
            };
            let (f1, s1) = std::mem::replace(&mut st.prev, (f0, s0));
            if f1 < s1 && f0 > s0 {
                if broker.position(s) == 0.0 && !broker.has_active_order(s) {
                    broker.submit(OrderRequest {
                        sizing: self.sizing,
                        ..OrderRequest::market(s, Side::Buy, self.size)
                    })?;
                }
            } else if f1 > s1 && f0 < s0 {
                let pos = broker.position(s);
                if pos > 0.0 && !broker.has_active_order(s) {
                    broker.submit(OrderRequest::market(s, Side::Sell, pos))?;
                }
            }
        }
        Ok(())
    }
}
