//! Value and percent-of-equity sizes: resolved to units at the fill price, capped by what
//! cash pays for (buys) or the position (sells), rounded to the size increment.

use bt_engine_core::drivers::{run, Driver};
use bt_engine_core::{Bars, Broker, Config, Instrument, OrderRequest, OrderStatus, Side, Sizing};

struct Script(Vec<(usize, OrderRequest)>);

impl Driver for Script {
    fn on_bar(&mut self, t: usize, _: &Bars, b: &mut Broker) -> bt_engine_core::Result<()> {
        for (at, req) in &self.0 {
            if *at == t {
                b.submit(*req)?;
            }
        }
        Ok(())
    }
}

const DAY: i64 = 86_400_000_000_000;

fn go(opens: &[f64], cfg: Config, inst: Instrument, script: Vec<(usize, OrderRequest)>) -> Broker {
    let ts: Vec<i64> = (0..opens.len() as i64).map(|i| i * DAY).collect();
    let v = vec![1.0; opens.len()];
    let bars = Bars::new(&ts, opens, opens, opens, opens, &v, 1).unwrap();
    let mut b = Broker::with_instruments(cfg, vec![inst]).unwrap();
    run(&bars, &mut b, &mut Script(script)).unwrap();
    b
}

fn cfg(rate: f64) -> Config {
    Config {
        cash: 10_000.0,
        commission_rate: rate,
        ..Config::default()
    }
}

#[test]
fn all_in_is_sized_at_the_fill_price_and_pays_its_commission() {
    // Decided at 100, filled at a gap up to 125: still affordable, commission included.
    let b = go(
        &[100.0, 125.0, 125.0],
        cfg(0.001),
        Instrument::new("X"),
        vec![(0, OrderRequest::percent(0, Side::Buy, 1.0))],
    );
    let f = &b.fills()[0];
    assert_eq!(f.price, 125.0);
    assert!((f.size * 125.0 + f.commission - 10_000.0).abs() < 1e-6);
    assert!(b.cash() >= 0.0);
    let o = &b.orders()[0];
    assert_eq!(
        (o.sizing, o.amount, o.status),
        (Sizing::EquityPct, 1.0, OrderStatus::Filled)
    );
    assert_eq!(o.size, f.size);
}

#[test]
fn half_of_equity_and_a_value_order() {
    let half = go(
        &[50.0, 50.0],
        cfg(0.0),
        Instrument::new("X"),
        vec![(0, OrderRequest::percent(0, Side::Buy, 0.5))],
    );
    assert_eq!(half.fills()[0].size, 100.0);
    let value = go(
        &[50.0, 40.0],
        cfg(0.0),
        Instrument::new("X"),
        vec![(
            0,
            OrderRequest {
                sizing: Sizing::Value,
                ..OrderRequest::market(0, Side::Buy, 2_000.0)
            },
        )],
    );
    assert_eq!(value.fills()[0].size, 50.0); // 2,000 at the fill price of 40
}

#[test]
fn whole_lots_and_zero_size() {
    let mut lots = Instrument::new("600000.SH");
    lots.size_increment = 100.0;
    let b = go(
        &[33.0, 33.0],
        cfg(0.0),
        lots.clone(),
        vec![(0, OrderRequest::percent(0, Side::Buy, 1.0))],
    );
    assert_eq!(b.fills()[0].size, 300.0); // 303.03 units -> 3 lots
    let tiny = go(
        &[20_000.0, 20_000.0],
        cfg(0.0),
        lots,
        vec![(0, OrderRequest::percent(0, Side::Buy, 1.0))],
    );
    let o = &tiny.orders()[0];
    assert_eq!(o.status, OrderStatus::Rejected);
    assert_eq!(o.reason_code(), Some("zero_size"));
    assert!(o.reason().unwrap().contains("600000.SH"));
}

#[test]
fn a_percent_sell_is_capped_at_the_position() {
    let b = go(
        &[10.0, 10.0, 10.0],
        cfg(0.0),
        Instrument::new("X"),
        vec![
            (0, OrderRequest::market(0, Side::Buy, 5.0)),
            (1, OrderRequest::percent(0, Side::Sell, 1.0)),
        ],
    );
    assert_eq!(b.fills()[1].size, 5.0);
    assert_eq!(b.position(0), 0.0);
}
