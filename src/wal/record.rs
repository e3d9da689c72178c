//! The log record: one per group commit, holding every event of the batch.
//!
//! ```text
//! [version: u8][crc32 of payload: u32 LE][payload: postcard(first_seq, events)]
//! ```
//! The version byte lets the format change without guessing; the checksum
//! catches torn or flipped bytes.

use crate::core::Event;
use serde::{Deserialize, Serialize};

pub const RECORD_VERSION: u8 = 1;
const HEADER_LEN: usize = 5;

#[derive(Serialize)]
struct RecordRef<'a> {
    first_seq: u64,
    events: &'a [&'a Event],
}

#[derive(Debug, Deserialize, PartialEq)]
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
}

pub fn encode(first_seq: u64, events: &[&Event]) -> Result<Vec<u8>, RecordError> {
    let payload = postcard::to_stdvec(&RecordRef { first_seq, events })
        .map_err(|e| RecordError::Payload(e.to_string()))?;
    Ok(frame(&payload))
}

pub fn decode(bytes: &[u8]) -> Result<Record, RecordError> {
    postcard::from_bytes(unframe(bytes)?).map_err(|e| RecordError::Payload(e.to_string()))
}

/// Wraps a payload in the version byte and checksum (records and snapshot
/// chunks share the framing).
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.push(RECORD_VERSION);
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Checks the framing and returns the payload.
pub fn unframe(bytes: &[u8]) -> Result<&[u8], RecordError> {
    if bytes.len() < HEADER_LEN {
        return Err(RecordError::Short(bytes.len()));
    }
    if bytes[0] != RECORD_VERSION {
        return Err(RecordError::Version(bytes[0]));
    }
    let crc = u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    let payload = &bytes[HEADER_LEN..];
    if crc32fast::hash(payload) != crc {
        return Err(RecordError::Checksum);
    }
    Ok(payload)
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
