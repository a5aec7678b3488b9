//! Orders, fills and round-trip trades.
//!
//! Positions are signed (long > 0, short < 0) and the order kinds are an enum, so that short
//! selling, stops and brackets can be added without changing these shapes.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    /// +1 for buys, -1 for sells: the sign of the position change.
    #[inline]
    pub fn sign(self) -> f64 {
        match self {
            Side::Buy => 1.0,
            Side::Sell => -1.0,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OrderKind {
    Market,
    /// Limit order with its limit price.
    Limit(f64),
    /// Stop-market: becomes a market order when the price reaches `stop` (a buy stop at or
    /// above it, a sell stop at or below it).
    Stop(f64),
    /// Stop-limit: becomes a limit order at `limit` when the price reaches `stop`.
    StopLimit {
        stop: f64,
        limit: f64,
    },
    /// Trailing stop-market: the stop follows the best price since the order became active
    /// (the highest for a sell, the lowest for a buy) at a distance of `offset` in price, or
    /// of the fraction `offset` of that best price when `pct`.
    Trailing {
        offset: f64,
        pct: bool,
    },
}

impl OrderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderKind::Market => "market",
            OrderKind::Limit(_) => "limit",
            OrderKind::Stop(_) => "stop",
            OrderKind::StopLimit { .. } => "stop_limit",
            OrderKind::Trailing { .. } => "trailing_stop",
        }
    }
    pub fn limit_price(self) -> Option<f64> {
        match self {
            OrderKind::Limit(p) | OrderKind::StopLimit { limit: p, .. } => Some(p),
            _ => None,
        }
    }
    /// The fixed stop price (trailing stops move theirs: see `Order::stop_price`).
    pub fn stop_price(self) -> Option<f64> {
        match self {
            OrderKind::Stop(p) | OrderKind::StopLimit { stop: p, .. } => Some(p),
            _ => None,
        }
    }
    /// Does the order wait for a trigger before it can trade?
    pub fn has_trigger(self) -> bool {
        matches!(
            self,
            OrderKind::Stop(_) | OrderKind::StopLimit { .. } | OrderKind::Trailing { .. }
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeInForce {
    /// Good till cancelled.
    Gtc,
    /// Valid for the trading day of the first bar on which it can fill.
    Day,
    /// Good till the given time (ns since the epoch, UTC): expires on the first bar after it.
    Gtd(i64),
    /// Immediate or cancel: trades what it can at the first price it meets (the open of its
    /// first bar, or the close with `fill_on="close"`); the rest is cancelled.
    Ioc,
    /// Fill or kill: trades its whole size at the first price it meets, or is cancelled.
    Fok,
}

impl TimeInForce {
    pub fn as_str(self) -> &'static str {
        match self {
            TimeInForce::Gtc => "gtc",
            TimeInForce::Day => "day",
            TimeInForce::Gtd(_) => "gtd",
            TimeInForce::Ioc => "ioc",
            TimeInForce::Fok => "fok",
        }
    }
    /// IOC and FOK: only the first price counts.
    pub fn is_immediate(self) -> bool {
        matches!(self, TimeInForce::Ioc | TimeInForce::Fok)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderStatus {
    /// Waiting for another order to fill (a bracket's exits, an OTO child); not working yet.
    Pending,
    /// Accepted and working (not yet filled).
    Accepted,
    PartiallyFilled,
    Filled,
    Cancelled,
    Expired,
    Rejected,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Accepted => "accepted",
            OrderStatus::PartiallyFilled => "partially_filled",
            OrderStatus::Filled => "filled",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Expired => "expired",
            OrderStatus::Rejected => "rejected",
        }
    }
    /// Working: may trade now.
    pub fn is_active(self) -> bool {
        matches!(self, OrderStatus::Accepted | OrderStatus::PartiallyFilled)
    }
    /// Not final: working or pending.
    pub fn is_open(self) -> bool {
        self.is_active() || self == OrderStatus::Pending
    }
}

/// What an order's size means. Value and percent sizes become units when the order first
/// trades, at its fill price (so a gap does not make an affordable order unaffordable).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Sizing {
    /// `size` units.
    #[default]
    Units,
    /// Units worth `size` in cash at the fill price.
    Value,
    /// Units worth the fraction `size` of equity at the fill price. A buy takes at most what
    /// cash can pay for, costs included; a sell of a non-shortable instrument at most the
    /// position.
    EquityPct,
}

impl Sizing {
    pub fn as_str(self) -> &'static str {
        match self {
            Sizing::Units => "units",
            Sizing::Value => "value",
            Sizing::EquityPct => "pct",
        }
    }
}

/// A bracket exit's price: absolute, or a fraction away from the entry's first fill price
/// (a stop-loss below a long entry, a take-profit above it; mirrored for a short entry).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Level {
    Price(f64),
    Pct(f64),
}

impl Level {
    pub fn value(self) -> f64 {
        match self {
            Level::Price(x) | Level::Pct(x) => x,
        }
    }
}

/// Exits attached to an entry: a stop-loss (stop-market) and/or a take-profit (limit),
/// linked one-cancels-other and sized as the entry fills.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Bracket {
    pub sl: Option<Level>,
    pub tp: Option<Level>,
}

/// What a strategy asks for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OrderRequest {
    pub symbol: usize,
    pub side: Side,
    /// Units, cash value or fraction of equity, per `sizing`.
    pub size: f64,
    pub kind: OrderKind,
    pub tif: TimeInForce,
    pub sizing: Sizing,
    /// Exits to attach (none by default).
    pub bracket: Bracket,
    /// One-triggers-other: the order waits (pending) until order `parent` has filled whole.
    pub parent: Option<u64>,
}

impl OrderRequest {
    pub fn market(symbol: usize, side: Side, size: f64) -> Self {
        Self {
            symbol,
            side,
            size,
            kind: OrderKind::Market,
            tif: TimeInForce::Gtc,
            sizing: Sizing::Units,
            bracket: Bracket::default(),
            parent: None,
        }
    }
    pub fn limit(symbol: usize, side: Side, size: f64, price: f64) -> Self {
        Self {
            kind: OrderKind::Limit(price),
            ..Self::market(symbol, side, size)
        }
    }
    pub fn stop(symbol: usize, side: Side, size: f64, stop: f64) -> Self {
        Self {
            kind: OrderKind::Stop(stop),
            ..Self::market(symbol, side, size)
        }
    }
    /// A market order for the fraction `pct` of equity (see [`Sizing::EquityPct`]).
    pub fn percent(symbol: usize, side: Side, pct: f64) -> Self {
        Self {
            sizing: Sizing::EquityPct,
            ..Self::market(symbol, side, pct)
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    pub id: u64,
    pub symbol: usize,
    pub side: Side,
    pub kind: OrderKind,
    pub tif: TimeInForce,
    /// Units: as requested, or resolved from `amount` when the order first trades (NaN until
    /// then for value and percent sizes).
    pub size: f64,
    pub sizing: Sizing,
    /// The requested size in its own unit (units, cash, or fraction of equity).
    pub amount: f64,
    pub filled: f64,
    /// Volume-weighted average fill price (NaN until the first fill).
    pub avg_price: f64,
    pub status: OrderStatus,
    /// Bar on which the strategy decided the order.
    pub submitted_bar: usize,
    /// First bar on which the order may fill.
    pub eligible_bar: usize,
    /// Bar on which the order reached a final status.
    pub closed_bar: Option<usize>,
    /// Why the order was rejected, or cancelled by a rule: a stable snake_case code (see
    /// `rules`) and a message. Boxed, like `bracket`: a run keeps every order it placed, and
    /// most have neither (an order takes 200 bytes instead of 256).
    pub why: Option<Box<crate::rules::Reject>>,
    /// Link to other orders (OCO / OTO / bracket).
    pub link: Option<crate::orders::Link>,
    /// The current stop price: the fixed one of a stop, the moving one of a trailing stop
    /// (NaN for orders without a trigger, and for a trailing stop before its first price).
    pub stop_price: f64,
    /// Has the stop been reached? (A triggered stop trades as a market order, a triggered
    /// stop-limit as a limit order.)
    pub triggered: bool,
    /// Best price since a trailing stop became active (NaN before).
    pub trail_ref: f64,
    /// Bracket exits: trade at most the position they protect, never past it.
    pub reduce_only: bool,
    /// Exits to create when this entry first fills (None: no exits).
    pub bracket: Option<Box<Bracket>>,
    /// Sum of fill notionals and the fees charged so far (minimums are per order).
    pub notional_filled: f64,
    pub commission: f64,
    pub tax: f64,
    /// Sent by the broker to liquidate a position on a margin call.
    pub liquidation: bool,
}

/// Equity fell below the maintenance margin at a bar's close: the positions listed were
/// sent for liquidation at the next bar's open.
#[derive(Clone, Debug, PartialEq)]
pub struct MarginCall {
    pub bar: usize,
    pub equity: f64,
    /// Maintenance margin of every position at that close.
    pub required: f64,
    /// The liquidation orders (indices into the order list), largest requirement first.
    pub orders: Vec<usize>,
}

impl Order {
    pub fn remaining(&self) -> f64 {
        self.size - self.filled
    }
    /// The code of why the order was rejected or cancelled by a rule.
    pub fn reason_code(&self) -> Option<&'static str> {
        self.why.as_ref().map(|w| w.code)
    }
    /// The message of why the order was rejected or cancelled by a rule.
    pub fn reason(&self) -> Option<&str> {
        self.why.as_ref().map(|w| w.message.as_str())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Fill {
    pub order_id: u64,
    pub symbol: usize,
    pub bar: usize,
    pub side: Side,
    pub size: f64,
    pub price: f64,
    /// Broker and exchange fees of this fill.
    pub commission: f64,
    /// Taxes of this fill (e.g. stamp duty on sells).
    pub tax: f64,
    /// Cost of slippage against the reference price, in cash (>= 0).
    pub slippage: f64,
}

/// A closed round trip: one FIFO lot (or part of it) from entry to exit.
#[derive(Clone, Debug, PartialEq)]
pub struct Trade {
    pub symbol: usize,
    /// +1 long, -1 short.
    pub direction: f64,
    pub size: f64,
    pub entry_bar: usize,
    pub exit_bar: usize,
    pub entry_price: f64,
    pub exit_price: f64,
    pub gross_pnl: f64,
    /// Entry and exit fees (commissions and taxes) allocated to this lot pro rata by size.
    pub commission: f64,
}

impl Trade {
    pub fn pnl(&self) -> f64 {
        self.gross_pnl - self.commission
    }
}

/// What happened to an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderEvent {
    Submitted,
    Accepted,
    /// A stop reached its price (it now trades as a market or limit order).
    Triggered,
    PartiallyFilled,
    Filled,
    Cancelled,
    Expired,
    /// Price or size replaced by the strategy.
    Modified,
    Rejected,
}

impl OrderEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderEvent::Submitted => "submitted",
            OrderEvent::Accepted => "accepted",
            OrderEvent::Triggered => "triggered",
            OrderEvent::PartiallyFilled => "partially_filled",
            OrderEvent::Filled => "filled",
            OrderEvent::Cancelled => "cancelled",
            OrderEvent::Expired => "expired",
            OrderEvent::Modified => "modified",
            OrderEvent::Rejected => "rejected",
        }
    }
}

/// Something a strategy may want to hear about, in the order it happened.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Event {
    /// Order `order` (index into the order list) went through `what`; `filled` is its filled
    /// quantity at that moment.
    Order {
        order: usize,
        what: OrderEvent,
        filled: f64,
    },
    /// A fill happened (index into the fill list).
    Fill(usize),
}

#[cfg(test)]
mod tests {
    /// A run keeps every order it placed: the rare parts (a rejection, bracket exits) are
    /// boxed so that an order stays this small.
    #[test]
    fn an_order_stays_small() {
        let n = std::mem::size_of::<super::Order>();
        assert!(n <= 200, "{n} bytes");
    }
}
