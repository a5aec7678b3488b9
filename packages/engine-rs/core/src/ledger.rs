//! Cash, positions, FIFO lots and the per-bar equity record: everything a fill changes.
//!
//! Identities that hold after every fill and every bar (checked by property tests):
//! equity = cash + Σ position × last price × multiplier, and
//! Σ realised (net of costs) + Σ unrealised = equity − starting cash.

use std::collections::VecDeque;

use crate::mem::Chunked;
use crate::numsum::{self, StreamSum};
use crate::rules::{Account, TOL};
use crate::types::{Side, Trade};

#[derive(Clone, Copy, Debug)]
struct Lot {
    size: f64,
    price: f64,
    bar: usize,
    /// Entry commission per unit, carried to the trade that closes this lot.
    commission_per_unit: f64,
}

#[derive(Debug)]
pub struct Ledger {
    cash: f64,
    position: Vec<f64>,
    avg_cost: Vec<f64>,
    realized: Vec<f64>,
    commission_paid: Vec<f64>,
    tax_paid: Vec<f64>,
    slippage_paid: Vec<f64>,
    borrow_paid: Vec<f64>,
    last_price: Vec<f64>,
    multiplier: Vec<f64>,
    lots: Vec<VecDeque<Lot>>,
    trades: Chunked<Trade>,
    equity: Vec<f64>,
    /// The exposure per bar, or only its figures (`keep_exposure_curve(false)`).
    exposure: Exposures,
}

/// Not a finite number >= 0: a value the exposure curve may not hold.
fn bad(x: f64) -> bool {
    !(x.is_finite() && x >= 0.0)
}

/// The exposure curve's figures without the curve: numpy's sum of it, how many of its values
/// are not 0, and the first value that is not a finite number >= 0 (bar, value).
#[derive(Clone, Debug)]
pub struct ExposureStream {
    sum: StreamSum,
    nonzero: usize,
    first_bad: Option<(usize, f64)>,
}

impl ExposureStream {
    /// For a curve of `n` values.
    pub fn new(n: usize) -> Self {
        Self {
            sum: StreamSum::new(n),
            nonzero: 0,
            first_bad: None,
        }
    }
    /// The curve's next value.
    #[inline]
    pub fn push(&mut self, x: f64) {
        self.push_repeated(x, 1);
    }
    /// Push `x` `k` times.
    #[inline]
    pub fn push_repeated(&mut self, x: f64, k: usize) {
        if k == 0 {
            return;
        }
        if self.first_bad.is_none() && bad(x) {
            self.first_bad = Some((self.sum.count(), x));
        }
        if k == 1 {
            self.sum.push(x);
        } else {
            self.sum.push_repeated(x, k);
        }
        if x != 0.0 {
            self.nonzero += k;
        }
    }
    /// The figures, once exactly the planned number of values has been pushed.
    pub fn summary(&self) -> Option<ExposureSummary> {
        Some(ExposureSummary {
            n: self.sum.count(),
            sum: self.sum.total()?,
            nonzero: self.nonzero,
            first_bad: self.first_bad,
        })
    }
}

/// A run's exposure per bar: the curve, or only its figures (a sweep's run).
#[derive(Clone, Debug)]
pub enum Exposures {
    Curve(Vec<f64>),
    Figures(ExposureStream),
}

impl Exposures {
    /// For `n` bars: the curve (`keep`), or its figures.
    pub fn new(n: usize, keep: bool) -> Self {
        if keep {
            Exposures::Curve(Vec::with_capacity(n))
        } else {
            Exposures::Figures(ExposureStream::new(n))
        }
    }
    #[inline]
    pub fn push(&mut self, x: f64) {
        match self {
            Exposures::Curve(c) => c.push(x),
            Exposures::Figures(s) => s.push(x),
        }
    }
    pub fn push_repeated(&mut self, x: f64, k: usize) {
        match self {
            Exposures::Curve(c) => c.extend(std::iter::repeat_n(x, k)),
            Exposures::Figures(s) => s.push_repeated(x, k),
        }
    }
    pub fn extend(&mut self, xs: impl Iterator<Item = f64>) {
        match self {
            Exposures::Curve(c) => c.extend(xs),
            Exposures::Figures(s) => xs.for_each(|x| s.push(x)),
        }
    }
    pub fn is_curve(&self) -> bool {
        matches!(self, Exposures::Curve(_))
    }
    /// The curve (empty when only the figures are kept).
    pub fn curve(&self) -> &[f64] {
        match self {
            Exposures::Curve(c) => c,
            Exposures::Figures(_) => &[],
        }
    }
    /// The figures, from the curve or streamed (None when a stream did not get exactly the
    /// values it was planned for).
    pub fn summary(&self) -> Option<ExposureSummary> {
        match self {
            Exposures::Curve(c) => Some(ExposureSummary::of_curve(c)),
            Exposures::Figures(s) => s.summary(),
        }
    }
}

/// The figures of a run's exposure curve (gross exposure / equity per bar).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExposureSummary {
    pub n: usize,
    /// numpy's sum of the curve (np.add.reduce), so that sum / n is its np.mean bit for bit.
    pub sum: f64,
    /// Values other than 0.
    pub nonzero: usize,
    /// The first value that is NaN, infinite or negative: (bar, value).
    pub first_bad: Option<(usize, f64)>,
}

impl ExposureSummary {
    /// The figures of a kept curve.
    pub fn of_curve(c: &[f64]) -> Self {
        Self {
            n: c.len(),
            sum: numsum::sum(c),
            nonzero: c.iter().filter(|&&x| x != 0.0).count(),
            first_bad: c.iter().position(|&x| bad(x)).map(|i| (i, c[i])),
        }
    }
}

impl Ledger {
    pub fn new(cash: f64, multiplier: Vec<f64>) -> Self {
        let n = multiplier.len();
        Self {
            cash,
            position: vec![0.0; n],
            avg_cost: vec![0.0; n],
            realized: vec![0.0; n],
            commission_paid: vec![0.0; n],
            tax_paid: vec![0.0; n],
            slippage_paid: vec![0.0; n],
            borrow_paid: vec![0.0; n],
            last_price: vec![f64::NAN; n],
            multiplier,
            lots: vec![VecDeque::new(); n],
            trades: Chunked::new(),
            equity: Vec::new(),
            exposure: Exposures::Curve(Vec::new()),
        }
    }

    /// Keep the per-bar exposure curve (the default), or only its figures
    /// ([`Ledger::exposure_summary`]): a sweep that needs only a run's statistics then holds
    /// 8 bytes less per bar.
    pub fn keeps_exposure_curve(&self) -> bool {
        self.exposure.is_curve()
    }
    /// Only before the first bar is recorded (later calls change nothing).
    pub fn keep_exposure_curve(&mut self, keep: bool) {
        if self.equity.is_empty() && keep != self.exposure.is_curve() {
            // Sized by `reserve`, which the run calls with its length.
            self.exposure = Exposures::new(0, keep);
        }
    }

    /// The figures of the exposure curve: from the curve when it is kept, else streamed (None
    /// when the bars recorded differ from the run's planned length, as the stream needs).
    pub fn exposure_summary(&self) -> Option<ExposureSummary> {
        self.exposure.summary()
    }

    pub fn reserve(&mut self, n_bars: usize) {
        if self.equity.is_empty() {
            self.equity = crate::mem::with_capacity(n_bars);
            self.exposure = match self.exposure {
                Exposures::Curve(_) => Exposures::Curve(crate::mem::with_capacity(n_bars)),
                // The stream's tree is that of the run's whole length, known from here.
                Exposures::Figures(_) => Exposures::Figures(ExposureStream::new(n_bars)),
            };
        } else {
            let more = n_bars.saturating_sub(self.equity.len());
            self.equity.reserve(more);
            if let Exposures::Curve(c) = &mut self.exposure {
                c.reserve(more);
            }
        }
    }

    pub fn cash(&self) -> f64 {
        self.cash
    }
    pub fn position(&self, s: usize) -> f64 {
        self.position[s]
    }
    pub fn positions(&self) -> &[f64] {
        &self.position
    }
    pub fn avg_cost(&self, s: usize) -> f64 {
        self.avg_cost[s]
    }
    pub fn realized(&self) -> &[f64] {
        &self.realized
    }
    pub fn commission_paid(&self) -> &[f64] {
        &self.commission_paid
    }
    pub fn tax_paid(&self) -> &[f64] {
        &self.tax_paid
    }
    pub fn slippage_paid(&self) -> &[f64] {
        &self.slippage_paid
    }
    pub fn borrow_paid(&self) -> &[f64] {
        &self.borrow_paid
    }
    pub fn multipliers(&self) -> &[f64] {
        &self.multiplier
    }
    pub fn last_prices(&self) -> &[f64] {
        &self.last_price
    }
    pub fn trades(&self) -> &Chunked<Trade> {
        &self.trades
    }
    pub fn equity_curve(&self) -> &[f64] {
        &self.equity
    }
    pub fn exposure_curve(&self) -> &[f64] {
        self.exposure.curve()
    }
    pub fn account(&self, s: usize) -> Account {
        Account {
            cash: self.cash,
            position: self.position[s],
            exposure: Default::default(),
        }
    }

    /// Pay `cost` of borrowing symbol `s` (a short's financing): out of cash, into the
    /// symbol's realised P&L, so the ledger identities keep holding.
    pub fn charge_borrow(&mut self, s: usize, cost: f64) {
        self.cash -= cost;
        self.realized[s] -= cost;
        self.borrow_paid[s] += cost;
    }

    /// Unrealised P&L of symbol `s` at its last price.
    pub fn unrealized(&self, s: usize) -> f64 {
        let p = self.position[s];
        if p == 0.0 {
            0.0
        } else {
            p * (self.last_price[s] - self.avg_cost[s]) * self.multiplier[s]
        }
    }

    /// Cash plus every position marked at its last price.
    pub fn equity(&self) -> f64 {
        self.marked().0
    }

    /// (equity, gross exposure in cash).
    fn marked(&self) -> (f64, f64) {
        let (mut eq, mut gross) = (self.cash, 0.0);
        for ((p, px), m) in self
            .position
            .iter()
            .zip(&self.last_price)
            .zip(&self.multiplier)
        {
            if *p != 0.0 {
                let v = p * px * m;
                eq += v;
                gross += v.abs();
            }
        }
        (eq, gross)
    }

    /// Take each symbol's close as its last price (a NaN close: no bar, keep the last).
    #[inline]
    pub fn mark(&mut self, closes: &[f64]) {
        for (last, &c) in self.last_price.iter_mut().zip(closes) {
            if !c.is_nan() {
                *last = c;
            }
        }
    }

    /// Append this bar's equity and gross exposure (a fraction of equity).
    #[inline]
    pub fn record(&mut self) {
        let (eq, gross) = self.marked();
        let x = if eq > 0.0 { gross / eq } else { f64::NAN };
        self.exposure.push(x);
        self.equity.push(eq);
    }

    /// Book a fill of `size` units at `price` on bar `bar`, paying `commission` and `tax`
    /// (`slippage` is already in the price; it is only totalled).
    #[allow(clippy::too_many_arguments)]
    pub fn apply_fill(
        &mut self,
        s: usize,
        side: Side,
        size: f64,
        price: f64,
        commission: f64,
        tax: f64,
        slippage: f64,
        bar: usize,
    ) {
        let m = self.multiplier[s];
        let q = side.sign() * size;
        let fees = commission + tax;
        self.cash -= q * price * m + fees;
        self.realized[s] -= fees;
        self.commission_paid[s] += commission;
        self.tax_paid[s] += tax;
        self.slippage_paid[s] += slippage;
        let commission_per_unit = fees / size;
        let old = self.position[s];
        if old == 0.0 || old.signum() == q.signum() {
            let new = old + q;
            self.avg_cost[s] = (old.abs() * self.avg_cost[s] + size * price) / new.abs();
            self.position[s] = new;
            self.lots[s].push_back(Lot {
                size,
                price,
                bar,
                commission_per_unit,
            });
            return;
        }
        let closing = size.min(old.abs());
        self.realized[s] += closing * (price - self.avg_cost[s]) * old.signum() * m;
        self.close_lots(s, old.signum(), closing, price, commission_per_unit, bar);
        let mut new = old + q;
        if new.abs() <= TOL * old.abs().max(size) {
            new = 0.0;
        }
        if new == 0.0 {
            self.avg_cost[s] = 0.0;
            self.lots[s].clear();
        } else if new.signum() != old.signum() {
            // Reversal: the remainder opens a new position at this fill's price.
            self.avg_cost[s] = price;
            self.lots[s].clear();
            self.lots[s].push_back(Lot {
                size: new.abs(),
                price,
                bar,
                commission_per_unit,
            });
        }
        self.position[s] = new;
    }

    /// Close `amount` units of the FIFO lots of symbol `s`, producing round-trip trades.
    fn close_lots(
        &mut self,
        s: usize,
        direction: f64,
        amount: f64,
        price: f64,
        exit_cpu: f64,
        bar: usize,
    ) {
        let m = self.multiplier[s];
        let mut left = amount;
        while left > 0.0 {
            let Some(lot) = self.lots[s].front_mut() else {
                break;
            };
            let piece = if lot.size <= left * (1.0 + TOL) {
                lot.size
            } else {
                left
            };
            self.trades.push(Trade {
                symbol: s,
                direction,
                size: piece,
                entry_bar: lot.bar,
                exit_bar: bar,
                entry_price: lot.price,
                exit_price: price,
                gross_pnl: piece * (price - lot.price) * direction * m,
                commission: piece * (lot.commission_per_unit + exit_cpu),
            });
            if piece == lot.size {
                self.lots[s].pop_front();
            } else {
                lot.size -= piece;
            }
            left -= piece;
            if left <= TOL * amount {
                break;
            }
        }
    }
}
