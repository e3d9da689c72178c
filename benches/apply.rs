//! The applier's work per event, on one thread: what the read model and the
//! feed cost for each synced reservation (a hold created and released on a
//! hot SKU), with nobody subscribed — nothing is rendered to JSON.
//!
//!     cargo bench --bench apply

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness, like a test

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use surge::core::sku::{Adjustment, ReserveCmd};
use surge::core::{CustomerId, HoldId, SkuId, SkuState, WarehouseId};
use surge::feed::{FeedConfig, Hub};
use surge::projection::Projection;

fn apply(c: &mut Criterion) {
    let sku = SkuId::parse("hot").unwrap();
    let wh = WarehouseId::parse("w1").unwrap();
    let pref = vec![wh.clone()];
    let mut state = SkuState::new(sku.clone());
    let projection = Projection::new();
    let hub = Hub::new(FeedConfig {
        window_events: 65_536,
        snapshot_items_max: 10_000,
    });
    let mut seq = 0u64;
    let mut publish = |state: &mut SkuState, e| {
        seq += 1;
        state.apply(&e);
        hub.apply_durable(&projection, seq, &e);
    };
    let stock = state
        .decide_adjust(&wh, &Adjustment::Delta(1_000_000_000), "receipt", u64::MAX)
        .unwrap();
    publish(&mut state, stock);
    let customer = CustomerId::parse("c1").unwrap();
    let mut next = 0u64;
    let mut g = c.benchmark_group("apply");
    g.throughput(Throughput::Elements(2));
    g.bench_function("hold created + released, read model and feed", |b| {
        b.iter(|| {
            next += 1;
            let created = state
                .decide_reserve(
                    ReserveCmd {
                        id: HoldId(next),
                        qty: 1,
                        customer: Some(customer.clone()),
                        channel: None,
                        now: 1_000,
                        expires_at: 1_000_000 + next,
                        idempotency: None,
                        created_by: None,
                        require_customer: false,
                    },
                    &pref,
                )
                .unwrap();
            publish(&mut state, created);
            let released = state.decide_release(HoldId(next), 1_001).unwrap();
            publish(&mut state, released);
        })
    });
    g.finish();
}

criterion_group!(benches, apply);
criterion_main!(benches);
