//! Snapshots: the durable state at one log position as facts (warehouses,
//! SKUs' rows, open holds and live allocations, hold records, orders,
//! idempotency keys), written in framed, checksummed chunks and made
//! visible by one meta record. What is derived (reserved per row,
//! per-customer usage, the expiry order) is rebuilt on load. Restart is:
//! load the snapshot, replay the log from its position.
//!
//! Chunks are bounded by entries and by bytes: sled stores a value over
//! about 128 KiB as a file of its own that it never syncs.

use super::record::{framed, unframe, RecordError};
use super::schema::{self, v1, v2, Assembler, ChunkBuilder, Newer, SchemaError};
use super::store::{LogStore, StoreError};
use super::Position;
use crate::projection::Projection;
use std::sync::atomic::{AtomicBool, Ordering};

/// Default byte bound of a chunk, well under sled's blob threshold.
pub const CHUNK_BYTES_MAX_DEFAULT: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub generation: u64,
    /// The log position the snapshot reflects: it holds every event before
    /// `at.next_seq`, and the log goes on at record `at.next_key`.
    pub at: Position,
    pub chunks: u32,
    /// Entries as written, over every chunk.
    pub entries: u64,
}

/// How big a chunk may grow: whichever bound is reached first closes it.
/// An entry larger than `bytes_max` on its own makes a chunk of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunking {
    pub entries_max: usize,
    pub bytes_max: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("snapshot is damaged: {0}; refusing to start on it")]
    Corrupt(String),
    /// Intact, but in a format this build does not know.
    #[error("snapshot {0}")]
    Newer(Newer),
    #[error("snapshot abandoned: shutting down")]
    Cancelled,
}

impl SnapshotError {
    fn from_record(e: RecordError, what: &str) -> Self {
        match e {
            RecordError::Newer(n) => SnapshotError::Newer(n),
            e => SnapshotError::Corrupt(format!("{what}: {e}")),
        }
    }

    fn from_schema(e: SchemaError, what: &str) -> Self {
        match e {
            SchemaError::Newer(n) => SnapshotError::Newer(n),
            e => SnapshotError::Corrupt(format!("{what}: {e}")),
        }
    }
}

fn encode_meta(meta: &Meta) -> Result<Vec<u8>, SnapshotError> {
    let m = v2::Meta {
        generation: meta.generation,
        next_key: meta.at.next_key,
        next_seq: meta.at.next_seq,
        chunks: meta.chunks,
        entries: meta.entries,
    };
    framed(|out| {
        postcard::to_io(&m, out)
            .map(|_| ())
            .map_err(|e| SchemaError::Payload(e.to_string()))
    })
    .map_err(|e| SnapshotError::from_record(e, "meta"))
}

fn decode_meta(bytes: &[u8]) -> Result<Meta, SnapshotError> {
    let (version, payload) = unframe(bytes).map_err(|e| SnapshotError::from_record(e, "meta"))?;
    let bad = |e: postcard::Error| SnapshotError::Corrupt(format!("meta: {e}"));
    let m: v2::Meta = match version {
        v1::VERSION => postcard::from_bytes::<v1::Meta>(payload)
            .map_err(bad)?
            .into(),
        _ => postcard::from_bytes(payload).map_err(bad)?,
    };
    Ok(Meta {
        generation: m.generation,
        at: Position {
            next_key: m.next_key,
            next_seq: m.next_seq,
        },
        chunks: m.chunks,
        entries: m.entries,
    })
}

/// Writes `state` (which reflects exactly the log before `at`) as snapshot
/// `generation` and makes it the current one, durably. Gives up, committing
/// nothing, as soon as `cancel` is set. Chunks hold at most `chunk_entries`
/// entries and [`CHUNK_BYTES_MAX_DEFAULT`] bytes.
pub fn write(
    store: &dyn LogStore,
    state: &Projection,
    at: Position,
    generation: u64,
    chunk_entries: usize,
    cancel: &AtomicBool,
) -> Result<Meta, SnapshotError> {
    let chunking = Chunking {
        entries_max: chunk_entries,
        bytes_max: CHUNK_BYTES_MAX_DEFAULT,
    };
    write_with(store, state, at, generation, chunking, cancel)
}

/// `write` with both chunk bounds given.
pub fn write_with(
    store: &dyn LogStore,
    state: &Projection,
    at: Position,
    generation: u64,
    chunking: Chunking,
    cancel: &AtomicBool,
) -> Result<Meta, SnapshotError> {
    let mut chunk = ChunkBuilder::default();
    let mut body = Vec::new();
    let mut chunks = 0u32;
    let mut entries = 0u64;
    let mut failed: Option<SnapshotError> = None;
    let flush = |chunk: &mut ChunkBuilder, chunks: &mut u32| -> Result<(), SnapshotError> {
        if cancel.load(Ordering::Acquire) {
            return Err(SnapshotError::Cancelled);
        }
        let bytes =
            framed(|out| chunk.finish(out)).map_err(|e| SnapshotError::from_record(e, "chunk"))?;
        store.put_chunk(generation, *chunks, &bytes)?;
        *chunks += 1;
        Ok(())
    };
    state.export(|e| {
        schema::entries_of(&e, &mut |entry| {
            if failed.is_some() {
                return;
            }
            let kind = match ChunkBuilder::encode(&entry, &mut body) {
                Ok(kind) => kind,
                Err(e) => {
                    failed = Some(SnapshotError::from_schema(e, "entry"));
                    return;
                }
            };
            let full = chunk.len() >= chunking.entries_max
                || chunk.bytes_with(body.len()) > chunking.bytes_max;
            if full && !chunk.is_empty() {
                if let Err(e) = flush(&mut chunk, &mut chunks) {
                    failed = Some(e);
                    return;
                }
            }
            chunk.push(kind, &body);
            entries += 1;
        });
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
    store.commit_snapshot(generation, &encode_meta(&meta)?)?;
    Ok(meta)
}

/// Loads the current snapshot into `into`, if there is one.
pub fn load(store: &dyn LogStore, into: &Projection) -> Result<Option<Meta>, SnapshotError> {
    let Some(bytes) = store.snapshot_meta()? else {
        return Ok(None);
    };
    let meta = decode_meta(&bytes)?;
    let mut expected = 0u32;
    let mut entries = 0u64;
    let mut failed = None;
    let mut assembler = Assembler::default();
    let mut import = |e| into.import(e);
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
        let what = format!("chunk {index}");
        let read = unframe(bytes)
            .map_err(|e| SnapshotError::from_record(e, &what))
            .and_then(|(version, payload)| {
                schema::read_chunk(version, payload, &mut |e| assembler.push(e, &mut import))
                    .map_err(|e| SnapshotError::from_schema(e, &what))
            });
        match read {
            Ok(n) => entries += n,
            Err(e) => failed = Some(e),
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    assembler
        .finish(&mut import)
        .map_err(|e| SnapshotError::from_schema(e, "last sku"))?;
    if expected != meta.chunks || entries != meta.entries {
        return Err(SnapshotError::Corrupt(format!(
            "{expected} chunks with {entries} entries, meta says {} with {}",
            meta.chunks, meta.entries
        )));
    }
    into.finish_import(meta.at.next_seq - 1);
    Ok(Some(meta))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Event, SkuId, WarehouseId};
    use crate::wal::store::MemStore;
    use crate::wal::ReplayError;

    fn state() -> Projection {
        let p = Projection::new();
        let sku = SkuId::parse("s").unwrap();
        p.apply(
            1,
            &Event::SkuUpserted {
                sku: sku.clone(),
                name: Some("shirt".into()),
                per_customer_limit: None,
            },
        );
        p.apply(
            2,
            &Event::StockAdjusted {
                sku,
                warehouse: WarehouseId::parse("w").unwrap(),
                delta: 5,
                reason: "r".into(),
            },
        );
        p
    }

    #[test]
    fn chunks_stay_under_the_byte_bound() {
        let p = Projection::new();
        for i in 0..200u64 {
            p.apply(
                i + 1,
                &Event::SkuUpserted {
                    sku: SkuId::parse(&format!("sku-{i}")).unwrap(),
                    name: Some("x".repeat(200)),
                    per_customer_limit: None,
                },
            );
        }
        let mem = MemStore::new();
        let at = Position {
            next_key: 0,
            next_seq: 201,
        };
        let chunking = Chunking {
            entries_max: 1000,
            bytes_max: 4096,
        };
        let never = AtomicBool::new(false);
        let meta = write_with(&mem, &p, at, 1, chunking, &never).unwrap();
        assert!(meta.chunks > 5, "{} chunks", meta.chunks);
        mem.chunks(1, &mut |_, bytes| {
            assert!(bytes.len() <= 4096, "{}", bytes.len())
        })
        .unwrap();
        let back = Projection::new();
        load(&mem, &back).unwrap();
        assert_eq!(back.skus.len(), 200);
    }

    #[test]
    fn a_snapshot_of_a_newer_format_is_refused_as_newer() {
        let mem = MemStore::new();
        let never = AtomicBool::new(false);
        write(&mem, &state(), Position::START, 1, 10, &never).unwrap();
        let meta = mem.snapshot_meta().unwrap().unwrap();
        let mut newer = meta.clone();
        newer[0] = RECORD_VERSION_NEXT;
        let mut h = crc32fast::Hasher::new();
        h.update(&[RECORD_VERSION_NEXT]);
        h.update(&newer[5..]);
        newer[1..5].copy_from_slice(&h.finalize().to_le_bytes());
        mem.commit_snapshot(2, &newer).unwrap();
        let err = ReplayError::from(load(&mem, &Projection::new()).unwrap_err());
        assert!(matches!(err, ReplayError::Newer { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with("snapshot written by a newer Surge: format v"),
            "{err}"
        );
    }

    const RECORD_VERSION_NEXT: u8 = crate::wal::record::RECORD_VERSION + 1;
}
