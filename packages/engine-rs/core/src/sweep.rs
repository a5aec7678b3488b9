//! Batch parameter sweeps of the built-in SMA cross: many (fast, slow, size) sets over one
//! `Bars`, on several threads, each indicator window computed once and shared by every set
//! that uses it.
//!
//! The averages come from a shared table instead of being averaged bar by bar. They are
//! produced by [`crate::indicators::sma`], the arithmetic [`crate::drivers::SmaCross`] uses
//! bar by bar, so a set's decisions are a single run's.
//!
//! Two ways to run a set, both equal to a single run bit for bit (equity, exposure, orders,
//! fills, trades, ledger; the tests compare them):
//! - **sparse** (one symbol with a bar on every row, the usual sweep): the broker is driven
//!   only on the bars where something can happen -- a cross of the averages, a bar with a
//!   working order, the last bar. On the bars between, nothing trades and the broker would
//!   only mark the position to the close, so the equity and exposure of those bars are
//!   written here with the ledger's own formula (cash + position x close x multiplier, and
//!   gross / equity) from the cash and position the broker holds. This skips the broker's
//!   per-bar phases on ~97 % of the bars.
//! - **full**: the same bar loop ([`crate::drivers::run`]) as a single run, every bar.
//!
//! Memory: a window's averages take `bars x symbols x 8` bytes. Sets are ordered so that the
//! parameter with fewer distinct windows ("inner") stays resident while the other ("outer")
//! streams: an outer window lives only while its sets run, and a window is dropped after its
//! last set. When the resident windows would exceed the memory budget, the inner windows are
//! taken in chunks and the outer windows are computed once per chunk instead of once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::broker::Broker;
use crate::config::Config;
use crate::data::Bars;
use crate::drivers::{self, Driver};
use crate::error::{EngineError, Result};
use crate::indicators;
use crate::instrument::Instrument;
use crate::ledger::{ExposureSummary, Exposures};
use crate::types::{OrderRequest, Side, Sizing};

/// One parameter set of the SMA cross.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CrossSet {
    pub fast: usize,
    pub slow: usize,
    /// Units, cash value or fraction of equity of an entry, per `sizing`.
    pub size: f64,
    pub sizing: Sizing,
}

impl CrossSet {
    /// The checks of [`drivers::SmaCross::new`], with its messages.
    pub fn validate(&self) -> Result<()> {
        drivers::check_sma_cross(self.fast, self.slow, self.size)
    }
}

/// The SMA cross reading precomputed averages (time x symbols, NaN where a symbol has no
/// bar or the window is not yet full). Decisions are those of [`drivers::SmaCross`].
pub struct PrecomputedCross<'a> {
    fast: &'a [f64],
    slow: &'a [f64],
    size: f64,
    sizing: Sizing,
}

impl<'a> PrecomputedCross<'a> {
    pub fn new(
        bars: &Bars,
        fast: &'a [f64],
        slow: &'a [f64],
        size: f64,
        sizing: Sizing,
    ) -> Result<Self> {
        let cells = bars.n_bars * bars.n_symbols;
        if fast.len() != cells || slow.len() != cells {
            return Err(EngineError::config(format!(
                "precomputed averages have {} and {} values, expected {cells}",
                fast.len(),
                slow.len()
            )));
        }
        Ok(Self {
            fast,
            slow,
            size,
            sizing,
        })
    }
}

impl Driver for PrecomputedCross<'_> {
    #[inline]
    fn on_bar(&mut self, t: usize, bars: &Bars, broker: &mut Broker) -> Result<()> {
        let ns = bars.n_symbols;
        let now = t * ns;
        for s in 0..ns {
            let (f0, s0) = (self.fast[now + s], self.slow[now + s]);
            // The previous bar's values: NaN on the first bar, as SmaCross starts.
            let (f1, s1) = if t == 0 {
                (f64::NAN, f64::NAN)
            } else {
                (self.fast[now - ns + s], self.slow[now - ns + s])
            };
            decide(
                broker,
                s,
                f1 < s1 && f0 > s0,
                f1 > s1 && f0 < s0,
                self.size,
                self.sizing,
            )?;
        }
        Ok(())
    }
}

/// [`drivers::SmaCross`]'s decision on a bar where the averages crossed up or down.
#[inline]
fn decide(
    broker: &mut Broker,
    s: usize,
    up: bool,
    down: bool,
    size: f64,
    sizing: Sizing,
) -> Result<()> {
    if up {
        if broker.position(s) == 0.0 && !broker.has_active_order(s) {
            broker.submit(OrderRequest {
                sizing,
                ..OrderRequest::market(s, Side::Buy, size)
            })?;
        }
    } else if down {
        let pos = broker.position(s);
        if pos > 0.0 && !broker.has_active_order(s) {
            broker.submit(OrderRequest::market(s, Side::Sell, pos))?;
        }
    }
    Ok(())
}

/// The SMA of every symbol's closes (time x symbols), as [`indicators::sma`] computes it.
pub fn sma_matrix(bars: &Bars, window: usize) -> Result<Vec<f64>> {
    let ns = bars.n_symbols;
    if ns == 1 {
        return indicators::sma(bars.close, window);
    }
    let mut out = vec![f64::NAN; bars.n_bars * ns];
    for s in 0..ns {
        let col: Vec<f64> = bars.close.iter().skip(s).step_by(ns).copied().collect();
        for (t, v) in indicators::sma(&col, window)?.into_iter().enumerate() {
            out[t * ns + s] = v;
        }
    }
    Ok(out)
}

/// How a sweep runs: worker threads and the memory the shared averages may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SweepOptions {
    pub threads: usize,
    /// Bytes of averages kept at once (a soft bound: at least one inner window and the outer
    /// windows of the sets in flight are always kept).
    pub memory_budget: usize,
    /// Keep each run's exposure curve (else only its figures: [`CrossRun::exposure_summary`];
    /// 8 bytes less per bar per run in flight).
    pub exposure_curves: bool,
}

impl Default for SweepOptions {
    fn default() -> Self {
        Self {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            // 4 windows of a million bars. A sweep's memory beside its data stays within
            // ~100 MB on 2 cores; 64 MiB was ~15 % faster on 100 sets x 1M bars (30 windows
            // computed instead of 60) and ~30 MiB larger.
            memory_budget: 32 << 20,
            exposure_curves: true,
        }
    }
}

/// Where a sweep's results go, on the thread that called [`sweep_sma_cross`], in the order
/// the sets finish. An error from either method stops the sweep (sets already running finish
/// and are dropped) and is returned.
pub trait SweepSink {
    type Error;
    /// Set `index` (a position in the `sets` given) finished: its run, or why it failed.
    fn done(
        &mut self,
        index: usize,
        outcome: Result<CrossRun>,
    ) -> std::result::Result<(), Self::Error>;
    /// Called about every 100 ms while no result arrives (e.g. to check for Ctrl-C).
    fn idle(&mut self) -> std::result::Result<(), Self::Error> {
        Ok(())
    }
}

/// One shared window: computed by the first set that needs it, dropped after the last.
struct Slot {
    window: usize,
    values: Mutex<Option<Arc<Vec<f64>>>>,
    remaining: AtomicUsize,
}

impl Slot {
    fn get(&self, bars: &Bars, computed: &AtomicUsize) -> Result<Arc<Vec<f64>>> {
        let mut v = self
            .values
            .lock()
            .map_err(|_| EngineError::config("a sweep worker panicked"))?;
        if let Some(a) = v.as_ref() {
            return Ok(a.clone());
        }
        let a = Arc::new(sma_matrix(bars, self.window)?);
        computed.fetch_add(1, Ordering::Relaxed);
        *v = Some(a.clone());
        Ok(a)
    }

    fn release(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            if let Ok(mut v) = self.values.lock() {
                v.take();
            }
        }
    }
}

/// One unit of work: set `index`, reading slots `fast` and `slow`.
struct Item {
    index: usize,
    fast: usize,
    slow: usize,
}

/// The order the valid sets run in and the windows they share (see the module docs).
struct Plan {
    items: Vec<Item>,
    slots: Vec<Slot>,
}

/// Which window of a set: its fast or its slow one.
type Axis = fn(&CrossSet) -> usize;

fn plan(sets: &[(usize, CrossSet)], window_bytes: usize, opts: SweepOptions) -> Plan {
    let distinct = |f: Axis| {
        let mut w: Vec<usize> = sets.iter().map(|(_, c)| f(c)).collect();
        w.sort_unstable();
        w.dedup();
        w
    };
    let fast_of = |c: &CrossSet| c.fast;
    let slow_of = |c: &CrossSet| c.slow;
    let (nf, ns) = (distinct(fast_of).len(), distinct(slow_of).len());
    let (inner, outer): (Axis, Axis) = if nf <= ns {
        (fast_of, slow_of)
    } else {
        (slow_of, fast_of)
    };
    let inner_windows = distinct(inner);
    let budget_windows = opts.memory_budget / window_bytes.max(1);
    let per_chunk = budget_windows
        .saturating_sub(opts.threads.max(1))
        .max(1)
        .min(inner_windows.len().max(1));
    let mut items = Vec::with_capacity(sets.len());
    let mut slots: Vec<Slot> = Vec::new();
    for chunk in inner_windows.chunks(per_chunk) {
        let mut members: Vec<&(usize, CrossSet)> = sets
            .iter()
            .filter(|(_, c)| chunk.binary_search(&inner(c)).is_ok())
            .collect();
        members.sort_by_key(|(i, c)| (outer(c), inner(c), *i));
        // Slots are per chunk: a window used by several sets of the chunk is computed once.
        let mut by_window: BTreeMap<usize, usize> = BTreeMap::new();
        let mut slot_of = |w: usize, slots: &mut Vec<Slot>| -> usize {
            let k = *by_window.entry(w).or_insert_with(|| {
                slots.push(Slot {
                    window: w,
                    values: Mutex::new(None),
                    remaining: AtomicUsize::new(0),
                });
                slots.len() - 1
            });
            slots[k].remaining.fetch_add(1, Ordering::Relaxed);
            k
        };
        for (i, c) in members {
            let fast = slot_of(c.fast, &mut slots);
            let slow = slot_of(c.slow, &mut slots);
            items.push(Item {
                index: *i,
                fast,
                slow,
            });
        }
    }
    Plan { items, slots }
}

/// What a finished sweep did: how many averages it computed (one per distinct window when
/// they fit the memory budget).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub windows_computed: usize,
}

/// One finished set: its broker (orders, fills, trades, ledger) and its equity and exposure
/// per bar.
#[derive(Debug)]
pub struct CrossRun {
    broker: Broker,
    /// The curves when the set ran sparse (the broker's own then hold only the bars it was
    /// driven on); None when the broker ran every bar.
    curves: Option<(Vec<f64>, Exposures)>,
}

impl CrossRun {
    /// Orders, fills, trades and the final ledger. Its equity and exposure curves are
    /// partial after a sparse run: read [`CrossRun::equity_curve`] and
    /// [`CrossRun::exposure_curve`].
    pub fn broker(&self) -> &Broker {
        &self.broker
    }
    pub fn equity_curve(&self) -> &[f64] {
        self.curves
            .as_ref()
            .map_or(self.broker.equity_curve(), |c| &c.0)
    }
    /// Empty when the sweep kept only the figures ([`SweepOptions::exposure_curves`]).
    pub fn exposure_curve(&self) -> &[f64] {
        self.curves
            .as_ref()
            .map_or(self.broker.exposure_curve(), |c| c.1.curve())
    }
    /// Whether the run kept its exposure curve.
    pub fn keeps_exposure_curve(&self) -> bool {
        self.curves
            .as_ref()
            .map_or(self.broker.keeps_exposure_curve(), |c| c.1.is_curve())
    }
    /// The exposure curve's figures, kept or not (see [`ExposureSummary`]).
    pub fn exposure_summary(&self) -> Option<ExposureSummary> {
        self.curves
            .as_ref()
            .map_or_else(|| self.broker.exposure_summary(), |c| c.1.summary())
    }
    /// Whether the set ran sparse (see the module docs).
    pub fn sparse(&self) -> bool {
        self.curves.is_some()
    }
}

/// Whether sets over `bars` can run sparse: one symbol with a close on every bar (so the
/// broker marks a new close every bar, as the curves written between its bars assume).
fn sparse_applies(bars: &Bars) -> bool {
    bars.n_symbols == 1 && bars.close.iter().all(|c| !c.is_nan())
}

#[allow(clippy::too_many_arguments)] // one set's inputs, each used once
fn run_one(
    bars: &Bars,
    cfg: Config,
    symbols: &[String],
    set: CrossSet,
    fast: &[f64],
    slow: &[f64],
    sparse: bool,
    keep_exposure: bool,
) -> Result<CrossRun> {
    let instruments = symbols.iter().map(Instrument::new).collect();
    let mut broker = Broker::with_instruments(cfg, instruments)?;
    if sparse {
        // The broker keeps the curves of the bars it is driven on (their last values are
        // read back); the run's own curves span every bar.
        return run_sparse(bars, broker, set, fast, slow, keep_exposure);
    }
    broker.keep_exposure_curve(keep_exposure);
    let mut drv = PrecomputedCross::new(bars, fast, slow, set.size, set.sizing)?;
    drivers::run(bars, &mut broker, &mut drv)?;
    Ok(CrossRun {
        broker,
        curves: None,
    })
}

/// Equity and exposure of bars `range` while nothing trades: the ledger's `marked` and
/// `record` for one symbol holding `position` with `cash`, marked to each bar's close.
fn write_flat(
    equity: &mut Vec<f64>,
    exposure: &mut Exposures,
    closes: &[f64],
    cash: f64,
    position: f64,
    multiplier: f64,
) {
    if position == 0.0 {
        let ex = if cash > 0.0 { 0.0 / cash } else { f64::NAN };
        equity.extend(std::iter::repeat_n(cash, closes.len()));
        exposure.push_repeated(ex, closes.len());
        return;
    }
    equity.extend(closes.iter().map(|&px| cash + position * px * multiplier));
    exposure.extend(closes.iter().map(|&px| {
        let v = position * px * multiplier;
        let eq = cash + v;
        if eq > 0.0 {
            (0.0 + v.abs()) / eq
        } else {
            f64::NAN
        }
    }));
}

/// The sparse run of one set over one symbol (see the module docs).
fn run_sparse(
    bars: &Bars,
    mut broker: Broker,
    set: CrossSet,
    fast: &[f64],
    slow: &[f64],
    keep_exposure: bool,
) -> Result<CrossRun> {
    let n = bars.n_bars;
    if fast.len() != n || slow.len() != n {
        return Err(EngineError::config(format!(
            "precomputed averages have {} and {} values, expected {n}",
            fast.len(),
            slow.len()
        )));
    }
    let multiplier = broker.instruments()[0].multiplier;
    let mut equity = Vec::with_capacity(n);
    let mut exposure = Exposures::new(n, keep_exposure);
    let (mut cash, mut position) = (broker.cash(), broker.position(0));
    let mut working = false;
    // `written`: bars whose equity is in the curves.
    let mut written = 0;
    for t in 0..n {
        let (f0, s0) = (fast[t], slow[t]);
        let (f1, s1) = if t == 0 {
            (f64::NAN, f64::NAN)
        } else {
            (fast[t - 1], slow[t - 1])
        };
        let up = f1 < s1 && f0 > s0;
        let down = f1 > s1 && f0 < s0;
        if !(up || down || working || t + 1 == n) {
            continue;
        }
        write_flat(
            &mut equity,
            &mut exposure,
            &bars.close[written..t],
            cash,
            position,
            multiplier,
        );
        broker.begin_bar(bars, t);
        decide(&mut broker, 0, up, down, set.size, set.sizing)?;
        broker.end_bar(bars, t);
        let last = |c: &[f64]| c.last().copied().unwrap_or(f64::NAN);
        equity.push(last(broker.equity_curve()));
        exposure.push(last(broker.exposure_curve()));
        (cash, position) = (broker.cash(), broker.position(0));
        working = broker.has_active_order(0);
        written = t + 1;
    }
    Ok(CrossRun {
        broker,
        curves: Some((equity, exposure)),
    })
}

/// Run every set of `sets` over `bars` with configuration `cfg` (brokers as `Engine` makes
/// them: one instrument per symbol name), delivering each outcome to `sink` as it finishes.
/// An invalid set (see [`CrossSet::validate`]) is delivered as its error; the others run.
pub fn sweep_sma_cross<S: SweepSink>(
    bars: &Bars,
    cfg: Config,
    symbols: &[String],
    sets: &[CrossSet],
    opts: SweepOptions,
    sink: &mut S,
) -> std::result::Result<SweepReport, S::Error> {
    if let Err(e) = cfg.validate() {
        for i in 0..sets.len() {
            sink.done(i, Err(e.clone()))?;
        }
        return Ok(SweepReport::default());
    }
    let mut valid = Vec::with_capacity(sets.len());
    for (i, c) in sets.iter().enumerate() {
        match c.validate() {
            Ok(()) => valid.push((i, *c)),
            Err(e) => sink.done(i, Err(e))?,
        }
    }
    let window_bytes = bars.n_bars * bars.n_symbols * std::mem::size_of::<f64>();
    let threads = opts.threads.max(1).min(valid.len().max(1));
    let plan = plan(&valid, window_bytes, SweepOptions { threads, ..opts });
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let computed = AtomicUsize::new(0);
    // A rendezvous: a finished run waits in its thread until the sink takes it, so memory
    // stays at (threads + 1) runs (each with its curves, 16 B per bar) however many sets
    // there are; a buffered run would be one more.
    let (tx, rx) = sync_channel::<(usize, Result<CrossRun>)>(0);
    let by_index: Vec<CrossSet> = sets.to_vec();
    let sparse = sparse_applies(bars);
    let outcome = std::thread::scope(|scope| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (plan, next, stop, computed, by_index, cfg) =
                (&plan, &next, &stop, &computed, &by_index, &cfg);
            scope.spawn(move || loop {
                if stop.load(Ordering::Acquire) {
                    break;
                }
                let k = next.fetch_add(1, Ordering::AcqRel);
                let Some(item) = plan.items.get(k) else {
                    break;
                };
                let (fs, ss) = (&plan.slots[item.fast], &plan.slots[item.slow]);
                let res = fs.get(bars, computed).and_then(|f| {
                    let s = ss.get(bars, computed)?;
                    run_one(
                        bars,
                        cfg.clone(),
                        symbols,
                        by_index[item.index],
                        &f,
                        &s,
                        sparse,
                        opts.exposure_curves,
                    )
                });
                fs.release();
                ss.release();
                if tx.send((item.index, res)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let result = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok((i, res)) => {
                    if let Err(e) = sink.done(i, res) {
                        break Err(e);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(e) = sink.idle() {
                        break Err(e);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break Ok(()),
            }
        };
        if result.is_err() {
            stop.store(true, Ordering::Release);
        }
        // Dropping the receiver releases workers blocked on a full channel.
        drop(rx);
        result
    });
    outcome.map(|()| SweepReport {
        windows_computed: computed.load(Ordering::Relaxed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::BarData;
    use crate::data::SymbolInput;
    use crate::drivers::SmaCross;

    fn data(n: usize, ns: usize) -> BarData {
        let mut cols = Vec::new();
        for s in 0..ns {
            let mut x = 100.0 + s as f64;
            let mut close = Vec::with_capacity(n);
            let mut seed = 12345u64 + s as u64;
            for t in 0..n {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let r = ((seed >> 33) as f64 / (1u64 << 31) as f64) - 0.5;
                x *= 1.0 + 0.02 * r;
                // A gap for the second symbol, so the no-bar path is exercised.
                close.push(if s == 1 && (40..55).contains(&t) {
                    f64::NAN
                } else {
                    x
                });
            }
            cols.push(close);
        }
        let ts: Vec<i64> = (0..n as i64).map(|t| t * 60_000_000_000).collect();
        let vol = vec![1.0; n];
        let trimmed: Vec<(Vec<i64>, Vec<f64>)> = cols
            .iter()
            .map(|c| {
                let keep: Vec<usize> = (0..n).filter(|&t| !c[t].is_nan()).collect();
                (
                    keep.iter().map(|&t| ts[t]).collect(),
                    keep.iter().map(|&t| c[t]).collect(),
                )
            })
            .collect();
        let names: Vec<String> = (0..ns).map(|s| format!("S{s}")).collect();
        let inputs: Vec<SymbolInput> = trimmed
            .iter()
            .zip(&names)
            .map(|((t, c), name)| SymbolInput {
                name,
                label: name,
                ts: t,
                open: c,
                high: c,
                low: c,
                close: c,
                volume: &vol[..t.len()],
                rows: None,
                extra: &[],
            })
            .collect();
        BarData::from_symbols(&inputs).unwrap()
    }

    struct Collect(Vec<(usize, Result<CrossRun>)>);
    impl SweepSink for Collect {
        type Error = ();
        fn done(&mut self, i: usize, r: Result<CrossRun>) -> std::result::Result<(), ()> {
            self.0.push((i, r));
            Ok(())
        }
    }

    fn single(d: &BarData, cfg: Config, c: CrossSet) -> Broker {
        let instruments = d.symbols().iter().map(Instrument::new).collect();
        let mut b = Broker::with_instruments(cfg, instruments).unwrap();
        let bars = d.bars();
        let mut drv = SmaCross::new(&bars, c.fast, c.slow, c.size)
            .unwrap()
            .with_sizing(c.sizing);
        drivers::run(&bars, &mut b, &mut drv).unwrap();
        b
    }

    fn bits(v: &[f64]) -> Vec<u64> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// A set's run equals a single run: curves bit for bit, every order, fill and trade,
    /// and the final ledger.
    fn assert_same(got: &CrossRun, want: &Broker, c: CrossSet) {
        assert_eq!(bits(got.equity_curve()), bits(want.equity_curve()), "{c:?}");
        if got.keeps_exposure_curve() {
            assert_eq!(
                bits(got.exposure_curve()),
                bits(want.exposure_curve()),
                "{c:?}"
            );
        } else {
            assert!(got.exposure_curve().is_empty(), "{c:?}");
        }
        // The figures, from the curve or streamed: the single run's curve's, bit for bit.
        let key = |s: ExposureSummary| {
            (
                s.n,
                s.sum.to_bits(),
                s.nonzero,
                s.first_bad.map(|(i, x)| (i, x.to_bits())),
            )
        };
        assert_eq!(
            key(got.exposure_summary().expect("figures")),
            key(ExposureSummary::of_curve(want.exposure_curve())),
            "{c:?}"
        );
        let b = got.broker();
        // Debug text, not ==: an unfilled order's average price is NaN.
        let text = |o: &crate::mem::Chunked<crate::types::Order>| {
            o.iter().map(|x| format!("{x:?}")).collect()
        };
        let (go, wo): (Vec<String>, Vec<String>) = (text(b.orders()), text(want.orders()));
        assert_eq!(go.len(), wo.len(), "{c:?}");
        if let Some(k) = (0..go.len()).find(|&k| go[k] != wo[k]) {
            panic!("{c:?}: order {k} differs:\n{}\n{}", go[k], wo[k]);
        }
        assert_eq!(b.fills(), want.fills(), "{c:?}");
        assert_eq!(b.trades(), want.trades(), "{c:?}");
        assert_eq!(b.cash().to_bits(), want.cash().to_bits());
        assert_eq!(bits(b.positions()), bits(want.positions()));
        assert_eq!(bits(b.last_prices()), bits(want.last_prices()));
        assert_eq!(bits(b.realized()), bits(want.realized()));
        assert_eq!(b.equity().to_bits(), want.equity().to_bits());
    }

    #[test]
    fn every_set_equals_a_single_run_bit_for_bit() {
        for ns in [1, 2] {
            let d = data(600, ns);
            let cfg = Config {
                commission_rate: 0.001,
                ..Config::default()
            };
            let mut sets = Vec::new();
            for fast in [2, 3, 5, 8] {
                for slow in [5, 9, 13, 21] {
                    sets.push(CrossSet {
                        fast,
                        slow,
                        size: 3.0,
                        sizing: Sizing::Units,
                    });
                }
            }
            for (threads, exposure_curves) in [(1, true), (3, true), (2, false)] {
                let mut sink = Collect(Vec::new());
                let opts = SweepOptions {
                    threads,
                    memory_budget: 1 << 30,
                    exposure_curves,
                };
                let rep =
                    sweep_sma_cross(&d.bars(), cfg.clone(), d.symbols(), &sets, opts, &mut sink)
                        .unwrap();
                assert_eq!(sink.0.len(), sets.len());
                // Windows 5 is both a fast and a slow window: computed once.
                assert_eq!(rep.windows_computed, 7);
                for (i, r) in sink.0 {
                    let c = sets[i];
                    if c.fast >= c.slow {
                        assert!(r.unwrap_err().message.contains("0 < fast < slow"));
                        continue;
                    }
                    let got = r.unwrap();
                    assert_eq!(got.sparse(), ns == 1);
                    let want = single(&d, cfg.clone(), c);
                    assert_same(&got, &want, c);
                    assert!(
                        !want.trades().is_empty(),
                        "{c:?} trades nothing: a weak test"
                    );
                }
            }
        }
    }

    #[test]
    fn sparse_runs_equal_single_runs_for_every_sizing_and_fill_rule() {
        let d = data(2_000, 1);
        let mut sets = Vec::new();
        for (size, sizing) in [
            (1.0, Sizing::EquityPct),
            (0.5, Sizing::EquityPct),
            (2_500.0, Sizing::Value),
            (2.0, Sizing::Units),
            // More than the cash pays for: every entry is rejected at its fill.
            (1e7, Sizing::Units),
        ] {
            for (fast, slow) in [(2, 7), (3, 20), (9, 40)] {
                sets.push(CrossSet {
                    fast,
                    slow,
                    size,
                    sizing,
                });
            }
        }
        let configs = [
            Config {
                commission_rate: 0.001,
                ..Config::default()
            },
            Config {
                commission_rate: 0.0005,
                commission_min: 1.0,
                commission_fixed: 0.25,
                slippage_bps: 3.0,
                ..Config::default()
            },
            Config {
                commission_rate: 0.001,
                fill_on: crate::config::FillOn::Close,
                ..Config::default()
            },
            // Cash that a loss can exhaust: equity at or below 0 makes exposure NaN.
            Config {
                cash: 150.0,
                ..Config::default()
            },
        ];
        for (cfg, exposure_curves) in configs
            .into_iter()
            .flat_map(|c| [(c.clone(), true), (c, false)])
        {
            let mut sink = Collect(Vec::new());
            let opts = SweepOptions {
                threads: 2,
                memory_budget: 1 << 30,
                exposure_curves,
            };
            sweep_sma_cross(&d.bars(), cfg.clone(), d.symbols(), &sets, opts, &mut sink).unwrap();
            assert_eq!(sink.0.len(), sets.len());
            let mut rejected = 0;
            for (i, r) in sink.0 {
                let (c, got) = (sets[i], r.unwrap());
                assert!(got.sparse());
                let want = single(&d, cfg.clone(), c);
                assert_same(&got, &want, c);
                assert!(
                    !want.orders().is_empty(),
                    "{c:?} orders nothing: a weak test"
                );
                rejected += want.orders().len() - want.fills().len();
            }
            assert!(
                rejected > 0,
                "no rejected order: the rejection path is untested"
            );
        }
    }

    #[test]
    fn a_small_budget_recomputes_outer_windows_per_chunk() {
        let d = data(300, 1);
        let sets: Vec<CrossSet> = [2, 3, 4]
            .iter()
            .flat_map(|&f| {
                [10, 20].map(|s| CrossSet {
                    fast: f,
                    slow: s,
                    size: 1.0,
                    sizing: Sizing::Units,
                })
            })
            .collect();
        let window_bytes = 300 * 8;
        let opts = SweepOptions {
            threads: 1,
            memory_budget: 2 * window_bytes,
            exposure_curves: true,
        };
        let mut sink = Collect(Vec::new());
        let rep = sweep_sma_cross(
            &d.bars(),
            Config::default(),
            d.symbols(),
            &sets,
            opts,
            &mut sink,
        )
        .unwrap();
        // Inner = slow (2 windows), one per chunk; the 3 fast windows once per chunk.
        assert_eq!(rep.windows_computed, 2 + 3 * 2);
        assert_eq!(sink.0.len(), 6);
        assert!(sink.0.iter().all(|(_, r)| r.is_ok()));
    }

    #[test]
    fn a_sink_error_stops_the_sweep() {
        struct StopAfter(usize);
        impl SweepSink for StopAfter {
            type Error = &'static str;
            fn done(
                &mut self,
                _: usize,
                _: Result<CrossRun>,
            ) -> std::result::Result<(), Self::Error> {
                self.0 -= 1;
                if self.0 == 0 {
                    Err("enough")
                } else {
                    Ok(())
                }
            }
        }
        let d = data(200, 1);
        let sets: Vec<CrossSet> = (2..40)
            .map(|f| CrossSet {
                fast: f,
                slow: 50,
                size: 1.0,
                sizing: Sizing::Units,
            })
            .collect();
        let opts = SweepOptions {
            threads: 2,
            memory_budget: 1 << 20,
            exposure_curves: true,
        };
        let r = sweep_sma_cross(
            &d.bars(),
            Config::default(),
            d.symbols(),
            &sets,
            opts,
            &mut StopAfter(3),
        );
        assert_eq!(r.unwrap_err(), "enough");
    }

    #[test]
    fn bad_sets_are_reported_and_the_others_run() {
        let d = data(100, 1);
        let sets = [
            CrossSet {
                fast: 0,
                slow: 5,
                size: 1.0,
                sizing: Sizing::Units,
            },
            CrossSet {
                fast: 3,
                slow: 8,
                size: f64::NAN,
                sizing: Sizing::EquityPct,
            },
            CrossSet {
                fast: 3,
                slow: 8,
                size: 1.0,
                sizing: Sizing::EquityPct,
            },
        ];
        let mut sink = Collect(Vec::new());
        sweep_sma_cross(
            &d.bars(),
            Config::default(),
            d.symbols(),
            &sets,
            SweepOptions::default(),
            &mut sink,
        )
        .unwrap();
        sink.0.sort_by_key(|(i, _)| *i);
        assert!(sink.0[0]
            .1
            .as_ref()
            .unwrap_err()
            .message
            .contains("0 < fast < slow"));
        assert!(sink.0[1].1.as_ref().unwrap_err().message.contains("size"));
        assert!(sink.0[2].1.is_ok());
    }
}
