//! The log record decoder. The whole framed record (version, checksum,
//! payload) is decoded as replay does; and since random bytes rarely carry
//! a valid checksum, the payload is also decoded directly in each format
//! version, as if its checksum had held.
#![no_main]

use libfuzzer_sys::fuzz_target;
use surge::wal::{record, schema};

fuzz_target!(|data: &[u8]| {
    let _ = record::decode(data);
    if let Some((&pick, payload)) = data.split_first() {
        let version = 1 + pick % schema::CURRENT;
        let _ = schema::read_record(version, payload);
    }
});
