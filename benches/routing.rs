//! The routing engine alone: one 5-line order across 50 warehouses spread
//! over Europe, with the default chain (the target: ≤ 20 µs), with a
//! chain that also reads every warehouse's clock (cut-offs, capacity), and
//! an order no single warehouse can ship (splits are searched).
//!
//!     cargo bench --bench routing

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness, like a test

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::collections::BTreeMap;
use std::time::Duration;
use surge::core::routing::{
    plan, Candidate, CapacityMode, Chain, Cutoff, PlanLine, PlanRequest, Rate, Rule, ShippingCost,
    SplitPolicy, WarehouseRouting, Workload,
};
use surge::core::{Location, ShipTo, SkuId, Warehouse, WarehouseId};

const ZONES: [&str; 4] = [
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/London",
    "Europe/Warsaw",
];

/// A small deterministic generator (xorshift), so every run routes the
/// same warehouses.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn warehouses(n: usize) -> Vec<Warehouse> {
    let mut rng = Rng(0x5eed_1234);
    (0..n)
        .map(|i| Warehouse {
            id: WarehouseId::parse(&format!("w{i:02}")).unwrap(),
            name: format!("warehouse {i}"),
            location: Location {
                lat: 37.0 + 23.0 * rng.unit(),
                lon: -8.0 + 32.0 * rng.unit(),
            },
            priority: (rng.next() % 10) as i32,
            routing: WarehouseRouting {
                capacity_per_day: Some(1_000),
                cutoff: Some(Cutoff {
                    hour: 15,
                    minute: 0,
                    tz: ZONES[i % ZONES.len()].into(),
                }),
                shipping_cost: Some(ShippingCost {
                    default: Rate {
                        fixed: 300 + rng.next() % 400,
                        per_km: 1 + rng.next() % 3,
                    },
                    by_country: BTreeMap::new(),
                }),
                ..Default::default()
            },
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let whs = warehouses(50);
    let cands: Vec<Candidate<'_>> = whs
        .iter()
        .map(|w| Candidate {
            warehouse: w,
            workload: Workload {
                day: 20_466,
                routed: 10,
            },
        })
        .collect();
    let skus: Vec<SkuId> = (0..5)
        .map(|i| SkuId::parse(&format!("sku-{i}")).unwrap())
        .collect();
    let lines: Vec<PlanLine> = skus
        .iter()
        .map(|s| PlanLine {
            sku: s.clone(),
            qty: 2,
            pinned: None,
        })
        .collect();
    let ship_to = ShipTo {
        location: Location {
            lat: 48.1,
            lon: 11.5,
        },
        country: Some("DE".into()),
    };
    let req = PlanRequest {
        lines: &lines,
        ship_to: Some(&ship_to),
        channel: None,
        now: 1_768_384_800_000, // 2026-01-14T10:00:00Z
    };
    let idx = |w: &WarehouseId| w.as_str()[1..].parse::<usize>().unwrap();
    let sku_idx = |s: &SkuId| s.as_str()[4..].parse::<usize>().unwrap();
    // Each warehouse holds each SKU with probability about 3/4: about one
    // warehouse in four can ship the order alone.
    let stocked = |s: &SkuId, w: &WarehouseId| -> u64 {
        let h = (idx(w) * 7 + sku_idx(s) * 13) % 4;
        if h == 0 {
            0
        } else {
            50
        }
    };
    // Each SKU in its own few warehouses: no single one ships it all.
    let scattered =
        |s: &SkuId, w: &WarehouseId| -> u64 { u64::from(idx(w) % 5 == sku_idx(s)) * 50 };
    let default = Chain::default_chain();
    let full = Chain {
        rules: vec![
            Rule::Enabled,
            Rule::ServesDestination,
            Rule::ServesChannel,
            Rule::Capacity(CapacityMode::Skip),
            Rule::SameDay,
            Rule::FewestShipments,
            Rule::LowestCost,
            Rule::Nearest,
            Rule::Priority,
        ],
        split: SplitPolicy::Allow,
    };
    assert!(plan(&default, &req, &cands, stocked, 8).is_ok());
    assert!(
        plan(&default, &req, &cands, scattered, 8)
            .unwrap()
            .0
            .shipments
            .len()
            == 5
    );

    let mut g = c.benchmark_group("routing");
    g.sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g.bench_function("5 lines x 50 warehouses, default chain", |b| {
        b.iter(|| black_box(plan(&default, &req, &cands, stocked, 8).is_ok()))
    });
    g.bench_function("5 lines x 50 warehouses, cut-offs + capacity + cost", |b| {
        b.iter(|| black_box(plan(&full, &req, &cands, stocked, 8).is_ok()))
    });
    g.bench_function("5 lines x 50 warehouses, default chain, 5-way split", |b| {
        b.iter(|| black_box(plan(&default, &req, &cands, scattered, 8).is_ok()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
