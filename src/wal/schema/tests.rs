//! Property tests of the schema: every event and snapshot entry survives
//! core → on-disk → bytes → on-disk → core unchanged; v1 bytes read as the
//! values they were written from; a SKU rebuilt from its facts equals the
//! one built by applying events.

use super::*;
use crate::core::lifecycle::life::{CancelledUnits, FulfillmentId, Parcel, ReturnId};
use crate::core::lifecycle::{
    Command, Currency, Fulfillment, FulfillmentLine, FulfillmentStage, HoldReason, Life,
    LifeTarget, PaymentBook, PaymentEffect, PaymentKind, PaymentReference, Return, ReturnStatus,
};
use crate::core::routing::{
    Chain, Cutoff, Excluded, PlanTrace, Rate, RoutingTrace, Rule, ShipmentTrace, ShippingCost,
    SplitPolicy, Verdict, WarehouseRouting,
};
use crate::core::sku::{LineRequest, ReserveCmd};
use crate::core::{
    ChannelId, CustomerId, Event, Hold, HoldId, HoldStatus, IdempotencyRecord, Location, Order,
    OrderId, OrderLine, OrderStatus, ReleaseReason, ShipTo, Shipment, SkuAllocation, SkuId,
    Warehouse, WarehouseId,
};
use crate::projection::{HoldRecord, IdemEntry, IdemTarget};
use crate::wal::record::{self, RecordError};
use proptest::prelude::*;

fn ident() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._:-]{1,12}"
}
fn text() -> impl Strategy<Value = String> {
    ".{0,20}"
}
fn sku() -> impl Strategy<Value = SkuId> {
    ident().prop_map(|s| SkuId::parse(&s).unwrap())
}
fn wh() -> impl Strategy<Value = WarehouseId> {
    ident().prop_map(|s| WarehouseId::parse(&s).unwrap())
}
fn customer() -> impl Strategy<Value = CustomerId> {
    ident().prop_map(|s| CustomerId::parse(&s).unwrap())
}
fn channel() -> impl Strategy<Value = ChannelId> {
    ident().prop_map(|s| ChannelId::parse(&s).unwrap())
}
fn location() -> impl Strategy<Value = Location> {
    (-90.0f64..=90.0, -180.0f64..=180.0).prop_map(|(lat, lon)| Location { lat, lon })
}
fn warehouse() -> impl Strategy<Value = Warehouse> {
    (wh(), text(), location(), any::<i32>(), routing_attrs()).prop_map(
        |(id, name, location, priority, routing)| Warehouse {
            id,
            name,
            location,
            priority,
            routing,
        },
    )
}
fn rate() -> impl Strategy<Value = Rate> {
    (any::<u64>(), any::<u64>()).prop_map(|(fixed, per_km)| Rate { fixed, per_km })
}
fn routing_attrs() -> impl Strategy<Value = WarehouseRouting> {
    (
        any::<bool>(),
        prop::collection::vec("[A-Z]{2}", 0..3),
        prop::collection::vec(channel(), 0..3),
        prop::option::of(1u64..),
        prop::option::of((0u8..24, 0u8..60, "[A-Za-z_]{1,10}/[A-Za-z_]{1,10}")),
        prop::option::of((
            rate(),
            prop::collection::btree_map("[A-Z]{2}", rate(), 0..3),
        )),
    )
        .prop_map(
            |(enabled, countries, channels, capacity_per_day, cutoff, cost)| WarehouseRouting {
                enabled,
                countries,
                channels,
                capacity_per_day,
                cutoff: cutoff.map(|(hour, minute, tz)| Cutoff { hour, minute, tz }),
                shipping_cost: cost.map(|(default, by_country)| ShippingCost {
                    default,
                    by_country,
                }),
            },
        )
}
fn rule() -> impl Strategy<Value = Rule> {
    prop::sample::select(Rule::ALL.to_vec())
}
fn split() -> impl Strategy<Value = SplitPolicy> {
    prop_oneof![
        Just(SplitPolicy::Allow),
        Just(SplitPolicy::Forbid),
        any::<u32>().prop_map(SplitPolicy::MaxShipments),
    ]
}
fn chain() -> impl Strategy<Value = Chain> {
    (prop::collection::vec(rule(), 0..6), split()).prop_map(|(rules, split)| Chain { rules, split })
}
fn plan_trace() -> impl Strategy<Value = PlanTrace> {
    (
        prop::collection::vec(
            (
                wh(),
                prop::collection::vec((sku(), any::<u64>()), 0..3),
                prop::option::of(0.0f64..20_000.0),
                prop::option::of(any::<u64>()),
                prop::option::of(any::<bool>()),
            ),
            0..3,
        ),
        prop::collection::vec((rule(), -1e12f64..1e12), 0..4),
    )
        .prop_map(|(shipments, verdicts)| PlanTrace {
            shipments: shipments
                .into_iter()
                .map(
                    |(warehouse, lines, distance_km, cost, same_day)| ShipmentTrace {
                        warehouse,
                        lines,
                        distance_km,
                        cost,
                        same_day,
                    },
                )
                .collect(),
            verdicts: verdicts
                .into_iter()
                .map(|(rule, score)| Verdict { rule, score })
                .collect(),
        })
}
/// Any routing trace (the wire tests use it too).
pub(crate) fn trace() -> impl Strategy<Value = RoutingTrace> {
    (
        prop::collection::vec(rule(), 0..6),
        split(),
        prop::collection::vec((wh(), rule()), 0..3),
        prop::collection::vec(plan_trace(), 0..3),
        prop::option::of(rule()),
        any::<u32>(),
    )
        .prop_map(
            |(rules, split, excluded, candidates, deciding_rule, attempts)| RoutingTrace {
                rules,
                split,
                excluded: excluded
                    .into_iter()
                    .map(|(warehouse, rule)| Excluded { warehouse, rule })
                    .collect(),
                candidates,
                deciding_rule,
                attempts,
            },
        )
}
/// A key's name, as `created_by` records it, or none.
fn creator() -> impl Strategy<Value = Option<String>> {
    prop::option::of(".{1,20}")
}
fn hold() -> impl Strategy<Value = Hold> {
    (hold_without_creator(), creator()).prop_map(|(h, created_by)| Hold { created_by, ..h })
}
fn hold_without_creator() -> impl Strategy<Value = Hold> {
    (
        any::<u64>(),
        sku(),
        wh(),
        any::<u64>(),
        prop::option::of(customer()),
        prop::option::of(channel()),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(id, sku, warehouse, qty, customer, channel, created_at, expires_at)| Hold {
                id: HoldId(id),
                sku,
                warehouse,
                qty,
                customer,
                channel,
                created_at,
                expires_at,
                created_by: None,
            },
        )
}
fn idem() -> impl Strategy<Value = IdempotencyRecord> {
    (".{1,40}", any::<[u8; 32]>(), any::<u64>()).prop_map(|(key, request_hash, at)| {
        IdempotencyRecord {
            key,
            request_hash,
            at,
        }
    })
}
/// An order as v4 held it: no prices, no life.
fn order_v4() -> impl Strategy<Value = Order> {
    (
        order_without_creator(),
        creator(),
        prop::option::of(trace()),
    )
        .prop_map(|(o, created_by, routing)| Order {
            created_by,
            routing: routing.map(std::sync::Arc::new),
            ..o
        })
}
fn order_without_creator() -> impl Strategy<Value = Order> {
    (
        any::<u64>(),
        channel(),
        customer(),
        (location(), prop::option::of("[A-Z]{2}")),
        prop::collection::vec((sku(), any::<u64>(), prop::option::of(any::<u64>())), 0..4),
        prop::collection::vec(
            (wh(), prop::collection::vec((sku(), any::<u64>()), 0..3)),
            0..3,
        ),
        any::<bool>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(id, channel, customer, (location, country), lines, shipments, cancelled, c, u)| {
                Order {
                    id: OrderId(id),
                    channel,
                    customer,
                    ship_to: ShipTo { location, country },
                    lines: lines
                        .into_iter()
                        .map(|(sku, qty, r)| OrderLine {
                            sku,
                            qty,
                            reservation: r.map(HoldId),
                            unit_price: None,
                        })
                        .collect(),
                    shipments: shipments
                        .into_iter()
                        .map(|(warehouse, lines)| Shipment { warehouse, lines })
                        .collect(),
                    status: if cancelled {
                        OrderStatus::Cancelled
                    } else {
                        OrderStatus::Placed
                    },
                    created_at: c,
                    updated_at: u,
                    created_by: None,
                    routing: None,
                    life: Default::default(),
                }
            },
        )
}
/// An allocation as v4 held it: nothing shipped.
fn allocation_v4() -> impl Strategy<Value = SkuAllocation> {
    (
        sku(),
        customer(),
        prop::collection::vec((wh(), any::<u64>()), 0..3),
        prop::collection::vec(any::<u64>(), 0..3),
    )
        .prop_map(|(sku, customer, lines, holds)| SkuAllocation {
            sku,
            customer,
            lines,
            consumed_holds: holds.into_iter().map(HoldId).collect(),
            shipped: 0,
            step: 0,
        })
}

/// An allocation, some of it shipped.
fn allocation() -> impl Strategy<Value = SkuAllocation> {
    (allocation_v4(), any::<u64>()).prop_map(|(a, shipped)| SkuAllocation { shipped, ..a })
}
fn sku_qtys() -> impl Strategy<Value = Vec<(SkuId, u64)>> {
    prop::collection::vec((sku(), any::<u64>()), 0..3)
}
fn fulfillment_id() -> impl Strategy<Value = FulfillmentId> {
    (any::<u64>(), any::<u32>()).prop_map(|(o, n)| FulfillmentId {
        order: OrderId(o),
        n,
    })
}
fn return_id() -> impl Strategy<Value = ReturnId> {
    (any::<u64>(), any::<u32>()).prop_map(|(o, n)| ReturnId {
        order: OrderId(o),
        n,
    })
}
fn command() -> impl Strategy<Value = Command> {
    prop::sample::select(Command::ALL)
}
fn payment_kind() -> impl Strategy<Value = PaymentKind> {
    prop::sample::select(PaymentKind::ALL)
}
fn reference() -> impl Strategy<Value = PaymentReference> {
    "[A-Za-z0-9_-]{1,16}".prop_map(|r| PaymentReference::parse(&r).unwrap())
}
fn hold_reason() -> impl Strategy<Value = HoldReason> {
    "[a-z_]{1,20}".prop_map(|r| HoldReason::parse(&r).unwrap())
}
fn parcel() -> impl Strategy<Value = Parcel> {
    (text(), text(), sku_qtys(), any::<u64>()).prop_map(|(carrier, tracking, lines, at)| Parcel {
        carrier,
        tracking,
        lines,
        at,
    })
}
fn fulfillment() -> impl Strategy<Value = Fulfillment> {
    (
        fulfillment_id(),
        wh(),
        prop::sample::select(vec![
            FulfillmentStage::Pending,
            FulfillmentStage::Accepted,
            FulfillmentStage::Picked,
            FulfillmentStage::Packed,
            FulfillmentStage::Rejected,
        ]),
        prop::collection::vec((sku(), any::<[u64; 4]>()), 0..3),
        prop::collection::vec(parcel(), 0..2),
        prop::option::of(text()),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(id, warehouse, stage, lines, parcels, reason, created_at, updated_at)| Fulfillment {
                id,
                warehouse,
                stage,
                lines: lines
                    .into_iter()
                    .map(|(k, [ordered, cancelled, shipped, delivered])| {
                        (
                            k,
                            FulfillmentLine {
                                ordered,
                                cancelled,
                                shipped,
                                delivered,
                            },
                        )
                    })
                    .collect(),
                parcels,
                reason,
                created_at,
                updated_at,
            },
        )
}
fn a_return() -> impl Strategy<Value = Return> {
    (
        return_id(),
        prop::sample::select(ReturnStatus::ALL),
        text(),
        sku_qtys(),
        sku_qtys(),
        prop::option::of(wh()),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(id, status, reason, lines, received, restocked_to, created_at, updated_at)| Return {
                id,
                status,
                reason,
                lines,
                received,
                restocked_to,
                created_at,
                updated_at,
            },
        )
}
/// A payment book as the order's actor builds it: effects applied one
/// after the other (a reference used twice changes nothing), maybe expired.
fn payment_book() -> impl Strategy<Value = PaymentBook> {
    (
        prop::collection::vec(
            (payment_kind(), any::<u64>(), reference(), any::<u64>()),
            0..6,
        ),
        any::<bool>(),
    )
        .prop_map(|(effects, expire)| {
            let mut book = PaymentBook::new();
            for (kind, amount, reference, at) in effects {
                book.apply(&PaymentEffect {
                    kind,
                    amount,
                    reference,
                    at,
                });
            }
            if expire {
                book.expire();
            }
            book
        })
}
fn life() -> impl Strategy<Value = Life> {
    (
        prop::option::of("[A-Z]{3}".prop_map(|c| Currency::parse(&c).unwrap())),
        any::<bool>(),
        prop::option::of(any::<u64>()),
        payment_book(),
        prop::option::of(hold_reason()),
        prop::collection::btree_map(sku(), any::<u64>(), 0..3),
        prop::collection::vec(fulfillment(), 0..3),
        prop::collection::vec(a_return(), 0..2),
    )
        .prop_map(
            |(
                currency,
                payment_required,
                pay_by,
                payments,
                hold,
                cancelled,
                fulfillments,
                returns,
            )| {
                Life {
                    currency,
                    payment_required,
                    routed_at: pay_by.unwrap_or(7),
                    pay_by,
                    payments,
                    hold,
                    cancelled,
                    fulfillments,
                    returns,
                    steps: 0,
                }
            },
        )
}
/// An order with everything v5 holds: prices and a life.
fn order() -> impl Strategy<Value = Order> {
    (
        order_v4(),
        prop::collection::vec(prop::option::of(any::<u64>()), 4),
        life(),
    )
        .prop_map(|(mut o, prices, life)| {
            for (line, price) in o.lines.iter_mut().zip(prices) {
                line.unit_price = price;
            }
            Order { life, ..o }
        })
}
/// The events v5 adds.
fn life_event() -> impl Strategy<Value = Event> {
    let order = || any::<u64>().prop_map(OrderId);
    prop_oneof![
        (
            order(),
            payment_kind(),
            any::<u64>(),
            reference(),
            any::<u64>()
        )
            .prop_map(|(order, kind, amount, reference, at)| Event::OrderPayment {
                order,
                effect: PaymentEffect {
                    kind,
                    amount,
                    reference,
                    at
                },
            }),
        (order(), prop::option::of(hold_reason()), any::<u64>())
            .prop_map(|(order, reason, at)| Event::OrderHoldSet { order, reason, at }),
        (
            order(),
            prop::collection::vec((fulfillment_id(), wh(), sku(), any::<u64>()), 0..3),
            text(),
            any::<bool>(),
            any::<u64>()
        )
            .prop_map(
                |(order, units, reason, expired, at)| Event::OrderLinesCancelled {
                    order,
                    units: units
                        .into_iter()
                        .map(|(fulfillment, warehouse, sku, qty)| CancelledUnits {
                            fulfillment,
                            warehouse,
                            sku,
                            qty,
                        })
                        .collect(),
                    reason,
                    expired,
                    at,
                    step: 0,
                }
            ),
        (
            order(),
            fulfillment_id(),
            command(),
            prop::option::of(text()),
            any::<u64>()
        )
            .prop_map(|(order, fulfillment, command, reason, at)| {
                Event::FulfillmentStaged {
                    order,
                    fulfillment,
                    command,
                    reason,
                    at,
                }
            }),
        (order(), fulfillment_id(), wh(), parcel()).prop_map(
            |(order, fulfillment, warehouse, parcel)| Event::FulfillmentShipped {
                order,
                fulfillment,
                warehouse,
                parcel,
                step: 0,
            }
        ),
        (order(), fulfillment_id(), sku_qtys(), any::<u64>()).prop_map(
            |(order, fulfillment, lines, at)| Event::FulfillmentDelivered {
                order,
                fulfillment,
                lines,
                at,
            }
        ),
        (order(), return_id(), sku_qtys(), text(), any::<u64>()).prop_map(
            |(order, ret, lines, reason, at)| Event::ReturnRequested {
                order,
                ret,
                lines,
                reason,
                at,
            }
        ),
        (
            order(),
            return_id(),
            sku_qtys(),
            prop::option::of(wh()),
            any::<u64>()
        )
            .prop_map(|(order, ret, lines, restock, at)| Event::ReturnReceived {
                order,
                ret,
                lines,
                restock,
                at,
                step: 0,
            }),
        (order(), return_id(), command(), any::<u64>()).prop_map(|(order, ret, command, at)| {
            Event::ReturnSettled {
                order,
                ret,
                command,
                at,
            }
        }),
        (order(), idem(), 0u8..3, any::<u32>()).prop_map(|(order, key, k, n)| {
            Event::LifeKeyUsed {
                order,
                key,
                target: life_target(order, k, n),
            }
        }),
    ]
}

/// A lifecycle key's target on `order`: `k` 0 the order, 1 a fulfilment,
/// 2 a return (number `n`).
fn life_target(order: OrderId, k: u8, n: u32) -> LifeTarget {
    match k {
        0 => LifeTarget::Order,
        1 => LifeTarget::Fulfillment(FulfillmentId { order, n }),
        _ => LifeTarget::Return(ReturnId { order, n }),
    }
}

/// Every variant of the core's `Event`.
fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        8 => old_event(),
        9 => life_event(),
        2 => (
            order(),
            prop::collection::vec(allocation(), 0..3),
            prop::option::of(idem())
        )
            .prop_map(|(order, allocations, idempotency)| Event::OrderPlaced {
                order,
                allocations,
                idempotency,
            }),
        1 => (prop::option::of(channel()), prop::option::of(chain()), any::<u64>())
            .prop_map(|(channel, chain, at)| Event::RoutingRulesSet { channel, chain, at }),
        1 => (
            any::<u64>(),
            prop::collection::vec(allocation(), 0..3),
            prop::collection::vec(allocation(), 0..3),
            prop::collection::vec(
                (wh(), prop::collection::vec((sku(), any::<u64>()), 0..3)),
                0..3,
            ),
            trace(),
            text(),
            any::<u64>(),
        )
            .prop_map(|(o, from, to, shipments, routing, reason, at)| Event::OrderRerouted {
                order: OrderId(o),
                from,
                to,
                shipments: shipments
                    .into_iter()
                    .map(|(warehouse, lines)| Shipment { warehouse, lines })
                    .collect(),
                routing: std::sync::Arc::new(routing),
                reason,
                at,
            }),
    ]
}

/// Every variant of the core's `Event` that formats before v4 have, with
/// the values those formats hold (no prices, life or shipped units).
fn old_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        warehouse().prop_map(|warehouse| Event::WarehouseUpserted { warehouse }),
        (
            sku(),
            prop::option::of(text()),
            prop::option::of(any::<u64>())
        )
            .prop_map(|(sku, name, per_customer_limit)| Event::SkuUpserted {
                sku,
                name,
                per_customer_limit
            }),
        (sku(), wh(), any::<i64>(), text()).prop_map(|(sku, warehouse, delta, reason)| {
            Event::StockAdjusted {
                sku,
                warehouse,
                delta,
                reason,
            }
        }),
        (sku(), wh(), any::<u64>(), text()).prop_map(|(sku, warehouse, safety_stock, reason)| {
            Event::SafetyStockSet {
                sku,
                warehouse,
                safety_stock,
                reason,
            }
        }),
        (hold(), prop::option::of(idem()))
            .prop_map(|(hold, idempotency)| Event::HoldCreated { hold, idempotency }),
        (sku(), any::<u64>(), any::<u64>()).prop_map(|(sku, h, expires_at)| {
            Event::HoldExtended {
                sku,
                hold: HoldId(h),
                expires_at,
            }
        }),
        (sku(), any::<u64>(), any::<bool>(), any::<u64>()).prop_map(|(sku, h, expired, at)| {
            Event::HoldReleased {
                sku,
                hold: HoldId(h),
                reason: if expired {
                    ReleaseReason::Expired
                } else {
                    ReleaseReason::Released
                },
                at,
            }
        }),
        (
            order_v4(),
            prop::collection::vec(allocation_v4(), 0..3),
            prop::option::of(idem())
        )
            .prop_map(|(order, allocations, idempotency)| Event::OrderPlaced {
                order,
                allocations,
                idempotency,
            }),
        (
            any::<u64>(),
            prop::collection::vec(sku(), 0..3),
            text(),
            any::<u64>()
        )
            .prop_map(|(o, skus, reason, at)| Event::OrderCancelled {
                order: OrderId(o),
                skus,
                reason,
                at,
            }),
    ]
}

/// A core value as the first release's types hold it (test-only: the
/// server never writes v1).
mod to_v1 {
    use super::super::v1;
    use crate::core;
    use crate::projection;

    fn s(v: &str) -> String {
        v.to_owned()
    }
    fn sku(v: &core::SkuId) -> v1::SkuId {
        v1::SkuId(s(v.as_str()))
    }
    fn wh(v: &core::WarehouseId) -> v1::WarehouseId {
        v1::WarehouseId(s(v.as_str()))
    }
    fn cust(v: &core::CustomerId) -> v1::CustomerId {
        v1::CustomerId(s(v.as_str()))
    }
    fn loc(l: &core::Location) -> v1::Location {
        v1::Location {
            lat: l.lat,
            lon: l.lon,
        }
    }
    pub fn warehouse(w: &core::Warehouse) -> v1::Warehouse {
        v1::Warehouse {
            id: wh(&w.id),
            name: w.name.clone(),
            location: loc(&w.location),
            priority: w.priority,
        }
    }
    pub fn hold(h: &core::Hold) -> v1::Hold {
        v1::Hold {
            id: v1::HoldId(h.id.0),
            sku: sku(&h.sku),
            warehouse: wh(&h.warehouse),
            qty: h.qty,
            customer: h.customer.as_ref().map(cust),
            channel: h.channel.as_ref().map(|c| v1::ChannelId(s(c.as_str()))),
            created_at: h.created_at,
            expires_at: h.expires_at,
        }
    }
    pub fn order(o: &core::Order) -> v1::Order {
        v1::Order {
            id: v1::OrderId(o.id.0),
            channel: v1::ChannelId(s(o.channel.as_str())),
            customer: cust(&o.customer),
            ship_to: v1::ShipTo {
                location: loc(&o.ship_to.location),
                country: o.ship_to.country.clone(),
            },
            lines: o
                .lines
                .iter()
                .map(|l| v1::OrderLine {
                    sku: sku(&l.sku),
                    qty: l.qty,
                    reservation: l.reservation.map(|h| v1::HoldId(h.0)),
                })
                .collect(),
            shipments: o
                .shipments
                .iter()
                .map(|sh| v1::Shipment {
                    warehouse: wh(&sh.warehouse),
                    lines: sh.lines.iter().map(|(k, q)| (sku(k), *q)).collect(),
                })
                .collect(),
            status: match o.status {
                core::OrderStatus::Placed => v1::OrderStatus::Placed,
                core::OrderStatus::Cancelled => v1::OrderStatus::Cancelled,
            },
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
    pub fn allocation(a: &core::SkuAllocation) -> v1::SkuAllocation {
        v1::SkuAllocation {
            sku: sku(&a.sku),
            customer: cust(&a.customer),
            lines: a.lines.iter().map(|(w, q)| (wh(w), *q)).collect(),
            consumed_holds: a.consumed_holds.iter().map(|h| v1::HoldId(h.0)).collect(),
        }
    }
    fn idem(r: &core::IdempotencyRecord) -> v1::IdempotencyRecord {
        v1::IdempotencyRecord {
            key: r.key.clone(),
            request_hash: r.request_hash,
            at: r.at,
        }
    }
    pub fn event(e: &core::Event) -> v1::Event {
        match e {
            core::Event::WarehouseUpserted { warehouse: w } => v1::Event::WarehouseUpserted {
                warehouse: warehouse(w),
            },
            core::Event::SkuUpserted {
                sku: k,
                name,
                per_customer_limit,
            } => v1::Event::SkuUpserted {
                sku: sku(k),
                name: name.clone(),
                per_customer_limit: *per_customer_limit,
            },
            core::Event::StockAdjusted {
                sku: k,
                warehouse: w,
                delta,
                reason,
            } => v1::Event::StockAdjusted {
                sku: sku(k),
                warehouse: wh(w),
                delta: *delta,
                reason: reason.clone(),
            },
            core::Event::SafetyStockSet {
                sku: k,
                warehouse: w,
                safety_stock,
                reason,
            } => v1::Event::SafetyStockSet {
                sku: sku(k),
                warehouse: wh(w),
                safety_stock: *safety_stock,
                reason: reason.clone(),
            },
            core::Event::HoldCreated {
                hold: h,
                idempotency,
            } => v1::Event::HoldCreated {
                hold: hold(h),
                idempotency: idempotency.as_ref().map(idem),
            },
            core::Event::HoldExtended {
                sku: k,
                hold,
                expires_at,
            } => v1::Event::HoldExtended {
                sku: sku(k),
                hold: v1::HoldId(hold.0),
                expires_at: *expires_at,
            },
            core::Event::HoldReleased {
                sku: k,
                hold,
                reason,
                at,
            } => v1::Event::HoldReleased {
                sku: sku(k),
                hold: v1::HoldId(hold.0),
                reason: match reason {
                    core::ReleaseReason::Released => v1::ReleaseReason::Released,
                    core::ReleaseReason::Expired => v1::ReleaseReason::Expired,
                },
                at: *at,
            },
            core::Event::OrderPlaced {
                order: o,
                allocations,
                idempotency,
            } => v1::Event::OrderPlaced {
                order: order(o),
                allocations: allocations.iter().map(allocation).collect(),
                idempotency: idempotency.as_ref().map(idem),
            },
            core::Event::OrderCancelled {
                order,
                skus,
                reason,
                at,
            } => v1::Event::OrderCancelled {
                order: v1::OrderId(order.0),
                skus: skus.iter().map(sku).collect(),
                reason: reason.clone(),
                at: *at,
            },
            other => unreachable!("v1 has no {} event", other.kind()),
        }
    }
    /// The whole in-memory state, derived indexes included, as v1 kept it.
    pub fn sku_state(st: &core::SkuState) -> v1::SkuState {
        let mut expiries: Vec<(u64, v1::HoldId)> = st
            .holds()
            .map(|h| (h.expires_at, v1::HoldId(h.id.0)))
            .collect();
        expiries.sort_by_key(|(t, h)| (*t, h.0));
        v1::SkuState {
            sku: sku(&st.sku),
            name: st.name.clone(),
            per_customer_limit: st.per_customer_limit,
            rows: st
                .rows
                .iter()
                .map(|(w, r)| {
                    (
                        wh(w),
                        v1::StockRow {
                            on_hand: r.on_hand,
                            reserved: r.reserved,
                            allocated: r.allocated,
                            safety_stock: r.safety_stock,
                        },
                    )
                })
                .collect(),
            holds: st.holds().map(|h| (v1::HoldId(h.id.0), hold(&h))).collect(),
            expiries,
            usage: st.usage.iter().map(|(c, q)| (cust(c), *q)).collect(),
            allocations: st
                .allocations
                .iter()
                .map(|(o, a)| (v1::OrderId(o.0), allocation(a)))
                .collect(),
        }
    }
    pub fn hold_record(h: &projection::HoldRecord) -> v1::HoldRecord {
        v1::HoldRecord {
            hold: hold(&h.hold),
            status: match h.status {
                core::HoldStatus::Active => v1::HoldStatus::Active,
                core::HoldStatus::Released => v1::HoldStatus::Released,
                core::HoldStatus::Expired => v1::HoldStatus::Expired,
                core::HoldStatus::Consumed => v1::HoldStatus::Consumed,
            },
            order: h.order.map(|o| v1::OrderId(o.0)),
            closed_at: h.closed_at,
        }
    }
}

/// What a format without routing (v1, v2, v3) holds of `e`.
fn without_routing(e: Event) -> Event {
    match e {
        Event::WarehouseUpserted { warehouse } => Event::WarehouseUpserted {
            warehouse: Warehouse {
                routing: WarehouseRouting::default(),
                ..warehouse
            },
        },
        Event::OrderPlaced {
            order,
            allocations,
            idempotency,
        } => Event::OrderPlaced {
            order: Order {
                routing: None,
                ..order
            },
            allocations,
            idempotency,
        },
        other => other,
    }
}

/// What a format without creators (v1, v2) holds of `e`; nor routing.
fn without_creator(e: Event) -> Event {
    match without_routing(e) {
        Event::HoldCreated { hold, idempotency } => Event::HoldCreated {
            hold: Hold {
                created_by: None,
                ..hold
            },
            idempotency,
        },
        Event::OrderPlaced {
            order,
            allocations,
            idempotency,
        } => Event::OrderPlaced {
            order: Order {
                created_by: None,
                ..order
            },
            allocations,
            idempotency,
        },
        other => other,
    }
}

/// What reading an order written before v5 gives: no prices; the
/// fulfilments placement makes from its shipments; if it was cancelled,
/// every unit cancelled.
fn upcast(o: Order) -> Order {
    let mut fulfillments =
        crate::core::lifecycle::life::fulfillments_at_placement(o.id, &o.shipments, o.created_at);
    let mut cancelled = std::collections::BTreeMap::new();
    if o.status == OrderStatus::Cancelled {
        for f in &mut fulfillments {
            for (_, l) in &mut f.lines {
                l.cancelled = l.ordered;
            }
        }
        for l in &o.lines {
            let units: &mut u64 = cancelled.entry(l.sku.clone()).or_default();
            *units = units.saturating_add(l.qty);
        }
    }
    Order {
        lines: o
            .lines
            .iter()
            .map(|l| OrderLine {
                unit_price: None,
                ..l.clone()
            })
            .collect(),
        life: Life {
            cancelled,
            fulfillments,
            routed_at: o.updated_at,
            ..Life::default()
        },
        ..o
    }
}

/// What reading `e` written before v5 gives.
fn upcast_event(e: Event) -> Event {
    match e {
        Event::OrderPlaced {
            order,
            allocations,
            idempotency,
        } => Event::OrderPlaced {
            order: upcast(order),
            allocations,
            idempotency,
        },
        other => other,
    }
}

/// `[version][crc32 of version and payload]`, then the payload: v2's
/// framing (and v3's).
fn framed_as(version: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = crc32fast::Hasher::new();
    h.update(&[version]);
    h.update(payload);
    let mut out = vec![version];
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// A v2 record of `events`, as a v2 build wrote it.
fn v2_record(first_seq: u64, events: &[Event]) -> Vec<u8> {
    let disk: Vec<v2::Event> = events.iter().map(v2::Event::from).collect();
    let bodies: Vec<Vec<u8>> = disk
        .iter()
        .map(|e| {
            let mut b = Vec::new();
            e.write(&mut b).unwrap();
            b
        })
        .collect();
    let payload = postcard::to_stdvec(&v2::Record {
        first_seq,
        events: disk
            .iter()
            .zip(&bodies)
            .map(|(e, b)| v2::Tagged {
                kind: e.kind(),
                body: b,
            })
            .collect(),
    })
    .unwrap();
    framed_as(2, &payload)
}

/// A v3 record of `events`, as a v3 build wrote it.
fn v3_record(first_seq: u64, events: &[Event]) -> Vec<u8> {
    let disk: Vec<v3::Event> = events.iter().map(v3::Event::from).collect();
    let bodies: Vec<Vec<u8>> = disk
        .iter()
        .map(|e| {
            let mut b = Vec::new();
            e.write(&mut b).unwrap();
            b
        })
        .collect();
    let payload = postcard::to_stdvec(&v2::Record {
        first_seq,
        events: disk
            .iter()
            .zip(&bodies)
            .map(|(e, b)| v2::Tagged {
                kind: e.kind(),
                body: b,
            })
            .collect(),
    })
    .unwrap();
    framed_as(3, &payload)
}

/// A v4 record of `events`, as a v4 build wrote it.
fn v4_record(first_seq: u64, events: &[Event]) -> Vec<u8> {
    let disk: Vec<v4::Event> = events.iter().map(v4::Event::from).collect();
    let bodies: Vec<Vec<u8>> = disk
        .iter()
        .map(|e| {
            let mut b = Vec::new();
            e.write(&mut b).unwrap();
            b
        })
        .collect();
    let payload = postcard::to_stdvec(&v2::Record {
        first_seq,
        events: disk
            .iter()
            .zip(&bodies)
            .map(|(e, b)| v2::Tagged {
                kind: e.kind(),
                body: b,
            })
            .collect(),
    })
    .unwrap();
    framed_as(4, &payload)
}

/// A v5 record of `events`, as a v5 build wrote it.
fn v5_record(first_seq: u64, events: &[Event]) -> Vec<u8> {
    let disk: Vec<v5::Event> = events.iter().map(v5::Event::from).collect();
    let bodies: Vec<Vec<u8>> = disk
        .iter()
        .map(|e| {
            let mut b = Vec::new();
            e.write(&mut b).unwrap();
            b
        })
        .collect();
    let payload = postcard::to_stdvec(&v2::Record {
        first_seq,
        events: disk
            .iter()
            .zip(&bodies)
            .map(|(e, b)| v2::Tagged {
                kind: e.kind(),
                body: b,
            })
            .collect(),
    })
    .unwrap();
    framed_as(5, &payload)
}

/// A v1 record: `[1][crc32 of the payload]`, then v1's payload.
fn v1_record(first_seq: u64, events: &[Event]) -> Vec<u8> {
    let payload = postcard::to_stdvec(&v1::Record {
        first_seq,
        events: events.iter().map(to_v1::event).collect(),
    })
    .unwrap();
    let mut out = vec![1];
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_event_round_trips(first_seq in any::<u64>(), events in prop::collection::vec(event(), 0..12)) {
        // core -> on-disk -> core
        for e in &events {
            let disk = v6::Event::from(e);
            let mut body = Vec::new();
            disk.write(&mut body).unwrap();
            let back = v6::Event::read(disk.kind(), &body).unwrap();
            prop_assert_eq!(&back, &disk);
            prop_assert_eq!(&Event::try_from(back).unwrap(), e);
        }
        // ... and as a whole framed record.
        let refs: Vec<&Event> = events.iter().collect();
        let bytes = record::encode(first_seq, &refs).unwrap();
        prop_assert_eq!(bytes[0], CURRENT);
        let rec = record::decode(&bytes).unwrap();
        prop_assert_eq!(rec.first_seq, first_seq);
        prop_assert_eq!(rec.events, events);
    }

    /// v2 logs (written before creators) keep loading: every event as it
    /// was, with no creator.
    #[test]
    fn v2_bytes_read_as_the_values_they_were_written_from_without_creators(first_seq in any::<u64>(), events in prop::collection::vec(old_event(), 0..12)) {
        let rec = record::decode(&v2_record(first_seq, &events)).unwrap();
        prop_assert_eq!(rec.first_seq, first_seq);
        let want: Vec<Event> = events.into_iter().map(without_creator).map(upcast_event).collect();
        prop_assert_eq!(rec.events, want);
    }

    /// v2 snapshot chunks: hold records and orders with no creator.
    #[test]
    fn v2_snapshot_chunks_read_without_creators(hold in hold(), o in order_v4()) {
        let record = HoldRecord { hold: hold.clone(), status: HoldStatus::Active, order: None, closed_at: None };
        let entries = [v2::SnapEntry::Hold((&record).into()), v2::SnapEntry::Order((&o).into())];
        let bodies: Vec<Vec<u8>> = entries.iter().map(|e| { let mut b = Vec::new(); e.write(&mut b).unwrap(); b }).collect();
        let payload = postcard::to_stdvec(&v2::Chunk {
            entries: entries.iter().zip(&bodies).map(|(e, b)| v2::Tagged { kind: e.kind(), body: b }).collect(),
        }).unwrap();
        let mut back = Vec::new();
        let mut assembler = Assembler::default();
        let n = read_chunk(2, &payload, &mut |e| assembler.push(e, &mut |x| back.push(x))).unwrap();
        assembler.finish(&mut |x| back.push(x)).unwrap();
        prop_assert_eq!(n, 2);
        prop_assert_eq!(back, vec![
            SnapEntry::Hold(HoldRecord { hold: Hold { created_by: None, ..hold }, ..record }),
            SnapEntry::Order(upcast(Order { created_by: None, routing: None, ..o })),
        ]);
    }

    /// v3 logs (written before routing) keep loading: warehouses with the
    /// default attributes, orders without a trace, creators kept.
    #[test]
    fn v3_bytes_read_as_the_values_they_were_written_from_without_routing(first_seq in any::<u64>(), events in prop::collection::vec(old_event(), 0..12)) {
        let rec = record::decode(&v3_record(first_seq, &events)).unwrap();
        prop_assert_eq!(rec.first_seq, first_seq);
        let want: Vec<Event> = events.into_iter().map(without_routing).map(upcast_event).collect();
        prop_assert_eq!(rec.events, want);
    }

    /// v3 snapshot chunks: warehouses with the default attributes, orders
    /// without a trace.
    #[test]
    fn v3_snapshot_chunks_read_without_routing(w in warehouse(), o in order_v4()) {
        let entries = [
            v3::SnapEntry::Same(v2::SnapEntry::Warehouse((&w).into())),
            v3::SnapEntry::Order((&o).into()),
        ];
        let bodies: Vec<Vec<u8>> = entries.iter().map(|e| { let mut b = Vec::new(); e.write(&mut b).unwrap(); b }).collect();
        let payload = postcard::to_stdvec(&v2::Chunk {
            entries: entries.iter().zip(&bodies).map(|(e, b)| v2::Tagged { kind: e.kind(), body: b }).collect(),
        }).unwrap();
        let mut back = Vec::new();
        let mut assembler = Assembler::default();
        let n = read_chunk(3, &payload, &mut |e| assembler.push(e, &mut |x| back.push(x))).unwrap();
        assembler.finish(&mut |x| back.push(x)).unwrap();
        prop_assert_eq!(n, 2);
        prop_assert_eq!(back, vec![
            SnapEntry::Warehouse(Warehouse { routing: WarehouseRouting::default(), ..w }),
            SnapEntry::Order(upcast(Order { routing: None, ..o })),
        ]);
    }

    /// v4 logs (written before the lifecycle) keep loading: orders with no
    /// prices, their fulfilments made from their shipments, cancelled ones
    /// with every unit cancelled; allocations with nothing shipped.
    #[test]
    fn v4_bytes_read_with_the_lifecycle_upcast(first_seq in any::<u64>(), events in prop::collection::vec(old_event(), 0..12)) {
        let rec = record::decode(&v4_record(first_seq, &events)).unwrap();
        prop_assert_eq!(rec.first_seq, first_seq);
        let want: Vec<Event> = events.into_iter().map(upcast_event).collect();
        prop_assert_eq!(rec.events, want);
    }

    /// v4 snapshot chunks: orders upcast as in the log, a SKU's live
    /// allocations with nothing shipped.
    #[test]
    fn v4_snapshot_chunks_read_with_the_lifecycle_upcast(state in sku_state(), o in order_v4()) {
        let mut entries = Vec::new();
        v2::sku_entries(&state, &mut |e| entries.push(v4::SnapEntry::Same(v3::SnapEntry::Same(e))));
        entries.push(v4::SnapEntry::Order((&o).into()));
        let bodies: Vec<Vec<u8>> = entries.iter().map(|e| { let mut b = Vec::new(); e.write(&mut b).unwrap(); b }).collect();
        let payload = postcard::to_stdvec(&v2::Chunk {
            entries: entries.iter().zip(&bodies).map(|(e, b)| v2::Tagged { kind: e.kind(), body: b }).collect(),
        }).unwrap();
        let mut back = Vec::new();
        let mut assembler = Assembler::default();
        let n = read_chunk(4, &payload, &mut |e| assembler.push(e, &mut |x| back.push(x))).unwrap();
        assembler.finish(&mut |x| back.push(x)).unwrap();
        prop_assert_eq!(n, entries.len() as u64);
        prop_assert_eq!(back, vec![SnapEntry::Sku(Box::new(state)), SnapEntry::Order(upcast(o))]);
    }

    /// v5 wrote traces by name; they read back (through the compact
    /// upcast) as the very values they were written from.
    #[test]
    fn v5_bytes_read_as_the_values_they_were_written_from(
        first_seq in any::<u64>(),
        events in prop::collection::vec(
            event().prop_filter("v5 has no lifecycle keys", |e| !matches!(e, Event::LifeKeyUsed { .. })),
            0..12,
        ),
    ) {
        let rec = record::decode(&v5_record(first_seq, &events)).unwrap();
        prop_assert_eq!(rec.first_seq, first_seq);
        prop_assert_eq!(rec.events, events);
    }

    /// v5 snapshot chunks: orders (with their traces) and SKUs read back
    /// unchanged.
    #[test]
    fn v5_snapshot_chunks_read_as_the_values_they_were_written_from(state in sku_state(), o in order()) {
        let mut entries = Vec::new();
        v5::sku_entries(&state, &mut |e| entries.push(e));
        entries.push(v5::SnapEntry::Order((&o).into()));
        let bodies: Vec<Vec<u8>> = entries.iter().map(|e| { let mut b = Vec::new(); e.write(&mut b).unwrap(); b }).collect();
        let payload = postcard::to_stdvec(&v2::Chunk {
            entries: entries.iter().zip(&bodies).map(|(e, b)| v2::Tagged { kind: e.kind(), body: b }).collect(),
        }).unwrap();
        let mut back = Vec::new();
        let mut assembler = Assembler::default();
        let n = read_chunk(5, &payload, &mut |e| assembler.push(e, &mut |x| back.push(x))).unwrap();
        assembler.finish(&mut |x| back.push(x)).unwrap();
        prop_assert_eq!(n, entries.len() as u64);
        prop_assert_eq!(back, vec![SnapEntry::Sku(Box::new(state)), SnapEntry::Order(o)]);
    }

    /// A compact trace with any indexes and codes (damaged or not) reads
    /// back to a trace or to an error, never a panic; one whose indexes
    /// and codes are all in range reads back.
    #[test]
    fn a_compact_trace_with_any_indexes_reads_or_is_refused(
        warehouses in prop::collection::vec("[a-z]{1,4}", 0..4),
        skus in prop::collection::vec("[a-z]{1,4}", 0..4),
        rules in prop::collection::vec(0u8..16, 0..4),
        excluded in prop::collection::vec((0u32..6, 0u8..16), 0..3),
        shipments in prop::collection::vec((0u32..6, prop::collection::vec((0u32..6, any::<u64>()), 0..3)), 0..3),
        deciding_rule in prop::option::of(0u8..16),
    ) {
        let in_range = rules.iter().chain(excluded.iter().map(|(_, r)| r)).chain(&deciding_rule).all(|r| *r <= 10)
            && excluded.iter().all(|(w, _)| (*w as usize) < warehouses.len())
            && shipments.iter().all(|(w, lines)| (*w as usize) < warehouses.len() && lines.iter().all(|(k, _)| (*k as usize) < skus.len()));
        let t = v6::Trace {
            warehouses: warehouses.iter().map(|w| std::borrow::Cow::Borrowed(w.as_str())).collect(),
            skus: skus.iter().map(|k| std::borrow::Cow::Borrowed(k.as_str())).collect(),
            rules,
            split: v4::Split::Allow,
            excluded: excluded.into_iter().map(|(warehouse, rule)| v6::Excluded { warehouse, rule }).collect(),
            candidates: vec![v6::PlanTrace {
                shipments: shipments.into_iter().map(|(warehouse, lines)| v6::ShipmentTrace {
                    warehouse, lines, distance_km: None, cost: None, same_day: None,
                }).collect(),
                verdicts: Vec::new(),
            }],
            deciding_rule,
            attempts: 1,
        };
        let bytes = postcard::to_stdvec(&t).unwrap();
        let read: v6::Trace = postcard::from_bytes(&bytes).unwrap();
        let back = RoutingTrace::try_from(read);
        prop_assert_eq!(back.is_ok(), in_range, "{:?}", back);
    }

    #[test]
    fn v1_bytes_read_as_the_values_they_were_written_from(first_seq in any::<u64>(), events in prop::collection::vec(old_event(), 0..12)) {
        // v1 had no creators.
        let events: Vec<Event> = events.into_iter().map(without_creator).collect();
        let rec = record::decode(&v1_record(first_seq, &events)).unwrap();
        prop_assert_eq!(rec.first_seq, first_seq);
        let want: Vec<Event> = events.into_iter().map(upcast_event).collect();
        prop_assert_eq!(rec.events, want);
    }

    #[test]
    fn every_snapshot_entry_round_trips(
        warehouses in prop::collection::vec(warehouse(), 0..3),
        holds in prop::collection::vec((hold(), 0u8..4, prop::option::of(any::<u64>()), prop::option::of(any::<u64>())), 0..4),
        orders in prop::collection::vec(order(), 0..3),
        keys in prop::collection::vec((".{1,30}", any::<[u8; 32]>(), 0u8..5, any::<u64>(), any::<u64>(), any::<u32>()), 0..4),
        skus in prop::collection::vec(sku_state(), 0..3),
        chunk_bytes in 64usize..2048,
        counters in (any::<u64>(), any::<u64>()),
        chains in prop::collection::vec((prop::option::of(channel()), chain()), 0..3),
    ) {
        let mut entries: Vec<SnapEntry> = Vec::new();
        entries.push(SnapEntry::IdCounters { max_hold: counters.0, max_order: counters.1 });
        entries.extend(warehouses.into_iter().map(SnapEntry::Warehouse));
        entries.extend(skus.into_iter().map(|s| SnapEntry::Sku(Box::new(s))));
        entries.extend(holds.into_iter().map(|(hold, st, order, closed_at)| SnapEntry::Hold(HoldRecord {
            hold,
            status: [HoldStatus::Active, HoldStatus::Released, HoldStatus::Expired, HoldStatus::Consumed][st as usize],
            order: order.map(OrderId),
            closed_at,
        })));
        entries.extend(orders.into_iter().map(SnapEntry::Order));
        entries.extend(keys.into_iter().map(|(k, request_hash, kind, id, at, n)| SnapEntry::Idempotency(k, IdemEntry {
            request_hash,
            target: match kind {
                0 => IdemTarget::Hold(HoldId(id)),
                1 => IdemTarget::Order(OrderId(id)),
                k => IdemTarget::Life(OrderId(id), life_target(OrderId(id), k - 2, n)),
            },
            at,
        })));
        entries.extend(chains.into_iter().map(|(channel, chain)| SnapEntry::RoutingRules { channel, chain }));
        // Through bytes, in chunks as small as `chunk_bytes`, so SKUs
        // split over several.
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        let mut builder = ChunkBuilder::default();
        let mut body = Vec::new();
        let mut written = 0u64;
        for e in &entries {
            entries_of(e, &mut |entry| {
                let kind = ChunkBuilder::encode(&entry, &mut body).unwrap();
                if !builder.is_empty() && builder.bytes_with(body.len()) > chunk_bytes {
                    chunks.push(record::framed(|out| builder.finish(out)).unwrap());
                }
                builder.push(kind, &body);
                written += 1;
            });
        }
        if !builder.is_empty() {
            chunks.push(record::framed(|out| builder.finish(out)).unwrap());
        }
        let mut back: Vec<SnapEntry> = Vec::new();
        let mut assembler = Assembler::default();
        let mut read = 0u64;
        for c in &chunks {
            let (version, payload) = record::unframe(c).unwrap();
            prop_assert_eq!(version, CURRENT);
            read += read_chunk(version, payload, &mut |e| assembler.push(e, &mut |x| back.push(x))).unwrap();
        }
        assembler.finish(&mut |x| back.push(x)).unwrap();
        prop_assert_eq!(read, written);
        prop_assert_eq!(back, entries);
    }

    #[test]
    fn a_sku_rebuilt_from_facts_equals_the_one_built_by_events(state in sku_state()) {
        let facts = crate::core::sku::SkuFacts {
            sku: state.sku.clone(),
            name: state.name.clone(),
            per_customer_limit: state.per_customer_limit,
            rows: state.rows.iter().map(|(w, r)| (w.clone(), crate::core::sku::RowFacts {
                on_hand: r.on_hand,
                allocated: r.allocated,
                safety_stock: r.safety_stock,
            })).collect(),
            holds: state.holds().collect(),
            allocations: state.allocations.iter().map(|(o, a)| (*o, a.clone())).collect(),
            incoming: state.incoming.clone(),
        };
        prop_assert_eq!(crate::core::SkuState::from_facts(facts).unwrap(), state);
    }

    #[test]
    fn v1_snapshot_chunks_read_as_facts(state in sku_state(), hold in hold_without_creator(), o in order_without_creator()) {
        // A v1 chunk: a SKU's whole in-memory state, derived indexes
        // included, as the first release wrote it.
        let record = HoldRecord { hold: hold.clone(), status: HoldStatus::Consumed, order: Some(o.id), closed_at: Some(7) };
        let v1_chunk = postcard::to_stdvec(&vec![
            v1::SnapEntry::Sku(Box::new(to_v1::sku_state(&state))),
            v1::SnapEntry::Hold(to_v1::hold_record(&record)),
            v1::SnapEntry::Order(to_v1::order(&o)),
        ]).unwrap();
        let mut back = Vec::new();
        let mut assembler = Assembler::default();
        let n = read_chunk(1, &v1_chunk, &mut |e| assembler.push(e, &mut |x| back.push(x))).unwrap();
        assembler.finish(&mut |x| back.push(x)).unwrap();
        prop_assert_eq!(n, 3);
        prop_assert_eq!(back, vec![
            SnapEntry::Sku(Box::new(state)),
            SnapEntry::Hold(HoldRecord { hold, status: HoldStatus::Consumed, order: Some(o.id), closed_at: Some(7) }),
            SnapEntry::Order(upcast(o)),
        ]);
    }
}

/// A SKU's state as the core builds it: rows, holds reserved (some
/// released), orders placed from free stock and from holds (some
/// cancelled), all through decide/apply.
fn sku_state() -> impl Strategy<Value = crate::core::SkuState> {
    (
        ident(),
        prop::option::of(1u64..20),
        prop::collection::vec(50u64..200, 1..4),
        prop::collection::vec(
            (1u64..5, prop::option::of(0u8..3), 1u64..1000, any::<bool>()),
            0..12,
        ),
        prop::collection::vec(
            (0u8..3, 1u64..4, prop::option::of(0usize..12), any::<bool>()),
            0..6,
        ),
    )
        .prop_map(|(name, limit, rows, holds, orders)| {
            let sku = SkuId::parse(&name).unwrap();
            let whs: Vec<WarehouseId> = (0..rows.len())
                .map(|i| WarehouseId::parse(&format!("w{i}")).unwrap())
                .collect();
            let cust = |c: u8| CustomerId::parse(&format!("c{c}")).unwrap();
            let mut s = crate::core::SkuState::new(sku.clone());
            s.apply(&s.upsert(Some(name), limit));
            for (w, q) in whs.iter().zip(&rows) {
                s.apply(&Event::StockAdjusted {
                    sku: sku.clone(),
                    warehouse: w.clone(),
                    delta: *q as i64,
                    reason: "r".into(),
                });
                s.apply(&Event::SafetyStockSet {
                    sku: sku.clone(),
                    warehouse: w.clone(),
                    safety_stock: q % 7,
                    reason: "r".into(),
                });
            }
            let mut ids = Vec::new();
            for (i, (qty, c, ttl, release)) in holds.into_iter().enumerate() {
                let id = HoldId(i as u64 + 1);
                let cmd = ReserveCmd {
                    id,
                    qty,
                    customer: c.map(cust),
                    channel: None,
                    now: 10,
                    expires_at: 10 + ttl,
                    idempotency: None,
                    created_by: None,
                    require_customer: false,
                };
                if let Ok(e) = s.decide_reserve(cmd, &whs) {
                    s.apply(&e);
                    if release {
                        let e = s.decide_release(id, 11).unwrap();
                        s.apply(&e);
                    } else {
                        ids.push(id);
                    }
                }
            }
            for (i, (c, qty, h, cancel)) in orders.into_iter().enumerate() {
                let mut lines = vec![LineRequest { qty, hold: None }];
                if let Some(h) = h.and_then(|h| ids.get(h)) {
                    lines.push(LineRequest {
                        qty: 1,
                        hold: Some(*h),
                    });
                }
                let Ok(p) = s.prepare_order(&cust(c), &lines, &whs, 10) else {
                    continue;
                };
                let id = OrderId(i as u64 + 1);
                let mut order = crate::core::order::build(
                    crate::core::order::NewOrder {
                        id,
                        channel: ChannelId::parse("web").unwrap(),
                        customer: cust(c),
                        ship_to: ShipTo {
                            location: Location { lat: 0.0, lon: 0.0 },
                            country: None,
                        },
                        lines: Vec::new(),
                        now: 10,
                        created_by: None,
                        currency: None,
                        payment_required: false,
                        pay_by: None,
                    },
                    std::slice::from_ref(&p.allocation),
                );
                order.lines = vec![OrderLine {
                    sku: sku.clone(),
                    qty,
                    reservation: None,
                    unit_price: None,
                }];
                ids.retain(|h| !p.allocation.consumed_holds.contains(h));
                s.apply(&Event::OrderPlaced {
                    order: order.clone(),
                    allocations: vec![p.allocation],
                    idempotency: None,
                });
                if cancel {
                    let e = crate::core::order::decide_cancel(&order, "r", 12).unwrap();
                    s.apply(&e);
                }
            }
            s.check_invariants().unwrap();
            s
        })
}

#[test]
fn a_newer_version_is_refused_as_newer_not_as_damage() {
    let e = Event::HoldExtended {
        sku: SkuId::parse("s").unwrap(),
        hold: HoldId(1),
        expires_at: 5,
    };
    let mut bytes = record::encode(1, &[&e]).unwrap();
    // The same record as a format-v9 build would frame it.
    bytes[0] = 9;
    let crc = {
        let mut h = crc32fast::Hasher::new();
        h.update(&[9]);
        h.update(&bytes[5..]);
        h.finalize()
    };
    bytes[1..5].copy_from_slice(&crc.to_le_bytes());
    let err = record::decode(&bytes).unwrap_err();
    assert_eq!(
        err,
        RecordError::Newer(Newer::Version {
            found: 9,
            max: CURRENT
        })
    );
    assert_eq!(
        err.to_string(),
        format!("written by a newer Surge: format v9, this build reads up to v{CURRENT}")
    );
    // A damaged version byte is damage.
    let mut flipped = record::encode(1, &[&e]).unwrap();
    flipped[0] = 9;
    assert_eq!(record::decode(&flipped), Err(RecordError::Checksum));
}

#[test]
fn an_unknown_event_kind_is_refused_as_newer() {
    let body = [0u8; 3];
    let payload = postcard::to_stdvec(&v2::Record {
        first_seq: 1,
        events: vec![v2::Tagged {
            kind: 999,
            body: &body,
        }],
    })
    .unwrap();
    let bytes = record::framed(|out| {
        out.extend_from_slice(&payload);
        Ok(())
    })
    .unwrap();
    let err = record::decode(&bytes).unwrap_err();
    assert!(
        matches!(err, RecordError::Newer(Newer::Kind { kind: 999, .. })),
        "{err}"
    );
}

#[test]
fn facts_that_disagree_are_refused() {
    let sku = SkuId::parse("s").unwrap();
    let w = WarehouseId::parse("w").unwrap();
    let facts = crate::core::sku::SkuFacts {
        sku: sku.clone(),
        name: None,
        per_customer_limit: None,
        rows: vec![(
            w.clone(),
            crate::core::sku::RowFacts {
                on_hand: 10,
                allocated: 3,
                safety_stock: 0,
            },
        )],
        holds: vec![],
        allocations: vec![],
        incoming: Default::default(),
    };
    // `allocated` says 3, no allocation says so.
    assert!(crate::core::SkuState::from_facts(facts.clone()).is_err());
    let mut other = facts;
    other.rows[0].1.allocated = 0;
    other.holds.push(Hold {
        id: HoldId(1),
        sku: SkuId::parse("t").unwrap(),
        warehouse: w,
        qty: 1,
        customer: None,
        channel: None,
        created_at: 0,
        expires_at: 1,
        created_by: None,
    });
    assert!(crate::core::SkuState::from_facts(other).is_err());
}

/// The v1 types encode exactly as the first release wrote its records:
/// the bytes below are pinned by hand (the golden directories check the
/// real thing, with every event type).
#[test]
fn v1_types_encode_as_the_first_release_did() {
    let sku = SkuId::parse("s").unwrap();
    let w = WarehouseId::parse("w").unwrap();
    let events = vec![
        Event::SkuUpserted {
            sku: sku.clone(),
            name: Some("n".into()),
            per_customer_limit: Some(3),
        },
        Event::HoldCreated {
            hold: Hold {
                id: HoldId(7),
                sku: sku.clone(),
                warehouse: w,
                qty: 2,
                customer: Some(CustomerId::parse("c").unwrap()),
                channel: None,
                created_at: 1,
                expires_at: 1000,
                created_by: None,
            },
            idempotency: Some(IdempotencyRecord {
                key: "reservations:k".into(),
                request_hash: [9; 32],
                at: 1,
            }),
        },
    ];
    let bytes = v1_record(5, &events);
    // Byte for byte: 5, 2 events; SkuUpserted (1) "s" Some("n") Some(3);
    // HoldCreated (4) id 7 "s" "w" 2 Some("c") None 1 1000 (varint) Some(key, hash, 1).
    let mut want = vec![5, 2, 1, 1, b's', 1, 1, b'n', 1, 3];
    want.extend([
        4, 7, 1, b's', 1, b'w', 2, 1, 1, b'c', 0, 1, 0xe8, 0x07, 1, 14,
    ]);
    want.extend(b"reservations:k");
    want.extend([9; 32]);
    want.push(1);
    assert_eq!(&bytes[5..], &want[..]);
    assert_eq!(record::decode(&bytes).unwrap().events, events);
}

fn id_of<T>(parse: fn(&str) -> Result<T, crate::core::IdError>, v: &str) -> T {
    parse(v).unwrap()
}

/// A v4 order of two shipments, cancelled or not.
fn v4_order(cancelled: bool) -> Order {
    let sku = |v| id_of(SkuId::parse, v);
    let wh = |v| id_of(WarehouseId::parse, v);
    Order {
        id: OrderId(7),
        channel: id_of(ChannelId::parse, "web"),
        customer: id_of(CustomerId::parse, "c1"),
        ship_to: ShipTo {
            location: Location { lat: 1.0, lon: 2.0 },
            country: None,
        },
        lines: vec![
            OrderLine {
                sku: sku("a"),
                qty: 3,
                reservation: None,
                unit_price: None,
            },
            OrderLine {
                sku: sku("b"),
                qty: 1,
                reservation: None,
                unit_price: None,
            },
            OrderLine {
                sku: sku("a"),
                qty: 2,
                reservation: None,
                unit_price: None,
            },
        ],
        shipments: vec![
            Shipment {
                warehouse: wh("w2"),
                lines: vec![(sku("b"), 1), (sku("a"), 1)],
            },
            Shipment {
                warehouse: wh("w1"),
                lines: vec![(sku("a"), 4)],
            },
        ],
        status: if cancelled {
            OrderStatus::Cancelled
        } else {
            OrderStatus::Placed
        },
        created_at: 100,
        updated_at: 150,
        created_by: None,
        routing: None,
        life: Life::default(),
    }
}

fn read_v4_order(o: &Order) -> Order {
    let placed = Event::OrderPlaced {
        order: o.clone(),
        allocations: Vec::new(),
        idempotency: None,
    };
    let rec = record::decode(&v4_record(1, &[placed])).unwrap();
    match rec.events.into_iter().next() {
        Some(Event::OrderPlaced { order, .. }) => order,
        other => panic!("not an order: {other:?}"),
    }
}

#[test]
fn a_v4_order_gets_its_fulfilments_from_its_shipments() {
    let order = read_v4_order(&v4_order(false));
    let life = &order.life;
    assert_eq!(life.currency, None);
    assert!(!life.payment_required);
    assert!(life.payments.is_empty());
    assert!(life.cancelled.is_empty());
    let ids: Vec<String> = life.fulfillments.iter().map(|f| f.id.to_string()).collect();
    assert_eq!(ids, ["ful_7_1", "ful_7_2"]);
    let first = &life.fulfillments[0];
    assert_eq!(first.warehouse.as_str(), "w2");
    assert_eq!(first.stage, FulfillmentStage::Pending);
    // Sorted by SKU, nothing cancelled, shipped or delivered.
    let lines: Vec<(&str, FulfillmentLine)> =
        first.lines.iter().map(|(k, l)| (k.as_str(), *l)).collect();
    let ordered = |n| FulfillmentLine {
        ordered: n,
        ..FulfillmentLine::default()
    };
    assert_eq!(lines, [("a", ordered(1)), ("b", ordered(1))]);
    assert_eq!((first.created_at, first.updated_at), (100, 100));
    assert_eq!(life.fulfillments[1].lines.len(), 1);
    assert_eq!(life.fulfillments[1].lines[0].1, ordered(4));
    assert!(order.lines.iter().all(|l| l.unit_price.is_none()));
    assert_eq!(
        order.lifecycle_status(),
        crate::core::lifecycle::OrderStatus::Ready
    );
}

#[test]
fn a_cancelled_v4_order_has_every_unit_cancelled() {
    let order = read_v4_order(&v4_order(true));
    let cancelled: Vec<(&str, u64)> = order
        .life
        .cancelled
        .iter()
        .map(|(k, q)| (k.as_str(), *q))
        .collect();
    assert_eq!(cancelled, [("a", 5), ("b", 1)]);
    for f in &order.life.fulfillments {
        assert!(f
            .lines
            .iter()
            .all(|(_, l)| l.cancelled == l.ordered && l.ordered > 0));
        assert!(!f.is_open());
    }
    assert_eq!(
        order.lifecycle_status(),
        crate::core::lifecycle::OrderStatus::Cancelled
    );
}

/// One event of every core variant, with a full life on the order.
fn one_of_each() -> Vec<Event> {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut pick = |s: BoxedStrategy<Event>| s.new_tree(&mut runner).unwrap().current();
    let mut events = Vec::new();
    while events.len() < 200 {
        events.push(pick(event().boxed()));
    }
    events.push(pick(life_event().boxed()));
    events
}

#[test]
fn a_record_with_every_kind_decodes() {
    let events = one_of_each();
    let kinds: std::collections::BTreeSet<u16> =
        events.iter().map(|e| v6::Event::from(e).kind()).collect();
    assert_eq!(kinds, (1..=21).collect(), "every kind, 1 to 21");
    let refs: Vec<&Event> = events.iter().collect();
    let bytes = record::encode(3, &refs).unwrap();
    assert_eq!(bytes[0], v6::VERSION);
    let rec = record::decode(&bytes).unwrap();
    assert_eq!(rec.first_seq, 3);
    assert_eq!(rec.events, events);
}

/// Encodes `body` as one event of kind `kind` and reads it back to the core.
fn read_body<T: serde::Serialize>(kind: u16, body: &T) -> Result<Event, SchemaError> {
    let bytes = postcard::to_stdvec(body).unwrap();
    v5::Event::read(kind, &bytes).and_then(Event::try_from)
}

/// As [`read_body`], for a kind v6 added.
fn read_body_v6<T: serde::Serialize>(kind: u16, body: &T) -> Result<Event, SchemaError> {
    let bytes = postcard::to_stdvec(body).unwrap();
    v6::Event::read(kind, &bytes).and_then(Event::try_from)
}

fn assert_invalid(r: Result<Event, SchemaError>, name: &str) {
    match r {
        Err(SchemaError::Invalid(m)) => assert!(m.contains(name), "{m}"),
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn unknown_names_are_refused() {
    let sub = v5::SubId { order: 1, n: 1 };
    let payment = |kind: &'static str, reference: &'static str| v5::OrderPayment {
        order: 1,
        kind: kind.into(),
        amount: 5,
        reference: reference.into(),
        at: 0,
    };
    assert!(read_body(v5::kind::ORDER_PAYMENT, &payment("capture", "r1")).is_ok());
    assert_invalid(
        read_body(v5::kind::ORDER_PAYMENT, &payment("teleport", "r1")),
        "teleport",
    );
    assert_invalid(
        read_body(v5::kind::ORDER_PAYMENT, &payment("capture", "")),
        "payment reference",
    );
    let staged = |command: &'static str| v5::FulfillmentStaged {
        order: 1,
        fulfillment: sub,
        command: command.into(),
        reason: None,
        at: 0,
    };
    assert!(read_body(v5::kind::FULFILLMENT_STAGED, &staged("pick")).is_ok());
    assert_invalid(
        read_body(v5::kind::FULFILLMENT_STAGED, &staged("juggle")),
        "juggle",
    );
    let settled = v5::ReturnSettled {
        order: 1,
        ret: sub,
        command: "Return_Close".into(),
        at: 0,
    };
    assert_invalid(
        read_body(v5::kind::RETURN_SETTLED, &settled),
        "Return_Close",
    );
    let held = v5::OrderHoldSet {
        order: 1,
        reason: Some("".into()),
        at: 0,
    };
    assert_invalid(read_body(v5::kind::ORDER_HOLD_SET, &held), "hold reason");
    let key_used = |kind: u8| v6::LifeKeyUsed {
        order: 1,
        key: v2::IdempotencyRecord {
            key: "k".into(),
            request_hash: [0; 32],
            at: 0,
        },
        target: v6::LifeTarget { kind, n: 1 },
    };
    assert!(read_body_v6(v6::kind::LIFE_KEY_USED, &key_used(2)).is_ok());
    assert_invalid(
        read_body_v6(v6::kind::LIFE_KEY_USED, &key_used(3)),
        "target kind 3",
    );

    // Inside an order: a stage, a return status, a currency, a payment kind.
    let o = v4_order(false);
    let with = |edit: &dyn Fn(&mut v5::Life<'static>)| {
        let mut disk = v5::Order::from(&o);
        let mut life = v5::Life {
            fulfillments: vec![v5::Fulfillment {
                id: sub,
                warehouse: "w1".into(),
                stage: "packed".into(),
                lines: Vec::new(),
                parcels: Vec::new(),
                reason: None,
                created_at: 0,
                updated_at: 0,
            }],
            returns: vec![v5::Return {
                id: sub,
                status: "requested".into(),
                reason: "".into(),
                lines: Vec::new(),
                received: Vec::new(),
                restocked_to: None,
                created_at: 0,
                updated_at: 0,
            }],
            currency: Some("EUR".into()),
            payments: v5::Payments {
                entries: vec![v5::Payment {
                    reference: "r".into(),
                    kind: "authorize".into(),
                    amount: 3,
                }],
                failed: false,
                expired: false,
            },
            ..v5::Life::default()
        };
        edit(&mut life);
        disk.life = life;
        let placed = v5::OrderPlaced {
            order: disk,
            allocations: Vec::new(),
            idempotency: None,
        };
        read_body(v5::kind::ORDER_PLACED, &placed)
    };
    let good = with(&|_| {}).unwrap();
    match good {
        Event::OrderPlaced { order, .. } => {
            assert_eq!(order.life.fulfillments[0].stage, FulfillmentStage::Packed);
            assert_eq!(order.life.payments.authorized(), 3);
        }
        other => panic!("{other:?}"),
    }
    assert_invalid(
        with(&|l| l.fulfillments[0].stage = "shipped".into()),
        "shipped",
    );
    assert_invalid(with(&|l| l.fulfillments[0].stage = "boxed".into()), "boxed");
    assert_invalid(with(&|l| l.returns[0].status = "lost".into()), "lost");
    assert_invalid(with(&|l| l.currency = Some("eur".into())), "eur");
    assert_invalid(
        with(&|l| l.payments.entries[0].kind = "gift".into()),
        "gift",
    );
    assert_invalid(
        with(&|l| l.payments.entries.push(l.payments.entries[0].clone())),
        "payment book",
    );
}

#[test]
fn an_order_with_prices_for_other_lines_is_refused() {
    let o = v4_order(false);
    let mut disk = v5::Order::from(&o);
    disk.unit_prices.pop();
    let placed = v5::OrderPlaced {
        order: disk,
        allocations: Vec::new(),
        idempotency: None,
    };
    assert_invalid(read_body(v5::kind::ORDER_PLACED, &placed), "unit prices");
}

/// A trace of several candidates over the same few warehouses and SKUs.
fn busy_trace() -> RoutingTrace {
    let sku = |v: &str| id_of(SkuId::parse, v);
    let wh = |v: &str| id_of(WarehouseId::parse, v);
    let plan = |w: &str| PlanTrace {
        shipments: vec![ShipmentTrace {
            warehouse: wh(w),
            lines: vec![(sku("tee-black-m"), 1), (sku("mug-white"), 2)],
            distance_km: Some(412.5),
            cost: Some(700),
            same_day: Some(true),
        }],
        verdicts: vec![
            Verdict {
                rule: Rule::FewestShipments,
                score: 1.0,
            },
            Verdict {
                rule: Rule::Nearest,
                score: 412.5,
            },
        ],
    };
    RoutingTrace {
        rules: Chain::default_chain().rules,
        split: SplitPolicy::Allow,
        excluded: vec![Excluded {
            warehouse: wh("warehouse-vienna"),
            rule: Rule::ServesDestination,
        }],
        candidates: ["warehouse-berlin", "warehouse-paris", "warehouse-berlin"]
            .into_iter()
            .map(plan)
            .collect(),
        deciding_rule: Some(Rule::Nearest),
        attempts: 1,
    }
}

#[test]
fn a_compact_trace_names_each_warehouse_and_sku_once_and_reads_back() {
    let t = busy_trace();
    let disk = v6::Trace::from(&t);
    assert_eq!(
        disk.warehouses,
        ["warehouse-vienna", "warehouse-berlin", "warehouse-paris"]
    );
    assert_eq!(disk.skus, ["tee-black-m", "mug-white"]);
    let compact = postcard::to_stdvec(&disk).unwrap();
    let named = postcard::to_stdvec(&v4::Trace::from(&t)).unwrap();
    assert!(
        compact.len() * 2 < named.len(),
        "{} bytes compact, {} by name",
        compact.len(),
        named.len()
    );
    let read: v6::Trace = postcard::from_bytes(&compact).unwrap();
    assert_eq!(RoutingTrace::try_from(read).unwrap(), t);
    // The v5 trace upcast is the same compact trace.
    assert_eq!(v6::upcast_trace(v4::Trace::from(&t)).unwrap(), disk);
}

#[test]
fn every_rule_has_its_own_code() {
    let codes: std::collections::BTreeSet<u8> =
        Rule::ALL.iter().map(|r| v6::rule_code(*r)).collect();
    assert_eq!(codes.len(), Rule::ALL.len());
    for r in Rule::ALL {
        assert_eq!(v6::rule_of(v6::rule_code(r)).unwrap(), r);
    }
}

#[test]
fn a_compact_trace_with_a_damaged_index_or_code_is_refused() {
    let order = Order {
        routing: Some(std::sync::Arc::new(busy_trace())),
        ..v4_order(false)
    };
    let read = |edit: &dyn Fn(&mut v6::Trace<'_>)| {
        let mut disk = v6::Order::from(&order);
        edit(disk.routing.as_mut().unwrap());
        let placed = v6::OrderPlaced {
            order: disk,
            allocations: Vec::new(),
            idempotency: None,
        };
        let bytes = postcard::to_stdvec(&placed).unwrap();
        v6::Event::read(v6::kind::ORDER_PLACED, &bytes).and_then(Event::try_from)
    };
    assert!(read(&|_| {}).is_ok());
    assert_invalid(
        read(&|t| t.candidates[1].shipments[0].warehouse = 3),
        "warehouse index 3",
    );
    assert_invalid(
        read(&|t| t.excluded[0].warehouse = u32::MAX),
        "warehouse index",
    );
    assert_invalid(
        read(&|t| t.candidates[0].shipments[0].lines[1].0 = 2),
        "sku index 2",
    );
    assert_invalid(read(&|t| t.rules[0] = 11), "rule code 11");
    assert_invalid(
        read(&|t| t.candidates[2].verdicts[0].rule = 255),
        "rule code 255",
    );
    assert_invalid(read(&|t| t.deciding_rule = Some(99)), "rule code 99");
    assert_invalid(read(&|t| t.warehouses[0] = "".into()), "warehouse");
    // A re-route's trace too.
    let busy = busy_trace();
    let rerouted = v6::OrderRerouted {
        order: 7,
        from: Vec::new(),
        to: Vec::new(),
        shipments: Vec::new(),
        routing: {
            let mut t = v6::Trace::from(&busy);
            t.skus.pop();
            t
        },
        reason: "moved".into(),
        at: 5,
    };
    let bytes = postcard::to_stdvec(&rerouted).unwrap();
    assert_invalid(
        v6::Event::read(v6::kind::ORDER_REROUTED, &bytes).and_then(Event::try_from),
        "sku index 1",
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Events encoded one by one, then put in a record, make the same
    /// bytes as the record written at once; the bound of the overhead
    /// holds.
    #[test]
    fn a_record_of_encoded_events_is_the_record_written_at_once(first_seq in any::<u64>(), events in prop::collection::vec(event(), 0..12)) {
        let refs: Vec<&Event> = events.iter().collect();
        let mut at_once = Vec::new();
        write_record(first_seq, &refs, &mut at_once).unwrap();
        let mut bodies = Vec::new();
        let mut spans = Vec::new();
        for e in &events {
            let start = bodies.len();
            let kind = write_event(e, &mut bodies).unwrap();
            spans.push((kind, start, bodies.len()));
        }
        let tagged: Vec<(u16, &[u8])> = spans.iter().map(|&(k, a, b)| (k, &bodies[a..b])).collect();
        let mut encoded = Vec::new();
        write_encoded_record(first_seq, &tagged, &mut encoded).unwrap();
        prop_assert_eq!(&encoded, &at_once);
        prop_assert!(encoded.len() <= RECORD_OVERHEAD_BYTES + events.len() * EVENT_OVERHEAD_BYTES + bodies.len());
    }
}

// --- incoming stock and low-stock thresholds (v6 kinds 24-26, entries 12-13) ---

fn receipt() -> impl Strategy<Value = crate::core::sku::incoming::Receipt> {
    (
        1u64..1000,
        wh(),
        1u64..1000,
        0u64..1000,
        any::<u64>(),
        text(),
        any::<u64>(),
        any::<u64>(),
        prop::option::of(idem()),
        prop::collection::vec(idem(), 0..3),
    )
        .prop_map(
            |(
                n,
                warehouse,
                expected,
                received,
                expected_at,
                reference,
                created_at,
                closed,
                idempotency,
                receive_keys,
            )| {
                let received = received.min(expected);
                crate::core::sku::incoming::Receipt {
                    n,
                    warehouse,
                    expected,
                    received,
                    expected_at,
                    reference,
                    created_at,
                    // Received in full is closed; fewer is open, or closed
                    // short when `closed` is odd.
                    closed_at: (received == expected || closed % 2 == 1).then_some(closed),
                    idempotency,
                    receive_keys,
                }
            },
        )
}

fn incoming_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (sku(), receipt()).prop_map(|(sku, receipt)| Event::IncomingExpected { sku, receipt }),
        (
            sku(),
            any::<u64>(),
            wh(),
            any::<u64>(),
            any::<u64>(),
            prop::collection::vec(any::<u64>(), 0..3),
            prop::option::of(idem()),
        )
            .prop_map(|(sku, receipt, warehouse, qty, at, forget, key)| {
                Event::IncomingReceived {
                    sku,
                    receipt,
                    warehouse,
                    qty,
                    at,
                    forget,
                    key,
                }
            }),
        (
            sku(),
            any::<u64>(),
            wh(),
            any::<u64>(),
            text(),
            any::<u64>(),
            prop::collection::vec(any::<u64>(), 0..3),
            prop::option::of(idem()),
        )
            .prop_map(
                |(sku, receipt, warehouse, short, reason, at, forget, key)| {
                    Event::IncomingClosed {
                        sku,
                        receipt,
                        warehouse,
                        short,
                        reason,
                        at,
                        forget,
                        key,
                    }
                }
            ),
        (
            sku(),
            prop::option::of(wh()),
            prop::option::of(any::<u64>())
        )
            .prop_map(|(sku, warehouse, threshold)| Event::LowStockSet {
                sku,
                warehouse,
                threshold,
            }),
    ]
}

/// A SKU's state with incoming receipts (open, partly received, closed)
/// and thresholds, built through decide/apply.
fn sku_state_with_incoming() -> impl Strategy<Value = crate::core::SkuState> {
    use crate::core::sku::incoming::{ExpectCmd, IncomingLimits};
    (
        sku_state(),
        prop::collection::vec((0usize..3, 1u64..50, prop::option::of(idem())), 0..6),
        prop::collection::vec((0usize..6, 1u64..60), 0..8),
        prop::option::of(0u64..100),
        prop::collection::vec((0usize..3, prop::option::of(0u64..100)), 0..3),
        0usize..3,
    )
        .prop_map(|(mut s, expects, receives, total, rows, kept)| {
            let limits = IncomingLimits {
                open_max: 10,
                closed_kept_max: kept,
                on_hand_max: 1 << 40,
            };
            let whs: Vec<WarehouseId> = s.rows.keys().cloned().collect();
            for (w, qty, idempotency) in expects {
                let cmd = ExpectCmd {
                    warehouse: whs[w % whs.len()].clone(),
                    qty,
                    expected_at: 99,
                    reference: "PO".into(),
                    now: 5,
                    idempotency,
                };
                let e = s.decide_expect(&cmd, limits).unwrap();
                s.apply(&e);
            }
            for (n, qty) in receives {
                // A quantity of 1 closes the receipt short instead.
                let e = match qty {
                    1 => s.decide_close_incoming(n as u64 + 1, "short".into(), 7, None, limits),
                    _ => s.decide_receive(n as u64 + 1, qty, 7, None, limits),
                };
                if let Ok(e) = e {
                    s.apply(&e);
                }
            }
            let mut changes = vec![(None, total)];
            changes.extend(
                rows.into_iter()
                    .map(|(w, t)| (Some(whs[w % whs.len()].clone()), t)),
            );
            for e in s.decide_thresholds(&changes) {
                s.apply(&e);
            }
            s.check_invariants().unwrap();
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn incoming_events_round_trip(events in prop::collection::vec(incoming_event(), 0..8)) {
        for e in &events {
            let disk = v6::Event::from(e);
            let mut body = Vec::new();
            disk.write(&mut body).unwrap();
            let back = v6::Event::read(disk.kind(), &body).unwrap();
            prop_assert_eq!(&back, &disk);
            prop_assert_eq!(&Event::try_from(back).unwrap(), e);
        }
        let refs: Vec<&Event> = events.iter().collect();
        let bytes = record::encode(1, &refs).unwrap();
        prop_assert_eq!(bytes[0], CURRENT);
        prop_assert_eq!(record::decode(&bytes).unwrap().events, events);
    }

    #[test]
    fn a_sku_with_incoming_round_trips_through_snapshot_chunks(
        skus in prop::collection::vec(sku_state_with_incoming(), 1..3),
        chunk_bytes in 64usize..1024,
    ) {
        let entries: Vec<SnapEntry> = skus.into_iter().map(|s| SnapEntry::Sku(Box::new(s))).collect();
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        let mut builder = ChunkBuilder::default();
        let mut body = Vec::new();
        for e in &entries {
            entries_of(e, &mut |entry| {
                let kind = ChunkBuilder::encode(&entry, &mut body).unwrap();
                if !builder.is_empty() && builder.bytes_with(body.len()) > chunk_bytes {
                    chunks.push(record::framed(|out| builder.finish(out)).unwrap());
                }
                builder.push(kind, &body);
            });
        }
        if !builder.is_empty() {
            chunks.push(record::framed(|out| builder.finish(out)).unwrap());
        }
        let mut back: Vec<SnapEntry> = Vec::new();
        let mut assembler = Assembler::default();
        for c in &chunks {
            let (version, payload) = record::unframe(c).unwrap();
            read_chunk(version, payload, &mut |e| assembler.push(e, &mut |x| back.push(x))).unwrap();
        }
        assembler.finish(&mut |x| back.push(x)).unwrap();
        prop_assert_eq!(back, entries);
    }
}

#[test]
fn incoming_kinds_are_24_to_26_and_entries_12_and_13() {
    use crate::wal::schema::incoming::{entry, kind};
    assert_eq!(
        (
            kind::INCOMING_EXPECTED,
            kind::INCOMING_RECEIVED,
            kind::LOW_STOCK_SET
        ),
        (24, 25, 26)
    );
    assert_eq!((entry::INCOMING, entry::LOW_STOCK), (12, 13));
}

#[test]
fn a_receipt_whose_numbers_disagree_with_its_status_is_refused() {
    use crate::wal::schema::incoming as inc;
    let body = inc::IncomingExpected {
        sku: "s".into(),
        receipt: inc::Receipt {
            n: 1,
            warehouse: "w".into(),
            expected: 5,
            received: 5,
            expected_at: 0,
            reference: "r".into(),
            created_at: 0,
            // Received in full but open.
            closed_at: None,
            idempotency: None,
            receive_keys: Vec::new(),
        },
    };
    assert_invalid(
        read_body_v6(inc::kind::INCOMING_EXPECTED, &body),
        "does not match its status",
    );
}
