//! WAL group commit by batch size: B entries submitted at once, then every
//! one waited for, on a real sled store with `durability = "fsync"`. One
//! entry per group is the disk's sync time; bigger groups share one sync.
//!
//!     cargo bench --bench wal

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness, like a test

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::sync::Arc;
use std::time::{Duration, Instant};
use surge::core::{Event, Hold, HoldId, SkuId, WarehouseId};
use surge::wal::store::SledStore;
use surge::wal::{Durability, Position, Wal, WalConfig};

fn event(i: u64, sku: &SkuId, wh: &WarehouseId) -> Event {
    Event::HoldCreated {
        hold: Hold {
            id: HoldId(i),
            sku: sku.clone(),
            warehouse: wh.clone(),
            qty: 1,
            customer: None,
            channel: None,
            created_at: 1_000,
            expires_at: 901_000,
        },
        idempotency: None,
    }
}

fn group_commit(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path(), 64 << 20).unwrap());
    let wal = Wal::start(
        store,
        Position::START,
        &WalConfig {
            channel_capacity: 16_384,
            apply_queue_groups: 64,
            batch_entries_max: 4_096,
            durability: Durability::Fsync,
            group_delay: Duration::ZERO,
        },
        surge::wal::on_each(|_, _| {}),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let sku = SkuId::parse("hot").unwrap();
    let wh = WarehouseId::parse("w1").unwrap();
    let mut next = 0u64;
    let mut g = c.benchmark_group("wal group commit (fsync)");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    for batch in [1u64, 16, 256, 4096] {
        g.throughput(Throughput::Elements(batch));
        g.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, &batch| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let waits: Vec<_> = (0..batch)
                        .map(|_| {
                            next += 1;
                            wal.submit(vec![event(next, &sku, &wh)]).unwrap()
                        })
                        .collect();
                    rt.block_on(async {
                        for w in waits {
                            w.wait().await.unwrap();
                        }
                    });
                }
                start.elapsed()
            })
        });
    }
    g.finish();
    wal.shutdown();
}

criterion_group!(benches, group_commit);
criterion_main!(benches);
