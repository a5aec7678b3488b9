//! T+n, minimum sizes, daily price limits and suspended bars through the whole broker.

mod common;

use bt_engine_core::config::FillOn;
use bt_engine_core::limits::Band;
use bt_engine_core::{Broker, Config, InstrumentSettings, OrderRequest, OrderStatus, Side, Sizing};
use common::{cfg, flat, run_script, Data};

fn fills(b: &Broker) -> Vec<(u64, usize, f64, f64)> {
    b.fills()
        .iter()
        .map(|f| (f.order_id, f.bar, f.size, f.price))
        .collect()
}

fn code(b: &Broker, id: u64) -> Option<&'static str> {
    b.order(id).unwrap().reason_code()
}

fn settings(set: InstrumentSettings) -> Config {
    Config {
        cash: 1_000_000.0,
        instruments: vec![("*".to_string(), set)],
        ..cfg()
    }
}

fn ten_pct(c: Config) -> Config {
    Config {
        price_limits: vec![(
            "*".to_string(),
            vec![Band {
                from_ns: i64::MIN,
                up: 0.1,
                down: 0.1,
            }],
        )],
        ..c
    }
}

#[test]
fn t_plus_one_locks_todays_buys_until_the_next_trading_day() {
    let d = Data::one(&[flat(10.0), flat(10.0), flat(10.0)]);
    let c = Config {
        fill_on: FillOn::Close,
        ..settings(InstrumentSettings {
            t_plus: Some(1),
            ..Default::default()
        })
    };
    let value_sell = OrderRequest {
        sizing: Sizing::Value,
        ..OrderRequest::market(0, Side::Sell, 1_000_000.0)
    };
    let b = run_script(
        &d,
        c,
        vec![
            (0, OrderRequest::market(0, Side::Buy, 300.0)),
            (0, OrderRequest::market(0, Side::Sell, 100.0)),
            (1, OrderRequest::market(0, Side::Buy, 200.0)),
            (1, value_sell),
        ],
    );
    assert_eq!(code(&b, 1), Some("t_plus"));
    // The value-sized sell on day 1 is sized down to the 300 bought on day 0.
    assert_eq!(
        fills(&b),
        vec![
            (0, 0, 300.0, 10.0),
            (2, 1, 200.0, 10.0),
            (3, 1, 300.0, 10.0)
        ]
    );
    assert_eq!(b.sellable(0), 200.0, "day 1's buy is sellable on day 2");
}

#[test]
fn min_size_and_odd_lot_close() {
    let d = Data::one(&[flat(10.0), flat(10.0), flat(10.0), flat(10.0)]);
    let c = settings(InstrumentSettings {
        size_increment: Some(1.0),
        min_size: Some(200.0),
        ..Default::default()
    });
    let b = run_script(
        &d,
        c,
        vec![
            (0, OrderRequest::market(0, Side::Buy, 150.0)),
            (0, OrderRequest::market(0, Side::Buy, 250.0)),
            (1, OrderRequest::market(0, Side::Sell, 100.0)),
            (2, OrderRequest::market(0, Side::Sell, 250.0)),
        ],
    );
    assert_eq!(code(&b, 0), Some("min_size"));
    assert_eq!(code(&b, 2), Some("min_size"));
    assert_eq!(fills(&b), vec![(1, 1, 250.0, 10.0), (3, 3, 250.0, 10.0)]);
}

#[test]
fn locked_limit_up_bar_takes_no_buy_and_limits_beyond_the_band_are_rejected() {
    // Day 1 is locked at 11.00 (10 x 1.1); day 2 trades from 11.00 again.
    let d = Data::one(&[
        flat(10.0),
        flat(11.0),
        (11.0, 12.1, 11.0, 12.1),
        (12.1, 12.1, 12.1, 12.1),
    ]);
    let c = ten_pct(settings(InstrumentSettings {
        tick_size: Some(0.01),
        ..Default::default()
    }));
    let b = run_script(
        &d,
        c,
        vec![
            (0, OrderRequest::market(0, Side::Buy, 100.0)),
            (1, OrderRequest::limit(0, Side::Buy, 100.0, 12.11)),
            (1, OrderRequest::limit(0, Side::Sell, 100.0, 12.1)),
        ],
    );
    // The market buy waits out the locked bar and fills at day 2's open.
    assert_eq!(fills(&b)[0], (0, 2, 100.0, 11.0));
    // Day 2's band is [9.90, 12.10]: a buy limit at 12.11 is rejected, a sell at 12.10 fills.
    assert_eq!(code(&b, 1), Some("price_limit"));
    assert_eq!(b.order(1).unwrap().status, OrderStatus::Rejected);
    assert_eq!(fills(&b)[1], (2, 2, 100.0, 12.1));
}

#[test]
fn slippage_never_leaves_the_band_and_locked_limit_down_takes_no_sell() {
    let d = Data::one(&[flat(10.0), flat(10.0), flat(9.0), (9.0, 9.5, 8.5, 9.0)]);
    let c = Config {
        slippage_bps: 500.0,
        ..ten_pct(settings(InstrumentSettings {
            tick_size: Some(0.01),
            ..Default::default()
        }))
    };
    let b = run_script(
        &d,
        c,
        vec![
            (0, OrderRequest::market(0, Side::Buy, 100.0)),
            (1, OrderRequest::market(0, Side::Sell, 100.0)),
        ],
    );
    // Day 1's band is [9, 11]: the 5 % slippage on the open 10 would buy at 10.5, inside.
    assert_eq!(fills(&b)[0], (0, 1, 100.0, 10.5));
    // Day 2 is locked at 9.00 (limit-down): the sell waits; day 3 (band [8.10, 9.90]) sells
    // at 9 x 0.95 = 8.55.
    let (id, bar, size, price) = fills(&b)[1];
    assert_eq!((id, bar, size), (1, 3, 100.0));
    assert!((price - 8.55).abs() < 1e-9, "{price}");
}

#[test]
fn zero_volume_bars_are_suspended_when_asked() {
    let mut d = Data::one(&[flat(10.0), flat(10.0), flat(10.5)]);
    d.v[1] = 0.0;
    let script = vec![(0, OrderRequest::market(0, Side::Buy, 10.0))];
    let plain = run_script(&d, cfg(), script.clone());
    assert_eq!(fills(&plain), vec![(0, 1, 10.0, 10.0)]);
    let c = Config {
        instruments: vec![(
            "*".to_string(),
            InstrumentSettings {
                suspend_on_zero_volume: Some(true),
                ..Default::default()
            },
        )],
        ..cfg()
    };
    let b = run_script(&d, c, script);
    assert_eq!(fills(&b), vec![(0, 2, 10.0, 10.5)]);
}
