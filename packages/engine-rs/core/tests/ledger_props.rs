//! Ledger identities under random orders (proptest): checked on every bar, from inside the
//! one bar loop, for every order kind (market, limit, stop, stop-limit, trailing, brackets),
//! every time in force, both fill timings, each bar-path rule, a volume cap, fees with a
//! sell-only tax, slippage and several symbols. And no look-ahead: a run cut at any bar
//! equals the full run up to that bar.

use bt_engine_core::costs::{FeeKind, FeeLine, FeeRule, Sides};
use bt_engine_core::drivers::{run, Driver};
use bt_engine_core::matching::{BarPath, LimitFill};
use bt_engine_core::types::{Bracket, Level};
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
    /// 0 market, 1 limit, 2 stop, 3 stop-limit, 4 trailing, 5 bracketed market entry.
    kind: u8,
    /// 0 gtc, 1 day, 2 ioc, 3 fok.
    tif: u8,
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
        .map(|f| f.side.sign() * f.size * f.price + f.commission + f.tax)
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
            let off = p.limit_offset.unwrap_or(0.01);
            let (above, below) = (close * (1.0 + off.abs()), close * (1.0 - off.abs()));
            let kind = match p.kind {
                0 => OrderKind::Market,
                1 => OrderKind::Limit(close * (1.0 + off)),
                2 => OrderKind::Stop(if p.buy { above } else { below }),
                3 => OrderKind::StopLimit {
                    stop: if p.buy { above } else { below },
                    limit: close * (1.0 + off),
                },
                4 => OrderKind::Trailing {
                    offset: off.abs().max(0.001),
                    pct: true,
                },
                _ => OrderKind::Market,
            };
            let bracket = if p.kind == 5 {
                Bracket {
                    sl: Some(Level::Pct(off.abs().max(0.001))),
                    tp: Some(Level::Pct(2.0 * off.abs().max(0.001))),
                }
            } else {
                Bracket::default()
            };
            let tif = [
                TimeInForce::Gtc,
                TimeInForce::Day,
                TimeInForce::Ioc,
                TimeInForce::Fok,
            ][p.tif as usize % 4];
            b.submit(OrderRequest {
                kind,
                tif,
                bracket,
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
            (
                (0usize..40, 0usize..4, any::<bool>(), 0.5f64..50.0),
                (prop::option::of(-0.03f64..0.03), 0u8..6, 0u8..4),
            ),
            0..60,
        ),
        path in 0usize..3,
        through in any::<bool>(),
        cap in prop::option::of(0.00001f64..0.001),
        tax in 0.0f64..0.002,
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
        let mut duty = FeeLine::new("duty", FeeRule::Rate { rate: tax, min: 0.0 });
        duty.sides = Sides::Sell;
        duty.kind = FeeKind::Tax;
        let cfg = Config {
            cash: 10_000.0,
            commission_rate: rate,
            commission_min: min,
            fees: vec![duty],
            slippage_bps: bps,
            fill_on: if close_fills { FillOn::Close } else { FillOn::NextOpen },
            bar_path: [BarPath::Pessimistic, BarPath::Ohlc, BarPath::Adaptive][path],
            limit_fill: if through { LimitFill::Through } else { LimitFill::Touch },
            // Volume 1e6 per bar: a cap of 1e-5..1e-3 lets 10..1,000 units trade per bar.
            volume_limit: cap,
            ..Config::default()
        };
        let plan: Vec<Plan> = raw_plan
            .into_iter()
            .map(|((bar, symbol, buy, size), (limit_offset, kind, tif))| Plan {
                bar: bar % nb,
                symbol: symbol % ns,
                buy,
                size,
                limit_offset,
                kind,
                tif,
            })
            .collect();
        let cash0 = cfg.cash;
        // No look-ahead: the run over the first `cut` bars equals the full run on those bars.
        let cut = (nb / 2).max(1);
        let short = Bars::new(
            &ts[..cut],
            &open[..cut * ns],
            &high[..cut * ns],
            &low[..cut * ns],
            &close[..cut * ns],
            &vol[..cut * ns],
            ns,
        )
        .unwrap();
        let mut early = Broker::new(cfg.clone(), ns).unwrap();
        run(&short, &mut early, &mut Checker { plan: plan.clone(), cash0, bars_checked: 0 }).unwrap();
        let mut b = Broker::new(cfg, ns).unwrap();
        let mut drv = Checker { plan, cash0, bars_checked: 0 };
        run(&bars, &mut b, &mut drv).unwrap();
        prop_assert_eq!(drv.bars_checked, nb);
        check_identities(&b, cash0);
        prop_assert_eq!(b.equity_curve().len(), nb);
        prop_assert_eq!(&b.equity_curve()[..cut], early.equity_curve());
        let before: Vec<_> = b.fills().iter().filter(|f| f.bar < cut).cloned().collect();
        prop_assert_eq!(before, early.fills().to_vec());
        // Rejections carry a code; so do cancellations by a rule (IOC, FOK, OCO, brackets).
        use bt_engine_core::OrderStatus::{Cancelled, Rejected};
        for o in b.orders() {
            if o.status == Rejected {
                prop_assert!(o.reason_code().is_some());
            }
            if o.reason_code().is_some() {
                prop_assert!(matches!(o.status, Rejected | Cancelled), "{:?}", o);
            }
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
                kind: (k % 6) as u8, tif: 0,
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
