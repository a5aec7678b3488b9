//! Hand-computed scenarios for shorting, borrow costs, margin accounts, leverage limits and
//! margin calls.

use bt_engine_core::drivers::run;
use bt_engine_core::{
    AccountKind, Broker, Config, InstrumentSettings, OrderRequest, OrderStatus, Side, Sizing,
};

mod common;
use common::{flat, run_script, Data, Script, DAY};

fn shorting() -> Config {
    Config {
        cash: 1_000.0,
        allow_short: true,
        ..Config::default()
    }
}

fn margin(im: f64, mm: f64) -> Config {
    Config {
        cash: 1_000.0,
        account: AccountKind::Margin,
        initial_margin: Some(im),
        maintenance_margin: Some(mm),
        ..Config::default()
    }
}

fn sell(size: f64) -> OrderRequest {
    OrderRequest::market(0, Side::Sell, size)
}

fn buy(size: f64) -> OrderRequest {
    OrderRequest::market(0, Side::Buy, size)
}

#[test]
fn a_short_covered_lower_books_the_gain() {
    let d = Data::one(&[flat(10.0), flat(10.0), (8.0, 8.0, 8.0, 8.0), flat(8.0)]);
    let b = run_script(&d, shorting(), vec![(0, sell(10.0)), (1, buy(10.0))]);
    assert_eq!(b.fills().len(), 2);
    assert_eq!(b.position(0), 0.0);
    // Sold 10 at 10, bought back at 8: +20.
    assert!((b.realized()[0] - 20.0).abs() < 1e-9);
    assert!((b.cash() - 1_020.0).abs() < 1e-9);
    let t = &b.trades()[0];
    assert_eq!(t.direction, -1.0);
    assert!((t.gross_pnl - 20.0).abs() < 1e-9);
}

#[test]
fn a_short_through_zero_reverses_at_the_fill_price() {
    let d = Data::one(&[flat(10.0), flat(10.0), flat(12.0), flat(12.0)]);
    let b = run_script(&d, shorting(), vec![(0, buy(5.0)), (1, sell(8.0))]);
    assert_eq!(b.position(0), -3.0);
    assert_eq!(b.avg_cost(0), 12.0);
    // The long's 5 units closed at 12: +10.
    assert!((b.realized()[0] - 10.0).abs() < 1e-9);
}

#[test]
fn without_shorting_a_sell_beyond_the_position_is_rejected() {
    let d = Data::one(&[flat(10.0), flat(10.0)]);
    let b = run_script(&d, margin(0.5, 0.25), vec![(0, sell(1.0))]);
    let o = b.order(0).unwrap();
    assert_eq!(o.status, OrderStatus::Rejected);
    assert_eq!(o.reason_code(), Some("insufficient_position"));
}

#[test]
fn a_cash_account_short_needs_cash_worth_its_value_besides_the_proceeds() {
    let d = Data::one(&[flat(10.0), flat(10.0), flat(10.0)]);
    let b = run_script(&d, shorting(), vec![(0, sell(101.0)), (1, sell(100.0))]);
    let o = b.order(0).unwrap();
    assert_eq!(o.status, OrderStatus::Rejected);
    assert_eq!(o.reason_code(), Some("insufficient_cash"));
    assert!(o.reason().unwrap().contains("1010"));
    assert_eq!(b.order(1).unwrap().status, OrderStatus::Filled);
    assert_eq!(b.position(0), -100.0);
    assert!((b.cash() - 2_000.0).abs() < 1e-9);
}

#[test]
fn an_instrument_may_forbid_shorting_when_the_account_allows_it() {
    let d = Data::one(&[flat(10.0), flat(10.0)]);
    let cfg = Config {
        instruments: vec![(
            "*".to_string(),
            InstrumentSettings {
                allow_short: Some(false),
                ..Default::default()
            },
        )],
        ..shorting()
    };
    let b = run_script(&d, cfg, vec![(0, sell(1.0))]);
    assert_eq!(
        b.order(0).unwrap().reason_code(),
        Some("insufficient_position")
    );
}

#[test]
fn borrow_cost_accrues_per_bar_on_the_short_value_by_elapsed_time() {
    // Daily bars; 36.5 % a year is 0.1 % a day.
    let d = Data::one(&[flat(10.0), flat(10.0), flat(20.0), flat(20.0), flat(20.0)]);
    let cfg = Config {
        borrow_rate: 0.365,
        ..shorting()
    };
    let b = run_script(&d, cfg, vec![(0, sell(10.0))]);
    // Short from bar 1's open. Charged at bars 2, 3, 4 on the value at the previous close:
    // 100 x 0.001 (close 10 at bar 1), then 200 x 0.001 twice (closes 20).
    let expected = 0.1 + 0.2 + 0.2;
    assert!((b.borrow_paid()[0] - expected).abs() < 1e-9);
    assert!((b.cash() - (1_000.0 + 100.0 - expected)).abs() < 1e-9);
    // Realised P&L carries the cost (the position is still open).
    assert!((b.realized()[0] + expected).abs() < 1e-9);
}

#[test]
fn borrow_cost_counts_calendar_time_over_a_weekend() {
    let mut d = Data::one(&[flat(10.0), flat(10.0), flat(10.0)]);
    d.ts[2] = d.ts[1] + 3 * DAY;
    let cfg = Config {
        borrow_rate: 0.365,
        ..shorting()
    };
    let b = run_script(&d, cfg, vec![(0, sell(10.0))]);
    assert!((b.borrow_paid()[0] - 0.3).abs() < 1e-9);
}

#[test]
fn a_margin_account_buys_up_to_its_initial_margin() {
    let d = Data::one(&[flat(10.0), flat(10.0), flat(10.0)]);
    let b = run_script(
        &d,
        margin(0.5, 0.25),
        vec![(0, buy(201.0)), (1, buy(200.0))],
    );
    let o = b.order(0).unwrap();
    assert_eq!(o.reason_code(), Some("insufficient_margin"));
    assert_eq!(b.order(1).unwrap().status, OrderStatus::Filled);
    assert!((b.cash() + 1_000.0).abs() < 1e-9, "borrowed 1000");
    assert!((b.equity() - 1_000.0).abs() < 1e-9);
}

#[test]
fn the_leverage_limit_caps_gross_exposure() {
    let d = Data::one(&[flat(10.0), flat(10.0), flat(10.0)]);
    let cfg = Config {
        max_leverage: Some(1.5),
        ..margin(0.5, 0.25)
    };
    let b = run_script(&d, cfg, vec![(0, buy(200.0)), (1, buy(150.0))]);
    assert_eq!(b.order(0).unwrap().reason_code(), Some("max_leverage"));
    assert_eq!(b.order(1).unwrap().status, OrderStatus::Filled);
}

#[test]
fn a_value_sized_buy_is_capped_at_buying_power() {
    let d = Data::one(&[flat(10.0), flat(10.0)]);
    let req = OrderRequest {
        sizing: Sizing::Value,
        ..buy(5_000.0)
    };
    let b = run_script(&d, margin(0.5, 0.25), vec![(0, req)]);
    let f = &b.fills()[0];
    assert!((f.size - 200.0).abs() < 1e-6, "size {}", f.size);
}

#[test]
fn a_margin_call_liquidates_at_the_next_open_and_cancels_the_strategys_orders() {
    // Buy 200 at 10 with 1000 of equity (half borrowed). At bar 2's close of 6.5 equity is
    // 1000 - 200 x 3.5 = 300 < 25 % of 200 x 6.5 = 325: liquidated at bar 3's open, 6.4.
    let d = Data::one(&[
        flat(10.0),
        flat(10.0),
        (9.0, 9.0, 6.5, 6.5),
        (6.4, 7.0, 6.0, 6.8),
        flat(7.0),
    ]);
    let resting = OrderRequest::limit(0, Side::Buy, 10.0, 5.0);
    let b = run_script(&d, margin(0.5, 0.25), vec![(0, buy(200.0)), (1, resting)]);
    let calls = b.margin_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].bar, 2);
    assert!((calls[0].equity - 300.0).abs() < 1e-9);
    assert!((calls[0].required - 325.0).abs() < 1e-9);
    let liq = b.orders()[calls[0].orders[0]].clone();
    assert!(liq.liquidation);
    assert_eq!(liq.side, Side::Sell);
    assert_eq!(liq.status, OrderStatus::Filled);
    let f = b.fills().last().unwrap();
    assert_eq!((f.bar, f.size, f.price), (3, 200.0, 6.4));
    assert_eq!(b.position(0), 0.0);
    assert!((b.equity() - 280.0).abs() < 1e-9);
    let r = b.order(1).unwrap();
    assert_eq!(r.status, OrderStatus::Cancelled);
    assert_eq!(r.reason_code(), Some("margin_call"));
}

fn two_symbols(mm: f64) -> Broker {
    // A stays at 10, B falls from 10 to 4 at bar 2 (row-major: time x symbol).
    let ts: Vec<i64> = (0..4)
        .map(|i| 1_600_000_000_000_000_000 + i * DAY)
        .collect();
    let px = [10.0, 10.0, 10.0, 10.0, 10.0, 4.0, 10.0, 4.0];
    let vol = [1e6; 8];
    let bars = bt_engine_core::Bars::new(&ts, &px, &px, &px, &px, &vol, 2).unwrap();
    let mut b = Broker::new(margin(0.5, mm), 2).unwrap();
    let mut script = Script(vec![
        (0, OrderRequest::market(0, Side::Buy, 60.0)),
        (0, OrderRequest::market(1, Side::Buy, 140.0)),
    ]);
    run(&bars, &mut b, &mut script).unwrap();
    b
}

#[test]
fn a_margin_call_takes_the_largest_requirement_first_and_stops_when_covered() {
    // At bar 2: equity = 1000 + 140 x (4 - 10) = 160. With 25 % maintenance A needs 150 and
    // B 140 (290 > 160): A, the larger, goes; B's 140 alone is covered by 160, so B stays.
    let b = two_symbols(0.25);
    let calls = b.margin_calls();
    assert_eq!(calls.len(), 1);
    assert!((calls[0].required - 290.0).abs() < 1e-9);
    let syms: Vec<usize> = calls[0]
        .orders
        .iter()
        .map(|&i| b.orders()[i].symbol)
        .collect();
    assert_eq!(syms, vec![0]);
    assert_eq!(b.position(0), 0.0);
    assert_eq!(b.position(1), 140.0);
    // With 30 %: A 180, B 168 (348); after A, 168 > 160, so B goes too.
    let b = two_symbols(0.3);
    let calls = b.margin_calls();
    let syms: Vec<usize> = calls[0]
        .orders
        .iter()
        .map(|&i| b.orders()[i].symbol)
        .collect();
    assert_eq!(syms, vec![0, 1]);
    assert_eq!(b.position(1), 0.0);
}

#[test]
fn a_futures_style_contract_uses_its_own_margin_and_multiplier() {
    let d = Data::one(&[flat(100.0), flat(100.0), flat(90.0), flat(90.0)]);
    let cfg = Config {
        cash: 10_000.0,
        account: AccountKind::Margin,
        allow_short: true,
        instruments: vec![(
            "*".to_string(),
            InstrumentSettings {
                multiplier: Some(50.0),
                margin_initial: Some(0.1),
                margin_maintenance: Some(0.08),
                ..Default::default()
            },
        )],
        ..Config::default()
    };
    // One contract is worth 5000; 10 % margin: 20 contracts need 10 000, 21 are too many.
    let b = run_script(&d, cfg, vec![(0, sell(21.0)), (0, sell(20.0))]);
    assert_eq!(
        b.order(0).unwrap().reason_code(),
        Some("insufficient_margin")
    );
    assert_eq!(b.position(0), -20.0);
    // Short 20 from 100 to 90: +10 x 50 x 20.
    assert!((b.equity() - 20_000.0).abs() < 1e-9);
}

#[test]
fn a_cash_account_has_no_leverage() {
    let cfg = Config {
        initial_margin: Some(0.5),
        ..Config::default()
    };
    let e = cfg.validate().unwrap_err();
    assert!(e.to_string().contains("cash account"), "{e}");
    let cfg = Config {
        maintenance_margin: Some(0.6),
        ..margin(0.5, 0.25)
    };
    assert!(cfg.validate().is_err());
}
