//! Recovery benchmark: replay speed and restart time, with and without a
//! snapshot, for logs of 1M and 10M events and for a store of 1M SKUs.
//!
//!     cargo bench --bench recovery            # full run (several minutes)
//!     cargo bench --bench recovery -- quick   # 100k events, a smoke run
//!     cargo bench --bench recovery -- write-sale-log DIR 10000000
//!     cargo bench --bench recovery -- replay-median DIR 7
//!
//! Each figure is the median of RUNS runs. "server ready" is the time from
//! spawning the release binary on the data directory until /healthz answers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness, like a test

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use surge::core::{Event, Hold, HoldId, Location, ReleaseReason, SkuId, Warehouse, WarehouseId};
use surge::projection::Projection;
use surge::wal::store::{LogStore, SledStore};
use surge::wal::{self, record, snapshot, Position};

const RUNS: usize = 3;
/// Events per log record, as group commit writes them under load.
const EVENTS_PER_RECORD: usize = 64;
const CACHE: u64 = 256 << 20;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn wh(i: usize) -> WarehouseId {
    WarehouseId::parse(&format!("w{i}")).unwrap()
}

fn sku(i: usize) -> SkuId {
    SkuId::parse(&format!("sku-{i}")).unwrap()
}

/// Writes `events` as records of EVENTS_PER_RECORD.
fn write_log(store: &SledStore, events: impl Iterator<Item = Event>) -> (Position, u64) {
    let mut at = Position::START;
    let mut batch: Vec<Event> = Vec::with_capacity(EVENTS_PER_RECORD);
    let mut n = 0u64;
    let flush = |batch: &mut Vec<Event>, at: &mut Position| {
        let refs: Vec<&Event> = batch.iter().collect();
        store
            .append(at.next_key, &record::encode(at.next_seq, &refs).unwrap())
            .unwrap();
        at.next_key += 1;
        at.next_seq += batch.len() as u64;
        batch.clear();
    };
    for e in events {
        batch.push(e);
        n += 1;
        if batch.len() == EVENTS_PER_RECORD {
            flush(&mut batch, &mut at);
        }
    }
    if !batch.is_empty() {
        flush(&mut batch, &mut at);
    }
    store.sync().unwrap();
    (at, n)
}

fn warehouses(n: usize) -> impl Iterator<Item = Event> {
    (0..n).map(|i| Event::WarehouseUpserted {
        warehouse: Warehouse {
            id: wh(i),
            name: format!("W{i}"),
            location: Location {
                lat: 50.0,
                lon: 8.0,
            },
            priority: i as i32,
            routing: Default::default(),
        },
    })
}

/// A flash-sale-like mix over 10,000 SKUs: stock receipts, holds created
/// and released. Times are now, so every closed hold is within the
/// retention and stays in the state as history (the worst case).
fn sale_events(total: u64) -> impl Iterator<Item = Event> {
    const SKUS: usize = 10_000;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let setup = warehouses(4).chain((0..SKUS).flat_map(|i| {
        [
            Event::SkuUpserted {
                sku: sku(i),
                name: None,
                per_customer_limit: Some(5),
            },
            Event::StockAdjusted {
                sku: sku(i),
                warehouse: wh(i % 4),
                delta: 1_000_000,
                reason: "receipt".into(),
            },
        ]
    }));
    let mut next_hold = 0u64;
    let mut open: std::collections::VecDeque<(u64, usize)> = Default::default();
    let body = (0..).map(move |i: u64| {
        let s = (i.wrapping_mul(2654435761) % SKUS as u64) as usize;
        if i % 20 < 3 {
            Event::StockAdjusted {
                sku: sku(s),
                warehouse: wh(s % 4),
                delta: 1,
                reason: "count".into(),
            }
        } else if i % 20 < 11 || open.len() < 1000 {
            next_hold += 1;
            open.push_back((next_hold, s));
            Event::HoldCreated {
                hold: Hold {
                    id: HoldId(next_hold),
                    sku: sku(s),
                    warehouse: wh(s % 4),
                    qty: 1,
                    customer: None,
                    channel: None,
                    created_at: now,
                    expires_at: now + 86_400_000,
                    created_by: None,
                },
                idempotency: None,
            }
        } else {
            let (h, s) = open.pop_front().unwrap();
            Event::HoldReleased {
                sku: sku(s),
                hold: HoldId(h),
                reason: ReleaseReason::Released,
                at: now,
            }
        }
    });
    let setup_len = 4 + 2 * SKUS as u64;
    setup.chain(body.take(total.saturating_sub(setup_len) as usize))
}

/// 1M SKUs, each created and stocked in one warehouse.
fn many_skus(n: usize) -> impl Iterator<Item = Event> {
    warehouses(4).chain((0..n).flat_map(|i| {
        [
            Event::SkuUpserted {
                sku: sku(i),
                name: Some(format!("Item {i}")),
                per_customer_limit: None,
            },
            Event::StockAdjusted {
                sku: sku(i),
                warehouse: wh(i % 4),
                delta: 100,
                reason: "receipt".into(),
            },
        ]
    }))
}

fn replay_once(dir: &std::path::Path) -> (Duration, u64) {
    let store = SledStore::open(dir, CACHE).unwrap();
    let p = Projection::new();
    let t = Instant::now();
    let mut n = 0u64;
    let from = snapshot::load(&store, &p)
        .unwrap()
        .map_or(Position::START, |m| m.at);
    // As the server does at start: stock and records on two threads.
    wal::replay_from_split(
        &store,
        from,
        |_, e| {
            n += 1;
            p.apply_stock(e)
        },
        |seq, e| p.apply_records(seq, e),
    )
    .unwrap();
    (t.elapsed(), n)
}

/// `replay_once` in a fresh process (this bench re-run with `replay-child`),
/// so each run starts from an empty heap like a restarting server.
fn replay_fresh(dir: &std::path::Path) -> (Duration, u64) {
    let out = Command::new(std::env::current_exe().unwrap())
        .arg("replay-child")
        .arg(dir)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut parts = text.split_whitespace().map(|p| p.parse::<u64>().unwrap());
    (
        Duration::from_nanos(parts.next().unwrap()),
        parts.next().unwrap(),
    )
}

fn server_ready(dir: &std::path::Path) -> Duration {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_surge"))
        .args(["serve", "--data-dir"])
        .arg(dir)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("SURGE_LOG", "warn")
        // The server must not snapshot and truncate the log under the bench.
        .env("SURGE_SNAPSHOT_EVERY_EVENTS", "1000000000000")
        .env("SURGE_SNAPSHOT_EVERY_MS", "1000000000000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    let ready = loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut buf = String::new();
            let _ = s.read_to_string(&mut buf);
            if buf.starts_with("HTTP/1.1 200") {
                break t.elapsed();
            }
        }
        assert!(Instant::now() < deadline, "server never became ready");
        std::thread::sleep(Duration::from_millis(2));
    };
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
    ready
}

fn case(name: &str, events: impl Iterator<Item = Event>, rows: &mut Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let t = Instant::now();
    let (at, n) = {
        let store = SledStore::open(&data, CACHE).unwrap();
        write_log(&store, events)
    };
    eprintln!("{name}: wrote {n} events in {:.1?}", t.elapsed());

    let replays: Vec<(Duration, u64)> = (0..RUNS).map(|_| replay_fresh(&data)).collect();
    let replay = median(replays.iter().map(|r| r.0).collect());
    let ready_log = median((0..RUNS).map(|_| server_ready(&data)).collect());

    // Snapshot what the log holds, truncate it, and measure again.
    let store = Arc::new(SledStore::open(&data, CACHE).unwrap());
    let p = Projection::new();
    wal::replay(store.as_ref(), |s, e| p.apply(s, e)).unwrap();
    let t = Instant::now();
    let never = std::sync::atomic::AtomicBool::new(false);
    let meta = snapshot::write(store.as_ref(), &p, at, 1, 4096, &never).unwrap();
    store.truncate_before(at.next_key).unwrap();
    let snap_write = t.elapsed();
    drop(store);
    drop(p);
    let loads = median((0..RUNS).map(|_| replay_fresh(&data).0).collect());
    let ready_snap = median((0..RUNS).map(|_| server_ready(&data)).collect());
    let disk = dir_size(&data);

    let row = format!(
        "| {name} | {n} | {:.2} s ({:.2} M events/s) | {:.2} s | {:.2} s ({} entities) | {:.2} s | {:.2} s | {} MiB |",
        replay.as_secs_f64(),
        n as f64 / replay.as_secs_f64() / 1e6,
        ready_log.as_secs_f64(),
        snap_write.as_secs_f64(),
        meta.entries,
        loads.as_secs_f64(),
        ready_snap.as_secs_f64(),
        disk >> 20,
    );
    eprintln!("{row}");
    rows.push(row);
}

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| {
                    let m = e.metadata().unwrap();
                    if m.is_dir() {
                        dir_size(&e.path())
                    } else {
                        m.len()
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "replay-child") {
        let (t, n) = replay_once(std::path::Path::new(&args[i + 1]));
        println!("{} {n}", t.as_nanos());
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "write-sale-log") {
        // Leaves a log behind for manual runs of `replay-child` and the server.
        let n: u64 = args[i + 2].parse().unwrap();
        let store = SledStore::open(std::path::Path::new(&args[i + 1]), CACHE).unwrap();
        write_log(&store, sale_events(n));
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "replay-median") {
        // N fresh-process replays of DIR; prints each and the median.
        let dir = std::path::Path::new(&args[i + 1]);
        let runs: usize = args[i + 2].parse().unwrap();
        let mut times = Vec::new();
        let mut n = 0;
        for _ in 0..runs {
            let (t, events) = replay_fresh(dir);
            println!("{:.2} s", t.as_secs_f64());
            times.push(t);
            n = events;
        }
        let m = median(times);
        println!(
            "median of {runs}: {:.2} s, {:.2} M events/s ({n} events)",
            m.as_secs_f64(),
            n as f64 / m.as_secs_f64() / 1e6
        );
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "write-skus-log") {
        // A catalogue of N SKUs, for manual runs like write-sale-log.
        let n: usize = args[i + 2].parse().unwrap();
        let store = SledStore::open(std::path::Path::new(&args[i + 1]), CACHE).unwrap();
        write_log(&store, many_skus(n));
        return;
    }
    let quick = std::env::args().any(|a| a == "quick");
    let one = std::env::args().any(|a| a == "1m");
    let mut rows = Vec::new();
    if one {
        case("sale, 1M events", sale_events(1_000_000), &mut rows);
    } else if quick {
        case("sale, 100k events", sale_events(100_000), &mut rows);
        case("10k SKUs", many_skus(10_000), &mut rows);
    } else {
        case("sale, 1M events", sale_events(1_000_000), &mut rows);
        case("sale, 10M events", sale_events(10_000_000), &mut rows);
        case("1M SKUs", many_skus(1_000_000), &mut rows);
    }
    println!("| log | events | replay, no snapshot | server ready, no snapshot | snapshot write | load snapshot (+ empty tail) | server ready, snapshot | disk after snapshot |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
    println!(
        "({} events per record; median of {RUNS} runs; {} cores)",
        EVENTS_PER_RECORD,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
}
