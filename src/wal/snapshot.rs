//! Snapshots: the whole durable state at one log position, written in
//! framed, checksummed chunks and made visible by one meta record. Restart
//! is: load the snapshot, replay the log from its position.

use super::record::{frame, unframe};
use super::store::{LogStore, StoreError};
use super::Position;
use crate::projection::{Projection, SnapEntry};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub generation: u64,
    /// The log position the snapshot reflects: it holds every event before
    /// `at.next_seq`, and the log goes on at record `at.next_key`.
    pub at: Position,
    pub chunks: u32,
    pub entries: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("snapshot is damaged: {0}; refusing to start on it")]
    Corrupt(String),
    #[error("snapshot abandoned: shutting down")]
    Cancelled,
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, SnapshotError> {
    postcard::to_stdvec(value)
        .map(|p| frame(&p))
        .map_err(|e| SnapshotError::Corrupt(e.to_string()))
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &str) -> Result<T, SnapshotError> {
    let payload = unframe(bytes).map_err(|e| SnapshotError::Corrupt(format!("{what}: {e}")))?;
    postcard::from_bytes(payload).map_err(|e| SnapshotError::Corrupt(format!("{what}: {e}")))
}

/// Writes `state` (which reflects exactly the log before `at`) as snapshot
/// `generation` and makes it the current one, durably. Gives up, committing
/// nothing, as soon as `cancel` is set.
pub fn write(
    store: &dyn LogStore,
    state: &Projection,
    at: Position,
    generation: u64,
    chunk_entries: usize,
    cancel: &AtomicBool,
) -> Result<Meta, SnapshotError> {
    let mut chunk: Vec<SnapEntry> = Vec::with_capacity(chunk_entries);
    let mut chunks = 0u32;
    let mut entries = 0u64;
    let mut failed: Option<SnapshotError> = None;
    let flush = |chunk: &mut Vec<SnapEntry>, chunks: &mut u32| -> Result<(), SnapshotError> {
        if cancel.load(Ordering::Acquire) {
            return Err(SnapshotError::Cancelled);
        }
        store.put_chunk(generation, *chunks, &encode(chunk)?)?;
        *chunks += 1;
        chunk.clear();
        Ok(())
    };
    state.export(|e| {
        if failed.is_some() {
            return;
        }
        chunk.push(e);
        entries += 1;
        if chunk.len() >= chunk_entries {
            if let Err(e) = flush(&mut chunk, &mut chunks) {
                failed = Some(e);
            }
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    if !chunk.is_empty() {
        flush(&mut chunk, &mut chunks)?;
    }
    let meta = Meta {
        generation,
        at,
        chunks,
        entries,
    };
    store.commit_snapshot(generation, &encode(&meta)?)?;
    Ok(meta)
}

/// Loads the current snapshot into `into`, if there is one.
pub fn load(store: &dyn LogStore, into: &Projection) -> Result<Option<Meta>, SnapshotError> {
    let Some(bytes) = store.snapshot_meta()? else {
        return Ok(None);
    };
    let meta: Meta = decode(&bytes, "meta")?;
    let mut expected = 0u32;
    let mut entries = 0u64;
    let mut failed = None;
    store.chunks(meta.generation, &mut |index, bytes| {
        // Chunks past the count are left from an attempt at the same
        // generation that never committed.
        if failed.is_some() || index >= meta.chunks {
            return;
        }
        if index != expected {
            failed = Some(SnapshotError::Corrupt(format!(
                "chunk {expected} is missing"
            )));
            return;
        }
        expected += 1;
        match decode::<Vec<SnapEntry>>(bytes, &format!("chunk {index}")) {
            Ok(list) => {
                entries += list.len() as u64;
                for e in list {
                    into.import(e);
                }
            }
            Err(e) => failed = Some(e),
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    if expected != meta.chunks || entries != meta.entries {
        return Err(SnapshotError::Corrupt(format!(
            "{expected} chunks with {entries} entries, meta says {} with {}",
            meta.chunks, meta.entries
        )));
    }
    into.finish_import(meta.at.next_seq - 1);
    Ok(Some(meta))
}
