//! Fills, costs and the ledger, driven bar by bar like the real drivers do.

use bt_engine_core::drivers::{run, Driver, SmaCross};
use bt_engine_core::{
    Bars, Broker, Config, FillOn, OrderKind, OrderRequest, OrderStatus, Side, TimeInForce,
};

mod common;
use common::{cfg, flat, run_script, Data, Script, DAY};

#[test]
fn market_order_fills_at_next_open() {
    let d = Data::one(&[
        (10.0, 11.0, 9.0, 10.5),
        (12.0, 13.0, 11.0, 12.5),
        flat(13.0),
    ]);
    let b = run_script(
        &d,
        cfg(),
        vec![(0, OrderRequest::market(0, Side::Buy, 2.0))],
    );
    assert_eq!(b.fills().len(), 1);
    let f = &b.fills()[0];
    assert_eq!((f.bar, f.price, f.size), (1, 12.0, 2.0));
    assert_eq!(b.cash(), 1_000.0 - 24.0);
    assert_eq!(b.equity_curve(), &[1_000.0, 976.0 + 25.0, 976.0 + 26.0]);
}

#[test]
fn close_mode_fills_on_the_decision_bar() {
    let d = Data::one(&[(10.0, 11.0, 9.0, 10.5), flat(12.0)]);
    let b = run_script(
        &d,
        Config {
            fill_on: FillOn::Close,
            ..cfg()
        },
        vec![(0, OrderRequest::market(0, Side::Buy, 1.0))],
    );
    assert_eq!((b.fills()[0].bar, b.fills()[0].price), (0, 10.5));
}

#[test]
fn limit_buy_fills_at_limit_or_gap_open() {
    // Bar 1 range reaches 9.5 -> fill at the limit.
    let d = Data::one(&[flat(10.0), (10.0, 10.2, 9.4, 9.8), flat(9.0)]);
    let b = run_script(
        &d,
        cfg(),
        vec![(0, OrderRequest::limit(0, Side::Buy, 1.0, 9.5))],
    );
    assert_eq!((b.fills()[0].bar, b.fills()[0].price), (1, 9.5));
    // Bar 1 gaps below the limit -> fill at the open, which is better.
    let d = Data::one(&[flat(10.0), (9.0, 9.2, 8.8, 9.1), flat(9.0)]);
    let b = run_script(
        &d,
        cfg(),
        vec![(0, OrderRequest::limit(0, Side::Buy, 1.0, 9.5))],
    );
    assert_eq!(b.fills()[0].price, 9.0);
    // Never reached -> stays working (GTC), not silently dropped.
    let d = Data::one(&[flat(10.0), (10.0, 10.5, 9.6, 10.0), flat(10.0)]);
    let b = run_script(
        &d,
        cfg(),
        vec![(0, OrderRequest::limit(0, Side::Buy, 1.0, 9.5))],
    );
    assert!(b.fills().is_empty());
    assert_eq!(b.orders()[0].status, OrderStatus::Accepted);
}

#[test]
fn limit_sell_uses_the_high() {
    let d = Data::one(&[flat(10.0), flat(10.0), (10.0, 11.2, 9.9, 10.1)]);
    let b = run_script(
        &d,
        cfg(),
        vec![
            (0, OrderRequest::market(0, Side::Buy, 1.0)),
            (1, OrderRequest::limit(0, Side::Sell, 1.0, 11.0)),
        ],
    );
    assert_eq!((b.fills()[1].bar, b.fills()[1].price), (2, 11.0));
}

#[test]
fn day_order_expires_after_its_day() {
    let d = Data::one(&[flat(10.0), flat(10.0), flat(10.0)]);
    let mut req = OrderRequest::limit(0, Side::Buy, 1.0, 5.0);
    req.tif = TimeInForce::Day;
    let b = run_script(&d, cfg(), vec![(0, req)]);
    let o = &b.orders()[0];
    assert_eq!(o.status, OrderStatus::Expired);
    assert_eq!(o.closed_bar, Some(2));
}

#[test]
fn commission_rate_min_and_fixed() {
    let c = Config {
        commission_rate: 0.001,
        commission_min: 5.0,
        commission_fixed: 1.0,
        ..cfg()
    };
    let fees = c.fee_schedule();
    let one = |n: f64| fees.first_fill(Side::Buy, n, 100.0, 0).commission;
    assert_eq!(one(1_000.0), 5.0 + 1.0); // 1.0 < min 5
    assert_eq!(one(10_000.0), 10.0 + 1.0);
    let d = Data::one(&[flat(100.0), flat(100.0), flat(100.0)]);
    let b = run_script(&d, c, vec![(0, OrderRequest::market(0, Side::Buy, 2.0))]);
    assert_eq!(b.fills()[0].commission, 6.0);
    assert_eq!(b.cash(), 1_000.0 - 200.0 - 6.0);
    assert_eq!(b.realized()[0], -6.0);
}

#[test]
fn slippage_is_against_the_trader_and_capped_by_limits() {
    let c = Config {
        slippage_bps: 100.0,
        ..cfg()
    }; // 1%
    let d = Data::one(&[flat(100.0), flat(100.0), flat(100.0), flat(100.0)]);
    let b = run_script(
        &d,
        c,
        vec![
            (0, OrderRequest::market(0, Side::Buy, 1.0)),
            (1, OrderRequest::market(0, Side::Sell, 1.0)),
            (2, OrderRequest::limit(0, Side::Buy, 1.0, 100.5)),
        ],
    );
    assert_eq!(b.fills()[0].price, 101.0);
    assert_eq!(b.fills()[1].price, 99.0);
    assert_eq!(b.fills()[2].price, 100.5);
    assert!((b.fills()[0].slippage - 1.0).abs() < 1e-12);
}

#[test]
fn buy_without_cash_is_rejected_with_reason() {
    let d = Data::one(&[flat(100.0), flat(100.0)]);
    let b = run_script(
        &d,
        cfg(),
        vec![(0, OrderRequest::market(0, Side::Buy, 11.0))],
    );
    let o = &b.orders()[0];
    assert_eq!(o.status, OrderStatus::Rejected);
    assert!(o.reason().unwrap().contains("insufficient cash"));
    assert_eq!(b.cash(), 1_000.0);
    assert!(b.fills().is_empty());
}

#[test]
fn selling_more_than_held_is_rejected() {
    let d = Data::one(&[flat(10.0), flat(10.0), flat(10.0)]);
    let b = run_script(
        &d,
        cfg(),
        vec![
            (0, OrderRequest::market(0, Side::Buy, 1.0)),
            (1, OrderRequest::market(0, Side::Sell, 2.0)),
        ],
    );
    assert_eq!(b.orders()[1].status, OrderStatus::Rejected);
    assert!(b.orders()[1].reason().unwrap().contains("short selling"));
    assert_eq!(b.position(0), 1.0);
}

#[test]
fn cancel_stops_a_working_order() {
    struct CancelAt1;
    impl Driver for CancelAt1 {
        fn on_bar(&mut self, t: usize, _: &Bars, b: &mut Broker) -> bt_engine_core::Result<()> {
            if t == 0 {
                b.submit(OrderRequest::limit(0, Side::Buy, 1.0, 1.0))?;
            }
            if t == 1 {
                assert!(b.cancel(0)?);
                assert!(!b.cancel(0)?);
            }
            Ok(())
        }
    }
    let d = Data::one(&[flat(10.0), flat(10.0), flat(10.0)]);
    let bars = d.bars();
    let mut b = Broker::new(cfg(), 1).unwrap();
    run(&bars, &mut b, &mut CancelAt1).unwrap();
    assert_eq!(b.orders()[0].status, OrderStatus::Cancelled);
    assert!(b.cancel(99).is_err());
}

#[test]
fn bad_orders_are_errors() {
    let mut b = Broker::new(cfg(), 1).unwrap();
    assert!(b.submit(OrderRequest::market(1, Side::Buy, 1.0)).is_err());
    assert!(b.submit(OrderRequest::market(0, Side::Buy, -1.0)).is_err());
    assert!(b
        .submit(OrderRequest::market(0, Side::Buy, f64::NAN))
        .is_err());
    let mut r = OrderRequest::market(0, Side::Buy, 1.0);
    r.kind = OrderKind::Limit(f64::INFINITY);
    assert!(b.submit(r).is_err());
}

#[test]
fn realized_pnl_and_fifo_round_trips() {
    let c = Config {
        commission_rate: 0.01,
        ..cfg()
    };
    let d = Data::one(&[flat(10.0), flat(10.0), flat(20.0), flat(30.0), flat(30.0)]);
    let b = run_script(
        &d,
        c,
        vec![
            (0, OrderRequest::market(0, Side::Buy, 2.0)), // fills bar 1 @10, comm 0.2
            (1, OrderRequest::market(0, Side::Buy, 1.0)), // fills bar 2 @20, comm 0.2
            (2, OrderRequest::market(0, Side::Sell, 2.5)), // fills bar 3 @30, comm 0.75
        ],
    );
    assert!((b.position(0) - 0.5).abs() < 1e-12);
    // Average cost 40/3; realised = 2.5 * (30 - 40/3) - all commissions.
    let expected = 2.5 * (30.0 - 40.0 / 3.0) - 0.2 - 0.2 - 0.75;
    assert!((b.realized()[0] - expected).abs() < 1e-9);
    // FIFO: 2 units from the first lot, 0.5 from the second.
    let tr = b.trades();
    assert_eq!(tr.len(), 2);
    assert_eq!(
        (tr[0].size, tr[0].entry_price, tr[0].exit_price),
        (2.0, 10.0, 30.0)
    );
    assert_eq!((tr[1].size, tr[1].entry_price), (0.5, 20.0));
    assert!((tr[0].commission - (0.2 + 2.0 * 0.75 / 2.5)).abs() < 1e-12);
    // Ledger identity on the final bar.
    let eq = *b.equity_curve().last().unwrap();
    let lhs = eq - 1_000.0;
    let rhs = b.realized()[0] + b.unrealized(0);
    assert!((lhs - rhs).abs() < 1e-9, "{lhs} vs {rhs}");
}

#[test]
fn missing_bar_delays_fill_and_keeps_mark() {
    let n = f64::NAN;
    let d = Data::one(&[flat(10.0), (n, n, n, n), flat(12.0)]);
    let b = run_script(
        &d,
        cfg(),
        vec![(0, OrderRequest::market(0, Side::Buy, 1.0))],
    );
    assert_eq!((b.fills()[0].bar, b.fills()[0].price), (2, 12.0));
}

#[test]
fn bad_data_is_rejected_with_location() {
    let mut d = Data::one(&[flat(10.0), flat(10.0)]);
    d.ts[1] = d.ts[0];
    let e = Bars::new(&d.ts, &d.o, &d.h, &d.l, &d.c, &d.v, 1).unwrap_err();
    assert!(
        e.message.contains("duplicate timestamps: bar 1"),
        "{}",
        e.message
    );
    let mut d = Data::one(&[flat(10.0), (10.0, 9.0, 11.0, 10.0)]);
    d.ts[1] = d.ts[0] + DAY;
    let e = d.bars_err();
    assert!(e.contains("high 9 < low 11 at bar 1"), "{e}");
    let d = Data::one(&[flat(10.0), (10.0, 10.0, 10.0, -1.0)]);
    assert!(d.bars_err().contains("close must be a finite price > 0"));
}

impl Data {
    fn bars_err(&self) -> String {
        Bars::new(
            &self.ts, &self.o, &self.h, &self.l, &self.c, &self.v, self.n,
        )
        .unwrap_err()
        .message
    }
}

#[test]
fn deterministic_sma_cross() {
    let rows: Vec<_> = (0..500)
        .map(|i| {
            let p = 100.0 + 10.0 * ((i as f64) * 0.07).sin() + (i as f64) * 0.01;
            (p, p * 1.01, p * 0.99, p)
        })
        .collect();
    let d = Data::one(&rows);
    let go = || {
        let bars = d.bars();
        let mut b = Broker::new(
            Config {
                commission_rate: 0.0005,
                ..cfg()
            },
            1,
        )
        .unwrap();
        let mut s = SmaCross::new(&bars, 10, 30, 1.0).unwrap();
        run(&bars, &mut b, &mut s).unwrap();
        (b.equity_curve().to_vec(), b.fills().to_vec())
    };
    let (e1, f1) = go();
    let (e2, f2) = go();
    assert!(!f1.is_empty());
    assert_eq!(f1, f2);
    assert!(e1.iter().zip(&e2).all(|(a, b)| a.to_bits() == b.to_bits()));
}

#[test]
fn sale_cannot_overdraw_cash_with_its_commission() {
    // Buy 2 @ 10 paying 0.7 commission leaves 0.3 cash; after a crash to 0.1 the sale brings
    // 0.2 but costs 0.7 commission: filling it would leave cash at -0.2.
    let c = Config {
        cash: 21.0,
        commission_min: 0.3,
        commission_fixed: 0.4,
        ..cfg()
    };
    let d = Data::one(&[flat(10.0), flat(10.0), flat(0.1), flat(0.1)]);
    let bars = d.bars();
    let mut b = Broker::new(c, 1).unwrap();
    b.set_symbol_names(vec!["600000.SH".into()]).unwrap();
    let script = vec![
        (0, OrderRequest::market(0, Side::Buy, 2.0)),
        (1, OrderRequest::market(0, Side::Sell, 2.0)),
    ];
    run(&bars, &mut b, &mut Script(script)).unwrap();
    assert!((b.cash() - 0.3).abs() < 1e-12);
    let o = &b.orders()[1];
    assert_eq!(o.status, OrderStatus::Rejected);
    let reason = o.reason().unwrap();
    assert!(
        reason.contains("insufficient cash") && reason.contains("600000.SH"),
        "{reason}"
    );
    assert!(b.cash() >= 0.0 && b.position(0) == 2.0);
}

#[test]
fn validation_finds_a_bad_cell_anywhere() {
    for bad in [0usize, 255, 256, 300, 599] {
        let mut rows: Vec<_> = (0..600).map(|_| flat(10.0)).collect();
        rows[bad] = (10.0, 10.0, 10.0, f64::INFINITY);
        let e = Data::one(&rows).bars_err();
        assert!(e.contains(&format!("bar {bad} ")), "{bad}: {e}");
    }
    let mut d = Data::one(&(0..600).map(|_| flat(10.0)).collect::<Vec<_>>());
    d.v[450] = f64::NAN;
    assert!(d
        .bars_err()
        .contains("volume must be a finite number >= 0 at bar 450"));
}

/// The cross rule on precomputed `indicators::sma` arrays: what a Python strategy does.
struct ArrayCross {
    fast: Vec<f64>,
    slow: Vec<f64>,
}

impl Driver for ArrayCross {
    fn on_bar(&mut self, t: usize, bars: &Bars, b: &mut Broker) -> bt_engine_core::Result<()> {
        if t == 0 || !bars.has_bar(t, 0) {
            return Ok(());
        }
        let (f0, s0, f1, s1) = (
            self.fast[t],
            self.slow[t],
            self.fast[t - 1],
            self.slow[t - 1],
        );
        if f1 < s1 && f0 > s0 && b.position(0) == 0.0 && !b.has_active_order(0) {
            b.submit(OrderRequest::market(0, Side::Buy, 1.0))?;
        } else if f1 > s1 && f0 < s0 && b.position(0) > 0.0 && !b.has_active_order(0) {
            b.submit(OrderRequest::market(0, Side::Sell, b.position(0)))?;
        }
        Ok(())
    }
}

#[test]
fn builtin_sma_cross_equals_precomputed_sma_arrays_bit_for_bit() {
    // 3000 bars (past several exact re-sums of the running window) with gaps (missing bars).
    let n = f64::NAN;
    let rows: Vec<_> = (0..3000)
        .map(|i| {
            if i % 97 == 13 || (1500..1510).contains(&i) {
                return (n, n, n, n);
            }
            let p = 100.0 + 7.0 * ((i as f64) * 0.05).sin() + 3.0 * ((i as f64) * 0.31).cos();
            (p, p * 1.002, p * 0.998, p)
        })
        .collect();
    let d = Data::one(&rows);
    let bars = d.bars();
    let cfg = Config {
        commission_rate: 0.0005,
        ..cfg()
    };
    let mut a = Broker::new(cfg.clone(), 1).unwrap();
    run(
        &bars,
        &mut a,
        &mut SmaCross::new(&bars, 10, 30, 1.0).unwrap(),
    )
    .unwrap();
    let mut b = Broker::new(cfg, 1).unwrap();
    let mut reference = ArrayCross {
        fast: bt_engine_core::indicators::sma(&d.c, 10).unwrap(),
        slow: bt_engine_core::indicators::sma(&d.c, 30).unwrap(),
    };
    run(&bars, &mut b, &mut reference).unwrap();
    assert!(a.fills().len() > 50, "{}", a.fills().len());
    assert_eq!(a.fills(), b.fills());
    assert!(a
        .equity_curve()
        .iter()
        .zip(b.equity_curve())
        .all(|(x, y)| x.to_bits() == y.to_bits()));
}
