//! Idempotency keys: a key in flight refuses a second request with it; a
//! key remembered in the durable read model (for `idempotency_ttl_ms`)
//! answers with what it produced the first time. The key is logged in the
//! same record as its effect, so a retry after a crash finds it.

use super::Surge;
use crate::actors::CmdError;
use crate::core::IdempotencyRecord;
use crate::projection::IdemTarget;
use dashmap::DashMap;

/// An idempotency key, scoped to its endpoint, with the request's hash.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key: String,
    pub request_hash: [u8; 32],
}

/// Keys whose request is being worked on right now.
#[derive(Default)]
pub(super) struct Keys {
    in_flight: DashMap<String, ()>,
}

/// Holds an idempotency key as in progress until dropped.
pub(super) struct InFlight<'a> {
    map: &'a DashMap<String, ()>,
    key: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.map.remove(&self.key);
    }
}

impl Surge {
    /// Marks the key in flight; a second request with it is refused until
    /// the first is answered.
    pub(super) fn begin(
        &self,
        idem: &Option<Idempotency>,
    ) -> Result<Option<InFlight<'_>>, CmdError> {
        let Some(i) = idem else { return Ok(None) };
        match self.keys.in_flight.entry(i.key.clone()) {
            dashmap::Entry::Occupied(_) => Err(CmdError::IdempotencyInFlight),
            dashmap::Entry::Vacant(v) => {
                v.insert(());
                Ok(Some(InFlight {
                    map: &self.keys.in_flight,
                    key: i.key.clone(),
                }))
            }
        }
    }

    /// What a key already produced, if it is remembered and not too old.
    pub(super) async fn recall(
        &self,
        idem: &Option<Idempotency>,
    ) -> Result<Option<IdemTarget>, CmdError> {
        let Some(i) = idem else { return Ok(None) };
        // A retry right after the first answer must find the key.
        self.wal.caught_up().await?;
        let Some(e) = self.projection.idempotency.get(&i.key).map(|e| e.clone()) else {
            return Ok(None);
        };
        if e.at.saturating_add(self.config.idempotency_ttl_ms) < self.now() {
            return Ok(None);
        }
        if e.request_hash != i.request_hash {
            return Err(CmdError::IdempotencyKeyReused);
        }
        Ok(Some(e.target))
    }

    /// The record logged with the effect.
    pub(super) fn key_record(&self, idem: &Option<Idempotency>) -> Option<IdempotencyRecord> {
        idem.as_ref().map(|i| IdempotencyRecord {
            key: i.key.clone(),
            request_hash: i.request_hash,
            at: self.now(),
        })
    }
}
