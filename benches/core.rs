//! The pure core alone, on one core: reserve + release pairs, order
//! decide + apply (+ cancel, to keep the state steady), and routing an
//! order across 50 warehouses.
//!
//!     cargo bench --bench core

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness, like a test

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use surge::core::order::{self, NewOrder};
use surge::core::routing::{self, RouteLine};
use surge::core::sku::{Adjustment, LineRequest, ReserveCmd};
use surge::core::{
    ChannelId, CustomerId, Event, HoldId, Location, OrderId, OrderLine, ShipTo, SkuId, SkuState,
    WarehouseId,
};

fn wh(i: usize) -> WarehouseId {
    WarehouseId::parse(&format!("w{i}")).unwrap()
}

/// A SKU with `stock` units in each of `warehouses` warehouses.
fn stocked(warehouses: usize, stock: u64) -> (SkuState, Vec<WarehouseId>) {
    let mut s = SkuState::new(SkuId::parse("hot").unwrap());
    let pref: Vec<WarehouseId> = (0..warehouses).map(wh).collect();
    for w in &pref {
        let e = s
            .decide_adjust(w, &Adjustment::Delta(stock as i64), "receipt", u64::MAX)
            .unwrap();
        s.apply(&e);
    }
    (s, pref)
}

fn reserve_release(c: &mut Criterion) {
    let (mut s, pref) = stocked(4, 1_000_000);
    let customer = CustomerId::parse("c1").unwrap();
    let mut next = 0u64;
    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(1));
    g.bench_function("reserve+release pair", |b| {
        b.iter(|| {
            next += 1;
            let created = s
                .decide_reserve(
                    ReserveCmd {
                        id: HoldId(next),
                        qty: 1,
                        customer: Some(customer.clone()),
                        channel: None,
                        now: 1_000,
                        expires_at: 1_000 + next,
                        idempotency: None,
                        created_by: None,
                        require_customer: false,
                    },
                    &pref,
                )
                .unwrap();
            s.apply(&created);
            let released = s.decide_release(HoldId(next), 1_001).unwrap();
            s.apply(&released);
            black_box(&s);
        })
    });
    g.finish();
}

fn order_decide_apply(c: &mut Criterion) {
    let (mut s, pref) = stocked(4, 1_000_000);
    let customer = CustomerId::parse("c1").unwrap();
    let channel = ChannelId::parse("web").unwrap();
    let mut next = 0u64;
    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(1));
    g.bench_function("order decide+apply+cancel", |b| {
        b.iter(|| {
            next += 1;
            let id = OrderId(next);
            let lines = [LineRequest { qty: 2, hold: None }];
            let prepared = s.prepare_order(&customer, &lines, &pref, 1_000).unwrap();
            let allocation = prepared.allocation.clone();
            s.add_pending(id, prepared);
            let placed = order::build(
                NewOrder {
                    id,
                    channel: channel.clone(),
                    customer: customer.clone(),
                    ship_to: ShipTo {
                        location: Location {
                            lat: 48.1,
                            lon: 11.5,
                        },
                        country: None,
                    },
                    lines: vec![OrderLine {
                        sku: s.sku.clone(),
                        qty: 2,
                        reservation: None,
                        unit_price: None,
                    }],
                    now: 1_000,
                    created_by: None,
                    currency: None,
                    pay_by: None,
                    payment_required: false,
                },
                std::slice::from_ref(&allocation),
            );
            let event = Event::OrderPlaced {
                order: placed.clone(),
                allocations: vec![allocation],
                idempotency: None,
            };
            s.abort_pending(id);
            s.apply(&event);
            let cancelled = order::decide_cancel(&placed, "bench", 1_001).unwrap();
            s.apply(&cancelled);
            black_box(&s);
        })
    });
    g.finish();
}

/// 50 warehouses by priority; only the last one can ship the whole order,
/// so routing looks at every warehouse for every line.
fn routing_50(c: &mut Criterion) {
    let pref: Vec<WarehouseId> = (0..50).map(wh).collect();
    let skus: Vec<SkuId> = (0..5)
        .map(|i| SkuId::parse(&format!("s{i}")).unwrap())
        .collect();
    let lines: Vec<RouteLine<'_>> = skus
        .iter()
        .map(|sku| RouteLine {
            sku,
            qty: 3,
            pinned: None,
        })
        .collect();
    let last = pref[49].clone();
    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(1));
    g.bench_function("route 5-line order across 50 warehouses", |b| {
        b.iter(|| {
            let order = routing::order_preference(&pref, black_box(&lines), |_, w| {
                if *w == last {
                    10
                } else {
                    1
                }
            });
            black_box(order)
        })
    });
    g.finish();
}

criterion_group!(benches, reserve_release, order_decide_apply, routing_50);
criterion_main!(benches);
