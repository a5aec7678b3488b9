//! The matching core and the ledger. Every driver (Python callbacks, signal arrays, target
//! weights, built-in strategies) runs its decisions through this one type.
//!
//! Per bar t: `begin_bar` fills working orders against bar t (market at the open, limits
//! when the range reaches them) and marks positions to the close; the driver decides and
//! submits orders; `end_bar` fills same-bar orders when `FillOn::Close` is chosen and
//! records equity.

use std::collections::VecDeque;

use crate::config::{Config, FillOn};
use crate::data::Bars;
use crate::error::{EngineError, Result};
use crate::time::day_number;
use crate::types::{
    Event, Fill, Order, OrderKind, OrderRequest, OrderStatus, Side, TimeInForce, Trade,
};

/// Relative tolerance for "enough cash" / "enough position" comparisons.
const TOL: f64 = 1e-9;

#[derive(Clone, Copy, Debug)]
struct Lot {
    size: f64,
    price: f64,
    bar: usize,
    /// Entry commission per unit, carried to the trade that closes this lot.
    commission_per_unit: f64,
}

#[derive(Debug)]
pub struct Broker {
    cfg: Config,
    n_symbols: usize,
    /// Names used in rejection reasons ("#i" until set).
    names: Vec<String>,
    cash: f64,
    position: Vec<f64>,
    avg_cost: Vec<f64>,
    realized: Vec<f64>,
    commission_paid: Vec<f64>,
    slippage_paid: Vec<f64>,
    last_price: Vec<f64>,
    orders: Vec<Order>,
    order_day: Vec<Option<i64>>,
    active: Vec<usize>,
    fills: Vec<Fill>,
    trades: Vec<Trade>,
    lots: Vec<VecDeque<Lot>>,
    equity: Vec<f64>,
    exposure: Vec<f64>,
    events: Vec<Event>,
    record_events: bool,
    t: usize,
    started: bool,
}

impl Broker {
    pub fn new(cfg: Config, n_symbols: usize) -> Result<Self> {
        cfg.validate()?;
        Ok(Self {
            cfg,
            n_symbols,
            names: (0..n_symbols).map(|s| format!("#{s}")).collect(),
            cash: cfg.cash,
            position: vec![0.0; n_symbols],
            avg_cost: vec![0.0; n_symbols],
            realized: vec![0.0; n_symbols],
            commission_paid: vec![0.0; n_symbols],
            slippage_paid: vec![0.0; n_symbols],
            last_price: vec![f64::NAN; n_symbols],
            orders: Vec::new(),
            order_day: Vec::new(),
            active: Vec::new(),
            fills: Vec::new(),
            trades: Vec::new(),
            lots: vec![VecDeque::new(); n_symbols],
            equity: Vec::new(),
            exposure: Vec::new(),
            events: Vec::new(),
            record_events: false,
            t: 0,
            started: false,
        })
    }

    /// Name the symbols (in data order) for messages such as rejection reasons.
    pub fn set_symbol_names(&mut self, names: Vec<String>) -> Result<()> {
        if names.len() != self.n_symbols {
            return Err(EngineError::config(format!(
                "{} symbol names for {} symbols",
                names.len(),
                self.n_symbols
            )));
        }
        self.names = names;
        Ok(())
    }

    /// Pre-size the per-bar curves for a run of `n_bars` bars.
    pub fn reserve(&mut self, n_bars: usize) {
        self.equity
            .reserve(n_bars.saturating_sub(self.equity.len()));
        self.exposure
            .reserve(n_bars.saturating_sub(self.exposure.len()));
    }

    /// Keep order/fill events for a driver that forwards them (Python callbacks).
    pub fn set_record_events(&mut self, on: bool) {
        self.record_events = on;
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }
    pub fn n_symbols(&self) -> usize {
        self.n_symbols
    }
    /// Index of the bar being processed (0 before the first bar).
    pub fn bar_index(&self) -> usize {
        self.t
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
    pub fn slippage_paid(&self) -> &[f64] {
        &self.slippage_paid
    }
    pub fn last_prices(&self) -> &[f64] {
        &self.last_price
    }
    pub fn orders(&self) -> &[Order] {
        &self.orders
    }
    pub fn order(&self, id: u64) -> Option<&Order> {
        self.orders.get(id as usize)
    }
    pub fn fills(&self) -> &[Fill] {
        &self.fills
    }
    pub fn trades(&self) -> &[Trade] {
        &self.trades
    }
    pub fn equity_curve(&self) -> &[f64] {
        &self.equity
    }
    pub fn exposure_curve(&self) -> &[f64] {
        &self.exposure
    }
    /// Ids of working orders, oldest first.
    pub fn active_order_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.active.iter().map(|&i| self.orders[i].id)
    }
    pub fn has_active_order(&self, s: usize) -> bool {
        self.active.iter().any(|&i| self.orders[i].symbol == s)
    }

    /// Unrealised P&L of symbol `s` at its last price.
    pub fn unrealized(&self, s: usize) -> f64 {
        let p = self.position[s];
        if p == 0.0 {
            0.0
        } else {
            p * (self.last_price[s] - self.avg_cost[s])
        }
    }

    /// Cash plus every position marked at its last price.
    pub fn equity(&self) -> f64 {
        self.marked().0
    }

    /// (equity, gross exposure in cash): cash plus, and Σ |value| of, every open position at
    /// its last price.
    fn marked(&self) -> (f64, f64) {
        let (mut eq, mut gross) = (self.cash, 0.0);
        for (p, px) in self.position.iter().zip(&self.last_price) {
            if *p != 0.0 {
                let v = p * px;
                eq += v;
                gross += v.abs();
            }
        }
        (eq, gross)
    }

    /// Events since the last call, oldest first.
    pub fn drain_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    fn event(&mut self, e: Event) {
        if self.record_events {
            self.events.push(e);
        }
    }

    pub fn submit(&mut self, req: OrderRequest) -> Result<u64> {
        if req.symbol >= self.n_symbols {
            return Err(EngineError::order(format!(
                "unknown symbol index {} (the data has {} symbols)",
                req.symbol, self.n_symbols
            )));
        }
        if !req.size.is_finite() || req.size <= 0.0 {
            return Err(EngineError::order(format!(
                "order size must be a finite number > 0, got {} (use sell() to reduce a position)",
                req.size
            )));
        }
        if let OrderKind::Limit(p) = req.kind {
            if !p.is_finite() || p <= 0.0 {
                return Err(EngineError::order(format!(
                    "limit price must be a finite number > 0, got {p}"
                )));
            }
        }
        let id = self.orders.len() as u64;
        let eligible_bar = match (self.started, self.cfg.fill_on) {
            (false, _) => 0,
            (true, FillOn::NextOpen) => self.t + 1,
            (true, FillOn::Close) => self.t,
        };
        self.orders.push(Order {
            id,
            symbol: req.symbol,
            side: req.side,
            kind: req.kind,
            tif: req.tif,
            size: req.size,
            filled: 0.0,
            avg_price: f64::NAN,
            status: OrderStatus::Accepted,
            submitted_bar: self.t,
            eligible_bar,
            closed_bar: None,
            reason: None,
        });
        self.order_day.push(None);
        self.active.push(id as usize);
        self.event(Event::Order(id as usize));
        Ok(id)
    }

    /// Cancel a working order. Returns false when it had already reached a final status.
    pub fn cancel(&mut self, id: u64) -> Result<bool> {
        let i = id as usize;
        if i >= self.orders.len() {
            return Err(EngineError::order(format!("unknown order id {id}")));
        }
        if !self.orders[i].status.is_active() {
            return Ok(false);
        }
        self.active.retain(|&k| k != i);
        self.close_order(i, OrderStatus::Cancelled, None);
        Ok(true)
    }

    fn close_order(&mut self, i: usize, status: OrderStatus, reason: Option<String>) {
        let o = &mut self.orders[i];
        o.status = status;
        o.closed_bar = Some(self.t);
        o.reason = reason;
        self.event(Event::Order(i));
    }

    /// Fill working orders against bar `t` and mark positions to its close.
    pub fn begin_bar(&mut self, bars: &Bars, t: usize) {
        self.t = t;
        self.started = true;
        if !self.active.is_empty() {
            let day = day_number(bars.ts[t], self.cfg.day_offset_ns);
            let active = std::mem::take(&mut self.active);
            let mut still = Vec::with_capacity(active.len());
            for i in active {
                if self.orders[i].eligible_bar > t {
                    still.push(i);
                    continue;
                }
                if self.orders[i].tif == TimeInForce::Day {
                    let d = *self.order_day[i].get_or_insert(day);
                    if day > d {
                        self.close_order(i, OrderStatus::Expired, None);
                        continue;
                    }
                }
                let s = self.orders[i].symbol;
                if !bars.has_bar(t, s) {
                    still.push(i);
                    continue;
                }
                let k = bars.idx(t, s);
                let (open, high, low) = (bars.open[k], bars.high[k], bars.low[k]);
                let o = &self.orders[i];
                let reference = match (o.kind, o.side) {
                    (OrderKind::Market, _) => Some(open),
                    (OrderKind::Limit(p), Side::Buy) => {
                        if open <= p {
                            Some(open)
                        } else if low <= p {
                            Some(p)
                        } else {
                            None
                        }
                    }
                    (OrderKind::Limit(p), Side::Sell) => {
                        if open >= p {
                            Some(open)
                        } else if high >= p {
                            Some(p)
                        } else {
                            None
                        }
                    }
                };
                match reference {
                    Some(px) => self.execute(i, px),
                    None => still.push(i),
                }
            }
            // Orders submitted by callbacks during execution are appended after `still`.
            still.append(&mut self.active);
            self.active = still;
        }
        let row = &bars.close[t * self.n_symbols..(t + 1) * self.n_symbols];
        for (last, &c) in self.last_price.iter_mut().zip(row) {
            if !c.is_nan() {
                *last = c;
            }
        }
    }

    /// Fill same-bar orders at the close (`FillOn::Close` only) and record equity for bar `t`.
    pub fn end_bar(&mut self, bars: &Bars, t: usize) {
        if self.cfg.fill_on == FillOn::Close && !self.active.is_empty() {
            let active = std::mem::take(&mut self.active);
            let mut still = Vec::with_capacity(active.len());
            for i in active {
                let o = &self.orders[i];
                let s = o.symbol;
                if o.eligible_bar != t || !bars.has_bar(t, s) {
                    still.push(i);
                    continue;
                }
                if o.tif == TimeInForce::Day && self.order_day[i].is_none() {
                    self.order_day[i] = Some(day_number(bars.ts[t], self.cfg.day_offset_ns));
                }
                let close = bars.close[bars.idx(t, s)];
                let fills = match (o.kind, o.side) {
                    (OrderKind::Market, _) => true,
                    (OrderKind::Limit(p), Side::Buy) => close <= p,
                    (OrderKind::Limit(p), Side::Sell) => close >= p,
                };
                if fills {
                    self.execute(i, close);
                } else {
                    still.push(i);
                }
            }
            still.append(&mut self.active);
            self.active = still;
        }
        let (eq, gross) = self.marked();
        self.equity.push(eq);
        self.exposure
            .push(if eq > 0.0 { gross / eq } else { f64::NAN });
    }

    /// Fill order `i` whole at `reference` (before slippage), or reject it.
    fn execute(&mut self, i: usize, reference: f64) {
        let (s, side, kind, size, id) = {
            let o = &self.orders[i];
            (o.symbol, o.side, o.kind, o.remaining(), o.id)
        };
        let slip = reference * self.cfg.slippage_bps / 10_000.0;
        let mut price = reference + side.sign() * slip;
        // A limit order never fills worse than its limit, slippage included.
        if let OrderKind::Limit(p) = kind {
            price = match side {
                Side::Buy => price.min(p),
                Side::Sell => price.max(p),
            };
        }
        let notional = size * price;
        let commission = self.cfg.commission(notional);
        match side {
            Side::Sell => {
                let held = self.position[s];
                let name = &self.names[s];
                if size > held * (1.0 + TOL) + TOL {
                    let reason = format!(
                        "insufficient position: cannot sell {size} of {name}, position is {held} (short selling is not enabled)"
                    );
                    self.close_order(i, OrderStatus::Rejected, Some(reason));
                    return;
                }
                if commission > (self.cash + notional) * (1.0 + TOL) + TOL {
                    let reason = format!(
                        "insufficient cash: commission {commission} of selling {size} of {name} exceeds the proceeds {notional} plus cash {}",
                        self.cash
                    );
                    self.close_order(i, OrderStatus::Rejected, Some(reason));
                    return;
                }
            }
            Side::Buy => {
                let need = notional + commission;
                if need > self.cash * (1.0 + TOL) + TOL {
                    let reason = format!(
                        "insufficient cash: buying {size} of {} at {price} needs {need} including commission {commission}, cash is {}",
                        self.names[s], self.cash
                    );
                    self.close_order(i, OrderStatus::Rejected, Some(reason));
                    return;
                }
            }
        }
        let slippage_cost = size * (price - reference).abs();
        self.apply_fill(s, side, size, price, commission, slippage_cost);
        self.fills.push(Fill {
            order_id: id,
            symbol: s,
            bar: self.t,
            side,
            size,
            price,
            commission,
            slippage: slippage_cost,
        });
        let fill_idx = self.fills.len() - 1;
        let o = &mut self.orders[i];
        o.avg_price = price;
        o.filled = o.size;
        self.event(Event::Fill(fill_idx));
        self.close_order(i, OrderStatus::Filled, None);
    }

    fn apply_fill(
        &mut self,
        s: usize,
        side: Side,
        size: f64,
        price: f64,
        commission: f64,
        slippage: f64,
    ) {
        let q = side.sign() * size;
        self.cash -= q * price + commission;
        self.realized[s] -= commission;
        self.commission_paid[s] += commission;
        self.slippage_paid[s] += slippage;
        let commission_per_unit = commission / size;
        let old = self.position[s];
        if old == 0.0 || old.signum() == q.signum() {
            let new = old + q;
            self.avg_cost[s] = (old.abs() * self.avg_cost[s] + size * price) / new.abs();
            self.position[s] = new;
            self.lots[s].push_back(Lot {
                size,
                price,
                bar: self.t,
                commission_per_unit,
            });
            return;
        }
        let closing = size.min(old.abs());
        self.realized[s] += closing * (price - self.avg_cost[s]) * old.signum();
        self.close_lots(s, old.signum(), closing, price, commission_per_unit);
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
                bar: self.t,
                commission_per_unit,
            });
        }
        self.position[s] = new;
    }

    /// Close `amount` units of the FIFO lots of symbol `s`, producing round-trip trades.
    fn close_lots(&mut self, s: usize, direction: f64, amount: f64, price: f64, exit_cpu: f64) {
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
                exit_bar: self.t,
                entry_price: lot.price,
                exit_price: price,
                gross_pnl: piece * (price - lot.price) * direction,
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
