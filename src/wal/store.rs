//! Where log records and snapshots live. [`LogStore`] is the seam: the WAL
//! writer and the checkpointer know only this trait; [`SledStore`] is the
//! real one, [`MemStore`] an in-memory one whose faults tests switch on.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage i/o: {0}")]
    Io(String),
}

/// Shared by the WAL writer (appends, syncs) and the checkpointer (reads
/// the synced log, writes snapshots, truncates behind them).
pub trait LogStore: Send + Sync + 'static {
    /// Writes one record under `key` (keys only grow). Not durable until
    /// `sync` returns.
    fn append(&self, key: u64, record: &[u8]) -> Result<(), StoreError>;
    /// Makes every appended record durable.
    fn sync(&self) -> Result<(), StoreError>;
    /// Visits the records with key `from` or more, in key order, until
    /// `visit` returns false.
    fn scan_from(
        &self,
        from: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> bool,
    ) -> Result<(), StoreError>;
    /// Removes every record with a key below `key`.
    fn truncate_before(&self, key: u64) -> Result<(), StoreError>;
    /// Stores one chunk of snapshot `generation`; invisible until committed.
    fn put_chunk(&self, generation: u64, index: u32, bytes: &[u8]) -> Result<(), StoreError>;
    /// Makes `meta` (and so its generation's chunks) the snapshot, durably,
    /// then drops the chunks of every other generation.
    fn commit_snapshot(&self, generation: u64, meta: &[u8]) -> Result<(), StoreError>;
    /// The committed snapshot's meta, if any.
    fn snapshot_meta(&self) -> Result<Option<Vec<u8>>, StoreError>;
    /// Visits the chunks of `generation` in order.
    fn chunks(&self, generation: u64, visit: &mut dyn FnMut(u32, &[u8])) -> Result<(), StoreError>;

    /// Visits every record in key order.
    fn scan(&self, visit: &mut dyn FnMut(u64, &[u8])) -> Result<(), StoreError> {
        self.scan_from(0, &mut |k, v| {
            visit(k, v);
            true
        })
    }
}

/// Records in a sled tree, keyed by big-endian batch number so they sort in
/// log order; snapshots in another tree.
///
/// sled 0.34's `flush` ends in `sync_file_range`, which neither flushes the
/// disk's write cache nor file metadata; so `sync` follows it with an
/// `fdatasync` of sled's data file. `strace -f -e trace=fsync,fdatasync,sync_file_range`
/// shows one of each per group commit (`scripts/check-durability.sh`).
pub struct SledStore {
    db: sled::Db,
    wal: sled::Tree,
    snap: sled::Tree,
    data_file: File,
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

const META_KEY: &[u8] = b"meta";

fn chunk_key(generation: u64, index: u32) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[0] = b'c';
    k[1..9].copy_from_slice(&generation.to_be_bytes());
    k[9..].copy_from_slice(&index.to_be_bytes());
    k
}

impl SledStore {
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(io)?;
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .open()
            .map_err(io)?;
        let wal = db.open_tree("wal").map_err(io)?;
        let snap = db.open_tree("snapshot").map_err(io)?;
        let data_file = File::open(dir.join("db")).map_err(io)?;
        Ok(Self {
            db,
            wal,
            snap,
            data_file,
        })
    }
}

impl LogStore for SledStore {
    fn append(&self, key: u64, record: &[u8]) -> Result<(), StoreError> {
        self.wal.insert(key.to_be_bytes(), record).map_err(io)?;
        Ok(())
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(io)?;
        self.data_file.sync_data().map_err(io)
    }

    fn scan_from(
        &self,
        from: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        for item in self.wal.range(from.to_be_bytes()..) {
            let (k, v) = item.map_err(io)?;
            let key: [u8; 8] = k
                .as_ref()
                .try_into()
                .map_err(|_| StoreError::Io(format!("malformed key of {} bytes", k.len())))?;
            if !visit(u64::from_be_bytes(key), &v) {
                break;
            }
        }
        Ok(())
    }

    fn truncate_before(&self, key: u64) -> Result<(), StoreError> {
        for item in self.wal.range(..key.to_be_bytes()) {
            let (k, _) = item.map_err(io)?;
            self.wal.remove(k).map_err(io)?;
        }
        Ok(())
    }

    fn put_chunk(&self, generation: u64, index: u32, bytes: &[u8]) -> Result<(), StoreError> {
        self.snap
            .insert(chunk_key(generation, index), bytes)
            .map_err(io)?;
        Ok(())
    }

    fn commit_snapshot(&self, generation: u64, meta: &[u8]) -> Result<(), StoreError> {
        self.snap.insert(META_KEY, meta).map_err(io)?;
        self.sync()?;
        let mut stale = Vec::new();
        for item in self
            .snap
            .range(chunk_key(0, 0)..chunk_key(u64::MAX, u32::MAX))
        {
            let (k, _) = item.map_err(io)?;
            if k.len() == 13 && k[1..9] != generation.to_be_bytes() {
                stale.push(k);
            }
        }
        for k in stale {
            self.snap.remove(k).map_err(io)?;
        }
        Ok(())
    }

    fn snapshot_meta(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.snap.get(META_KEY).map_err(io)?.map(|v| v.to_vec()))
    }

    fn chunks(&self, generation: u64, visit: &mut dyn FnMut(u32, &[u8])) -> Result<(), StoreError> {
        for item in self
            .snap
            .range(chunk_key(generation, 0)..=chunk_key(generation, u32::MAX))
        {
            let (k, v) = item.map_err(io)?;
            let index = u32::from_be_bytes([k[9], k[10], k[11], k[12]]);
            visit(index, &v);
        }
        Ok(())
    }
}

/// Switches that make a [`MemStore`] fail, and what it counted, shared
/// with the test that holds it.
#[derive(Debug, Default)]
pub struct Faults {
    pub fail_append: AtomicBool,
    pub fail_sync: AtomicBool,
    /// Successful syncs so far.
    pub syncs: AtomicU64,
}

/// An in-memory store. Only synced records and committed snapshots survive
/// [`MemStore::reopen`], as after a crash.
#[derive(Clone, Default)]
pub struct MemStore {
    inner: Arc<Mutex<MemInner>>,
    pub faults: Arc<Faults>,
}

#[derive(Default, Clone)]
struct MemInner {
    synced: BTreeMap<u64, Vec<u8>>,
    unsynced: BTreeMap<u64, Vec<u8>>,
    meta: Option<Vec<u8>>,
    chunks: BTreeMap<(u64, u32), Vec<u8>>,
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh handle on what was synced, as a restart after a crash sees it.
    pub fn reopen(&self) -> Self {
        let mut inner = self.lock().clone();
        inner.unsynced.clear();
        Self {
            inner: Arc::new(Mutex::new(inner)),
            faults: Arc::new(Faults::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn synced_records(&self) -> usize {
        self.lock().synced.len()
    }

    /// Records present, synced or not.
    pub fn records(&self) -> usize {
        let inner = self.lock();
        inner.synced.len() + inner.unsynced.len()
    }
}

impl LogStore for MemStore {
    fn append(&self, key: u64, record: &[u8]) -> Result<(), StoreError> {
        if self.faults.fail_append.load(Ordering::SeqCst) {
            return Err(StoreError::Io("injected append failure".into()));
        }
        let mut inner = self.lock();
        inner.synced.remove(&key);
        inner.unsynced.insert(key, record.to_vec());
        Ok(())
    }

    fn sync(&self) -> Result<(), StoreError> {
        if self.faults.fail_sync.load(Ordering::SeqCst) {
            return Err(StoreError::Io("injected sync failure".into()));
        }
        let mut inner = self.lock();
        let unsynced = std::mem::take(&mut inner.unsynced);
        inner.synced.extend(unsynced);
        self.faults.syncs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn scan_from(
        &self,
        from: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        let inner = self.lock().clone();
        let mut all = inner.synced;
        all.extend(inner.unsynced);
        for (k, v) in all.range(from..) {
            if !visit(*k, v) {
                break;
            }
        }
        Ok(())
    }

    fn truncate_before(&self, key: u64) -> Result<(), StoreError> {
        let mut inner = self.lock();
        inner.synced = inner.synced.split_off(&key);
        inner.unsynced = inner.unsynced.split_off(&key);
        Ok(())
    }

    fn put_chunk(&self, generation: u64, index: u32, bytes: &[u8]) -> Result<(), StoreError> {
        self.lock()
            .chunks
            .insert((generation, index), bytes.to_vec());
        Ok(())
    }

    fn commit_snapshot(&self, generation: u64, meta: &[u8]) -> Result<(), StoreError> {
        self.sync()?;
        let mut inner = self.lock();
        inner.meta = Some(meta.to_vec());
        inner.chunks.retain(|(g, _), _| *g == generation);
        Ok(())
    }

    fn snapshot_meta(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().meta.clone())
    }

    fn chunks(&self, generation: u64, visit: &mut dyn FnMut(u32, &[u8])) -> Result<(), StoreError> {
        let inner = self.lock();
        for ((_, i), v) in inner.chunks.range((generation, 0)..=(generation, u32::MAX)) {
            visit(*i, v);
        }
        Ok(())
    }
}
