//! The actor path in process: reserve and release messages to one SKU
//! actor, with many in flight, its WAL writing to a store that keeps
//! nothing (so this measures messaging, deciding and the WAL hand-off, not
//! the disk). Each reservation waits until its entry is durable, as a
//! request does. Two cases:
//! - `same arbiter`: the sender runs on the actor's own arbiter, as an HTTP
//!   worker does for the SKUs homed on it (the server's path);
//! - `other thread`: the sender is on another thread (a request for a SKU
//!   homed on another worker).
//!
//!     cargo bench --bench actor

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness, like a test

use actix::prelude::*;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures_util::future::join_all;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use surge::actors::sku::{Adjust, Release, Reserve, SkuActor};
use surge::clock::SystemClock;
use surge::core::sku::{Adjustment, ReserveCmd};
use surge::core::{HoldId, SkuId, SkuState, WarehouseId};
use surge::wal::store::{LogStore, StoreError};
use surge::wal::{Durability, Position, Wal, WalConfig};

/// Accepts every record and keeps none.
struct NullStore;

impl LogStore for NullStore {
    fn append(&self, _: u64, _: &[u8]) -> Result<(), StoreError> {
        Ok(())
    }
    fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }
    fn scan_from(&self, _: u64, _: &mut dyn FnMut(u64, &[u8]) -> bool) -> Result<(), StoreError> {
        Ok(())
    }
    fn truncate_before(&self, _: u64) -> Result<(), StoreError> {
        Ok(())
    }
    fn put_chunk(&self, _: u64, _: u32, _: &[u8]) -> Result<(), StoreError> {
        Ok(())
    }
    fn commit_snapshot(&self, _: u64, _: &[u8]) -> Result<(), StoreError> {
        Ok(())
    }
    fn snapshot_meta(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }
    fn chunks(&self, _: u64, _: &mut dyn FnMut(u32, &[u8])) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Messages in flight at once.
const IN_FLIGHT: u64 = 256;

/// One round: `IN_FLIGHT` reservations, each answered once durable, then
/// their releases.
async fn round(addr: &Addr<SkuActor>, preference: &Arc<Vec<WarehouseId>>, next: &AtomicU64) {
    let first = next.fetch_add(IN_FLIGHT, Ordering::Relaxed);
    let ids = first..first + IN_FLIGHT;
    let reserves = ids.clone().map(|id| {
        let sent = addr.send(Reserve {
            cmd: ReserveCmd {
                id: HoldId(id),
                qty: 1,
                customer: None,
                channel: None,
                now: 1_000,
                expires_at: u64::MAX / 2,
                idempotency: None,
                created_by: None,
                require_customer: false,
            },
            preference: preference.clone(),
        });
        async move { sent.await.unwrap().unwrap().finish().await.unwrap() }
    });
    join_all(reserves).await;
    let releases = ids.map(|id| addr.send(Release { hold: HoldId(id) }));
    for r in join_all(releases).await {
        r.unwrap().unwrap();
    }
}

fn actor_path(c: &mut Criterion) {
    let sys = actix_rt::System::new();
    let wal = Arc::new(
        Wal::start(
            Arc::new(NullStore),
            Position::START,
            &WalConfig {
                channel_capacity: 16_384,
                apply_queue_groups: 64,
                batch_entries_max: 4_096,
                durability: Durability::None,
                group_delay: Duration::ZERO,
            },
            surge::wal::on_each(|_, _| {}),
        )
        .unwrap(),
    );
    let sku = SkuId::parse("hot").unwrap();
    let wh = WarehouseId::parse("w1").unwrap();
    let preference = Arc::new(vec![wh.clone()]);
    let clock = Arc::new(SystemClock::default());
    let arbiter = Arbiter::new();
    let addr = sys.block_on(async {
        let state = SkuState::new(sku.clone());
        let (w, c) = (wal.clone(), clock.clone());
        let addr = SkuActor::start_in_arbiter(&arbiter.handle(), move |_| {
            SkuActor::new(state, w, c, 4_096, 1_024)
        });
        addr.send(Adjust {
            warehouse: wh.clone(),
            adjustment: Adjustment::Delta(1_000_000_000),
            reason: "receipt".into(),
            on_hand_max: u64::MAX,
        })
        .await
        .unwrap()
        .unwrap();
        addr
    });
    let next = Arc::new(AtomicU64::new(1));
    let mut g = c.benchmark_group("actor");
    g.throughput(Throughput::Elements(2 * IN_FLIGHT));
    g.bench_function("reserve+release, 256 in flight, same arbiter", |b| {
        b.iter_custom(|iters| {
            let (tx, rx) = std::sync::mpsc::channel();
            let (addr, preference, next) = (addr.clone(), preference.clone(), next.clone());
            // The sender runs on the actor's arbiter, as a worker does.
            arbiter.spawn_fn(move || {
                actix_rt::spawn(async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        round(&addr, &preference, &next).await;
                    }
                    tx.send(start.elapsed()).unwrap();
                });
            });
            rx.recv().unwrap()
        })
    });
    g.bench_function("reserve+release, 256 in flight, other thread", |b| {
        b.iter_custom(|iters| {
            sys.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    round(&addr, &preference, &next).await;
                }
                start.elapsed()
            })
        })
    });
    g.finish();
    arbiter.stop();
    wal.shutdown();
}

criterion_group!(benches, actor_path);
criterion_main!(benches);
