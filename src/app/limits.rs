//! Limits on entities created: `skus_max` and `warehouses_max`.
//!
//! The count is the read model's (derived from the log, so it survives a
//! restart) plus the creations in flight, whose events are not applied
//! yet. A creation takes a slot under a lock before it starts and gives it
//! back once its event is in the read model (it is counted twice in
//! between, so under concurrent creations at the edge a creation may be
//! refused early, never let past the limit). Changing an existing entity
//! takes no slot.

use crate::actors::CmdError;
use crate::app::Surge;
use std::sync::{Arc, Mutex};

/// Which entity a limit is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Sku,
    Warehouse,
}

impl Entity {
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::Sku => "sku",
            Entity::Warehouse => "warehouse",
        }
    }

    /// The config key of its limit.
    pub fn limit_key(self) -> &'static str {
        match self {
            Entity::Sku => "skus_max",
            Entity::Warehouse => "warehouses_max",
        }
    }
}

/// Creations in flight, per entity.
#[derive(Default)]
pub(crate) struct Creations {
    skus: Mutex<usize>,
    warehouses: Mutex<usize>,
}

/// A slot taken for one creation; given back when dropped.
pub(crate) struct Slot {
    surge: Arc<Surge>,
    entity: Entity,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut n = self
            .surge
            .creations
            .count(self.entity)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *n = n.saturating_sub(1);
    }
}

impl Creations {
    fn count(&self, entity: Entity) -> &Mutex<usize> {
        match entity {
            Entity::Sku => &self.skus,
            Entity::Warehouse => &self.warehouses,
        }
    }
}

impl Surge {
    /// For an entity that does not exist yet (`exists` answers from the
    /// read model, caught up first): a slot, or `EntityLimit` when
    /// `existing + in flight` is at the limit. `None` for an existing one.
    pub(crate) async fn creation_slot(
        self: &Arc<Self>,
        entity: Entity,
        exists: impl Fn(&Self) -> bool,
    ) -> Result<Option<Slot>, CmdError> {
        self.wal.caught_up().await?;
        if exists(self) {
            return Ok(None);
        }
        let (existing, max) = match entity {
            Entity::Sku => (self.projection.skus.len(), self.config.skus_max),
            Entity::Warehouse => (self.projection.warehouses.len(), self.config.warehouses_max),
        };
        let mut in_flight = self
            .creations
            .count(entity)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if existing.saturating_add(*in_flight) >= max {
            return Err(CmdError::EntityLimit {
                entity: entity.as_str(),
                key: entity.limit_key(),
                max,
            });
        }
        *in_flight += 1;
        Ok(Some(Slot {
            surge: self.clone(),
            entity,
        }))
    }

    /// Gives a slot back once what was written is in the read model.
    pub(crate) async fn release_slot(&self, slot: Option<Slot>) {
        if slot.is_some() {
            // Even on failure the slot is given back (by the drop).
            let _ = self.wal.caught_up().await;
        }
        drop(slot);
    }
}
