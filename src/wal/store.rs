//! Where log records and snapshots live. [`LogStore`] is the seam: the WAL
//! writer and the checkpointer know only this trait; [`SledStore`] is the
//! real one, [`MemStore`] an in-memory one whose faults tests switch on.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage i/o: {0}")]
    Io(String),
    #[error("value of {len} bytes refused: sled would store it unsynced (limit {max})")]
    TooLarge { len: usize, max: usize },
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

    /// The stock ledger's tree (`wal/ledger.rs`), kept beside the log but
    /// never truncated with it; `None` if this store keeps no ledger.
    fn ledger(&self) -> Result<Option<sled::Tree>, StoreError> {
        Ok(None)
    }
    /// Makes the ledger's writes durable.
    fn sync_ledger(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Visits every record in key order.
    fn scan(&self, visit: &mut dyn FnMut(u64, &[u8])) -> Result<(), StoreError> {
        self.scan_from(0, &mut |k, v| {
            visit(k, v);
            true
        })
    }
}

/// The largest value [`SledStore`] ever hands to sled, exclusive.
///
/// sled 0.34 writes any page whose serialized form exceeds a quarter of a
/// segment (512 KiB / 4, so about 128 KiB) as its own file under `blobs/`,
/// and never fsyncs that file or its directory. The page is a whole leaf
/// node, and a leaf holds up to 17 items before it splits (more while
/// merging), so the bound on one value is far below 128 KiB: measured here,
/// log-shaped writes (growing keys, truncation behind) of 16 KiB values
/// made blob files at once and 8 KiB values did under churn, while 7 KiB
/// ones never did. Values at or above this ceiling are refused, so nothing
/// can silently become a blob; a longer log record is stored in parts.
pub const SLED_VALUE_BYTES_MAX: usize = 6 * 1024;

/// Bytes per part of a log record stored in parts.
const PART_BYTES: usize = 4 * 1024;

/// First byte of the value at a record's key when the record is stored in
/// parts (record framing starts with a small version number, never this).
const PARTS_MARKER: u8 = 0xFF;

/// Records in a sled tree, keyed by big-endian record number so they sort
/// in log order. A record of `SLED_VALUE_BYTES_MAX` or more is stored in
/// parts under `key ‖ part` (12-byte keys, sorting right after `key`), with
/// a marker at `key` naming the part count, all in one atomic batch.
///
/// Snapshots are plain files in `<dir>/snapshots/`, outside sled: a failed
/// snapshot (no disk space, no file descriptors) can never leave sled in an
/// error state that would stop the log. A data directory written before
/// that keeps its snapshot in sled's `snapshot` tree, read while no file
/// snapshot exists.
///
/// sled 0.34's `flush` ends in `sync_file_range`, which neither flushes the
/// disk's write cache nor file metadata; so `sync` follows it with an
/// `fdatasync` of sled's data file. `strace -f -e trace=fsync,fdatasync,sync_file_range`
/// shows one of each per group commit (`scripts/check-durability.sh`).
///
/// sled's configuration stays at its defaults but for the cache, on
/// measurement (`scripts/cpu-per-request.sh`, BENCHMARKS.md "What sled
/// costs"): its background flusher costs nothing measurable and is what
/// bounds the loss under `durability = "none"`; compression is off; the
/// segment size is recorded in the data directory and cannot change. What
/// remains is upstream: every buffer sled writes goes to its I/O pool, whose
/// `notify_all` wakes all seven idle threads per group commit.
pub struct SledStore {
    db: sled::Db,
    wal: sled::Tree,
    /// Snapshots of data directories written before file snapshots.
    legacy_snap: sled::Tree,
    data_file: File,
    dir: PathBuf,
    snap_dir: PathBuf,
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

const META_KEY: &[u8] = b"meta";
const META_FILE: &str = "meta";
const CHUNK_SUFFIX: &str = ".chunk";
const TMP_SUFFIX: &str = ".tmp";

fn chunk_key(generation: u64, index: u32) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[0] = b'c';
    k[1..9].copy_from_slice(&generation.to_be_bytes());
    k[9..].copy_from_slice(&index.to_be_bytes());
    k
}

fn chunk_file(generation: u64, index: u32) -> String {
    format!("{generation:020}-{index:010}{CHUNK_SUFFIX}")
}

/// The generation and index of a chunk file's name.
fn parse_chunk_file(name: &str) -> Option<(u64, u32)> {
    let stem = name.strip_suffix(CHUNK_SUFFIX)?;
    let (g, i) = stem.split_once('-')?;
    Some((g.parse().ok()?, i.parse().ok()?))
}

fn part_key(key: u64, part: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&key.to_be_bytes());
    k[8..].copy_from_slice(&part.to_be_bytes());
    k
}

/// Refuses a value sled could store as an unsynced blob.
fn bounded(value: &[u8]) -> Result<&[u8], StoreError> {
    if value.len() >= SLED_VALUE_BYTES_MAX {
        return Err(StoreError::TooLarge {
            len: value.len(),
            max: SLED_VALUE_BYTES_MAX,
        });
    }
    Ok(value)
}

/// Writes `bytes` to `path` durably: into a temporary file, fdatasync'd,
/// then renamed over `path`. The caller fsyncs the directory.
fn write_file_synced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(TMP_SUFFIX);
    let tmp = PathBuf::from(tmp);
    let mut f = File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_data().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)
}

impl SledStore {
    /// `open`, waiting up to `lock_wait` for sled's lock on the directory:
    /// the previous handle's threads (this process's, or a process that is
    /// exiting) let go of it shortly after the handle is dropped. Past the
    /// wait the error says the directory is in use.
    pub fn open_waiting(
        dir: &Path,
        cache_bytes: u64,
        lock_wait: std::time::Duration,
    ) -> Result<Self, StoreError> {
        let deadline = std::time::Instant::now() + lock_wait;
        loop {
            match Self::open(dir, cache_bytes) {
                Err(StoreError::Io(e)) if e.contains("could not acquire lock") => {
                    if std::time::Instant::now() >= deadline {
                        return Err(StoreError::Io(format!(
                            "data directory {} is in use by another process (waited {} ms for its lock): {e}",
                            dir.display(),
                            lock_wait.as_millis()
                        )));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                other => return other,
            }
        }
    }

    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(io)?;
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .open()
            .map_err(io)?;
        let wal = db.open_tree("wal").map_err(io)?;
        let legacy_snap = db.open_tree("snapshot").map_err(io)?;
        let data_file = File::open(dir.join("db")).map_err(io)?;
        // sled writes its `conf` when it creates a data directory and never
        // syncs it, nor the directory's new entries.
        match File::open(dir.join("conf")).and_then(|f| f.sync_all()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
            _ => {}
        }
        let snap_dir = dir.join("snapshots");
        std::fs::create_dir_all(&snap_dir).map_err(io)?;
        sync_dir(dir)?;
        Ok(Self {
            db,
            wal,
            legacy_snap,
            data_file,
            dir: dir.to_owned(),
            snap_dir,
        })
    }

    fn file_meta(&self) -> Result<Option<Vec<u8>>, StoreError> {
        match std::fs::read(self.snap_dir.join(META_FILE)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    /// Removes chunk files of generations other than `keep`, and leftovers
    /// of writes that never finished.
    fn remove_stale_files(&self, keep: u64) -> Result<(), StoreError> {
        for entry in std::fs::read_dir(&self.snap_dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let stale = name.ends_with(TMP_SUFFIX)
                || parse_chunk_file(&name).is_some_and(|(g, _)| g != keep);
            if stale {
                std::fs::remove_file(entry.path()).map_err(io)?;
            }
        }
        Ok(())
    }
}

impl LogStore for SledStore {
    fn append(&self, key: u64, record: &[u8]) -> Result<(), StoreError> {
        if record.len() < SLED_VALUE_BYTES_MAX {
            self.wal
                .insert(key.to_be_bytes(), bounded(record)?)
                .map_err(io)?;
            return Ok(());
        }
        let parts = record.chunks(PART_BYTES);
        let count = u32::try_from(parts.len())
            .map_err(|_| StoreError::Io(format!("record of {} bytes", record.len())))?;
        let mut batch = sled::Batch::default();
        let mut marker = vec![PARTS_MARKER];
        marker.extend_from_slice(&count.to_be_bytes());
        for (i, part) in (0u32..).zip(parts) {
            batch.insert(&part_key(key, i)[..], bounded(part)?);
        }
        batch.insert(&key.to_be_bytes()[..], marker);
        self.wal.apply_batch(batch).map_err(io)
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(io)?;
        self.data_file.sync_data().map_err(io)
    }

    fn ledger(&self) -> Result<Option<sled::Tree>, StoreError> {
        self.db.open_tree("ledger").map(Some).map_err(io)
    }

    fn sync_ledger(&self) -> Result<(), StoreError> {
        // The ledger is in the log's sled file: one sync makes both durable.
        self.sync()
    }

    fn scan_from(
        &self,
        from: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        // A record stored in parts being put together: its key, the parts
        // still expected, the bytes so far.
        let mut assembling: Option<(u64, u32, Vec<u8>)> = None;
        for item in self.wal.range(from.to_be_bytes()..) {
            let (k, v) = item.map_err(io)?;
            if let Ok(part) = <[u8; 12]>::try_from(k.as_ref()) {
                let key = u64::from_be_bytes([
                    part[0], part[1], part[2], part[3], part[4], part[5], part[6], part[7],
                ]);
                // Parts of a record before `from` are skipped.
                let Some((at, left, bytes)) = assembling.as_mut() else {
                    continue;
                };
                if *at != key {
                    return Err(StoreError::Io(format!(
                        "record {at} is missing parts before record {key}'s"
                    )));
                }
                bytes.extend_from_slice(&v);
                *left -= 1;
                if *left == 0 {
                    if let Some((key, _, bytes)) = assembling.take() {
                        if !visit(key, &bytes) {
                            return Ok(());
                        }
                    }
                }
                continue;
            }
            if let Some((at, left, _)) = &assembling {
                return Err(StoreError::Io(format!(
                    "record {at} is missing {left} of its parts"
                )));
            }
            let key: [u8; 8] = k
                .as_ref()
                .try_into()
                .map_err(|_| StoreError::Io(format!("malformed key of {} bytes", k.len())))?;
            let key = u64::from_be_bytes(key);
            if v.len() == 5 && v[0] == PARTS_MARKER {
                let count = u32::from_be_bytes([v[1], v[2], v[3], v[4]]);
                if count > 0 {
                    assembling = Some((key, count, Vec::new()));
                    continue;
                }
            }
            if !visit(key, &v) {
                return Ok(());
            }
        }
        if let Some((at, left, _)) = assembling {
            return Err(StoreError::Io(format!(
                "record {at} is missing {left} of its parts"
            )));
        }
        Ok(())
    }

    fn truncate_before(&self, key: u64) -> Result<(), StoreError> {
        // Parts of record `k` sort between `k` and `k + 1`: all below `key`.
        for item in self.wal.range(..key.to_be_bytes()) {
            let (k, _) = item.map_err(io)?;
            self.wal.remove(k).map_err(io)?;
        }
        Ok(())
    }

    fn put_chunk(&self, generation: u64, index: u32, bytes: &[u8]) -> Result<(), StoreError> {
        write_file_synced(&self.snap_dir.join(chunk_file(generation, index)), bytes)
    }

    fn commit_snapshot(&self, generation: u64, meta: &[u8]) -> Result<(), StoreError> {
        // The chunks' renames are durable before the meta that names them.
        sync_dir(&self.snap_dir)?;
        write_file_synced(&self.snap_dir.join(META_FILE), meta)?;
        sync_dir(&self.snap_dir)?;
        // The first file snapshot also makes `snapshots/` itself durable.
        sync_dir(&self.dir)?;
        self.remove_stale_files(generation)?;
        // A snapshot from before file snapshots is now shadowed; its space
        // is given back (best effort: it is never read again).
        if !self.legacy_snap.is_empty() {
            if let Err(e) = self.legacy_snap.clear() {
                tracing::warn!(error = %e, "cannot drop the old in-log snapshot");
            }
        }
        Ok(())
    }

    fn snapshot_meta(&self) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(meta) = self.file_meta()? {
            return Ok(Some(meta));
        }
        Ok(self
            .legacy_snap
            .get(META_KEY)
            .map_err(io)?
            .map(|v| v.to_vec()))
    }

    fn chunks(&self, generation: u64, visit: &mut dyn FnMut(u32, &[u8])) -> Result<(), StoreError> {
        if self.file_meta()?.is_none() {
            for item in self
                .legacy_snap
                .range(chunk_key(generation, 0)..=chunk_key(generation, u32::MAX))
            {
                let (k, v) = item.map_err(io)?;
                let index = u32::from_be_bytes([k[9], k[10], k[11], k[12]]);
                visit(index, &v);
            }
            return Ok(());
        }
        let mut indexes = Vec::new();
        for entry in std::fs::read_dir(&self.snap_dir).map_err(io)? {
            let name = entry.map_err(io)?.file_name();
            if let Some((g, i)) = parse_chunk_file(&name.to_string_lossy()) {
                if g == generation {
                    indexes.push(i);
                }
            }
        }
        indexes.sort_unstable();
        for i in indexes {
            let bytes = std::fs::read(self.snap_dir.join(chunk_file(generation, i))).map_err(io)?;
            visit(i, &bytes);
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
    /// While set, `sync` does not return (a disk that stopped answering).
    pub hang_sync: AtomicBool,
    /// Set when a `sync` started hanging.
    pub sync_hung: AtomicBool,
    pub fail_snapshot: AtomicBool,
    /// Successful syncs so far.
    pub syncs: AtomicU64,
}

/// An in-memory store. Only synced records and committed snapshots survive
/// [`MemStore::reopen`], as after a crash.
#[derive(Clone, Default)]
pub struct MemStore {
    inner: Arc<Mutex<MemInner>>,
    pub faults: Arc<Faults>,
    /// The ledger's tree, in a temporary sled database opened on first
    /// use; a `reopen` starts a new one (the ledger then rebuilds its
    /// openings from the snapshot).
    ledger: Arc<std::sync::OnceLock<sled::Db>>,
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
            ledger: Arc::default(),
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
    fn ledger(&self) -> Result<Option<sled::Tree>, StoreError> {
        let db = match self.ledger.get() {
            Some(db) => db,
            None => {
                let db = sled::Config::new().temporary(true).open().map_err(io)?;
                self.ledger.get_or_init(|| db)
            }
        };
        db.open_tree("ledger").map(Some).map_err(io)
    }

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
        while self.faults.hang_sync.load(Ordering::SeqCst) {
            self.faults.sync_hung.store(true, Ordering::SeqCst);
            std::thread::park_timeout(std::time::Duration::from_millis(5));
        }
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
        if self.faults.fail_snapshot.load(Ordering::SeqCst) {
            return Err(StoreError::Io("injected snapshot failure".into()));
        }
        self.lock()
            .chunks
            .insert((generation, index), bytes.to_vec());
        Ok(())
    }

    fn commit_snapshot(&self, generation: u64, meta: &[u8]) -> Result<(), StoreError> {
        if self.faults.fail_snapshot.load(Ordering::SeqCst) {
            return Err(StoreError::Io("injected snapshot failure".into()));
        }
        // Snapshots are apart from the log, as in `SledStore`.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens again once sled's threads of the previous handle have let go
    /// of its lock (they end shortly after the handle is dropped).
    fn reopen(dir: &Path) -> SledStore {
        SledStore::open_waiting(dir, 1 << 24, std::time::Duration::from_secs(10)).unwrap()
    }

    #[test]
    fn a_directory_in_use_is_waited_for_then_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let first = SledStore::open(dir.path(), 1 << 24).unwrap();
        let wait = std::time::Duration::from_millis(50);
        let err = match SledStore::open_waiting(dir.path(), 1 << 24, wait) {
            Err(StoreError::Io(e)) => e,
            other => panic!("opened a directory in use: {}", other.is_ok()),
        };
        assert!(err.contains("in use by another process"), "{err}");
        // Let go while another open waits: it gets the directory.
        let (started_tx, started) = std::sync::mpsc::channel();
        let path = dir.path().to_owned();
        let waiter = std::thread::spawn(move || {
            started_tx.send(()).unwrap();
            SledStore::open_waiting(&path, 1 << 24, std::time::Duration::from_secs(30)).is_ok()
        });
        started.recv().unwrap();
        drop(first);
        assert!(waiter.join().unwrap(), "opened once the lock was free");
    }

    fn blob_files(dir: &Path) -> usize {
        std::fs::read_dir(dir.join("blobs")).map_or(0, |d| d.count())
    }

    fn all(store: &dyn LogStore, from: u64) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        store
            .scan_from(from, &mut |k, v| {
                out.push((k, v.to_vec()));
                true
            })
            .unwrap();
        out
    }

    #[test]
    fn no_value_ever_becomes_a_sled_blob_and_long_records_come_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path(), 1 << 24).unwrap();
        // Log-shaped: growing keys, a sync per group, truncation behind.
        let len = |k: u64| match k % 7 {
            0 => 300_000,
            1 => SLED_VALUE_BYTES_MAX,
            2 => SLED_VALUE_BYTES_MAX - 1,
            3 => 40_000,
            _ => 4096,
        };
        let value = |k: u64| -> Vec<u8> { (0..len(k)).map(|i| (i as u64 ^ k) as u8).collect() };
        for k in 0..400u64 {
            store.append(k, &value(k)).unwrap();
            if k % 3 == 0 {
                store.sync().unwrap();
            }
            if k % 100 == 99 {
                store.truncate_before(k - 20).unwrap();
            }
        }
        store.sync().unwrap();
        assert_eq!(blob_files(dir.path()), 0, "sled wrote an unsynced blob");
        let got = all(&store, 0);
        assert_eq!(
            got.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            (379..400).collect::<Vec<_>>()
        );
        for (k, v) in &got {
            assert_eq!(v, &value(*k), "record {k}");
        }
        // From a record in parts, and from the one right after it.
        assert_eq!(all(&store, 385)[0], (385, value(385)));
        assert_eq!(all(&store, 386)[0].0, 386);
        drop(store);
        let again = reopen(dir.path());
        assert_eq!(all(&again, 0), got, "the same after reopening");
    }

    #[test]
    fn a_value_at_the_ceiling_is_refused_not_stored() {
        assert!(bounded(&vec![0; SLED_VALUE_BYTES_MAX - 1]).is_ok());
        assert!(matches!(
            bounded(&vec![0; SLED_VALUE_BYTES_MAX]),
            Err(StoreError::TooLarge { .. })
        ));
    }

    #[test]
    fn snapshots_are_synced_files_and_an_old_in_sled_snapshot_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path(), 1 << 24).unwrap();
        // A data directory from before file snapshots: generation 3 in sled.
        store.legacy_snap.insert(chunk_key(3, 0), b"old0").unwrap();
        store.legacy_snap.insert(chunk_key(3, 1), b"old1").unwrap();
        store.legacy_snap.insert(META_KEY, b"oldmeta").unwrap();
        let chunks = |s: &SledStore, g| {
            let mut out = Vec::new();
            s.chunks(g, &mut |i, b| out.push((i, b.to_vec()))).unwrap();
            out
        };
        assert_eq!(store.snapshot_meta().unwrap(), Some(b"oldmeta".to_vec()));
        assert_eq!(
            chunks(&store, 3),
            vec![(0, b"old0".to_vec()), (1, b"old1".to_vec())]
        );
        // An abandoned attempt, then a committed one.
        store.put_chunk(4, 0, b"abandoned").unwrap();
        assert_eq!(store.snapshot_meta().unwrap(), Some(b"oldmeta".to_vec()));
        let big = vec![7u8; 1 << 20];
        store.put_chunk(5, 0, &big).unwrap();
        store.put_chunk(5, 1, b"new1").unwrap();
        store.commit_snapshot(5, b"newmeta").unwrap();
        assert_eq!(store.snapshot_meta().unwrap(), Some(b"newmeta".to_vec()));
        assert_eq!(chunks(&store, 5), vec![(0, big), (1, b"new1".to_vec())]);
        assert!(
            chunks(&store, 4).is_empty(),
            "other generations are removed"
        );
        assert!(
            store.legacy_snap.is_empty(),
            "the old snapshot's space is freed"
        );
        let names: Vec<String> = std::fs::read_dir(dir.path().join("snapshots"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(names.iter().all(|n| !n.ends_with(TMP_SUFFIX)), "{names:?}");
        drop(store);
        let again = reopen(dir.path());
        assert_eq!(again.snapshot_meta().unwrap(), Some(b"newmeta".to_vec()));
        assert_eq!(chunks(&again, 5).len(), 2);
        assert_eq!(blob_files(dir.path()), 0);
    }
}
