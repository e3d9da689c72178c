//! WAL group commit by batch size: B entries submitted at once, then every
//! one waited for, on a real sled store with `durability = "fsync"`. One
//! entry per group is the disk's sync time; bigger groups share one sync.
//! Then the log store alone: one group commit's append + sync in sled, in
//! sled without its flusher, and in a plain append-only file, with the CPU
//! and context switches each costs over all threads.
//!
//!     cargo bench --bench wal
//!     cargo bench --bench wal -- "store commit"   # the store alone

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness, like a test

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::sync::Arc;
use std::time::{Duration, Instant};
use surge::core::{Event, Hold, HoldId, SkuId, WarehouseId};
use surge::wal::store::{LogStore, SledStore};
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
            created_by: None,
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

/// CPU time (ns) and context switches of every live thread of this process,
/// from /proc: sled's I/O pool threads are counted with the caller's.
fn process_counters() -> (u64, u64) {
    let mut cpu_ns = 0;
    let mut switches = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let dir = task.unwrap().path();
        let Ok(sched) = std::fs::read_to_string(dir.join("schedstat")) else {
            continue;
        };
        cpu_ns += sched
            .split_whitespace()
            .next()
            .unwrap()
            .parse::<u64>()
            .unwrap();
        let status = std::fs::read_to_string(dir.join("status")).unwrap();
        switches += status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .map(|l| l.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap())
            .sum::<u64>();
    }
    (cpu_ns, switches)
}

/// One group commit of `records` records of `bytes` bytes each.
trait Commit {
    fn commit(&mut self, records: usize, bytes: usize);
}

/// The log as the server keeps it.
struct Sled {
    store: SledStore,
    next: u64,
}

impl Commit for Sled {
    fn commit(&mut self, records: usize, bytes: usize) {
        let record = vec![0x5a; bytes];
        for _ in 0..records {
            self.store.append(self.next, &record).unwrap();
            self.next += 1;
        }
        self.store.sync().unwrap();
    }
}

/// sled with its background flusher off (`flush_every_ms(None)`), the same
/// flush + fdatasync per commit.
struct SledNoFlusher {
    db: sled::Db,
    tree: sled::Tree,
    file: std::fs::File,
    next: u64,
}

impl Commit for SledNoFlusher {
    fn commit(&mut self, records: usize, bytes: usize) {
        let record = vec![0x5a; bytes];
        for _ in 0..records {
            self.tree
                .insert(self.next.to_be_bytes(), &record[..])
                .unwrap();
            self.next += 1;
        }
        self.db.flush().unwrap();
        self.file.sync_data().unwrap();
    }
}

/// The floor: a log file written and fdatasync'd on the caller's thread.
/// Its space is written once beforehand, as sled's segments are, so a sync
/// is the data and a cache flush, not a journal commit for a growing file.
struct PlainFile {
    file: std::fs::File,
    at: u64,
}

impl PlainFile {
    const BYTES: u64 = 64 << 20;

    fn create(path: &std::path::Path) -> Self {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..Self::BYTES >> 20 {
            file.write_all(&zeros).unwrap();
        }
        file.sync_all().unwrap();
        Self { file, at: 0 }
    }
}

impl Commit for PlainFile {
    fn commit(&mut self, records: usize, bytes: usize) {
        use std::os::unix::fs::FileExt;
        let record = vec![0x5a; bytes];
        for _ in 0..records {
            if self.at + bytes as u64 > Self::BYTES {
                self.at = 0;
            }
            self.file.write_all_at(&record, self.at).unwrap();
            self.at += bytes as u64;
        }
        self.file.sync_data().unwrap();
    }
}

/// What one group commit costs in the log store alone, sled against a plain
/// file: wall time (criterion), and CPU time and context switches over all
/// of the process's threads (printed; criterion times only the caller).
/// Shapes: one record of 1 KiB (about 20 reservations, a group commit at
/// one reservation per request) and 4 records of 4 KiB (batches of 16).
fn store_commit(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let sled_dir = dir.path().join("sled");
    let raw_dir = dir.path().join("raw");
    let raw_db = sled::Config::new()
        .path(&raw_dir)
        .cache_capacity(64 << 20)
        .flush_every_ms(None)
        .open()
        .unwrap();
    let mut stores: Vec<(&str, Box<dyn Commit>)> = vec![
        (
            "sled (SledStore)",
            Box::new(Sled {
                store: SledStore::open(&sled_dir, 64 << 20).unwrap(),
                next: 0,
            }),
        ),
        (
            "sled, no flusher",
            Box::new(SledNoFlusher {
                tree: raw_db.open_tree("wal").unwrap(),
                file: std::fs::File::open(raw_dir.join("db")).unwrap(),
                db: raw_db,
                next: 0,
            }),
        ),
        (
            "plain file",
            Box::new(PlainFile::create(&dir.path().join("plain.log"))),
        ),
    ];
    let shapes = [(1usize, 1024usize), (4, 4096)];
    // Rounds interleave the stores, so a moment of a slower disk or a busy
    // machine falls on all of them alike.
    const ROUNDS: usize = 10;
    const COMMITS: u64 = 200;
    for (records, bytes) in shapes {
        let mut totals = vec![(Duration::ZERO, 0u64, 0u64); stores.len()];
        for _ in 0..ROUNDS {
            for ((_, store), total) in stores.iter_mut().zip(totals.iter_mut()) {
                store.commit(records, bytes);
                let (cpu0, sw0) = process_counters();
                let start = Instant::now();
                for _ in 0..COMMITS {
                    store.commit(records, bytes);
                }
                total.0 += start.elapsed();
                let (cpu1, sw1) = process_counters();
                total.1 += cpu1 - cpu0;
                total.2 += sw1 - sw0;
            }
        }
        let n = (ROUNDS as u64 * COMMITS) as f64;
        for ((name, _), (wall, cpu_ns, switches)) in stores.iter().zip(totals) {
            eprintln!(
                "store commit {records}x{bytes} B, {name}: {:.1} µs wall, {:.1} µs CPU, {:.2} context switches per commit",
                wall.as_secs_f64() * 1e6 / n,
                cpu_ns as f64 / 1e3 / n,
                switches as f64 / n,
            );
        }
    }
    let mut g = c.benchmark_group("store commit");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    for (records, bytes) in shapes {
        for (name, store) in stores.iter_mut() {
            let id = BenchmarkId::new(*name, format!("{records}x{bytes}B"));
            g.bench_function(id, |b| b.iter(|| store.commit(records, bytes)));
        }
    }
    g.finish();
}

criterion_group!(benches, group_commit, store_commit);
criterion_main!(benches);
