//! The snapshot chunk decoder: a framed chunk as loading reads it, and its
//! payload in each format version as if its checksum had held; the entries
//! are assembled and imported into a read model, as at start.
#![no_main]

use libfuzzer_sys::fuzz_target;
use surge::projection::Projection;
use surge::wal::record;
use surge::wal::schema::{self, Assembler};

fn load(version: u8, payload: &[u8]) {
    let into = Projection::new();
    let mut import = |e| into.import(e);
    let mut assembler = Assembler::default();
    let read = schema::read_chunk(version, payload, &mut |e| assembler.push(e, &mut import));
    if read.is_ok() && assembler.finish(&mut import).is_ok() {
        into.finish_import(0);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok((version, payload)) = record::unframe(data) {
        load(version, payload);
    }
    if let Some((&pick, payload)) = data.split_first() {
        load(1 + pick % schema::CURRENT, payload);
    }
});
