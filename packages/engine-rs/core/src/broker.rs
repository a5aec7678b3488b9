//! The broker: the phases of one bar over the rooms that own the state — the order book
//! (`orders`), the pure matching rules (`matching`), fee and slippage models (`costs`), the
//! pre-trade rules (`rules`), the per-symbol facts (`instrument`) and the ledger (`ledger`).
//!
//! Per bar t: `begin_bar` trades working orders along bar t's price path and marks positions
//! to the close; the driver decides and submits orders; `end_bar` trades same-bar orders at
//! the close when `FillOn::Close` is chosen and records equity.
//!
//! The open phase has two passes. First every eligible order meets the open, oldest first
//! (market orders fill there, stops and limits gapped through too). Then the orders still
//! working meet the rest of the bar's path (its rule: `matching::BarPath`, chosen per symbol
//! with the position left after the open) in the order the path reaches them — ties by order
//! id. Exits activated by a fill join the pass at the point of that fill, so a bracket's stop
//! can fill within the bar its entry filled, and a fill of one exit shrinks (or cancels) the
//! other at once.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::config::{AccountKind, Config, FillOn};
use crate::costs::{Fees, FillContext, SlipContext, Slippage};
use crate::data::Bars;
use crate::error::{EngineError, Result};
use crate::instrument::Instrument;
use crate::ledger::Ledger;
use crate::limits::{self, Limits};
use crate::matching::{cap_to_limit, evaluate, Path};
use crate::mem::Chunked;
use crate::orders::{FillFees, Link, OrderBook};
use crate::rules::{check_all, code, Exposure, Proposed, Reject, Rule, TOL};
use crate::settlement::{self, Settlement};
use crate::time::day_number;
use crate::types::{
    Event, Fill, Level, MarginCall, Order, OrderEvent, OrderKind, OrderRequest, OrderStatus, Side,
    Sizing, TimeInForce, Trade,
};

/// Nanoseconds in the year of the borrow rates (actual/365).
const YEAR_NS: f64 = 365.0 * 86_400e9;

/// A point on a bar's path where an order does something, ordered by position then order id.
#[derive(Clone, Copy, Debug)]
struct Hit {
    pos: f64,
    order: usize,
    /// Reference price of the fill (NaN: the stop triggers here without filling yet).
    reference: f64,
    /// Where a triggered stop-limit trades later along the path (NaN: not within this bar).
    then: f64,
    then_reference: f64,
}

impl PartialEq for Hit {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Hit {}
impl PartialOrd for Hit {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Hit {
    /// Reversed, so that the max-heap pops the earliest hit first.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .pos
            .total_cmp(&self.pos)
            .then(other.order.cmp(&self.order))
    }
}

/// The per-bar scratch state of the path pass, kept across bars so that bars allocate nothing.
#[derive(Debug, Default)]
struct Scratch {
    hits: BinaryHeap<Hit>,
    /// Orders that did not trade at the open, for the path pass.
    later: Vec<usize>,
    /// Orders activated by a fill, to meet the rest of the phase.
    fresh: Vec<usize>,
    /// Each symbol's path on the bar it was built for.
    paths: Vec<(usize, Path)>,
    /// Volume left to trade per symbol on the bar it was computed for (volume cap only).
    budget: Vec<(usize, f64)>,
}

#[derive(Debug)]
pub struct Broker {
    cfg: Config,
    fees: Fees,
    slippage: Slippage,
    rules: Vec<Rule>,
    instruments: Vec<Instrument>,
    book: OrderBook,
    ledger: Ledger,
    fills: Chunked<Fill>,
    events: Vec<Event>,
    record_events: bool,
    t: usize,
    /// Timestamp of bar `t` (for dated fees and GTD orders).
    ts: i64,
    started: bool,
    scratch: Scratch,
    /// The margin rule is on (a margin account, or shorting allowed somewhere): fills read
    /// the whole book and closes are checked for margin calls.
    margin_rule: bool,
    /// Some shortable instrument pays a borrow rate.
    borrows: bool,
    margin_calls: Vec<MarginCall>,
    /// Daily price bands (None: no symbol has a schedule).
    limits: Option<Box<Limits>>,
    /// T+n locks (None: no symbol has t_plus).
    settle: Option<Box<Settlement>>,
    /// Some symbol treats a bar without volume as suspended.
    zero_volume_halts: bool,
    /// Bars may be suspended (a zero-volume rule or a suspended-flag column in the data).
    halts: bool,
    /// Price limits or T+n are on: the per-bar market hook runs.
    hooks: bool,
    /// Borrow accrual or market hooks run on every bar (not only when orders work).
    per_bar_work: bool,
}

impl Broker {
    pub fn new(cfg: Config, n_symbols: usize) -> Result<Self> {
        let instruments = (0..n_symbols)
            .map(|s| Instrument::new(format!("#{s}")))
            .collect();
        Self::with_instruments(cfg, instruments)
    }

    /// A broker for the given instruments (one per data column, in data order), with the
    /// run configuration's instrument settings applied by symbol name.
    pub fn with_instruments(cfg: Config, mut instruments: Vec<Instrument>) -> Result<Self> {
        cfg.validate()?;
        let (im, mm) = cfg.margins();
        for inst in instruments.iter_mut() {
            inst.shortable |= cfg.allow_short;
            inst.borrow_rate = cfg.borrow_rate;
            inst.initial_margin = im;
            inst.maintenance_margin = mm;
        }
        let by_name = name_index(&instruments);
        for (name, set) in &cfg.instruments {
            let mut matched = false;
            for s in named(&by_name, instruments.len(), name) {
                matched = true;
                set.apply_to(&mut instruments[s]);
            }
            if !matched {
                return Err(EngineError::config(format!(
                    "instrument settings for {name:?}, which is not a symbol of the data"
                ))
                .with_field("symbol", name.clone()));
            }
        }
        for inst in &instruments {
            let ok = |x: f64| x.is_finite() && x >= 0.0;
            if !ok(inst.size_increment) || !ok(inst.tick_size) || !ok(inst.min_size) {
                return Err(EngineError::config(format!(
                    "instrument {}: size_increment, tick_size and min_size must be finite and >= 0",
                    inst.name
                )));
            }
            if inst.maintenance_margin > inst.initial_margin {
                return Err(EngineError::config(format!(
                    "instrument {}: maintenance margin {} is above its initial margin {}",
                    inst.name, inst.maintenance_margin, inst.initial_margin
                ))
                .with_field("symbol", inst.name.clone()));
            }
            if !(inst.multiplier.is_finite() && inst.multiplier > 0.0) {
                return Err(EngineError::config(format!(
                    "instrument {}: multiplier must be finite and > 0, got {}",
                    inst.name, inst.multiplier
                )));
            }
        }
        let limits = Self::limit_schedules(&cfg, &instruments)?;
        let settle = Settlement::new(&instruments).map(Box::new);
        let hooks = limits.is_some() || settle.is_some();
        let zero_volume_halts = instruments.iter().any(|i| i.suspend_on_zero_volume);
        let n = instruments.len();
        let margin_rule =
            cfg.account == AccountKind::Margin || instruments.iter().any(|i| i.shortable);
        let borrows = instruments
            .iter()
            .any(|i| i.shortable && i.borrow_rate > 0.0);
        let mut rules = Rule::CASH_ACCOUNT.to_vec();
        if margin_rule {
            for r in rules.iter_mut().filter(|r| **r == Rule::Cash) {
                *r = Rule::Margin;
            }
        }
        Ok(Self {
            fees: cfg.fee_schedule(),
            slippage: cfg.slippage(),
            rules,
            margin_rule,
            borrows,
            margin_calls: Vec::new(),
            ledger: Ledger::new(cfg.cash, instruments.iter().map(|i| i.multiplier).collect()),
            instruments,
            book: OrderBook::new(n),
            cfg,
            fills: Chunked::new(),
            events: Vec::new(),
            record_events: false,
            t: 0,
            ts: i64::MIN,
            started: false,
            scratch: Scratch {
                paths: vec![(usize::MAX, Path::at(f64::NAN)); n],
                budget: vec![(usize::MAX, 0.0); n],
                ..Scratch::default()
            },
            limits,
            settle,
            zero_volume_halts,
            halts: zero_volume_halts,
            hooks,
            per_bar_work: hooks || borrows,
        })
    }

    /// Each symbol's price-limit schedule from the configuration (by name, "*": all).
    fn limit_schedules(cfg: &Config, instruments: &[Instrument]) -> Result<Option<Box<Limits>>> {
        if cfg.price_limits.is_empty() {
            return Ok(None);
        }
        let mut schedules = vec![Vec::new(); instruments.len()];
        let by_name = name_index(instruments);
        for (name, bands) in &cfg.price_limits {
            let mut matched = false;
            for s in named(&by_name, instruments.len(), name) {
                matched = true;
                schedules[s].clone_from(bands);
            }
            if !matched {
                return Err(EngineError::config(format!(
                    "price limits for {name:?}, which is not a symbol of the data"
                ))
                .with_field("symbol", name.clone()));
            }
        }
        let ticks = instruments.iter().map(|i| i.tick_size).collect();
        Ok(Limits::new(schedules, ticks).map(Box::new))
    }

    /// Units of symbol `s` a sell may take today: the long position less what T+n locks.
    pub fn sellable(&self, s: usize) -> f64 {
        let held = self.ledger.position(s).max(0.0);
        match self.settle.as_deref() {
            Some(st) => st.sellable(s, held),
            None => held,
        }
    }

    /// A suspended bar of symbol `s` (data flag, or no volume where that halts trading).
    #[inline]
    fn halted(&self, bars: &Bars, t: usize, s: usize) -> bool {
        self.halts && limits::suspended(bars, t, s, self.instruments[s].suspend_on_zero_volume)
    }

    /// May order `i` meet bar `t`: not on a suspended bar, and rejected when its limit price
    /// lies beyond the day's band.
    fn may_meet(&mut self, book: &mut OrderBook, i: usize, bars: &Bars, t: usize) -> bool {
        let s = book.order(i).symbol;
        if self.halted(bars, t, s) {
            return false;
        }
        let why = self
            .limits
            .as_deref()
            .and_then(|l| l.outside(s, &self.instruments[s].name, book.order(i).kind));
        match why {
            Some(why) => {
                self.reject(book, i, why);
                false
            }
            None => true,
        }
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
    pub fn tax_paid(&self) -> &[f64] {
        self.ledger.tax_paid()
    }
    pub fn borrow_paid(&self) -> &[f64] {
        self.ledger.borrow_paid()
    }
    pub fn margin_calls(&self) -> &[MarginCall] {
        &self.margin_calls
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
    /// Empty when the curve is not kept (see [`Broker::keep_exposure_curve`]).
    pub fn exposure_curve(&self) -> &[f64] {
        self.ledger.exposure_curve()
    }
    /// Keep the per-bar exposure curve (the default) or only its figures; before the run.
    pub fn keep_exposure_curve(&mut self, keep: bool) {
        self.ledger.keep_exposure_curve(keep);
    }
    pub fn keeps_exposure_curve(&self) -> bool {
        self.ledger.keeps_exposure_curve()
    }
    /// The exposure curve's figures, kept or not (see [`Ledger::exposure_summary`]).
    pub fn exposure_summary(&self) -> Option<crate::ledger::ExposureSummary> {
        self.ledger.exposure_summary()
    }
    pub fn trades(&self) -> &Chunked<Trade> {
        self.ledger.trades()
    }
    pub fn orders(&self) -> &Chunked<Order> {
        self.book.all()
    }
    pub fn order(&self, id: u64) -> Option<&Order> {
        self.book.get(id)
    }
    pub fn fills(&self) -> &Chunked<Fill> {
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

    #[inline]
    fn order_event(&mut self, book: &OrderBook, i: usize, what: OrderEvent) {
        Self::note(&mut self.events, self.record_events, book, i, what);
    }

    /// `order_event` on the broker's own book (borrowing only the fields it needs).
    #[inline]
    fn note(events: &mut Vec<Event>, on: bool, book: &OrderBook, i: usize, what: OrderEvent) {
        if on {
            events.push(Event::Order {
                order: i,
                what,
                filled: book.order(i).filled,
            });
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
        check_kind(req.kind)?;
        check_bracket(&req)?;
        if let Some(p) = req.parent {
            let open = usize::try_from(p)
                .ok()
                .and_then(|i| self.book.all().get(i))
                .is_some_and(|o| o.status.is_open());
            if !open {
                return Err(EngineError::order(format!(
                    "parent order {p} is unknown or no longer open: a one-triggers-other child needs a working parent"
                ))
                .with_field("parent", p.to_string()));
            }
        }
        let eligible_bar = self.eligible_bar();
        let link = req.parent.map(|parent| Link::Oto { parent });
        let i = self.book.accept(req, self.t, eligible_bar, link);
        Self::note(
            &mut self.events,
            self.record_events,
            &self.book,
            i,
            OrderEvent::Submitted,
        );
        if link.is_none() {
            Self::note(
                &mut self.events,
                self.record_events,
                &self.book,
                i,
                OrderEvent::Accepted,
            );
        }
        if let OrderKind::Trailing { offset, pct } = req.kind {
            // The stop starts from the last price the strategy has seen (no look-ahead).
            let last = self.ledger.last_prices()[req.symbol];
            if !last.is_nan() {
                let stop = crate::matching::trailing_stop(req.side, offset, pct, last);
                self.book.trail(i, last, stop);
            }
        }
        let exits = [
            req.bracket.sl.map(|l| OrderKind::Stop(level_or_nan(l))),
            req.bracket.tp.map(|l| OrderKind::Limit(level_or_nan(l))),
        ];
        for kind in exits.into_iter().flatten() {
            let leg = OrderRequest {
                side: opposite(req.side),
                size: 0.0,
                kind,
                sizing: Sizing::Units,
                tif: TimeInForce::Gtc,
                bracket: Default::default(),
                parent: None,
                ..req
            };
            let j = self.book.accept(
                leg,
                self.t,
                eligible_bar,
                Some(Link::Bracket { parent: i as u64 }),
            );
            Self::note(
                &mut self.events,
                self.record_events,
                &self.book,
                j,
                OrderEvent::Submitted,
            );
        }
        Ok(i as u64)
    }

    fn eligible_bar(&self) -> usize {
        match (self.started, self.cfg.fill_on) {
            (false, _) => 0,
            (true, FillOn::NextOpen) => self.t + 1,
            (true, FillOn::Close) => self.t,
        }
    }

    fn index(&self, id: u64) -> Result<usize> {
        usize::try_from(id)
            .ok()
            .filter(|&i| i < self.book.all().len())
            .ok_or_else(|| {
                EngineError::order(format!("unknown order id {id}"))
                    .with_field("id", id.to_string())
            })
    }

    /// Cancel a working or pending order. Returns false when it had already reached a final
    /// status. Cancelling an entry that has not filled cancels its bracket exits.
    pub fn cancel(&mut self, id: u64) -> Result<bool> {
        let i = self.index(id)?;
        let mut book = std::mem::take(&mut self.book);
        let done = book.cancel(i, self.t);
        if done {
            self.order_event(&book, i, OrderEvent::Cancelled);
            self.after_final(&mut book, i);
        }
        self.scratch.fresh.clear();
        self.book = book;
        Ok(done)
    }

    /// Replace a working or pending order's limit price, stop price or size.
    pub fn modify(
        &mut self,
        id: u64,
        limit: Option<f64>,
        stop: Option<f64>,
        size: Option<f64>,
    ) -> Result<()> {
        let i = self.index(id)?;
        let o = self.book.order(i);
        if !o.status.is_open() {
            return Err(EngineError::order(format!(
                "order {id} is {}: only working or pending orders can be modified",
                o.status.as_str()
            ))
            .with_field("id", id.to_string()));
        }
        let no = |what: &str, field: &'static str| {
            Err(EngineError::order(format!(
                "order {id} is a {} order and has no {what} price",
                o.kind.as_str()
            ))
            .with_field(field, id.to_string()))
        };
        let kind = match o.kind {
            OrderKind::Market if limit.is_some() => return no("limit", "limit"),
            OrderKind::Market | OrderKind::Limit(_) | OrderKind::Trailing { .. }
                if stop.is_some() =>
            {
                return no("fixed stop", "stop")
            }
            OrderKind::Stop(_) | OrderKind::Trailing { .. } if limit.is_some() => {
                return no("limit", "limit")
            }
            OrderKind::Limit(p) => OrderKind::Limit(limit.unwrap_or(p)),
            OrderKind::Stop(p) => OrderKind::Stop(stop.unwrap_or(p)),
            OrderKind::StopLimit { stop: s, limit: l } => OrderKind::StopLimit {
                stop: stop.unwrap_or(s),
                limit: limit.unwrap_or(l),
            },
            k => k,
        };
        check_kind(kind)?;
        if let Some(size) = size {
            if o.reduce_only {
                return Err(EngineError::order(format!(
                    "order {id} is a bracket exit: its size follows its entry's fills"
                ))
                .with_field("size", size.to_string()));
            }
            let floor = if o.size.is_nan() { 0.0 } else { o.filled };
            if !size.is_finite() || size <= 0.0 || size < floor {
                return Err(EngineError::order(format!(
                    "new size of order {id} must be a finite number > 0 and at least its filled {floor}, got {size}"
                ))
                .with_field("size", size.to_string()));
            }
        }
        let mut book = std::mem::take(&mut self.book);
        book.modify(i, kind, size);
        self.order_event(&book, i, OrderEvent::Modified);
        self.book = book;
        Ok(())
    }

    /// Link open orders one-cancels-other: a fill of any of them cancels the others.
    pub fn link_oco(&mut self, ids: &[u64]) -> Result<u64> {
        if ids.len() < 2 {
            return Err(EngineError::order(format!(
                "an OCO group needs at least two orders, got {}",
                ids.len()
            )));
        }
        let mut members = Vec::with_capacity(ids.len());
        for &id in ids {
            let i = self.index(id)?;
            let o = self.book.order(i);
            if !o.status.is_open() || o.link.is_some() || members.contains(&i) {
                return Err(EngineError::order(format!(
                    "order {id} cannot join an OCO group: it is {}{}",
                    o.status.as_str(),
                    if o.link.is_some() {
                        " and already linked"
                    } else {
                        ""
                    }
                ))
                .with_field("id", id.to_string()));
            }
            members.push(i);
        }
        Ok(self.book.group(&members))
    }

    /// Trade working orders along bar `t` and mark positions to its close.
    #[inline]
    pub fn begin_bar(&mut self, bars: &Bars, t: usize) {
        self.t = t;
        // Most bars of most runs have nothing to trade and no market hooks: keep that path
        // small enough to inline into the driver's loop.
        if self.book.has_working() || self.per_bar_work || !self.started {
            self.begin_bar_full(bars, t);
        } else {
            self.ts = bars.ts[t];
        }
        let ns = self.instruments.len();
        self.ledger.mark(&bars.close[t * ns..(t + 1) * ns]);
    }

    #[inline(never)]
    fn begin_bar_full(&mut self, bars: &Bars, t: usize) {
        if self.borrows && self.started {
            self.accrue_borrow(bars.ts[t]);
        }
        self.ts = bars.ts[t];
        if !self.started {
            // A run's data keep their columns: look for a suspended flag once.
            self.halts = self.zero_volume_halts || limits::has_flag_column(bars);
        }
        self.started = true;
        if self.hooks {
            self.market_day(bars, t);
        }
        if self.book.has_working() {
            let mut book = std::mem::take(&mut self.book);
            self.scratch.later.clear();
            let day = day_number(bars.ts[t], self.cfg.day_offset_ns);
            book.sweep(|book, i| {
                let o = book.order(i);
                if o.eligible_bar > t {
                    return;
                }
                let expired = match o.tif {
                    TimeInForce::Day => day > book.day_of(i, day),
                    TimeInForce::Gtd(until) => self.ts > until,
                    _ => false,
                };
                if expired {
                    book.expire(i, t);
                    self.order_event(book, i, OrderEvent::Expired);
                    self.after_final(book, i);
                } else {
                    self.at_first_price(book, i, bars, t, false);
                }
                while let Some(j) = self.scratch.fresh.pop() {
                    self.at_first_price(book, j, bars, t, false);
                }
            });
            self.along_path(&mut book, bars, t);
            self.book = book;
        }
    }

    /// The day's price bands and the T+n releases, before bar `t` trades.
    #[inline(never)]
    fn market_day(&mut self, bars: &Bars, t: usize) {
        let day = day_number(bars.ts[t], self.cfg.day_offset_ns);
        if let Some(l) = self.limits.as_deref_mut() {
            l.begin_bar(bars, t, day);
        }
        if let Some(st) = self.settle.as_deref_mut() {
            st.begin_bar(day);
        }
    }

    /// Trade same-bar orders at the close (`FillOn::Close` only) and record equity for bar `t`.
    #[inline]
    pub fn end_bar(&mut self, bars: &Bars, t: usize) {
        if self.margin_rule || (self.cfg.fill_on == FillOn::Close && self.book.has_working()) {
            self.end_bar_full(bars, t);
        }
        self.ledger.record();
    }

    #[inline(never)]
    fn end_bar_full(&mut self, bars: &Bars, t: usize) {
        if self.cfg.fill_on == FillOn::Close && self.book.has_working() {
            let mut book = std::mem::take(&mut self.book);
            book.sweep(|book, i| {
                let o = book.order(i);
                if o.eligible_bar != t || o.submitted_bar != t {
                    return;
                }
                if o.tif == TimeInForce::Day {
                    book.day_of(i, day_number(bars.ts[t], self.cfg.day_offset_ns));
                }
                self.at_first_price(book, i, bars, t, true);
                while let Some(j) = self.scratch.fresh.pop() {
                    self.at_first_price(book, j, bars, t, true);
                }
            });
            self.book = book;
        }
        if self.margin_rule {
            self.check_maintenance(t);
        }
    }

    /// Charge every short its borrow cost for the time since the last bar, at the last price
    /// (the position was held at that value over the interval).
    fn accrue_borrow(&mut self, now: i64) {
        let years = (now - self.ts) as f64 / YEAR_NS;
        for (s, inst) in self.instruments.iter().enumerate() {
            let pos = self.ledger.position(s);
            if pos < 0.0 && inst.borrow_rate > 0.0 {
                let value = -pos * self.ledger.last_prices()[s] * inst.multiplier;
                let cost = value * inst.borrow_rate * years;
                if cost > 0.0 {
                    self.ledger.charge_borrow(s, cost);
                }
            }
        }
    }

    /// The margin rule's view of the book at last prices, for a fill in symbol `s`.
    fn exposure(&self, s: usize) -> Exposure {
        let (mut required, mut gross) = (0.0, 0.0);
        let last = self.ledger.last_prices();
        for (k, (&pos, inst)) in self
            .ledger
            .positions()
            .iter()
            .zip(&self.instruments)
            .enumerate()
        {
            if pos != 0.0 {
                let v = pos.abs() * last[k] * inst.multiplier;
                required += v * inst.initial_margin;
                gross += v;
            }
        }
        Exposure {
            equity: self.ledger.equity(),
            required,
            gross,
            last: last[s],
            max_leverage: self.cfg.max_leverage.unwrap_or(f64::INFINITY),
            cash_account: self.cfg.account == AccountKind::Cash,
        }
    }

    /// Margin call: when equity at this close is below the maintenance margin of the
    /// positions, liquidate whole positions, largest maintenance margin first (ties: data
    /// order), until what is left is covered (everything when equity is not positive).
    /// Liquidations are market orders for the next bar's open, before the strategy's orders;
    /// the strategy's working orders in those symbols are cancelled (`margin_call`).
    fn check_maintenance(&mut self, t: usize) {
        let last = self.ledger.last_prices();
        let mut need: Vec<(f64, usize)> = Vec::new();
        let mut required = 0.0;
        for (s, (&pos, inst)) in self
            .ledger
            .positions()
            .iter()
            .zip(&self.instruments)
            .enumerate()
        {
            if pos != 0.0 {
                let r = pos.abs() * last[s] * inst.multiplier * inst.maintenance_margin;
                required += r;
                need.push((r, s));
            }
        }
        let equity = self.ledger.equity();
        let called = equity <= 0.0 || equity < required * (1.0 - TOL);
        if need.is_empty() || !called {
            return;
        }
        // Symbols already being liquidated count as done.
        let pending: Vec<usize> = self
            .book
            .working()
            .filter(|&i| self.book.order(i).liquidation)
            .map(|i| self.book.order(i).symbol)
            .collect();
        need.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut left = required;
        let mut orders = Vec::new();
        let mut book = std::mem::take(&mut self.book);
        for &(r, s) in &need {
            if equity > 0.0 && left <= equity {
                break;
            }
            left -= r;
            if pending.contains(&s) {
                continue;
            }
            let message = format!(
                "margin call at bar {t}: equity {equity} below the maintenance margin {required}; {} is liquidated",
                self.instruments[s].name
            );
            let why = || Reject::new(code::MARGIN_CALL, message.clone());
            let theirs: Vec<usize> = book
                .all()
                .iter()
                .enumerate()
                .filter(|(_, o)| o.symbol == s && o.status.is_open() && !o.liquidation)
                .map(|(i, _)| i)
                .collect();
            for i in theirs {
                if book.cancel_because(i, t, why()) {
                    self.order_event(&book, i, OrderEvent::Cancelled);
                }
            }
            let pos = self.ledger.position(s);
            let side = if pos > 0.0 { Side::Sell } else { Side::Buy };
            let req = OrderRequest::market(s, side, pos.abs());
            let i = book.accept(req, t, t + 1, None);
            book.mark_liquidation(i);
            self.order_event(&book, i, OrderEvent::Submitted);
            self.order_event(&book, i, OrderEvent::Accepted);
            orders.push(i);
        }
        self.book = book;
        self.scratch.fresh.clear();
        if !orders.is_empty() {
            self.margin_calls.push(MarginCall {
                bar: t,
                equity,
                required,
                orders,
            });
        }
    }

    /// Order `i` meets the first price of a phase: the open (`at_close` false) or the close.
    /// Orders that do not trade there wait for the path pass; IOC and FOK orders end here.
    fn at_first_price(
        &mut self,
        book: &mut OrderBook,
        i: usize,
        bars: &Bars,
        t: usize,
        at_close: bool,
    ) {
        let o = book.order(i);
        let s = o.symbol;
        if !o.status.is_active() || !bars.has_bar(t, s) {
            return;
        }
        if (self.halts || self.limits.is_some()) && !self.may_meet(book, i, bars, t) {
            return;
        }
        let o = book.order(i);
        let k = bars.idx(t, s);
        let path = Path::at(if at_close {
            bars.close[k]
        } else {
            bars.open[k]
        });
        let (kind, side, tif) = (o.kind, o.side, o.tif);
        if kind == OrderKind::Market && tif == TimeInForce::Gtc {
            // The common order: it trades at the first price, whole or as far as it may.
            return self.execute(book, i, path.first(), bars, t, k);
        }
        let out = evaluate(
            kind,
            side,
            o.triggered,
            o.trail_ref,
            &path,
            0.0,
            self.cfg.limit_fill,
        );
        if let OrderKind::Trailing { .. } = kind {
            if out.fill.is_none() {
                book.trail(i, out.trail_ref, out.stop);
            }
        }
        if out.triggered_at.is_some() && !book.order(i).triggered {
            book.trigger(i);
            self.order_event(book, i, OrderEvent::Triggered);
        }
        if let Some((_, reference)) = out.fill {
            self.execute(book, i, reference, bars, t, k);
        }
        if !book.order(i).status.is_active() {
            return;
        }
        if tif.is_immediate() {
            let o = book.order(i);
            let why = Reject::new(
                if tif == TimeInForce::Fok {
                    code::FOK_UNFILLED
                } else {
                    code::IOC_UNFILLED
                },
                format!(
                    "{} order {} for {} filled {} of {} at its first price",
                    tif.as_str(),
                    o.id,
                    self.instruments[s].name,
                    o.filled,
                    o.size
                ),
            );
            book.cancel_because(i, t, why);
            self.order_event(book, i, OrderEvent::Cancelled);
            self.after_final(book, i);
        } else if out.fill.is_none() && !at_close {
            self.scratch.later.push(i);
        }
    }

    /// The orders that did not trade at the open meet the rest of the bar's path, in the order
    /// the path reaches them.
    fn along_path(&mut self, book: &mut OrderBook, bars: &Bars, t: usize) {
        if self.scratch.later.is_empty() {
            return;
        }
        self.scratch.hits.clear();
        let later = std::mem::take(&mut self.scratch.later);
        for &i in &later {
            self.plan(book, i, bars, t, 0.0);
        }
        while let Some(h) = self.scratch.hits.pop() {
            let o = book.order(h.order);
            if !o.status.is_active() {
                continue;
            }
            let symbol = o.symbol;
            if o.kind.has_trigger() && !o.triggered {
                book.trigger(h.order);
                self.order_event(book, h.order, OrderEvent::Triggered);
            }
            if h.reference.is_nan() {
                if !h.then.is_nan() {
                    self.scratch.hits.push(Hit {
                        pos: h.then,
                        reference: h.then_reference,
                        then: f64::NAN,
                        ..h
                    });
                }
                continue;
            }
            let k = bars.idx(t, symbol);
            self.execute(book, h.order, h.reference, bars, t, k);
            while let Some(j) = self.scratch.fresh.pop() {
                self.plan(book, j, bars, t, h.pos);
            }
        }
        self.scratch.later = later;
        self.scratch.later.clear();
    }

    /// Where along its symbol's path (from `from`) order `i` triggers or trades, queued.
    fn plan(&mut self, book: &mut OrderBook, i: usize, bars: &Bars, t: usize, from: f64) {
        let o = book.order(i);
        let s = o.symbol;
        if !o.status.is_active() || !bars.has_bar(t, s) || o.tif.is_immediate() {
            return;
        }
        if (self.halts || self.limits.is_some()) && !self.may_meet(book, i, bars, t) {
            return;
        }
        let o = book.order(i);
        if self.scratch.paths[s].0 != t {
            let k = bars.idx(t, s);
            let path = Path::for_bar(
                self.cfg.bar_path,
                bars.open[k],
                bars.high[k],
                bars.low[k],
                bars.close[k],
                self.ledger.position(s),
            );
            self.scratch.paths[s] = (t, path);
        }
        let path = self.scratch.paths[s].1;
        let out = evaluate(
            o.kind,
            o.side,
            o.triggered,
            o.trail_ref,
            &path,
            from,
            self.cfg.limit_fill,
        );
        if let OrderKind::Trailing { .. } = o.kind {
            book.trail(i, out.trail_ref, out.stop);
        }
        let hit = |pos, reference, then, then_reference| Hit {
            pos,
            order: i,
            reference,
            then,
            then_reference,
        };
        match (out.triggered_at, out.fill) {
            (Some(tp), Some((fp, r))) if tp < fp => {
                self.scratch.hits.push(hit(tp, f64::NAN, fp, r))
            }
            (_, Some((fp, r))) => self.scratch.hits.push(hit(fp, r, f64::NAN, f64::NAN)),
            (Some(tp), None) => self
                .scratch
                .hits
                .push(hit(tp, f64::NAN, f64::NAN, f64::NAN)),
            (None, None) => {}
        }
    }

    /// Volatility of symbol `s`'s close-to-close log returns over the `window` bars before
    /// `t` (sample standard deviation; NaN with fewer than two returns).
    fn sigma(bars: &Bars, t: usize, s: usize, window: usize) -> f64 {
        let mut closes = Vec::with_capacity(window + 1);
        let mut u = t;
        while u > 0 && closes.len() <= window {
            u -= 1;
            let c = bars.close[bars.idx(u, s)];
            if !c.is_nan() {
                closes.push(c);
            }
        }
        let r: Vec<f64> = closes.windows(2).map(|w| (w[0] / w[1]).ln()).collect();
        if r.len() < 2 {
            return f64::NAN;
        }
        let mean = r.iter().sum::<f64>() / r.len() as f64;
        let var = r.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (r.len() - 1) as f64;
        var.sqrt()
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
        let held = self.ledger.position(o.symbol);
        match o.side {
            Side::Sell if !inst.shortable => units = units.min(self.sellable(o.symbol)),
            _ if self.margin_rule => {
                // What reduces the position is free; the rest takes margin from free equity.
                let reducing = (-o.side.sign() * held).max(0.0);
                let e = self.exposure(o.symbol);
                let extra = self.fees.affordable_on(
                    e.equity - e.required,
                    unit_value,
                    self.ts,
                    o.side,
                    inst.initial_margin,
                );
                units = units.min(reducing + extra / unit_value);
            }
            Side::Buy => {
                let cash = self
                    .fees
                    .affordable(self.ledger.cash(), unit_value, self.ts);
                units = units.min(cash / unit_value);
            }
            Side::Sell => {}
        }
        if inst.size_increment > 0.0 {
            units = round_down(units, inst.size_increment);
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

    fn reject(&mut self, book: &mut OrderBook, i: usize, why: Reject) {
        book.reject(i, self.t, why);
        self.order_event(book, i, OrderEvent::Rejected);
        self.after_final(book, i);
    }

    fn cancel_for(&mut self, book: &mut OrderBook, i: usize, why: Reject) {
        if book.cancel_because(i, self.t, why) {
            self.order_event(book, i, OrderEvent::Cancelled);
            self.after_final(book, i);
        }
    }

    /// Trade order `i` at `reference` (before slippage): as much as it may (its size, the
    /// position a bracket exit protects, the bar's volume cap), or reject it.
    #[allow(clippy::too_many_arguments)]
    fn execute(
        &mut self,
        book: &mut OrderBook,
        i: usize,
        reference: f64,
        bars: &Bars,
        t: usize,
        k: usize,
    ) {
        let o = book.order(i);
        let (s, side, kind) = (o.symbol, o.side, o.kind);
        if let Some(l) = self.limits.as_deref() {
            let k = bars.idx(t, s);
            if l.locked(s, side, bars.high[k], bars.low[k]) {
                return; // no counterparty at the limit: the order keeps working
            }
        }
        let mut cap = f64::INFINITY;
        if o.reduce_only {
            let held = -side.sign() * self.ledger.position(s);
            if held <= 0.0 {
                let why = Reject::new(
                    code::POSITION_CLOSED,
                    format!(
                        "exit {} of {}: the position it protects is closed",
                        o.id, self.instruments[s].name
                    ),
                );
                self.cancel_for(book, i, why);
                return;
            }
            cap = held;
            if let (Side::Sell, Some(st)) = (side, self.settle.as_deref()) {
                // An exit waits for the shares T+n still locks (it protects them once they
                // settle) rather than being rejected.
                cap = cap.min(st.sellable(s, held));
                if cap <= 0.0 {
                    return;
                }
            }
        }
        if let Some(share) = self.cfg.volume_limit {
            if self.scratch.budget[s].0 != t {
                self.scratch.budget[s] = (t, share * bars.volume[k]);
            }
            cap = cap.min(self.scratch.budget[s].1);
            if cap <= 0.0 {
                return;
            }
        }
        let slipped = match self.slippage {
            Slippage::None => reference,
            // The models that read nothing of the bar, without building its context.
            Slippage::Bps(_) => self.slippage.price(side, reference, &SlipContext::NONE),
            _ => {
                // Only the impact model needs the quantity before the price is known.
                let quantity = match (self.slippage, o.size.is_nan()) {
                    (Slippage::SqrtImpact { .. }, true) => {
                        self.resolve_units(o, reference).unwrap_or(0.0)
                    }
                    _ => o.remaining(),
                };
                let ctx = SlipContext {
                    high: bars.high[k],
                    low: bars.low[k],
                    volume: bars.volume[k],
                    quantity: quantity.min(cap).max(0.0),
                    sigma: match self.slippage.window() {
                        0 => f64::NAN,
                        w => Self::sigma(bars, t, s, w),
                    },
                };
                self.slippage.price(side, reference, &ctx)
            }
        };
        let price = cap_to_limit(kind.limit_price(), side, slipped);
        let price = match self.limits.as_deref() {
            Some(l) => l.clamp(s, price),
            None => price,
        };
        if o.size.is_nan() {
            match self.resolve_units(o, price) {
                Ok(units) => book.resolve_size(i, units),
                Err(why) => return self.reject(book, i, why),
            }
        }
        let o = book.order(i);
        let remaining = o.remaining();
        if remaining <= 0.0 {
            return; // a bracket exit with nothing to protect yet
        }
        let inst = &self.instruments[s];
        let mut qty = remaining;
        if cap < remaining {
            qty = if o.reduce_only && cap == -side.sign() * self.ledger.position(s) {
                cap // closing a whole position may leave an odd lot
            } else if inst.size_increment > 0.0 {
                round_down(cap, inst.size_increment)
            } else {
                cap
            };
            if o.tif == TimeInForce::Fok {
                let why = Reject::new(
                    code::FOK_UNFILLED,
                    format!(
                        "fok order {} for {}: only {qty} of {remaining} could trade",
                        o.id, inst.name
                    ),
                );
                return self.cancel_for(book, i, why);
            }
            if qty <= 0.0 {
                return;
            }
        }
        let notional = qty * price * inst.multiplier;
        let charge = self.fees.charge(&FillContext {
            side,
            quantity: qty,
            notional,
            units_before: o.filled,
            notional_before: o.notional_filled,
            ts: self.ts,
        });
        let proposed = Proposed {
            side,
            kind,
            quantity: qty,
            price,
            notional,
            commission: charge.total(),
        };
        let mut acct = self.ledger.account(s);
        if self.margin_rule {
            acct.exposure = self.exposure(s);
        }
        let inst = &self.instruments[s];
        if let Err(why) = check_all(&self.rules, &proposed, &acct, inst) {
            return self.reject(book, i, why);
        }
        if inst.min_size > 0.0 || self.settle.is_some() {
            let held = self.ledger.position(s);
            let mut ok = Ok(());
            if o.filled == 0.0 {
                ok = settlement::check_min_size(side, o.size, held, inst);
            }
            if let (Ok(()), Side::Sell, Some(st)) = (&ok, side, self.settle.as_deref()) {
                ok = st.check_sell(s, qty, held, inst);
            }
            if let Err(why) = ok {
                return self.reject(book, i, why);
            }
        }
        let id = o.id;
        let slippage_cost = qty * (price - reference).abs() * inst.multiplier;
        self.ledger.apply_fill(
            s,
            side,
            qty,
            price,
            charge.commission,
            charge.tax,
            slippage_cost,
            t,
        );
        if side == Side::Buy {
            if let Some(st) = self.settle.as_deref_mut() {
                st.on_buy(s, qty.min(self.ledger.position(s).max(0.0)));
            }
        }
        self.fills.push(Fill {
            order_id: id,
            symbol: s,
            bar: t,
            side,
            size: qty,
            price,
            commission: charge.commission,
            tax: charge.tax,
            slippage: slippage_cost,
        });
        book.fill(
            i,
            qty,
            price,
            t,
            FillFees {
                notional,
                commission: charge.commission,
                tax: charge.tax,
            },
        );
        if self.cfg.volume_limit.is_some() {
            self.scratch.budget[s].1 -= qty;
        }
        self.event(Event::Fill(self.fills.len() - 1));
        let filled = book.order(i).status == OrderStatus::Filled;
        self.order_event(
            book,
            i,
            if filled {
                OrderEvent::Filled
            } else {
                OrderEvent::PartiallyFilled
            },
        );
        self.after_fill(book, i);
    }

    /// Links after a fill: bracket exits follow their entry, OCO members are cancelled.
    fn after_fill(&mut self, book: &mut OrderBook, i: usize) {
        let o = book.order(i);
        match o.link {
            Some(Link::Bracket { parent }) => self.resize_exits(book, parent as usize),
            Some(Link::Oco { group }) => {
                let others: Vec<usize> = book
                    .oco_members(group)
                    .iter()
                    .copied()
                    .filter(|&m| m != i)
                    .collect();
                for m in others {
                    let why = Reject::new(
                        code::OCO_FILLED,
                        format!("order {i} of its one-cancels-other group filled"),
                    );
                    self.cancel_for(book, m, why);
                }
            }
            _ => {}
        }
        let o = book.order(i);
        if o.status == OrderStatus::Filled {
            self.after_final(book, i);
        } else if o.bracket.is_some() {
            self.resize_exits(book, i);
        }
    }

    /// Links after order `i` reached a final status: its bracket exits and OTO children.
    fn after_final(&mut self, book: &mut OrderBook, i: usize) {
        if book.children_of(i).is_empty() {
            return;
        }
        if book.order(i).bracket.is_some() {
            self.resize_exits(book, i);
        }
        let filled = book.order(i).status == OrderStatus::Filled;
        let kids: Vec<usize> = book.children_of(i).to_vec();
        for c in kids {
            if !matches!(book.order(c).link, Some(Link::Oto { .. }))
                || !book.order(c).status.is_open()
            {
                continue;
            }
            if filled {
                book.activate(c, self.t);
                self.order_event(book, c, OrderEvent::Accepted);
                self.scratch.fresh.push(c);
            } else {
                let why = Reject::new(
                    code::PARENT_ENDED,
                    format!(
                        "parent order {i} ended {} before filling",
                        book.order(i).status.as_str()
                    ),
                );
                self.cancel_for(book, c, why);
            }
        }
    }

    /// A bracket's exits protect what its entry has filled and the exits have not yet closed:
    /// activated with the entry's first fill (percent levels from its price), grown with each
    /// entry fill, shrunk by each exit fill, cancelled when nothing is left to protect.
    fn resize_exits(&mut self, book: &mut OrderBook, entry: usize) {
        let e = book.order(entry);
        let (filled, open, avg, side, bracket, s) = (
            e.filled,
            e.status.is_open(),
            e.avg_price,
            e.side,
            e.bracket.as_deref().copied().unwrap_or_default(),
            e.symbol,
        );
        let mut exits = [usize::MAX; 2];
        let mut n = 0;
        for &c in book.children_of(entry) {
            if matches!(book.order(c).link, Some(Link::Bracket { .. })) && n < 2 {
                exits[n] = c;
                n += 1;
            }
        }
        let exits = &exits[..n];
        let exited: f64 = exits.iter().map(|&c| book.order(c).filled).sum();
        let left = (filled - exited).max(0.0);
        for &c in exits {
            let x = book.order(c);
            match x.status {
                OrderStatus::Pending if filled > 0.0 => {
                    let tick = self.instruments[s].tick_size;
                    let long = side == Side::Buy;
                    let kind = match x.kind {
                        OrderKind::Stop(_) => {
                            let l = bracket
                                .sl
                                .map_or(f64::NAN, |l| exit_level(l, avg, long, true));
                            OrderKind::Stop(on_tick(l, tick))
                        }
                        _ => {
                            let l = bracket
                                .tp
                                .map_or(f64::NAN, |l| exit_level(l, avg, long, false));
                            OrderKind::Limit(on_tick(l, tick))
                        }
                    };
                    book.set_kind(c, kind);
                    book.set_size(c, left);
                    book.activate(c, self.t);
                    self.order_event(book, c, OrderEvent::Accepted);
                    self.scratch.fresh.push(c);
                }
                OrderStatus::Pending if !open => {
                    let why = Reject::new(
                        code::PARENT_ENDED,
                        format!("entry order {entry} ended without a fill"),
                    );
                    self.cancel_for(book, c, why);
                }
                st if st.is_active() => {
                    if left <= 0.0 && !open {
                        // Keep its size as it was: the table shows what it protected.
                        let why = Reject::new(
                            code::BRACKET_DONE,
                            format!("the position of entry {entry} is closed by the other exit"),
                        );
                        self.cancel_for(book, c, why);
                    } else {
                        let f = x.filled;
                        book.set_size(c, f + left);
                    }
                }
                _ => {}
            }
        }
    }
}

/// Symbol index by name (settings name symbols; a universe may have thousands).
fn name_index(instruments: &[Instrument]) -> std::collections::HashMap<String, usize> {
    instruments
        .iter()
        .enumerate()
        .map(|(s, i)| (i.name.clone(), s))
        .collect()
}

/// The symbols a setting's name covers: all for "*", else the one so named (if any).
fn named(
    by_name: &std::collections::HashMap<String, usize>,
    n: usize,
    name: &str,
) -> std::ops::Range<usize> {
    if name == "*" {
        0..n
    } else {
        by_name.get(name).map_or(0..0, |&s| s..s + 1)
    }
}

fn opposite(side: Side) -> Side {
    match side {
        Side::Buy => Side::Sell,
        Side::Sell => Side::Buy,
    }
}

fn level_or_nan(l: Level) -> f64 {
    match l {
        Level::Price(p) => p,
        Level::Pct(_) => f64::NAN,
    }
}

/// The price of a bracket exit of an entry filled at `entry` (`long`: a buy entry).
fn exit_level(l: Level, entry: f64, long: bool, stop_loss: bool) -> f64 {
    match l {
        Level::Price(p) => p,
        Level::Pct(f) => {
            let up = long != stop_loss; // a long's target and a short's stop lie above
            if up {
                entry * (1.0 + f)
            } else {
                entry * (1.0 - f)
            }
        }
    }
}

fn on_tick(x: f64, tick: f64) -> f64 {
    if tick > 0.0 && x.is_finite() {
        (x / tick).round() * tick
    } else {
        x
    }
}

/// Round down to a multiple of `step`, with a little slack so that an exact multiple is not
/// lost to rounding.
fn round_down(x: f64, step: f64) -> f64 {
    ((x / step) * (1.0 + 1e-12)).floor() * step
}

fn price_ok(name: &'static str, p: f64) -> Result<()> {
    if p.is_finite() && p > 0.0 {
        Ok(())
    } else {
        Err(
            EngineError::order(format!("{name} price must be a finite number > 0, got {p}"))
                .with_field(name, p.to_string()),
        )
    }
}

fn check_kind(kind: OrderKind) -> Result<()> {
    match kind {
        OrderKind::Market => Ok(()),
        OrderKind::Limit(p) => price_ok("limit", p),
        OrderKind::Stop(p) => price_ok("stop", p),
        OrderKind::StopLimit { stop, limit } => {
            price_ok("stop", stop)?;
            price_ok("limit", limit)
        }
        OrderKind::Trailing { offset, pct } => {
            let (field, ok) = if pct {
                ("trail_pct", offset > 0.0 && offset < 1.0)
            } else {
                ("trail", offset.is_finite() && offset > 0.0)
            };
            if ok {
                Ok(())
            } else {
                Err(EngineError::order(format!(
                    "{field} must be {}, got {offset}",
                    if pct {
                        "a fraction in (0, 1)"
                    } else {
                        "a finite price distance > 0"
                    }
                ))
                .with_field(field, offset.to_string()))
            }
        }
    }
}

fn check_bracket(req: &OrderRequest) -> Result<()> {
    let check = |l: Option<Level>, name: &'static str| -> Result<()> {
        match l {
            None => Ok(()),
            Some(Level::Price(p)) => price_ok(name, p),
            Some(Level::Pct(f)) => {
                let ok = f.is_finite() && f > 0.0 && (name != "sl" || f < 1.0);
                if ok {
                    Ok(())
                } else {
                    Err(EngineError::order(format!(
                        "{name}_pct must be a fraction > 0{}, got {f}",
                        if name == "sl" { " and < 1" } else { "" }
                    ))
                    .with_field(name, f.to_string()))
                }
            }
        }
    };
    check(req.bracket.sl, "sl")?;
    check(req.bracket.tp, "tp")?;
    if let (Some(Level::Price(sl)), Some(Level::Price(tp))) = (req.bracket.sl, req.bracket.tp) {
        let ordered = match req.side {
            Side::Buy => sl < tp,
            Side::Sell => sl > tp,
        };
        if !ordered {
            return Err(EngineError::order(format!(
                "a {} entry's stop-loss must lie {} its take-profit, got sl {sl}, tp {tp}",
                req.side.as_str(),
                if req.side == Side::Buy {
                    "below"
                } else {
                    "above"
                }
            ))
            .with_field("sl", sl.to_string()));
        }
    }
    if (req.bracket.sl.is_some() || req.bracket.tp.is_some()) && req.parent.is_some() {
        return Err(EngineError::order(
            "an order cannot be both a bracket entry and a one-triggers-other child".to_string(),
        ));
    }
    Ok(())
}
