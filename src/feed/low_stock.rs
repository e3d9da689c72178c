//! Low-stock crossings: `low_stock` when a mark's available falls to or
//! below its threshold, `stock_recovered` when it rises back above (or the
//! threshold that made it low is cleared). Like sold out / back in stock,
//! each crossing is announced once: the marks of the SKUs an event touches
//! are read from the read model just before it applies and just after.

use crate::core::sku::incoming::Mark;
use crate::core::{Event, SkuId};
use crate::projection::Projection;
use crate::wire::{FeedEvent, LowStock};

/// The low marks of each SKU an event touches, before it applies.
pub struct Before(Vec<(SkuId, Vec<Mark>)>);

/// The SKUs whose available stock or thresholds an event may change.
fn skus_of(event: &Event) -> Vec<SkuId> {
    let mut out: Vec<SkuId> = match event {
        Event::WarehouseUpserted { .. }
        | Event::RoutingRulesSet { .. }
        | Event::OrderPayment { .. }
        | Event::OrderHoldSet { .. }
        | Event::FulfillmentStaged { .. }
        | Event::FulfillmentDelivered { .. }
        | Event::ReturnRequested { .. }
        | Event::ReturnReceived { restock: None, .. }
        | Event::ReturnSettled { .. }
        | Event::LifeKeyUsed { .. } => Vec::new(),
        Event::SkuUpserted { sku, .. }
        | Event::StockAdjusted { sku, .. }
        | Event::SafetyStockSet { sku, .. }
        | Event::HoldExtended { sku, .. }
        | Event::HoldReleased { sku, .. }
        | Event::IncomingExpected { sku, .. }
        | Event::IncomingReceived { sku, .. }
        | Event::IncomingClosed { sku, .. }
        | Event::LowStockSet { sku, .. } => vec![sku.clone()],
        Event::HoldCreated { hold, .. } => vec![hold.sku.clone()],
        Event::OrderPlaced { allocations, .. } => {
            allocations.iter().map(|a| a.sku.clone()).collect()
        }
        Event::OrderCancelled { skus, .. } => skus.clone(),
        Event::OrderRerouted { from, to, .. } => {
            from.iter().chain(to).map(|a| a.sku.clone()).collect()
        }
        Event::OrderLinesCancelled { units, .. } => units.iter().map(|u| u.sku.clone()).collect(),
        Event::FulfillmentShipped { parcel, .. } => {
            parcel.lines.iter().map(|(s, _)| s.clone()).collect()
        }
        Event::ReturnReceived { lines, .. } => lines.iter().map(|(s, _)| s.clone()).collect(),
    };
    out.sort();
    out.dedup();
    out
}

/// The marks of `sku` that are low now.
fn low_now(projection: &Projection, sku: &SkuId) -> Vec<Mark> {
    projection.skus.get(sku).map_or_else(Vec::new, |s| {
        s.low_marks()
            .into_iter()
            .filter(|(_, _, _, low)| *low)
            .map(|(m, ..)| m)
            .collect()
    })
}

/// Notes which marks are low before `event` applies. Only SKUs with a
/// threshold (or an event that sets one) cost more than a lookup.
pub fn before(projection: &Projection, event: &Event) -> Before {
    Before(
        skus_of(event)
            .into_iter()
            .map(|sku| {
                let low = low_now(projection, &sku);
                (sku, low)
            })
            .collect(),
    )
}

/// The crossings since `before`, as feed events on `stock` and
/// `sku:<id>` (and `warehouse:<id>` for a row's mark).
pub fn crossings(projection: &Projection, before: Before) -> Vec<(Vec<String>, FeedEvent)> {
    let mut out = Vec::new();
    for (sku, was_low) in before.0 {
        let Some(state) = projection.skus.get(&sku) else {
            continue;
        };
        let marks = state.low_marks();
        let topics = |m: &Mark| {
            let mut t = vec!["stock".to_owned(), format!("sku:{sku}")];
            if let Some(w) = m {
                t.push(format!("warehouse:{w}"));
            }
            t
        };
        for (mark, available, threshold, low) in &marks {
            let was = was_low.contains(mark);
            let view = || LowStock::new(&sku, mark, *available, Some(*threshold));
            match (was, *low) {
                (false, true) => out.push((topics(mark), FeedEvent::LowStock(view()))),
                (true, false) => out.push((topics(mark), FeedEvent::StockRecovered(view()))),
                _ => {}
            }
        }
        // A low mark whose threshold went: no longer low.
        for mark in was_low
            .iter()
            .filter(|m| !marks.iter().any(|(x, ..)| x == *m))
        {
            let available = match mark {
                None => state.available_total(),
                Some(w) => state
                    .rows
                    .get(w)
                    .map_or(0, crate::core::StockRow::available),
            };
            out.push((
                topics(mark),
                FeedEvent::StockRecovered(LowStock::new(&sku, mark, available, None)),
            ));
        }
    }
    out
}
