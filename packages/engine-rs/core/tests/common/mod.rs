//! Small bar sets and a scripted driver shared by the integration tests.
#![allow(dead_code)]

use bt_engine_core::drivers::{run, Driver};
use bt_engine_core::{Bars, Broker, Config, OrderRequest};

pub const DAY: i64 = 86_400_000_000_000;

pub struct Data {
    pub ts: Vec<i64>,
    pub o: Vec<f64>,
    pub h: Vec<f64>,
    pub l: Vec<f64>,
    pub c: Vec<f64>,
    pub v: Vec<f64>,
    pub n: usize,
}

impl Data {
    /// One symbol, bars given as (open, high, low, close), one per day.
    pub fn one(rows: &[(f64, f64, f64, f64)]) -> Self {
        Self {
            ts: (0..rows.len() as i64)
                .map(|i| 1_600_000_000 * 1_000_000_000 + i * DAY)
                .collect(),
            o: rows.iter().map(|r| r.0).collect(),
            h: rows.iter().map(|r| r.1).collect(),
            l: rows.iter().map(|r| r.2).collect(),
            c: rows.iter().map(|r| r.3).collect(),
            v: vec![1000.0; rows.len()],
            n: 1,
        }
    }
    pub fn bars(&self) -> Bars<'_> {
        Bars::new(
            &self.ts, &self.o, &self.h, &self.l, &self.c, &self.v, self.n,
        )
        .unwrap()
    }
}

/// Submits scripted orders at given bars.
pub struct Script(pub Vec<(usize, OrderRequest)>);

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

pub fn cfg() -> Config {
    Config {
        cash: 1_000.0,
        ..Config::default()
    }
}

pub fn run_script(d: &Data, cfg: Config, script: Vec<(usize, OrderRequest)>) -> Broker {
    let bars = d.bars();
    let mut b = Broker::new(cfg, 1).unwrap();
    run(&bars, &mut b, &mut Script(script)).unwrap();
    b
}

pub fn flat(p: f64) -> (f64, f64, f64, f64) {
    (p, p, p, p)
}
