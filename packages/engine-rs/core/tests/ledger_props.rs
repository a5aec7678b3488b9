//! Ledger identities under random orders (proptest): checked on every bar, from inside the
//! one bar loop, for market and limit orders, both fill timings, costs and several symbols.

use bt_engine_core::drivers::{run, Driver};
use bt_engine_core::{Bars, Broker, Config, FillOn, OrderKind, OrderRequest, Side, TimeInForce};
use proptest::prelude::*;

const DAY: i64 = 86_400_000_000_000;

#[derive(Clone, Debug)]
struct Plan {
    bar: usize,
    symbol: usize,
    buy: bool,
    size: f64,
    limit_offset: Option<f64>,
}

struct Checker {
    plan: Vec<Plan>,
    cash0: f64,
    bars_checked: usize,
}

fn check_identities(b: &Broker, cash0: f64) {
    let n = b.n_symbols();
    let marked: f64 = (0..n)
        .map(|s| {
            let p = b.position(s);
            if p == 0.0 {
                0.0
            } else {
                p * b.last_prices()[s]
            }
        })
        .sum();
    let equity = b.equity();
    let scale = cash0.max(equity.abs());
    assert!((equity - (b.cash() + marked)).abs() <= 1e-9 * scale);
    let pnl: f64 = (0..n).map(|s| b.realized()[s] + b.unrealized(s)).sum();
    assert!(
        (pnl - (equity - cash0)).abs() <= 1e-7 * scale,
        "realised + unrealised {pnl} != equity - start {}",
        equity - cash0
    );
    assert!(
        b.cash() >= -1e-9 * scale,
        "cash went negative: {}",
        b.cash()
    );
    for s in 0..n {
        assert!(
            b.position(s) >= -1e-9,
            "short without shorting: {}",
            b.position(s)
        );
    }
    // Cash reconciles with the fills.
    let spent: f64 = b
        .fills()
        .iter()
        .map(|f| f.side.sign() * f.size * f.price + f.commission)
        .sum();
    assert!((b.cash() - (cash0 - spent)).abs() <= 1e-9 * scale);
}

impl Driver for Checker {
    fn on_bar(&mut self, t: usize, bars: &Bars, b: &mut Broker) -> bt_engine_core::Result<()> {
        check_identities(b, self.cash0);
        self.bars_checked += 1;
        for p in self.plan.iter().filter(|p| p.bar == t) {
            if !bars.has_bar(t, p.symbol) {
                continue;
            }
            let close = bars.close[bars.idx(t, p.symbol)];
            let side = if p.buy { Side::Buy } else { Side::Sell };
            let kind = match p.limit_offset {
                None => OrderKind::Market,
                Some(off) => OrderKind::Limit(close * (1.0 + off)),
            };
            b.submit(OrderRequest {
                kind,
                tif: TimeInForce::Gtc,
                ..OrderRequest::market(p.symbol, side, p.size)
            })?;
        }
        Ok(())
    }
}

fn bars_strategy() -> impl Strategy<Value = (usize, Vec<f64>)> {
    (1usize..4, 5usize..40).prop_flat_map(|(ns, nb)| {
        (
            Just(ns),
            prop::collection::vec(-0.05f64..0.05, ns * nb).prop_map(move |r| {
                // Closes from returns per symbol; row-major time x symbols.
                let mut c = vec![0.0; r.len()];
                for s in 0..ns {
                    let mut p = 100.0;
                    for t in 0..r.len() / ns {
                        p *= 1.0 + r[t * ns + s];
                        c[t * ns + s] = p;
                    }
                }
                c
            }),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn identities_hold_every_bar(
        (ns, close) in bars_strategy(),
        raw_plan in prop::collection::vec(
            (0usize..40, 0usize..4, any::<bool>(), 0.5f64..50.0, prop::option::of(-0.03f64..0.03)),
            0..60,
        ),
        rate in 0.0f64..0.01,
        min in 0.0f64..2.0,
        bps in 0.0f64..20.0,
        close_fills in any::<bool>(),
    ) {
        let nb = close.len() / ns;
        let open: Vec<f64> = (0..close.len())
            .map(|i| if i < ns { close[i] } else { close[i - ns] })
            .collect();
        let high: Vec<f64> = open.iter().zip(&close).map(|(o, c)| o.max(*c) * 1.01).collect();
        let low: Vec<f64> = open.iter().zip(&close).map(|(o, c)| o.min(*c) * 0.99).collect();
        let vol = vec![1e6; close.len()];
        let ts: Vec<i64> = (0..nb as i64).map(|i| i * DAY).collect();
        let bars = Bars::new(&ts, &open, &high, &low, &close, &vol, ns).unwrap();
        let cfg = Config {
            cash: 10_000.0,
            commission_rate: rate,
            commission_min: min,
            slippage_bps: bps,
            fill_on: if close_fills { FillOn::Close } else { FillOn::NextOpen },
            ..Config::default()
        };
        let plan = raw_plan
            .into_iter()
            .map(|(bar, symbol, buy, size, limit_offset)| Plan {
                bar: bar % nb,
                symbol: symbol % ns,
                buy,
                size,
                limit_offset,
            })
            .collect();
        let mut b = Broker::new(cfg, ns).unwrap();
        let mut drv = Checker { plan, cash0: cfg.cash, bars_checked: 0 };
        run(&bars, &mut b, &mut drv).unwrap();
        prop_assert_eq!(drv.bars_checked, nb);
        check_identities(&b, cfg.cash);
        prop_assert_eq!(b.equity_curve().len(), nb);
        // Every order ends in a final status or is still working; rejections carry a code.
        for o in b.orders() {
            prop_assert_eq!(o.reason_code.is_some(), o.status == bt_engine_core::OrderStatus::Rejected);
        }
    }

    #[test]
    fn determinism((ns, close) in bars_strategy(), sizes in prop::collection::vec(0.5f64..20.0, 1..20)) {
        let nb = close.len() / ns;
        let open = close.clone();
        let vol = vec![1.0; close.len()];
        let ts: Vec<i64> = (0..nb as i64).map(|i| i * DAY).collect();
        let bars = Bars::new(&ts, &open, &close, &close, &close, &vol, ns).unwrap();
        let mk = || {
            let plan = sizes.iter().enumerate().map(|(k, &size)| Plan {
                bar: k % nb, symbol: k % ns, buy: k % 3 != 2, size, limit_offset: None,
            }).collect();
            let mut b = Broker::new(Config { commission_rate: 0.001, ..Config::default() }, ns).unwrap();
            run(&bars, &mut b, &mut Checker { plan, cash0: 100_000.0, bars_checked: 0 }).unwrap();
            b
        };
        let (a, b) = (mk(), mk());
        let bits = |x: &[f64]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(a.equity_curve()), bits(b.equity_curve()));
        prop_assert_eq!(a.fills(), b.fills());
    }
}
