//! The fuzz targets' seed inputs (`fuzz/seeds/<target>/`) are real inputs
//! that the decoders accept: log records and snapshot chunks as released
//! builds wrote them (taken from the golden data directories), request
//! bodies and feed messages as clients send them. A seed that stops
//! decoding (the format or a body changed) fails here.
//! `SURGE_WRITE_FUZZ_SEEDS=1 cargo test --test integration fuzz_seeds`
//! rewrites the log and snapshot seeds from the golden directories.

use std::path::{Path, PathBuf};
use surge::api::decode::{self, Body};
use surge::config::Config;
use surge::projection::Projection;
use surge::wal::record;
use surge::wal::schema::{self, Assembler};
use surge::wal::store::{LogStore, SledStore};

/// Records and chunks taken from each golden directory, at most.
const RECORDS_PER_DIR: usize = 6;
const CHUNKS_PER_DIR: usize = 3;
/// A seed's size at most: small files in the repository, but a whole
/// snapshot chunk of the v5 and v6 golden directories (about 35 KiB).
const SEED_BYTES_MAX: usize = 48 * 1024;

/// Seeds as (file name, bytes).
type Seeds = Vec<(String, Vec<u8>)>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn seeds(target: &str) -> Seeds {
    let dir = root().join("fuzz/seeds").join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    for (name, bytes) in &out {
        assert!(
            bytes.len() <= SEED_BYTES_MAX,
            "{target}/{name}: {} bytes",
            bytes.len()
        );
    }
    out
}

/// Log records as released builds wrote them (the golden data
/// directories), the same events as records of the current format, and
/// snapshot chunks of every format: the golden directories' and one of
/// the state those events build, written now.
fn from_golden() -> (Seeds, Seeds) {
    let (mut records, mut chunks) = (Vec::new(), Vec::new());
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root().join("tests/golden"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("data").is_dir())
        .collect();
    dirs.sort();
    let mut events = Vec::new();
    for (d, dir) in dirs.into_iter().enumerate() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let tmp = tempfile::tempdir().unwrap();
        crate::golden::copy_dir(&dir.join("data"), tmp.path());
        let store = SledStore::open(tmp.path(), 8 << 20).unwrap();
        let mut n = 0;
        store
            .scan(&mut |key, bytes| {
                // The first directory's whole log (`-log`: no snapshot).
                if let (0, Ok(rec)) = (d, record::decode(bytes)) {
                    events.push((rec.first_seq, rec.events));
                }
                if n < RECORDS_PER_DIR && bytes.len() <= SEED_BYTES_MAX {
                    records.push((format!("{name}-record-{key}"), bytes.to_vec()));
                    n += 1;
                }
            })
            .unwrap();
        if let Some(meta) = store.snapshot_meta().unwrap() {
            chunks.push((format!("{name}-meta"), meta));
            let mut n = 0;
            for generation in 0..256 {
                store
                    .chunks(generation, &mut |index, bytes| {
                        if n < CHUNKS_PER_DIR && bytes.len() <= SEED_BYTES_MAX {
                            chunks.push((
                                format!("{name}-chunk-{generation}-{index}"),
                                bytes.to_vec(),
                            ));
                            n += 1;
                        }
                    })
                    .unwrap();
            }
        }
    }
    // The same events in the current format, and a snapshot of what they
    // build.
    let state = Projection::new();
    let mut next_seq = 1;
    for (i, (first_seq, evs)) in events.iter().enumerate() {
        let refs: Vec<&surge::core::Event> = evs.iter().collect();
        let bytes = record::encode(*first_seq, &refs).unwrap();
        if i < RECORDS_PER_DIR && bytes.len() <= SEED_BYTES_MAX {
            records.push((format!("current-record-{first_seq}"), bytes));
        }
        for (j, e) in evs.iter().enumerate() {
            state.apply(first_seq + j as u64, e);
        }
        next_seq = first_seq + evs.len() as u64;
    }
    let mem = surge::wal::store::MemStore::new();
    let at = surge::wal::Position {
        next_key: 0,
        next_seq,
    };
    let never = std::sync::atomic::AtomicBool::new(false);
    // One chunk: a chunk alone may start in the middle of a SKU.
    surge::wal::snapshot::write(&mem, &state, at, 1, 100_000, &never).unwrap();
    chunks.push(("current-meta".into(), mem.snapshot_meta().unwrap().unwrap()));
    mem.chunks(1, &mut |index, bytes| {
        if (index as usize) < CHUNKS_PER_DIR && bytes.len() <= SEED_BYTES_MAX {
            chunks.push((format!("current-chunk-{index}"), bytes.to_vec()));
        }
    })
    .unwrap();
    (records, chunks)
}

fn write(target: &str, seeds: &[(String, Vec<u8>)]) {
    let dir = root().join("fuzz/seeds").join(target);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

#[test]
fn log_and_snapshot_seeds_decode() {
    if std::env::var_os("SURGE_WRITE_FUZZ_SEEDS").is_some() {
        let (records, chunks) = from_golden();
        write("wal_record", &records);
        write("snapshot_chunk", &chunks);
    }
    let records = seeds("wal_record");
    for (name, bytes) in &records {
        let rec = record::decode(bytes).unwrap_or_else(|e| panic!("wal_record/{name}: {e}"));
        assert!(!rec.events.is_empty(), "wal_record/{name}");
    }
    let versions: std::collections::BTreeSet<u8> = records.iter().map(|(_, b)| b[0]).collect();
    assert_eq!(
        versions.len(),
        usize::from(schema::CURRENT),
        "a seed of every format version"
    );
    let mut chunk_versions = std::collections::BTreeSet::new();
    for (name, bytes) in seeds("snapshot_chunk") {
        if name.ends_with("-meta") {
            continue;
        }
        let (version, payload) =
            record::unframe(&bytes).unwrap_or_else(|e| panic!("snapshot_chunk/{name}: {e}"));
        let into = Projection::new();
        let mut import = |e| into.import(e);
        let mut assembler = Assembler::default();
        let n = schema::read_chunk(version, payload, &mut |e| assembler.push(e, &mut import))
            .unwrap_or_else(|e| panic!("snapshot_chunk/{name}: {e}"));
        assembler.finish(&mut import).unwrap();
        assert!(n > 0, "snapshot_chunk/{name}");
        chunk_versions.insert(version);
    }
    assert_eq!(
        chunk_versions.len(),
        usize::from(schema::CURRENT),
        "a chunk of every format version"
    );
}

/// Every request-body seed is a body its handler accepts: the first byte
/// picks the body (as in the target), the rest is the JSON.
#[test]
fn request_body_and_feed_seeds_are_accepted() {
    let config = Config::default_config();
    let mut kinds = std::collections::BTreeSet::new();
    for (name, bytes) in seeds("request_bodies") {
        let which = Body::ALL[usize::from(bytes[0]) % Body::ALL.len()];
        kinds.insert(format!("{which:?}"));
        decode::body(&config, which, &bytes[1..])
            .unwrap_or_else(|e| panic!("request_bodies/{name}: {e}"));
    }
    assert_eq!(
        kinds.len(),
        Body::ALL.len(),
        "a seed of every body: {kinds:?}"
    );
    for (name, bytes) in seeds("feed_inbound") {
        let text = std::str::from_utf8(&bytes[1..]).unwrap();
        let r = if bytes[0] % 2 == 0 {
            decode::feed_message(&config, text)
        } else {
            decode::feed_query(&config, text).map_err(|e| e.to_string())
        };
        r.unwrap_or_else(|e| panic!("feed_inbound/{name}: {e}"));
    }
}
