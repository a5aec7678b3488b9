//! Ledger identities with shorts, margin accounts, borrow costs and margin calls (proptest),
//! checked on every bar: equity = cash + marked positions; realised (borrow costs included)
//! plus unrealised = equity - start; cash reconciles with fills and borrow costs; a symbol that
//! may not be shorted is never short; and a run is deterministic.

use bt_engine_core::drivers::{run, Driver};
use bt_engine_core::{
    AccountKind, Bars, Broker, Config, InstrumentSettings, OrderRequest, Side, Sizing,
};
use proptest::prelude::*;

const DAY: i64 = 86_400_000_000_000;

#[derive(Clone, Debug)]
struct Plan {
    bar: usize,
    symbol: usize,
    buy: bool,
    size: f64,
    pct: bool,
}

struct Checker {
    plan: Vec<Plan>,
    cash0: f64,
    multiplier: f64,
    shortable: Vec<bool>,
}

fn check(b: &Broker, c: &Checker) {
    let n = b.n_symbols();
    let marked: f64 = (0..n)
        .filter(|&s| b.position(s) != 0.0)
        .map(|s| b.position(s) * b.last_prices()[s] * c.multiplier)
        .sum();
    let equity = b.equity();
    let scale = c.cash0.max(equity.abs()).max(marked.abs());
    assert!((equity - (b.cash() + marked)).abs() <= 1e-9 * scale);
    let pnl: f64 = (0..n).map(|s| b.realized()[s] + b.unrealized(s)).sum();
    assert!(
        (pnl - (equity - c.cash0)).abs() <= 1e-7 * scale,
        "realised + unrealised {pnl} != equity - start {}",
        equity - c.cash0
    );
    let spent: f64 = b
        .fills()
        .iter()
        .map(|f| f.side.sign() * f.size * f.price * c.multiplier + f.commission + f.tax)
        .sum();
    let borrow: f64 = b.borrow_paid().iter().sum();
    assert!((b.cash() - (c.cash0 - spent - borrow)).abs() <= 1e-9 * scale);
    for s in 0..n {
        if !c.shortable[s] {
            assert!(b.position(s) >= -1e-9, "short without shorting");
        }
        assert!(b.borrow_paid()[s] >= 0.0);
    }
}

impl Driver for Checker {
    fn on_bar(&mut self, t: usize, bars: &Bars, b: &mut Broker) -> bt_engine_core::Result<()> {
        check(b, self);
        for p in self.plan.iter().filter(|p| p.bar == t) {
            if !bars.has_bar(t, p.symbol) {
                continue;
            }
            let side = if p.buy { Side::Buy } else { Side::Sell };
            b.submit(OrderRequest {
                sizing: if p.pct {
                    Sizing::EquityPct
                } else {
                    Sizing::Units
                },
                ..OrderRequest::market(p.symbol, side, if p.pct { p.size / 100.0 } else { p.size })
            })?;
        }
        Ok(())
    }
}

fn closes() -> impl Strategy<Value = (usize, Vec<f64>)> {
    (1usize..4, 5usize..40).prop_flat_map(|(ns, nb)| {
        (
            Just(ns),
            prop::collection::vec(-0.15f64..0.15, ns * nb).prop_map(move |r| {
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

fn plan() -> impl Strategy<Value = Vec<Plan>> {
    prop::collection::vec(
        (
            0usize..40,
            0usize..3,
            any::<bool>(),
            1.0f64..120.0,
            any::<bool>(),
        )
            .prop_map(|(bar, symbol, buy, size, pct)| Plan {
                bar,
                symbol,
                buy,
                size,
                pct,
            }),
        0..40,
    )
}

fn run_once(
    ns: usize,
    close: &[f64],
    plan: &[Plan],
    cfg: Config,
    multiplier: f64,
    shortable: Vec<bool>,
) -> Broker {
    let nb = close.len() / ns;
    let ts: Vec<i64> = (0..nb as i64)
        .map(|i| 1_600_000_000_000_000_000 + i * DAY)
        .collect();
    // Opens gap from the previous close; highs and lows bracket both.
    let open: Vec<f64> = (0..close.len())
        .map(|k| {
            if k < ns {
                close[k]
            } else {
                close[k - ns] * 0.99 + close[k] * 0.01
            }
        })
        .collect();
    let high: Vec<f64> = open
        .iter()
        .zip(close)
        .map(|(o, c)| o.max(*c) * 1.01)
        .collect();
    let low: Vec<f64> = open
        .iter()
        .zip(close)
        .map(|(o, c)| o.min(*c) * 0.99)
        .collect();
    let vol = vec![1e9; close.len()];
    let bars = Bars::new(&ts, &open, &high, &low, close, &vol, ns).unwrap();
    let mut b = Broker::new(cfg, ns).unwrap();
    let mut c = Checker {
        plan: plan.iter().filter(|p| p.symbol < ns).cloned().collect(),
        cash0: 10_000.0,
        multiplier,
        shortable,
    };
    run(&bars, &mut b, &mut c).unwrap();
    check(&b, &c);
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn identities_hold_with_shorts_margin_and_borrow(
        (ns, close) in closes(),
        plan in plan(),
        margin_account in any::<bool>(),
        im in 0.1f64..1.0,
        mm_share in 0.0f64..1.0,
        borrow in 0.0f64..0.5,
        commission in 0.0f64..0.002,
        multiplier in prop::sample::select(vec![1.0, 10.0]),
        first_not_shortable in any::<bool>(),
    ) {
        let im = if margin_account { im } else { 1.0 };
        let mut instruments = vec![(
            "*".to_string(),
            InstrumentSettings { multiplier: Some(multiplier), ..Default::default() },
        )];
        if first_not_shortable {
            instruments.push((
                "#0".to_string(),
                InstrumentSettings { allow_short: Some(false), ..Default::default() },
            ));
        }
        let cfg = Config {
            cash: 10_000.0,
            commission_rate: commission,
            account: if margin_account { AccountKind::Margin } else { AccountKind::Cash },
            initial_margin: Some(im),
            maintenance_margin: Some(im * mm_share),
            allow_short: true,
            borrow_rate: borrow,
            instruments,
            ..Config::default()
        };
        let shortable: Vec<bool> = (0..ns).map(|s| !(s == 0 && first_not_shortable)).collect();
        let a = run_once(ns, &close, &plan, cfg.clone(), multiplier, shortable.clone());
        let b = run_once(ns, &close, &plan, cfg, multiplier, shortable);
        prop_assert_eq!(a.fills(), b.fills());
        prop_assert_eq!(a.equity_curve(), b.equity_curve());
        prop_assert_eq!(a.margin_calls(), b.margin_calls());
    }
}
