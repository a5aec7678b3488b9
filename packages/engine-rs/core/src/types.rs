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
}

impl OrderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderKind::Market => "market",
            OrderKind::Limit(_) => "limit",
        }
    }
    pub fn limit_price(self) -> Option<f64> {
        match self {
            OrderKind::Market => None,
            OrderKind::Limit(p) => Some(p),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeInForce {
    /// Good till cancelled.
    Gtc,
    /// Valid for the trading day of the first bar on which it can fill.
    Day,
}

impl TimeInForce {
    pub fn as_str(self) -> &'static str {
        match self {
            TimeInForce::Gtc => "gtc",
            TimeInForce::Day => "day",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderStatus {
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
            OrderStatus::Accepted => "accepted",
            OrderStatus::PartiallyFilled => "partially_filled",
            OrderStatus::Filled => "filled",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Expired => "expired",
            OrderStatus::Rejected => "rejected",
        }
    }
    pub fn is_active(self) -> bool {
        matches!(self, OrderStatus::Accepted | OrderStatus::PartiallyFilled)
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
        }
    }
    pub fn limit(symbol: usize, side: Side, size: f64, price: f64) -> Self {
        Self {
            kind: OrderKind::Limit(price),
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
    /// Why the order was rejected: a stable snake_case code (see `rules`) and a message.
    pub reason_code: Option<&'static str>,
    pub reason: Option<String>,
    /// Link to other orders (OCO / OTO / bracket); none is produced yet.
    pub link: Option<crate::orders::Link>,
}

impl Order {
    pub fn remaining(&self) -> f64 {
        self.size - self.filled
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
    pub commission: f64,
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
    /// Entry and exit commissions allocated to this lot pro rata by size.
    pub commission: f64,
}

impl Trade {
    pub fn pnl(&self) -> f64 {
        self.gross_pnl - self.commission
    }
}

/// Something a strategy may want to hear about, in the order it happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// An order changed status (index into the order list).
    Order(usize),
    /// A fill happened (index into the fill list).
    Fill(usize),
}
