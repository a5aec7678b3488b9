//! Pre-trade and fill-time checks. Each rule allows a proposed fill or rejects it with a
//! stable snake_case code (for programs: the server and the app branch on it) and a message
//! (for people: it names the symbol and the figures).

use crate::instrument::{is_multiple, Instrument};
use crate::types::{OrderKind, Side};

/// Relative tolerance for "enough cash" / "enough position" comparisons.
pub const TOL: f64 = 1e-9;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    pub code: &'static str,
    pub message: String,
}

impl Reject {
    pub fn new(code: &'static str, message: String) -> Self {
        Self { code, message }
    }
}

/// Stable rejection codes.
pub mod code {
    pub const INSUFFICIENT_CASH: &str = "insufficient_cash";
    pub const INSUFFICIENT_POSITION: &str = "insufficient_position";
    pub const SIZE_INCREMENT: &str = "size_increment";
    pub const TICK_SIZE: &str = "tick_size";
    pub const ZERO_SIZE: &str = "zero_size";
    pub const IOC_UNFILLED: &str = "ioc_unfilled";
    pub const FOK_UNFILLED: &str = "fok_unfilled";
    pub const POSITION_CLOSED: &str = "position_closed";
    pub const OCO_FILLED: &str = "oco_filled";
    pub const PARENT_ENDED: &str = "parent_ended";
    pub const BRACKET_DONE: &str = "bracket_done";
    pub const INSUFFICIENT_MARGIN: &str = "insufficient_margin";
    pub const MAX_LEVERAGE: &str = "max_leverage";
    pub const MARGIN_CALL: &str = "margin_call";
}

/// A fill the broker is about to make.
#[derive(Clone, Copy, Debug)]
pub struct Proposed {
    pub side: Side,
    pub kind: OrderKind,
    pub quantity: f64,
    pub price: f64,
    pub notional: f64,
    pub commission: f64,
}

/// What the rules may read of the account.
#[derive(Clone, Copy, Debug)]
pub struct Account {
    pub cash: f64,
    pub position: f64,
    /// The whole book, for the margin rule (left at its default when that rule is off).
    pub exposure: Exposure,
}

/// The account as the margin rule sees it, every position at its last price.
#[derive(Clone, Copy, Debug)]
pub struct Exposure {
    pub equity: f64,
    /// Initial margin of every position.
    pub required: f64,
    /// Sum of the absolute position values.
    pub gross: f64,
    /// Last price of the symbol traded (NaN before its first bar).
    pub last: f64,
    pub max_leverage: f64,
    /// A cash account: its rejections say "cash", a margin account's "margin".
    pub cash_account: bool,
}

impl Default for Exposure {
    fn default() -> Self {
        Self {
            equity: 0.0,
            required: 0.0,
            gross: 0.0,
            last: f64::NAN,
            max_leverage: f64::INFINITY,
            cash_account: true,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Sizes must be whole multiples of the instrument's size increment.
    SizeIncrement,
    /// Limit prices must lie on the instrument's tick grid.
    TickSize,
    /// A sell may not exceed the position unless the instrument is shortable.
    NoShort,
    /// A buy must be paid for from cash (price x size + commission); a sell's commission
    /// must be covered by its proceeds plus cash.
    Cash,
    /// A fill that opens or adds to a position (long or short) must leave equity at or above
    /// the initial margin of every position, and gross exposure within the leverage limit.
    /// With an initial margin of 1 and no shorts this is the cash rule; a short in a cash
    /// account needs cash besides its proceeds worth its value.
    Margin,
}

impl Rule {
    /// The default rules of a cash account, in the order they are checked.
    pub const CASH_ACCOUNT: [Rule; 4] = [
        Rule::SizeIncrement,
        Rule::TickSize,
        Rule::NoShort,
        Rule::Cash,
    ];

    pub fn check(self, p: &Proposed, acct: &Account, inst: &Instrument) -> Result<(), Reject> {
        let name = &inst.name;
        let size = p.quantity;
        match self {
            Rule::SizeIncrement => {
                // Selling a whole long position is allowed off the lot (an odd lot left by a
                // split or a partial fill must be sellable).
                let closes = p.side == Side::Sell
                    && acct.position > 0.0
                    && (size - acct.position).abs() <= TOL * acct.position.max(1.0);
                if !closes && !is_multiple(size, inst.size_increment) {
                    return Err(Reject::new(
                        code::SIZE_INCREMENT,
                        format!(
                            "size {size} of {name} is not a multiple of its size increment {}",
                            inst.size_increment
                        ),
                    ));
                }
            }
            Rule::TickSize => {
                for (what, px) in [
                    ("limit", p.kind.limit_price()),
                    ("stop", p.kind.stop_price()),
                ] {
                    let Some(px) = px else { continue };
                    if !is_multiple(px, inst.tick_size) {
                        return Err(Reject::new(
                            code::TICK_SIZE,
                            format!(
                                "{what} price {px} of {name} is not on its tick grid {}",
                                inst.tick_size
                            ),
                        ));
                    }
                }
            }
            Rule::NoShort => {
                let held = acct.position;
                if p.side == Side::Sell && !inst.shortable && size > held * (1.0 + TOL) + TOL {
                    return Err(Reject::new(
                        code::INSUFFICIENT_POSITION,
                        format!(
                            "insufficient position: cannot sell {size} of {name}, position is {held} (short selling is not enabled)"
                        ),
                    ));
                }
            }
            Rule::Cash => {
                let (cash, notional, commission, price) =
                    (acct.cash, p.notional, p.commission, p.price);
                match p.side {
                    Side::Sell => {
                        if commission > (cash + notional) * (1.0 + TOL) + TOL {
                            return Err(Reject::new(
                                code::INSUFFICIENT_CASH,
                                format!(
                                    "insufficient cash: commission {commission} of selling {size} of {name} exceeds the proceeds {notional} plus cash {cash}"
                                ),
                            ));
                        }
                    }
                    Side::Buy => {
                        let need = notional + commission;
                        if need > cash * (1.0 + TOL) + TOL {
                            return Err(Reject::new(
                                code::INSUFFICIENT_CASH,
                                format!(
                                    "insufficient cash: buying {size} of {name} at {price} needs {need} including commission {commission}, cash is {cash}"
                                ),
                            ));
                        }
                    }
                }
            }
            Rule::Margin => return margin(p, acct, inst),
        }
        Ok(())
    }
}

/// See [`Rule::Margin`]. The symbol traded is valued at the fill price after the fill, the
/// others at their last prices.
fn margin(p: &Proposed, acct: &Account, inst: &Instrument) -> Result<(), Reject> {
    let old = acct.position;
    let new = old + p.side.sign() * p.quantity;
    let adds = new.abs() > TOL * p.quantity
        && (new.signum() != old.signum() || new.abs() > old.abs() * (1.0 + TOL));
    if !adds {
        return Ok(());
    }
    let e = &acct.exposure;
    let m = inst.multiplier;
    let last = if e.last.is_nan() { p.price } else { e.last };
    let before = old.abs() * last * m;
    let after = new.abs() * p.price * m;
    let equity = e.equity - p.commission + old * (p.price - last) * m;
    let required = e.required - before * inst.initial_margin + after * inst.initial_margin;
    let gross = e.gross - before + after;
    let (name, size, side, price) = (&inst.name, p.quantity, p.side.as_str(), p.price);
    if required > equity * (1.0 + TOL) + TOL {
        let (code, what) = if e.cash_account {
            (code::INSUFFICIENT_CASH, "cash")
        } else {
            (code::INSUFFICIENT_MARGIN, "margin")
        };
        return Err(Reject::new(
            code,
            format!(
                "insufficient {what}: {side} {size} of {name} at {price} would need {required} of equity to hold the positions (initial margin), equity would be {equity}"
            ),
        ));
    }
    if gross > e.max_leverage * equity * (1.0 + TOL) + TOL {
        return Err(Reject::new(
            code::MAX_LEVERAGE,
            format!(
                "{side} {size} of {name} at {price} would take gross exposure to {gross}, over {} x equity {equity}",
                e.max_leverage
            ),
        ));
    }
    Ok(())
}

/// The first rule in `rules` that rejects the fill.
#[inline]
pub fn check_all(
    rules: &[Rule],
    p: &Proposed,
    acct: &Account,
    inst: &Instrument,
) -> Result<(), Reject> {
    rules.iter().try_for_each(|r| r.check(p, acct, inst))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buy(quantity: f64, price: f64, commission: f64) -> Proposed {
        Proposed {
            side: Side::Buy,
            kind: OrderKind::Market,
            quantity,
            price,
            notional: quantity * price,
            commission,
        }
    }

    #[test]
    fn cash_rule_codes_and_messages() {
        let inst = Instrument::new("600000.SH");
        let acct = Account {
            cash: 100.0,
            position: 0.0,
            exposure: Exposure::default(),
        };
        assert!(Rule::Cash.check(&buy(9.0, 10.0, 1.0), &acct, &inst).is_ok());
        let r = Rule::Cash
            .check(&buy(10.0, 10.0, 1.0), &acct, &inst)
            .unwrap_err();
        assert_eq!(r.code, "insufficient_cash");
        assert!(r.message.contains("600000.SH") && r.message.contains("needs 101"));
    }

    #[test]
    fn no_short_unless_shortable() {
        let mut inst = Instrument::new("X");
        let acct = Account {
            cash: 0.0,
            position: 2.0,
            exposure: Exposure::default(),
        };
        let sell = Proposed {
            side: Side::Sell,
            ..buy(3.0, 10.0, 0.0)
        };
        let r = Rule::NoShort.check(&sell, &acct, &inst).unwrap_err();
        assert_eq!(r.code, "insufficient_position");
        inst.shortable = true;
        assert!(Rule::NoShort.check(&sell, &acct, &inst).is_ok());
    }

    #[test]
    fn increments_and_ticks() {
        let mut inst = Instrument::new("X");
        inst.size_increment = 100.0;
        inst.tick_size = 0.01;
        let acct = Account {
            cash: 1e9,
            position: 0.0,
            exposure: Exposure::default(),
        };
        assert!(Rule::SizeIncrement
            .check(&buy(300.0, 10.0, 0.0), &acct, &inst)
            .is_ok());
        let r = Rule::SizeIncrement
            .check(&buy(250.0, 10.0, 0.0), &acct, &inst)
            .unwrap_err();
        assert_eq!(r.code, "size_increment");
        // An odd lot may be sold when it closes the position, not otherwise.
        let held = Account {
            cash: 0.0,
            position: 250.0,
            exposure: Exposure::default(),
        };
        let sell = |q| Proposed {
            side: Side::Sell,
            ..buy(q, 10.0, 0.0)
        };
        assert!(Rule::SizeIncrement
            .check(&sell(250.0), &held, &inst)
            .is_ok());
        assert!(Rule::SizeIncrement
            .check(&sell(150.0), &held, &inst)
            .is_err());
        let limit = |px| Proposed {
            kind: OrderKind::Limit(px),
            ..buy(100.0, px, 0.0)
        };
        assert!(Rule::TickSize.check(&limit(10.23), &acct, &inst).is_ok());
        assert_eq!(
            Rule::TickSize
                .check(&limit(10.234), &acct, &inst)
                .unwrap_err()
                .code,
            "tick_size"
        );
    }
}
