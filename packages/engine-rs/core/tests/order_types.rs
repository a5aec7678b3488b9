//! Hand-computed scenarios for every order kind, time in force, gap case, the bar that reaches
//! both a stop and a target under each path rule, partial fills, brackets, OCO and OTO.

use bt_engine_core::costs::{FeeKind, FeeLine, FeeRule, Sides, Slippage};
use bt_engine_core::drivers::{run, Driver};
use bt_engine_core::matching::{BarPath, LimitFill};
use bt_engine_core::types::{Bracket, Level, OrderEvent};
use bt_engine_core::{
    Bars, Broker, Config, Event, FillOn, OrderKind, OrderRequest, OrderStatus, Side, TimeInForce,
};

mod common;
use common::{flat, run_script, Data, DAY};

fn cfg() -> Config {
    Config {
        cash: 100_000.0,
        ..Config::default()
    }
}

fn with(kind: OrderKind, side: Side, size: f64) -> OrderRequest {
    OrderRequest {
        kind,
        ..OrderRequest::market(0, side, size)
    }
}

fn bracket(sl: Option<Level>, tp: Option<Level>) -> OrderRequest {
    OrderRequest {
        bracket: Bracket { sl, tp },
        ..OrderRequest::market(0, Side::Buy, 10.0)
    }
}

fn fills(b: &Broker) -> Vec<(u64, usize, f64, f64)> {
    b.fills()
        .iter()
        .map(|f| (f.order_id, f.bar, f.size, f.price))
        .collect()
}

fn status(b: &Broker, id: u64) -> OrderStatus {
    b.order(id).unwrap().status
}

fn code(b: &Broker, id: u64) -> Option<&'static str> {
    b.order(id).unwrap().reason_code()
}

const BAR: (f64, f64, f64, f64) = (10.0, 11.0, 9.0, 10.5);

#[test]
fn stop_buy_triggers_on_the_way_up_and_fills_at_its_stop() {
    let d = Data::one(&[flat(10.0), BAR, flat(10.5)]);
    let b = run_script(
        &d,
        cfg(),
        vec![(0, with(OrderKind::Stop(10.5), Side::Buy, 2.0))],
    );
    assert_eq!(fills(&b), vec![(0, 1, 2.0, 10.5)]);
    assert!(b.order(0).unwrap().triggered);
}

#[test]
fn stops_gapped_through_fill_at_the_open() {
    // A buy stop at 10.5 and a gap up to 12: the open, not the stop.
    let d = Data::one(&[flat(10.0), (12.0, 12.5, 11.5, 12.0)]);
    let b = run_script(
        &d,
        cfg(),
        vec![(0, with(OrderKind::Stop(10.5), Side::Buy, 1.0))],
    );
    assert_eq!(fills(&b), vec![(0, 1, 1.0, 12.0)]);
    // A long's sell stop at 9.5 and a gap down to 9: the open.
    let d = Data::one(&[flat(10.0), flat(10.0), (9.0, 9.2, 8.5, 9.1)]);
    let b = run_script(
        &d,
        cfg(),
        vec![
            (0, OrderRequest::market(0, Side::Buy, 5.0)),
            (1, with(OrderKind::Stop(9.5), Side::Sell, 5.0)),
        ],
    );
    assert_eq!(fills(&b)[1], (1, 2, 5.0, 9.0));
}

#[test]
fn a_limit_gapped_through_fills_at_the_better_open() {
    let d = Data::one(&[flat(10.0), (9.5, 9.8, 9.2, 9.6)]);
    let b = run_script(
        &d,
        cfg(),
        vec![(0, with(OrderKind::Limit(10.0), Side::Buy, 1.0))],
    );
    assert_eq!(fills(&b), vec![(0, 1, 1.0, 9.5)]);
}

#[test]
fn stop_limit_is_a_limit_once_triggered() {
    let sl = |stop, limit| OrderKind::StopLimit { stop, limit };
    // Marketable as it triggers: at the stop.
    let d = Data::one(&[flat(10.0), BAR]);
    let b = run_script(&d, cfg(), vec![(0, with(sl(10.5, 10.6), Side::Buy, 1.0))]);
    assert_eq!(fills(&b), vec![(0, 1, 1.0, 10.5)]);
    // Triggered on the way up to 11, filled at its limit on the way down to 9.
    let b = run_script(&d, cfg(), vec![(0, with(sl(10.5, 10.2), Side::Buy, 1.0))]);
    assert_eq!(fills(&b), vec![(0, 1, 1.0, 10.2)]);
    // Triggered but the price never comes back to 10.2 in that bar; the next bar opens at
    // 10.1, below the limit: the open.
    let d = Data::one(&[
        flat(10.0),
        (10.4, 11.0, 10.4, 10.9),
        (10.1, 10.5, 10.0, 10.2),
    ]);
    let b = run_script(&d, cfg(), vec![(0, with(sl(10.5, 10.2), Side::Buy, 1.0))]);
    assert_eq!(fills(&b), vec![(0, 2, 1.0, 10.1)]);
}

#[test]
fn trailing_stop_follows_the_high_and_fills_where_it_is_hit() {
    let d = Data::one(&[
        flat(10.0),
        (10.0, 10.6, 9.9, 10.5),
        (11.0, 12.0, 10.8, 11.5),
        (11.2, 11.3, 10.0, 10.5),
    ]);
    let b = run_script(
        &d,
        cfg(),
        vec![
            (0, OrderRequest::market(0, Side::Buy, 10.0)),
            (
                1,
                with(
                    OrderKind::Trailing {
                        offset: 1.0,
                        pct: false,
                    },
                    Side::Sell,
                    10.0,
                ),
            ),
        ],
    );
    // Submitted at bar 1's close (10.5: stop 9.5); bar 2 lifts the best price to 12 (stop
    // 11); bar 3 opens at 11.2 and falls through 11.
    assert_eq!(fills(&b), vec![(0, 1, 10.0, 10.0), (1, 3, 10.0, 11.0)]);
    let o = b.order(1).unwrap();
    assert_eq!((o.trail_ref, o.stop_price), (12.0, 11.0));
}

#[test]
fn trailing_percent_buy_stop() {
    // A buy trailing 10 % above the lowest price since the close of bar 0 (10): the low 8
    // sets the stop at 8.8, reached on the way back up.
    let d = Data::one(&[flat(10.0), (10.0, 10.5, 8.0, 9.0)]);
    let kind = OrderKind::Trailing {
        offset: 0.1,
        pct: true,
    };
    let b = run_script(&d, cfg(), vec![(0, with(kind, Side::Buy, 1.0))]);
    // Flat, open 10 nearer the high: adaptive goes via the high first (10.5: no hit, the
    // stop is 11), then down to 8 (stop 8.8), then up to 9: reaches 8.8.
    assert_eq!(b.fills().len(), 1);
    assert!((b.fills()[0].price - 8.8).abs() < 1e-12);
}

/// Entry at bar 1's open (10), stop-loss 9 and take-profit 11, on a bar that reaches both.
fn both_hit(path: BarPath) -> Broker {
    let d = Data::one(&[flat(10.0), (10.0, 11.5, 8.5, 10.0), flat(10.0)]);
    let cfg = Config {
        bar_path: path,
        ..cfg()
    };
    run_script(
        &d,
        cfg,
        vec![(
            0,
            bracket(Some(Level::Price(9.0)), Some(Level::Price(11.0))),
        )],
    )
}

#[test]
fn the_both_hit_bar_under_each_path_rule() {
    // Ids: 0 entry, 1 stop-loss, 2 take-profit.
    let b = both_hit(BarPath::Pessimistic);
    assert_eq!(fills(&b), vec![(0, 1, 10.0, 10.0), (1, 1, 10.0, 9.0)]);
    assert_eq!(status(&b, 2), OrderStatus::Cancelled);
    assert_eq!(code(&b, 2), Some("bracket_done"));
    assert_eq!(b.position(0), 0.0);
    let b = both_hit(BarPath::Ohlc);
    assert_eq!(fills(&b), vec![(0, 1, 10.0, 10.0), (2, 1, 10.0, 11.0)]);
    assert_eq!(status(&b, 1), OrderStatus::Cancelled);
    // Open 10 is 1.5 from both extremes: not nearer the low, so via the high.
    let b = both_hit(BarPath::Adaptive);
    assert_eq!(fills(&b)[1], (2, 1, 10.0, 11.0));
}

#[test]
fn bracket_percent_levels_come_from_the_entry_fill() {
    let d = Data::one(&[flat(10.0), flat(10.0), (10.0, 11.2, 9.8, 11.0)]);
    let b = run_script(
        &d,
        cfg(),
        vec![(0, bracket(Some(Level::Pct(0.05)), Some(Level::Pct(0.1))))],
    );
    assert_eq!(b.order(1).unwrap().kind, OrderKind::Stop(9.5));
    assert_eq!(b.order(2).unwrap().kind, OrderKind::Limit(11.0));
    assert_eq!(fills(&b)[1], (2, 2, 10.0, 11.0));
}

#[test]
fn bracket_exits_wait_for_their_entry_and_end_with_it() {
    let d = Data::one(&[flat(10.0), flat(10.0), flat(10.0)]);
    let entry = OrderRequest {
        kind: OrderKind::Limit(8.0),
        ..bracket(Some(Level::Price(7.0)), Some(Level::Price(9.0)))
    };
    struct CancelAt2(OrderRequest);
    impl Driver for CancelAt2 {
        fn on_bar(&mut self, t: usize, _: &Bars, b: &mut Broker) -> bt_engine_core::Result<()> {
            match t {
                0 => {
                    b.submit(self.0)?;
                    assert_eq!(b.order(1).unwrap().status, OrderStatus::Pending);
                    assert!(!b.has_active_order(0) || b.active_order_ids().count() == 1);
                }
                2 => assert!(b.cancel(0)?),
                _ => {}
            }
            Ok(())
        }
    }
    let bars = d.bars();
    let mut b = Broker::new(cfg(), 1).unwrap();
    run(&bars, &mut b, &mut CancelAt2(entry)).unwrap();
    assert!(b.fills().is_empty());
    for leg in [1, 2] {
        assert_eq!(status(&b, leg), OrderStatus::Cancelled);
        assert_eq!(code(&b, leg), Some("parent_ended"));
    }
}

#[test]
fn bracket_exits_grow_with_partial_entry_fills() {
    // Volume 1,000 and a 10 % cap: the entry of 150 fills 100 then 50; the stop-loss
    // protects 100, then 150.
    let d = Data::one(&[flat(10.0), flat(10.0), flat(10.0), (10.0, 10.0, 8.0, 8.5)]);
    let cfg = Config {
        volume_limit: Some(0.1),
        ..cfg()
    };
    let entry = OrderRequest {
        size: 150.0,
        ..bracket(Some(Level::Price(9.0)), None)
    };
    let b = run_script(&d, cfg, vec![(0, entry)]);
    assert_eq!(
        fills(&b),
        vec![(0, 1, 100.0, 10.0), (0, 2, 50.0, 10.0), (1, 3, 100.0, 9.0)],
        "the stop sells at most 100 per bar too"
    );
    assert_eq!(b.order(1).unwrap().size, 150.0);
    assert_eq!(status(&b, 1), OrderStatus::PartiallyFilled);
}

#[test]
fn a_bracket_exit_never_reverses_the_position() {
    // The strategy closes the position itself; the working stop is then cancelled instead of
    // opening a short.
    let d = Data::one(&[flat(10.0), flat(10.0), flat(10.0), (9.0, 9.0, 8.0, 8.5)]);
    let b = run_script(
        &d,
        cfg(),
        vec![
            (0, bracket(Some(Level::Price(9.5)), None)),
            (1, OrderRequest::market(0, Side::Sell, 10.0)),
        ],
    );
    assert_eq!(b.position(0), 0.0);
    assert_eq!(status(&b, 1), OrderStatus::Cancelled);
    assert_eq!(code(&b, 1), Some("position_closed"));
}

#[test]
fn oco_fill_cancels_the_other() {
    let d = Data::one(&[flat(10.0), flat(10.0), (10.0, 11.5, 9.8, 11.0)]);
    struct Oco;
    impl Driver for Oco {
        fn on_bar(&mut self, t: usize, _: &Bars, b: &mut Broker) -> bt_engine_core::Result<()> {
            if t == 0 {
                b.submit(OrderRequest::market(0, Side::Buy, 5.0))?;
            }
            if t == 1 {
                let tp = b.submit(with(OrderKind::Limit(11.0), Side::Sell, 5.0))?;
                let sl = b.submit(with(OrderKind::Stop(9.0), Side::Sell, 5.0))?;
                b.link_oco(&[tp, sl])?;
                assert!(b.link_oco(&[tp, sl]).is_err(), "already linked");
            }
            Ok(())
        }
    }
    let bars = d.bars();
    let mut b = Broker::new(cfg(), 1).unwrap();
    run(&bars, &mut b, &mut Oco).unwrap();
    assert_eq!(fills(&b)[1], (1, 2, 5.0, 11.0));
    assert_eq!(status(&b, 2), OrderStatus::Cancelled);
    assert_eq!(code(&b, 2), Some("oco_filled"));
}

#[test]
fn oto_child_waits_for_its_parent_to_fill() {
    // Parent buy limit 9.5 fills on the way down in bar 1; the child sell limit 10.5 starts
    // working there and fills at bar 2's open.
    let d = Data::one(&[
        flat(10.0),
        (10.0, 10.6, 9.4, 10.0),
        (10.6, 10.8, 10.4, 10.7),
    ]);
    let parent = with(OrderKind::Limit(9.5), Side::Buy, 3.0);
    let child = OrderRequest {
        parent: Some(0),
        ..with(OrderKind::Limit(10.5), Side::Sell, 3.0)
    };
    let b = run_script(&d, cfg(), vec![(0, parent), (0, child)]);
    // Flat at bar 1, open 10 equally far from both extremes: via the high (10.6) first, the
    // child is not yet working then.
    assert_eq!(fills(&b), vec![(0, 1, 3.0, 9.5), (1, 2, 3.0, 10.6)]);
    // A cancelled parent cancels its child.
    let d = Data::one(&[flat(10.0), flat(10.0)]);
    let parent = with(OrderKind::Limit(5.0), Side::Buy, 3.0);
    let child = OrderRequest {
        parent: Some(0),
        ..with(OrderKind::Limit(10.5), Side::Sell, 3.0)
    };
    struct Cancel(OrderRequest, OrderRequest);
    impl Driver for Cancel {
        fn on_bar(&mut self, t: usize, _: &Bars, b: &mut Broker) -> bt_engine_core::Result<()> {
            if t == 0 {
                b.submit(self.0)?;
                b.submit(self.1)?;
                b.cancel(0)?;
            }
            Ok(())
        }
    }
    let bars = d.bars();
    let mut b = Broker::new(cfg(), 1).unwrap();
    run(&bars, &mut b, &mut Cancel(parent, child)).unwrap();
    assert_eq!(code(&b, 1), Some("parent_ended"));
}

#[test]
fn ioc_fok_and_partial_fills_under_a_volume_cap() {
    // Volume 1,000 per bar, 10 %: 100 units per bar.
    let d = Data::one(&[flat(10.0), flat(10.0), flat(10.0)]);
    let capped = Config {
        volume_limit: Some(0.1),
        commission_rate: 0.001,
        commission_min: 5.0,
        ..cfg()
    };
    let tif = |tif, size| OrderRequest {
        tif,
        ..OrderRequest::market(0, Side::Buy, size)
    };
    // GTC: 100 then 50; the 5.0 minimum once for the order (0.001 x 1,500 = 1.5 < 5).
    let b = run_script(&d, capped.clone(), vec![(0, tif(TimeInForce::Gtc, 150.0))]);
    assert_eq!(fills(&b), vec![(0, 1, 100.0, 10.0), (0, 2, 50.0, 10.0)]);
    let paid: Vec<f64> = b.fills().iter().map(|f| f.commission).collect();
    assert_eq!(paid, vec![5.0, 0.0]);
    // IOC: what the first price allows, the rest cancelled.
    let b = run_script(&d, capped.clone(), vec![(0, tif(TimeInForce::Ioc, 150.0))]);
    assert_eq!(fills(&b), vec![(0, 1, 100.0, 10.0)]);
    assert_eq!(code(&b, 0), Some("ioc_unfilled"));
    // FOK: all or nothing.
    let b = run_script(&d, capped.clone(), vec![(0, tif(TimeInForce::Fok, 150.0))]);
    assert!(b.fills().is_empty());
    assert_eq!(code(&b, 0), Some("fok_unfilled"));
    let b = run_script(&d, capped, vec![(0, tif(TimeInForce::Fok, 100.0))]);
    assert_eq!(fills(&b), vec![(0, 1, 100.0, 10.0)]);
    // An IOC limit that the open does not reach is cancelled even if the range would.
    let d = Data::one(&[flat(10.0), BAR]);
    let ioc = OrderRequest {
        tif: TimeInForce::Ioc,
        ..with(OrderKind::Limit(9.5), Side::Buy, 1.0)
    };
    let b = run_script(&d, cfg(), vec![(0, ioc)]);
    assert!(b.fills().is_empty());
    assert_eq!(status(&b, 0), OrderStatus::Cancelled);
}

#[test]
fn gtd_expires_on_the_first_bar_after_its_time() {
    let d = Data::one(&[flat(10.0), flat(10.0), flat(10.0), flat(10.0)]);
    let until = d.ts[2];
    let gtd = OrderRequest {
        tif: TimeInForce::Gtd(until),
        ..with(OrderKind::Limit(5.0), Side::Buy, 1.0)
    };
    let b = run_script(&d, cfg(), vec![(0, gtd)]);
    let o = b.order(0).unwrap();
    assert_eq!((o.status, o.closed_bar), (OrderStatus::Expired, Some(3)));
}

#[test]
fn modify_moves_a_working_limit() {
    let d = Data::one(&[flat(10.0), flat(10.0), flat(10.0)]);
    struct Move(bool);
    impl Driver for Move {
        fn wants_events(&self) -> bool {
            true
        }
        fn on_events(&mut self, _: usize, b: &mut Broker) -> bt_engine_core::Result<()> {
            let modified = |e: &Event| {
                matches!(
                    e,
                    Event::Order {
                        what: OrderEvent::Modified,
                        ..
                    }
                )
            };
            self.0 |= b.drain_events().iter().any(modified);
            Ok(())
        }
        fn on_bar(&mut self, t: usize, _: &Bars, b: &mut Broker) -> bt_engine_core::Result<()> {
            match t {
                0 => {
                    b.submit(with(OrderKind::Limit(8.0), Side::Buy, 1.0))?;
                }
                1 => {
                    assert!(b.modify(0, None, Some(9.0), None).is_err(), "no stop price");
                    assert!(b.modify(0, Some(-1.0), None, None).is_err());
                    b.modify(0, Some(10.0), None, Some(2.0))?;
                }
                _ => {}
            }
            Ok(())
        }
    }
    let bars = d.bars();
    let mut b = Broker::new(cfg(), 1).unwrap();
    let mut m = Move(false);
    run(&bars, &mut b, &mut m).unwrap();
    assert_eq!(fills(&b), vec![(0, 2, 2.0, 10.0)]);
    assert!(m.0, "a modified event");
}

#[test]
fn limit_fill_through_needs_a_trade_beyond() {
    let d = Data::one(&[flat(10.0), (10.0, 11.0, 9.0, 10.0)]);
    let order = vec![(0, with(OrderKind::Limit(9.0), Side::Buy, 1.0))];
    let touch = run_script(&d, cfg(), order.clone());
    assert_eq!(fills(&touch), vec![(0, 1, 1.0, 9.0)]);
    let through = Config {
        limit_fill: LimitFill::Through,
        ..cfg()
    };
    assert!(run_script(&d, through, order).fills().is_empty());
}

#[test]
fn close_mode_works_for_stops_and_brackets() {
    let d = Data::one(&[(10.0, 11.0, 9.0, 10.5), (10.5, 12.0, 10.4, 11.0)]);
    let close = Config {
        fill_on: FillOn::Close,
        ..cfg()
    };
    // A buy stop at 10.2 decided on bar 0 meets the close 10.5 first: it fills there.
    let b = run_script(
        &d,
        close.clone(),
        vec![(0, with(OrderKind::Stop(10.2), Side::Buy, 1.0))],
    );
    assert_eq!(fills(&b), vec![(0, 0, 1.0, 10.5)]);
    // A bracket entered at the close: its target 11.5 trades within bar 1.
    let b = run_script(
        &d,
        close,
        vec![(
            0,
            bracket(Some(Level::Price(9.0)), Some(Level::Price(11.5))),
        )],
    );
    assert_eq!(fills(&b), vec![(0, 0, 10.0, 10.5), (2, 1, 10.0, 11.5)]);
}

#[test]
fn fee_lines_report_commission_and_tax_apart() {
    let d = Data::one(&[flat(10.0), flat(10.0), flat(10.0)]);
    let mut duty = FeeLine::new(
        "stamp_duty",
        FeeRule::Rate {
            rate: 0.001,
            min: 0.0,
        },
    );
    duty.sides = Sides::Sell;
    duty.kind = FeeKind::Tax;
    let c = Config {
        commission_rate: 0.0003,
        commission_min: 5.0,
        fees: vec![
            FeeLine::new(
                "per_share",
                FeeRule::PerUnit {
                    per_unit: 0.01,
                    min: 0.0,
                },
            ),
            duty,
        ],
        ..cfg()
    };
    let b = run_script(
        &d,
        c,
        vec![
            (0, OrderRequest::market(0, Side::Buy, 1_000.0)),
            (1, OrderRequest::market(0, Side::Sell, 1_000.0)),
        ],
    );
    let f = b.fills();
    // Buy 10,000: commission max(3, 5) + 10 per-share; no duty.
    assert!((f[0].commission - 15.0).abs() < 1e-9 && f[0].tax == 0.0);
    // Sell 10,000: the same commission, duty 10.
    assert!((f[1].commission - 15.0).abs() < 1e-9 && (f[1].tax - 10.0).abs() < 1e-9);
    assert!((b.cash() - (100_000.0 - 15.0 - 15.0 - 10.0)).abs() < 1e-9);
    assert!((b.tax_paid()[0] - 10.0).abs() < 1e-9);
    assert!((b.trades()[0].commission - 40.0).abs() < 1e-9);
}

#[test]
fn slippage_models_move_the_price_against_the_trader() {
    let d = Data::one(&[flat(10.0), (10.0, 11.0, 9.0, 10.5)]);
    let c = Config {
        slippage_model: Slippage::RangeShare(0.1),
        ..cfg()
    };
    let b = run_script(&d, c, vec![(0, OrderRequest::market(0, Side::Buy, 1.0))]);
    assert!((b.fills()[0].price - 10.2).abs() < 1e-12);
    // Square-root impact from the two returns before the fill bar: closes 100, 110, 99.
    let mut d = Data::one(&[flat(100.0), flat(110.0), flat(99.0), flat(99.0)]);
    d.v = vec![10_000.0; 4];
    let c = Config {
        slippage_model: Slippage::SqrtImpact {
            coef: 0.5,
            window: 20,
        },
        ..cfg()
    };
    let b = run_script(&d, c, vec![(2, OrderRequest::market(0, Side::Buy, 100.0))]);
    let r = [(110.0f64 / 100.0).ln(), (99.0f64 / 110.0).ln()];
    let mean = (r[0] + r[1]) / 2.0;
    let sigma = (((r[0] - mean).powi(2) + (r[1] - mean).powi(2)) / 1.0).sqrt();
    let want = 99.0 * (1.0 + 0.5 * sigma * (100.0f64 / 10_000.0).sqrt());
    assert!(
        (b.fills()[0].price - want).abs() < 1e-9,
        "{} vs {want}",
        b.fills()[0].price
    );
}

#[test]
fn bracket_events_arrive_in_order() {
    let d = Data::one(&[flat(10.0), (10.0, 11.5, 8.5, 10.0)]);
    struct Rec(Vec<(usize, &'static str)>);
    impl Driver for Rec {
        fn on_bar(&mut self, t: usize, _: &Bars, b: &mut Broker) -> bt_engine_core::Result<()> {
            if t == 0 {
                b.submit(bracket(Some(Level::Price(9.0)), Some(Level::Price(11.0))))?;
            }
            Ok(())
        }
        fn wants_events(&self) -> bool {
            true
        }
        fn on_events(&mut self, _: usize, b: &mut Broker) -> bt_engine_core::Result<()> {
            for e in b.drain_events() {
                match e {
                    Event::Order { order, what, .. } => self.0.push((order, what.as_str())),
                    Event::Fill(i) => self.0.push((b.fills()[i].order_id as usize, "fill")),
                }
            }
            Ok(())
        }
    }
    let bars = d.bars();
    let mut b = Broker::new(cfg(), 1).unwrap();
    let mut rec = Rec(Vec::new());
    run(&bars, &mut b, &mut rec).unwrap();
    assert_eq!(
        rec.0,
        vec![
            (0, "submitted"),
            (0, "accepted"),
            (1, "submitted"),
            (2, "submitted"),
            (0, "fill"),
            (0, "filled"),
            (1, "accepted"),
            (2, "accepted"),
            (1, "triggered"),
            (1, "fill"),
            (1, "filled"),
            (2, "cancelled"),
        ]
    );
}

#[test]
fn bad_order_arguments_are_errors_naming_the_field() {
    let d = Data::one(&[flat(10.0)]);
    let bars = d.bars();
    let mut b = Broker::new(cfg(), 1).unwrap();
    b.begin_bar(&bars, 0);
    let cases = [
        (with(OrderKind::Stop(f64::NAN), Side::Buy, 1.0), "stop"),
        (
            with(
                OrderKind::StopLimit {
                    stop: 10.0,
                    limit: -1.0,
                },
                Side::Buy,
                1.0,
            ),
            "limit",
        ),
        (
            with(
                OrderKind::Trailing {
                    offset: 1.5,
                    pct: true,
                },
                Side::Sell,
                1.0,
            ),
            "trail_pct",
        ),
        (
            bracket(Some(Level::Price(11.0)), Some(Level::Price(10.0))),
            "sl",
        ),
        (bracket(Some(Level::Pct(1.0)), None), "sl"),
        (
            OrderRequest {
                parent: Some(99),
                ..OrderRequest::market(0, Side::Buy, 1.0)
            },
            "parent",
        ),
    ];
    for (req, field) in cases {
        let e = b.submit(req).unwrap_err();
        assert!(
            e.fields.iter().any(|(k, _)| *k == field),
            "{req:?}: {e:?} should name {field}"
        );
    }
    let _ = DAY;
}

#[test]
fn instrument_settings_from_the_config_by_symbol() {
    use bt_engine_core::InstrumentSettings;
    let d = Data::one(&[flat(10.0), flat(10.0), flat(10.0)]);
    let lots = Config {
        instruments: vec![(
            "*".to_string(),
            InstrumentSettings {
                size_increment: Some(100.0),
                tick_size: Some(0.01),
                ..Default::default()
            },
        )],
        ..cfg()
    };
    let value = OrderRequest {
        sizing: bt_engine_core::Sizing::Value,
        ..OrderRequest::market(0, Side::Buy, 2_550.0)
    };
    let b = run_script(
        &d,
        lots.clone(),
        vec![(0, value), (0, OrderRequest::market(0, Side::Buy, 150.0))],
    );
    assert_eq!(fills(&b), vec![(0, 1, 200.0, 10.0)]);
    assert_eq!(code(&b, 1), Some("size_increment"));
    assert_eq!(b.instruments()[0].tick_size, 0.01);
    let unknown = Config {
        instruments: vec![("XYZ".to_string(), InstrumentSettings::default())],
        ..cfg()
    };
    let e =
        Broker::with_instruments(unknown, vec![bt_engine_core::Instrument::new("A")]).unwrap_err();
    assert!(e.message.contains("not a symbol of the data"), "{e:?}");
}
