//! The broker: the phases of one bar over the rooms that own the state — the order book
//! (`orders`), the pure matching rules (`matching`), fee and slippage models (`costs`), the
//! pre-trade rules (`rules`), the per-symbol facts (`instrument`) and the ledger (`ledger`).
//!
//! Per bar t: `begin_bar` fills working orders against bar t (market at the open, limits when
//! the range reaches them) and marks positions to the close; the driver decides and submits
//! orders; `end_bar` fills same-bar orders when `FillOn::Close` is chosen and records equity.

use crate::config::{Config, FillOn};
use crate::costs::{Fee, FillContext, Slippage};
use crate::data::Bars;
use crate::error::{EngineError, Result};
use crate::instrument::Instrument;
use crate::ledger::Ledger;
use crate::matching::{cap_to_limit, reference_price, Quote};
use crate::orders::OrderBook;
use crate::rules::{check_all, code, Proposed, Reject, Rule};
use crate::time::day_number;
use crate::types::{Event, Fill, Order, OrderKind, OrderRequest, Side, Sizing, TimeInForce, Trade};

#[derive(Debug)]
pub struct Broker {
    cfg: Config,
    fee: Fee,
    slippage: Slippage,
    rules: Vec<Rule>,
    instruments: Vec<Instrument>,
    book: OrderBook,
    ledger: Ledger,
    fills: Vec<Fill>,
    events: Vec<Event>,
    record_events: bool,
    t: usize,
    started: bool,
}

impl Broker {
    pub fn new(cfg: Config, n_symbols: usize) -> Result<Self> {
        let instruments = (0..n_symbols)
            .map(|s| Instrument::new(format!("#{s}")))
            .collect();
        Self::with_instruments(cfg, instruments)
    }

    /// A broker for the given instruments (one per data column, in data order).
    pub fn with_instruments(cfg: Config, instruments: Vec<Instrument>) -> Result<Self> {
        cfg.validate()?;
        for inst in &instruments {
            let ok = |x: f64| x.is_finite() && x >= 0.0;
            if !ok(inst.size_increment) || !ok(inst.tick_size) {
                return Err(EngineError::config(format!(
                    "instrument {}: size_increment and tick_size must be finite and >= 0",
                    inst.name
                )));
            }
            if !(inst.multiplier.is_finite() && inst.multiplier > 0.0) {
                return Err(EngineError::config(format!(
                    "instrument {}: multiplier must be finite and > 0, got {}",
                    inst.name, inst.multiplier
                )));
            }
        }
        let n = instruments.len();
        Ok(Self {
            fee: cfg.fee(),
            slippage: cfg.slippage(),
            rules: Rule::CASH_ACCOUNT.to_vec(),
            ledger: Ledger::new(cfg.cash, instruments.iter().map(|i| i.multiplier).collect()),
            instruments,
            book: OrderBook::new(n),
            cfg,
            fills: Vec::new(),
            events: Vec::new(),
            record_events: false,
            t: 0,
            started: false,
        })
    }

    /// Name the symbols (in data order) for messages such as rejection reasons.
    pub fn set_symbol_names(&mut self, names: Vec<String>) -> Result<()> {
        if names.len() != self.instruments.len() {
            return Err(EngineError::config(format!(
                "{} symbol names for {} symbols",
                names.len(),
                self.instruments.len()
            )));
        }
        for (inst, name) in self.instruments.iter_mut().zip(names) {
            inst.name = name;
        }
        Ok(())
    }

    /// Pre-size the per-bar curves for a run of `n_bars` bars.
    pub fn reserve(&mut self, n_bars: usize) {
        self.ledger.reserve(n_bars);
    }

    /// Keep order/fill events for a driver that forwards them (Python callbacks).
    pub fn set_record_events(&mut self, on: bool) {
        self.record_events = on;
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }
    pub fn instruments(&self) -> &[Instrument] {
        &self.instruments
    }
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }
    pub fn n_symbols(&self) -> usize {
        self.instruments.len()
    }
    /// Index of the bar being processed (0 before the first bar).
    pub fn bar_index(&self) -> usize {
        self.t
    }
    pub fn cash(&self) -> f64 {
        self.ledger.cash()
    }
    pub fn position(&self, s: usize) -> f64 {
        self.ledger.position(s)
    }
    pub fn positions(&self) -> &[f64] {
        self.ledger.positions()
    }
    pub fn avg_cost(&self, s: usize) -> f64 {
        self.ledger.avg_cost(s)
    }
    pub fn realized(&self) -> &[f64] {
        self.ledger.realized()
    }
    pub fn commission_paid(&self) -> &[f64] {
        self.ledger.commission_paid()
    }
    pub fn slippage_paid(&self) -> &[f64] {
        self.ledger.slippage_paid()
    }
    pub fn last_prices(&self) -> &[f64] {
        self.ledger.last_prices()
    }
    pub fn unrealized(&self, s: usize) -> f64 {
        self.ledger.unrealized(s)
    }
    pub fn equity(&self) -> f64 {
        self.ledger.equity()
    }
    pub fn equity_curve(&self) -> &[f64] {
        self.ledger.equity_curve()
    }
    pub fn exposure_curve(&self) -> &[f64] {
        self.ledger.exposure_curve()
    }
    pub fn trades(&self) -> &[Trade] {
        self.ledger.trades()
    }
    pub fn orders(&self) -> &[Order] {
        self.book.all()
    }
    pub fn order(&self, id: u64) -> Option<&Order> {
        self.book.get(id)
    }
    pub fn fills(&self) -> &[Fill] {
        &self.fills
    }
    /// Ids of working orders, oldest first.
    pub fn active_order_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.book.working().map(|i| i as u64)
    }
    #[inline]
    pub fn has_active_order(&self, s: usize) -> bool {
        self.book.has_working_for(s)
    }

    /// Events since the last call, oldest first.
    pub fn drain_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    #[inline]
    fn event(&mut self, e: Event) {
        if self.record_events {
            self.events.push(e);
        }
    }

    pub fn submit(&mut self, req: OrderRequest) -> Result<u64> {
        let n = self.instruments.len();
        if req.symbol >= n {
            return Err(EngineError::order(format!(
                "unknown symbol index {} (the data has {n} symbols)",
                req.symbol
            ))
            .with_field("symbol", req.symbol.to_string()));
        }
        if !req.size.is_finite() || req.size <= 0.0 {
            return Err(EngineError::order(format!(
                "order size must be a finite number > 0, got {} (use sell() to reduce a position)",
                req.size
            ))
            .with_field("size", req.size.to_string()));
        }
        if let OrderKind::Limit(p) = req.kind {
            if !p.is_finite() || p <= 0.0 {
                return Err(EngineError::order(format!(
                    "limit price must be a finite number > 0, got {p}"
                ))
                .with_field("limit", p.to_string()));
            }
        }
        let eligible_bar = match (self.started, self.cfg.fill_on) {
            (false, _) => 0,
            (true, FillOn::NextOpen) => self.t + 1,
            (true, FillOn::Close) => self.t,
        };
        let i = self.book.accept(req, self.t, eligible_bar);
        self.event(Event::Order(i));
        Ok(i as u64)
    }

    /// Cancel a working order. Returns false when it had already reached a final status.
    pub fn cancel(&mut self, id: u64) -> Result<bool> {
        let Some(i) = usize::try_from(id)
            .ok()
            .filter(|&i| i < self.book.all().len())
        else {
            return Err(EngineError::order(format!("unknown order id {id}")));
        };
        let done = self.book.cancel(i, self.t);
        if done {
            self.event(Event::Order(i));
        }
        Ok(done)
    }

    /// Fill working orders against bar `t` and mark positions to its close.
    pub fn begin_bar(&mut self, bars: &Bars, t: usize) {
        self.t = t;
        self.started = true;
        if self.book.has_working() {
            let day = day_number(bars.ts[t], self.cfg.day_offset_ns);
            let mut book = std::mem::take(&mut self.book);
            book.sweep(|book, i| {
                let o = book.order(i);
                if o.eligible_bar > t {
                    return;
                }
                if o.tif == TimeInForce::Day && day > book.day_of(i, day) {
                    book.expire(i, t);
                    self.event(Event::Order(i));
                    return;
                }
                let o = book.order(i);
                let s = o.symbol;
                if !bars.has_bar(t, s) {
                    return;
                }
                let k = bars.idx(t, s);
                let q = Quote::bar(bars.open[k], bars.high[k], bars.low[k]);
                if let Some(px) = reference_price(o.kind, o.side, q) {
                    self.execute(book, i, px);
                }
            });
            self.book = book;
        }
        let ns = self.instruments.len();
        self.ledger.mark(&bars.close[t * ns..(t + 1) * ns]);
    }

    /// Fill same-bar orders at the close (`FillOn::Close` only) and record equity for bar `t`.
    pub fn end_bar(&mut self, bars: &Bars, t: usize) {
        if self.cfg.fill_on == FillOn::Close && self.book.has_working() {
            let mut book = std::mem::take(&mut self.book);
            book.sweep(|book, i| {
                let o = book.order(i);
                let s = o.symbol;
                if o.eligible_bar != t || !bars.has_bar(t, s) {
                    return;
                }
                if o.tif == TimeInForce::Day {
                    book.day_of(i, day_number(bars.ts[t], self.cfg.day_offset_ns));
                }
                let o = book.order(i);
                let close = bars.close[bars.idx(t, s)];
                if let Some(px) = reference_price(o.kind, o.side, Quote::at(close)) {
                    self.execute(book, i, px);
                }
            });
            self.book = book;
        }
        self.ledger.record();
    }

    /// Units for a value or percent order at `price` (see [`Sizing`]); Err when that is none.
    fn resolve_units(&self, o: &Order, price: f64) -> std::result::Result<f64, Reject> {
        let inst = &self.instruments[o.symbol];
        let unit_value = price * inst.multiplier;
        let target = match o.sizing {
            Sizing::Units => return Ok(o.size),
            Sizing::Value => o.amount,
            Sizing::EquityPct => o.amount * self.ledger.equity(),
        };
        let mut units = target / unit_value;
        match o.side {
            Side::Buy => {
                units = units.min(self.fee.affordable(self.ledger.cash()) / unit_value);
            }
            Side::Sell if !inst.shortable => {
                units = units.min(self.ledger.position(o.symbol).max(0.0));
            }
            Side::Sell => {}
        }
        if inst.size_increment > 0.0 {
            // Round down, with a little slack so that an exact multiple is not lost to rounding.
            units = ((units / inst.size_increment) * (1.0 + 1e-12)).floor() * inst.size_increment;
        }
        if units.is_finite() && units > 0.0 {
            Ok(units)
        } else {
            Err(Reject::new(
                code::ZERO_SIZE,
                format!(
                    "{} {} of {} sizes to no units at {price} (equity {}, cash {}, position {})",
                    o.sizing.as_str(),
                    o.amount,
                    inst.name,
                    self.ledger.equity(),
                    self.ledger.cash(),
                    self.ledger.position(o.symbol)
                ),
            ))
        }
    }

    /// Fill order `i` whole at `reference` (before slippage), or reject it.
    fn execute(&mut self, book: &mut OrderBook, i: usize, reference: f64) {
        let o = book.order(i);
        let (s, side, kind) = (o.symbol, o.side, o.kind);
        let price = cap_to_limit(kind, side, self.slippage.price(side, reference));
        if o.size.is_nan() {
            match self.resolve_units(o, price) {
                Ok(units) => book.resolve_size(i, units),
                Err(why) => {
                    book.reject(i, self.t, why);
                    self.event(Event::Order(i));
                    return;
                }
            }
        }
        let o = book.order(i);
        let (size, id) = (o.remaining(), o.id);
        let inst = &self.instruments[s];
        let notional = size * price * inst.multiplier;
        let commission = self.fee.commission(&FillContext {
            side,
            quantity: size,
            price,
            notional,
            symbol: s,
            bar: self.t,
        });
        let proposed = Proposed {
            side,
            kind,
            quantity: size,
            price,
            notional,
            commission,
        };
        if let Err(why) = check_all(&self.rules, &proposed, &self.ledger.account(s), inst) {
            book.reject(i, self.t, why);
            self.event(Event::Order(i));
            return;
        }
        let slippage_cost = size * (price - reference).abs() * inst.multiplier;
        self.ledger
            .apply_fill(s, side, size, price, commission, slippage_cost, self.t);
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
        book.fill(i, size, price, self.t);
        self.event(Event::Fill(self.fills.len() - 1));
        self.event(Event::Order(i));
    }
}
