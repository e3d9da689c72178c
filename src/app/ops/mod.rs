//! One module per write. Each adds an `impl Surge` block with its operation:
//! it checks what only the application can check (idempotency, that the
//! owners exist), asks the owning actor to decide, and answers once the
//! decision is durable. A new use case is a new module here, a handler in
//! `api/`, and (if it logs something new) an event in `core::event`.

pub mod adjust_stock;
pub mod cancel_order;
pub mod extend;
pub mod incoming;
pub mod lifecycle;
pub mod patch_sku;
pub mod phase_one;
pub mod place_order;
pub mod release;
pub mod reroute;
pub mod reserve;
pub mod reserve_batch;
pub mod retention;
pub mod route;
pub mod routing_rules;
pub mod upsert_sku;
pub mod upsert_warehouse;
