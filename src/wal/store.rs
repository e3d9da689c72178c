//! Where log records live. [`LogStore`] is the seam: the WAL writer knows
//! only this trait; [`SledStore`] is the real one, [`MemStore`] an in-memory
//! one whose faults tests switch on.

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

pub trait LogStore: Send + 'static {
    /// Writes one record under `key` (keys only grow). Not durable until
    /// `sync` returns.
    fn append(&mut self, key: u64, record: &[u8]) -> Result<(), StoreError>;
    /// Makes every appended record durable.
    fn sync(&mut self) -> Result<(), StoreError>;
    /// Visits every record in key order.
    fn scan(&self, visit: &mut dyn FnMut(u64, &[u8])) -> Result<(), StoreError>;
}

/// Records in a sled tree, keyed by big-endian batch number so they sort in
/// log order.
///
/// sled 0.34's `flush` ends in `sync_file_range`, which neither flushes the
/// disk's write cache nor file metadata; so `sync` follows it with an
/// `fdatasync` of sled's data file. `strace -f -e trace=fsync,fdatasync,sync_file_range`
/// shows one of each per group commit.
pub struct SledStore {
    db: sled::Db,
    tree: sled::Tree,
    data_file: File,
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

impl SledStore {
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(io)?;
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .open()
            .map_err(io)?;
        let tree = db.open_tree("wal").map_err(io)?;
        let data_file = File::open(dir.join("db")).map_err(io)?;
        Ok(Self {
            db,
            tree,
            data_file,
        })
    }
}

impl LogStore for SledStore {
    fn append(&mut self, key: u64, record: &[u8]) -> Result<(), StoreError> {
        self.tree.insert(key.to_be_bytes(), record).map_err(io)?;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        self.db.flush().map_err(io)?;
        self.data_file.sync_data().map_err(io)
    }

    fn scan(&self, visit: &mut dyn FnMut(u64, &[u8])) -> Result<(), StoreError> {
        for item in self.tree.iter() {
            let (k, v) = item.map_err(io)?;
            let key: [u8; 8] = k
                .as_ref()
                .try_into()
                .map_err(|_| StoreError::Io(format!("malformed key of {} bytes", k.len())))?;
            visit(u64::from_be_bytes(key), &v);
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

/// An in-memory store. Only synced records survive [`MemStore::reopen`], as
/// after a crash.
#[derive(Clone, Default)]
pub struct MemStore {
    inner: Arc<Mutex<MemInner>>,
    pub faults: Arc<Faults>,
}

#[derive(Default)]
struct MemInner {
    synced: BTreeMap<u64, Vec<u8>>,
    unsynced: BTreeMap<u64, Vec<u8>>,
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh handle on what was synced, as a restart after a crash sees it.
    pub fn reopen(&self) -> Self {
        let synced = self.lock().synced.clone();
        Self {
            inner: Arc::new(Mutex::new(MemInner {
                synced,
                unsynced: BTreeMap::new(),
            })),
            faults: Arc::new(Faults::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn synced_records(&self) -> usize {
        self.lock().synced.len()
    }
}

impl LogStore for MemStore {
    fn append(&mut self, key: u64, record: &[u8]) -> Result<(), StoreError> {
        if self.faults.fail_append.load(Ordering::SeqCst) {
            return Err(StoreError::Io("injected append failure".into()));
        }
        self.lock().unsynced.insert(key, record.to_vec());
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        if self.faults.fail_sync.load(Ordering::SeqCst) {
            return Err(StoreError::Io("injected sync failure".into()));
        }
        let mut inner = self.lock();
        let unsynced = std::mem::take(&mut inner.unsynced);
        inner.synced.extend(unsynced);
        self.faults.syncs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn scan(&self, visit: &mut dyn FnMut(u64, &[u8])) -> Result<(), StoreError> {
        let inner = self.lock();
        for (k, v) in inner.synced.iter().chain(inner.unsynced.iter()) {
            visit(*k, v);
        }
        Ok(())
    }
}
