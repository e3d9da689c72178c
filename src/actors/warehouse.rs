//! One actor per warehouse: the single writer of its record. Stock rows of a
//! warehouse belong to the SKU actors (a reservation touches one SKU in
//! many warehouses far more often than one warehouse in many SKUs).

use super::{after, ready, CmdError, Reply};
use crate::core::{Event, Warehouse};
use crate::wal::Wal;
use actix::prelude::*;
use std::sync::Arc;

pub struct WarehouseActor {
    warehouse: Option<Warehouse>,
    wal: Arc<Wal>,
    mailbox_capacity: usize,
}

impl WarehouseActor {
    pub fn new(warehouse: Option<Warehouse>, wal: Arc<Wal>, mailbox_capacity: usize) -> Self {
        Self {
            warehouse,
            wal,
            mailbox_capacity,
        }
    }
}

impl Actor for WarehouseActor {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.mailbox_capacity);
    }
}

#[derive(Message)]
#[rtype(result = "Result<Warehouse, CmdError>")]
pub struct UpsertWarehouse(pub Warehouse);

impl Handler<UpsertWarehouse> for WarehouseActor {
    type Result = Reply<Warehouse>;
    fn handle(&mut self, m: UpsertWarehouse, _: &mut Context<Self>) -> Reply<Warehouse> {
        let event = Event::WarehouseUpserted {
            warehouse: m.0.clone(),
        };
        match self.wal.submit(vec![event]) {
            Ok(durable) => {
                self.warehouse = Some(m.0.clone());
                after(durable, m.0)
            }
            Err(e) => ready(Err(e.into())),
        }
    }
}
