//! The log record: a run of consecutive events of one group commit (a group
//! is cut into records of at most `wal_record_bytes_max` bytes, between
//! events; seqs run on from one record to the next).
//!
//! ```text
//! [version: u8][crc32: u32 LE][payload]
//! ```
//! The payload's format is the version's (`schema/`); this module only
//! frames and checks. The checksum catches torn or flipped bytes: from v2
//! on it covers the version byte and the payload, v1's the payload only. So
//! a version byte above [`RECORD_VERSION`] whose checksum holds was written
//! by a newer build ([`RecordError::Newer`]), and one whose checksum fails
//! is damage.

use super::schema::{self, Newer, SchemaError};
use crate::core::Event;

/// The format this build writes (and the newest it reads).
pub const RECORD_VERSION: u8 = schema::CURRENT;
/// Bytes of the framing before the payload: version and checksum.
pub const HEADER_LEN: usize = 5;

#[derive(Debug, PartialEq)]
pub struct Record {
    /// Sequence number of the first event; the rest follow one by one.
    pub first_seq: u64,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record shorter than its header ({0} bytes)")]
    Short(usize),
    #[error("unknown record version {0}")]
    Version(u8),
    #[error("checksum mismatch")]
    Checksum,
    #[error("undecodable payload: {0}")]
    Payload(String),
    /// Intact, but in a format this build does not know: not damage.
    #[error(transparent)]
    Newer(Newer),
}

impl From<SchemaError> for RecordError {
    fn from(e: SchemaError) -> Self {
        match e {
            SchemaError::Newer(n) => RecordError::Newer(n),
            other => RecordError::Payload(other.to_string()),
        }
    }
}

pub fn encode(first_seq: u64, events: &[&Event]) -> Result<Vec<u8>, RecordError> {
    framed(|out| schema::write_record(first_seq, events, out))
}

pub fn decode(bytes: &[u8]) -> Result<Record, RecordError> {
    let (version, payload) = unframe(bytes)?;
    let (first_seq, events) = schema::read_record(version, payload)?;
    Ok(Record { first_seq, events })
}

fn checksum(version: u8, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    if version != 1 {
        h.update(&[version]);
    }
    h.update(payload);
    h.finalize()
}

/// Frames what `write` appends as a payload in the current version
/// (records and snapshot chunks share the framing).
pub fn framed(
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), SchemaError>,
) -> Result<Vec<u8>, RecordError> {
    let mut out = vec![RECORD_VERSION, 0, 0, 0, 0];
    write(&mut out)?;
    let crc = checksum(RECORD_VERSION, &out[HEADER_LEN..]);
    out[1..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Checks the framing; returns the version and the payload.
pub fn unframe(bytes: &[u8]) -> Result<(u8, &[u8]), RecordError> {
    if bytes.len() < HEADER_LEN {
        return Err(RecordError::Short(bytes.len()));
    }
    let version = bytes[0];
    let crc = u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    let payload = &bytes[HEADER_LEN..];
    if version == 0 {
        return Err(RecordError::Version(version));
    }
    if checksum(version, payload) != crc {
        return Err(RecordError::Checksum);
    }
    if version > RECORD_VERSION {
        return Err(RecordError::Newer(Newer::Version {
            found: version,
            max: RECORD_VERSION,
        }));
    }
    Ok((version, payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{SkuId, WarehouseId};

    fn event(delta: i64) -> Event {
        Event::StockAdjusted {
            sku: SkuId::parse("s").unwrap(),
            warehouse: WarehouseId::parse("w").unwrap(),
            delta,
            reason: "count".into(),
        }
    }

    #[test]
    fn round_trips_and_catches_damage() {
        let (a, b) = (event(5), event(-2));
        let bytes = encode(41, &[&a, &b]).unwrap();
        let rec = decode(&bytes).unwrap();
        assert_eq!(rec.first_seq, 41);
        assert_eq!(rec.events, vec![a, b]);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(decode(&bad).is_err(), "flip at byte {i} went unnoticed");
        }
        for len in 0..bytes.len() {
            assert!(
                decode(&bytes[..len]).is_err(),
                "truncation to {len} went unnoticed"
            );
        }
    }
}
