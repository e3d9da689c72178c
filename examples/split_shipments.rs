//! The split-shipment figure: how many shipments an order needs, and how
//! far they travel, under three routing chains, on a generated workload.
//!
//!     cargo run --release --example split_shipments [seed]
//!
//! 10,000 orders of 3 lines (quantities 1–3, SKUs drawn uniformly from
//! 400) to destinations drawn from 30 European cities, routed in sequence
//! across 8 warehouses spread over Europe. Each warehouse holds each SKU
//! with probability 1/2 (20–99 units), so many orders cannot ship whole
//! from one warehouse and stock runs short late in the run. Every plan
//! takes its units off the stock; every chain starts from the same stock
//! and routes the same orders. Splits are allowed in every chain.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // a command-line tool

use std::collections::HashMap;
use std::time::Instant;
use surge::core::routing::{
    distance_km, plan, Candidate, Chain, PlanLine, PlanRequest, Rule, SplitPolicy, Workload,
};
use surge::core::{Location, ShipTo, SkuId, Warehouse, WarehouseId};

const ORDERS: usize = 10_000;
const LINES: usize = 3;
const SKUS: usize = 400;

/// (name, lat, lon, priority): lower priority is preferred.
const WAREHOUSES: [(&str, f64, f64, i32); 8] = [
    ("berlin", 52.52, 13.405, 1),
    ("paris", 48.8566, 2.3522, 2),
    ("madrid", 40.4168, -3.7038, 3),
    ("milan", 45.4642, 9.19, 4),
    ("warsaw", 52.2297, 21.0122, 5),
    ("amsterdam", 52.3676, 4.9041, 6),
    ("stockholm", 59.3293, 18.0686, 7),
    ("vienna", 48.2082, 16.3738, 8),
];

const CITIES: [(f64, f64, &str); 30] = [
    (51.5074, -0.1278, "GB"),
    (53.4808, -2.2426, "GB"),
    (55.9533, -3.1883, "GB"),
    (53.3498, -6.2603, "IE"),
    (48.8566, 2.3522, "FR"),
    (45.764, 4.8357, "FR"),
    (43.2965, 5.3698, "FR"),
    (44.8378, -0.5792, "FR"),
    (50.8503, 4.3517, "BE"),
    (52.3676, 4.9041, "NL"),
    (52.52, 13.405, "DE"),
    (53.5511, 9.9937, "DE"),
    (48.1351, 11.582, "DE"),
    (50.1109, 8.6821, "DE"),
    (50.9375, 6.9603, "DE"),
    (47.3769, 8.5417, "CH"),
    (48.2082, 16.3738, "AT"),
    (50.0755, 14.4378, "CZ"),
    (52.2297, 21.0122, "PL"),
    (50.0647, 19.945, "PL"),
    (47.4979, 19.0402, "HU"),
    (45.4642, 9.19, "IT"),
    (41.9028, 12.4964, "IT"),
    (40.8518, 14.2681, "IT"),
    (40.4168, -3.7038, "ES"),
    (41.3874, 2.1686, "ES"),
    (39.4699, -0.3763, "ES"),
    (38.7223, -9.1393, "PT"),
    (55.6761, 12.5683, "DK"),
    (59.3293, 18.0686, "SE"),
];

/// xorshift64: small, seeded, the same on every machine.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Order {
    lines: Vec<PlanLine>,
    ship_to: ShipTo,
}

fn main() {
    let seed: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("seed: an unsigned integer"))
        .unwrap_or(42);
    let mut rng = Rng(seed.max(1));

    let whs: Vec<Warehouse> = WAREHOUSES
        .iter()
        .map(|&(name, lat, lon, priority)| Warehouse {
            id: WarehouseId::parse(name).unwrap(),
            name: name.into(),
            location: Location { lat, lon },
            priority,
            routing: Default::default(),
        })
        .collect();
    let skus: Vec<SkuId> = (0..SKUS)
        .map(|i| SkuId::parse(&format!("sku-{i:03}")).unwrap())
        .collect();
    let mut stock0: HashMap<(usize, usize), u64> = HashMap::new();
    for s in 0..SKUS {
        for w in 0..whs.len() {
            if rng.below(2) == 0 {
                stock0.insert((s, w), 20 + rng.below(80));
            }
        }
    }
    let orders: Vec<Order> = (0..ORDERS)
        .map(|_| {
            let (lat, lon, cc) = CITIES[rng.below(CITIES.len() as u64) as usize];
            Order {
                lines: (0..LINES)
                    .map(|_| PlanLine {
                        sku: skus[rng.below(SKUS as u64) as usize].clone(),
                        qty: 1 + rng.below(3),
                        pinned: None,
                    })
                    .collect(),
                ship_to: ShipTo {
                    location: Location { lat, lon },
                    country: Some(cc.into()),
                },
            }
        })
        .collect();
    let sku_index: HashMap<&SkuId, usize> = skus.iter().enumerate().map(|(i, s)| (s, i)).collect();
    let wh_index: HashMap<&WarehouseId, usize> =
        whs.iter().enumerate().map(|(i, w)| (&w.id, i)).collect();
    let units: u64 = stock0.values().sum();
    let demand: u64 = orders.iter().flat_map(|o| &o.lines).map(|l| l.qty).sum();

    println!(
        "seed {seed}: {ORDERS} orders x {LINES} lines ({demand} units), {SKUS} SKUs, {} warehouses ({units} units in stock), {} destination cities",
        whs.len(),
        CITIES.len()
    );
    println!();
    println!(
        "| chain | routed | refused | shipments / routed order | split orders | mean km / shipment | µs / plan |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");

    let chains: [(&str, Vec<Rule>); 3] = [
        ("default", Chain::default_chain().rules),
        ("enabled, priority", vec![Rule::Enabled, Rule::Priority]),
        ("enabled, nearest", vec![Rule::Enabled, Rule::Nearest]),
    ];
    for (name, rules) in chains {
        let chain = Chain {
            rules,
            split: SplitPolicy::Allow,
        };
        let mut stock = stock0.clone();
        let (mut routed, mut refused, mut shipments, mut split) = (0u64, 0u64, 0u64, 0u64);
        let mut km = 0.0f64;
        let started = Instant::now();
        for o in &orders {
            let cands: Vec<Candidate<'_>> = whs
                .iter()
                .map(|w| Candidate {
                    warehouse: w,
                    workload: Workload::default(),
                })
                .collect();
            let req = PlanRequest {
                lines: &o.lines,
                ship_to: Some(&o.ship_to),
                channel: None,
                now: 1_768_384_800_000,
            };
            let available = |s: &SkuId, w: &WarehouseId| {
                stock
                    .get(&(sku_index[s], wh_index[w]))
                    .copied()
                    .unwrap_or(0)
            };
            match plan(&chain, &req, &cands, available, 0) {
                Ok((p, _)) => {
                    routed += 1;
                    shipments += p.shipments.len() as u64;
                    split += u64::from(p.shipments.len() > 1);
                    for s in &p.shipments {
                        let w = wh_index[&s.warehouse];
                        km += distance_km(whs[w].location, o.ship_to.location);
                        for &(line, q) in &s.lines {
                            let cell = stock.get_mut(&(sku_index[&o.lines[line].sku], w)).unwrap();
                            *cell = cell
                                .checked_sub(q)
                                .expect("a plan took more than available");
                        }
                    }
                }
                Err(_) => refused += 1,
            }
        }
        let us = started.elapsed().as_secs_f64() * 1e6 / ORDERS as f64;
        println!(
            "| {name} | {routed} | {refused} | {:.3} | {split} | {:.0} | {us:.1} |",
            shipments as f64 / routed.max(1) as f64,
            km / shipments.max(1) as f64,
        );
    }
}
