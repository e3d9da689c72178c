//! Every wire shape, pinned: field names, types, and what is left out when
//! empty. A failure here is a change of the API or the feed protocol.

use super::*;
use crate::core::lifecycle::{
    life, CancelledUnits, Command, Currency, FulfillmentId, FulfillmentStatus, HoldReason,
    OrderStatus as LifeStatus, Parcel, PaymentEffect, PaymentKind, PaymentReference, PaymentStatus,
    ReturnId, ReturnStatus,
};
use crate::core::routing::{
    Cutoff, Excluded, PlanTrace, Rate, RoutingTrace, Rule, ShipmentTrace, ShippingCost,
    SplitPolicy, Verdict, WarehouseRouting,
};
use crate::core::{
    ChannelId, CustomerId, Event, Hold, HoldId, HoldStatus, Location, Order, OrderId, OrderLine,
    OrderStatus, ReleaseReason, ShipTo, Shipment, SkuId, SkuState, Warehouse, WarehouseId,
};
use crate::projection::HoldRecord;
use serde_json::{json, Value};
use std::sync::Arc;

fn sku(s: &str) -> SkuId {
    SkuId::parse(s).unwrap()
}

fn wh(s: &str) -> WarehouseId {
    WarehouseId::parse(s).unwrap()
}

fn value(v: &impl Serialize) -> Value {
    let text = to_json(v);
    serde_json::from_str(&text).unwrap()
}

fn warehouse() -> Warehouse {
    Warehouse {
        id: wh("w1"),
        name: "Berlin".into(),
        location: Location {
            lat: 52.5,
            lon: 13.25,
        },
        priority: -1,
        routing: Default::default(),
    }
}

/// Tee: 5 on hand in w1 with 1 kept back and 2 held; 1 in w2.
fn tee() -> SkuState {
    let mut s = SkuState::new(sku("tee"));
    let events = [
        Event::SkuUpserted {
            sku: sku("tee"),
            name: Some("Tee".into()),
            per_customer_limit: None,
        },
        Event::StockAdjusted {
            sku: sku("tee"),
            warehouse: wh("w1"),
            delta: 5,
            reason: "delivery".into(),
        },
        Event::SafetyStockSet {
            sku: sku("tee"),
            warehouse: wh("w1"),
            safety_stock: 1,
            reason: "display".into(),
        },
        Event::StockAdjusted {
            sku: sku("tee"),
            warehouse: wh("w2"),
            delta: 1,
            reason: "delivery".into(),
        },
        Event::HoldCreated {
            hold: hold(),
            idempotency: None,
        },
    ];
    for e in &events {
        s.apply(e);
    }
    s
}

fn hold() -> Hold {
    Hold {
        id: HoldId(7),
        sku: sku("tee"),
        warehouse: wh("w1"),
        qty: 2,
        customer: Some(CustomerId::parse("c1").unwrap()),
        channel: None,
        created_at: 1000,
        expires_at: 61000,
        created_by: None,
    }
}

fn order() -> Order {
    Order {
        id: OrderId(3),
        channel: ChannelId::parse("web").unwrap(),
        customer: CustomerId::parse("c1").unwrap(),
        ship_to: ShipTo {
            location: Location {
                lat: 48.0,
                lon: 2.5,
            },
            country: None,
        },
        lines: vec![OrderLine {
            sku: sku("tee"),
            qty: 2,
            reservation: Some(HoldId(7)),
            unit_price: None,
        }],
        shipments: vec![Shipment {
            warehouse: wh("w1"),
            lines: vec![(sku("tee"), 2)],
        }],
        status: OrderStatus::Placed,
        created_at: 2000,
        updated_at: 2500,
        created_by: None,
        routing: None,
        life: Default::default(),
    }
}

#[test]
fn warehouse_view() {
    assert_eq!(
        value(&WarehouseView::from(&warehouse())),
        json!({"id": "w1", "name": "Berlin", "location": {"lat": 52.5, "lon": 13.25}, "priority": -1,
               "enabled": true, "countries": [], "channels": [], "capacity_per_day": null,
               "cutoff": null, "shipping_cost": null})
    );
    let mut w = warehouse();
    w.routing = WarehouseRouting {
        enabled: false,
        countries: vec!["AT".into(), "DE".into()],
        channels: vec![ChannelId::parse("web").unwrap()],
        capacity_per_day: Some(500),
        cutoff: Some(Cutoff {
            hour: 9,
            minute: 5,
            tz: "Europe/Berlin".into(),
        }),
        shipping_cost: Some(ShippingCost {
            default: Rate {
                fixed: 500,
                per_km: 2,
            },
            by_country: [(
                "DE".to_string(),
                Rate {
                    fixed: 300,
                    per_km: 1,
                },
            )]
            .into(),
        }),
    };
    assert_eq!(
        value(&WarehouseView::from(&w)),
        json!({"id": "w1", "name": "Berlin", "location": {"lat": 52.5, "lon": 13.25}, "priority": -1,
               "enabled": false, "countries": ["AT", "DE"], "channels": ["web"], "capacity_per_day": 500,
               "cutoff": {"time": "09:05", "tz": "Europe/Berlin"},
               "shipping_cost": {"fixed": 500, "per_km": 2, "by_country": {"DE": {"fixed": 300, "per_km": 1}}}})
    );
}

#[test]
fn an_order_shows_its_routing_trace() {
    let mut o = order();
    o.routing = Some(Arc::new(RoutingTrace {
        rules: vec![Rule::Enabled, Rule::Nearest],
        split: SplitPolicy::MaxShipments(2),
        excluded: vec![Excluded {
            warehouse: wh("w9"),
            rule: Rule::Enabled,
        }],
        candidates: vec![PlanTrace {
            shipments: vec![ShipmentTrace {
                warehouse: wh("w1"),
                lines: vec![(sku("tee"), 2)],
                distance_km: Some(12.5),
                cost: None,
                same_day: Some(true),
            }],
            verdicts: vec![Verdict {
                rule: Rule::Nearest,
                score: 12.5,
            }],
        }],
        deciding_rule: Some(Rule::Nearest),
        attempts: 1,
    }));
    assert_eq!(
        value(&OrderView::from(&o))["routing"],
        json!({
            "rules": ["enabled", "nearest"], "split": "max_shipments:2",
            "excluded": [{"warehouse": "w9", "rule": "enabled"}],
            "candidates": [{
                "shipments": [{"warehouse": "w1", "lines": [{"sku": "tee", "qty": 2}],
                               "distance_km": 12.5, "cost": null, "same_day": true}],
                "verdicts": [{"rule": "nearest", "score": 12.5}],
            }],
            "deciding_rule": "nearest", "attempts": 1,
        })
    );
    // Orders from before routing traced them have none.
    assert!(value(&OrderView::from(&order())).get("routing").is_none());
}

proptest::proptest! {
    /// The trace an order shares is written as its documented shape
    /// (`RoutingTraceView`, the schema) says, field for field.
    #[test]
    fn a_shared_trace_is_written_as_its_documented_shape(
        t in crate::wal::schema::tests::trace()
    ) {
        // As text: field order and number formatting count too.
        let shared = serde_json::to_string(&TraceView(Arc::new(t.clone()))).unwrap();
        let shape = serde_json::to_string(&RoutingTraceView::from(&t)).unwrap();
        proptest::prop_assert_eq!(shared, shape);
    }
}

#[test]
fn stock_views() {
    let s = tee();
    let row = |wh, on_hand, reserved, safety_stock, available| {
        json!({"warehouse": wh, "on_hand": on_hand, "reserved": reserved, "allocated": 0,
               "safety_stock": safety_stock, "available": available, "incoming": 0,
               "low_stock_threshold": null})
    };
    assert_eq!(
        value(&StockView::from(&s)),
        json!({
            "sku": "tee", "name": "Tee", "per_customer_limit": null, "low_stock_threshold": null,
            "on_hand": 6, "reserved": 2, "allocated": 0, "safety_stock": 1, "available": 3,
            "incoming": 0,
            "warehouses": [row("w1", 5, 2, 1, 2), row("w2", 1, 0, 0, 1)],
        })
    );
    assert_eq!(
        value(&SkuRowView::from_state(&s, &wh("w1")).unwrap()),
        json!({"sku": "tee", "on_hand": 5, "reserved": 2, "allocated": 0, "safety_stock": 1, "available": 2,
               "incoming": 0})
    );
    assert!(SkuRowView::from_state(&s, &wh("w9")).is_none());
    assert_eq!(
        value(&StockChanged::from_state(&s, &wh("w2"))),
        json!({"sku": "tee", "warehouse": "w2", "on_hand": 1, "reserved": 0, "allocated": 0,
               "safety_stock": 0, "available": 1, "incoming": 0, "sku_available": 3})
    );
}

#[test]
fn reservation_view_leaves_out_an_absent_order() {
    let mut record = HoldRecord {
        hold: hold(),
        status: HoldStatus::Active,
        order: None,
        closed_at: None,
    };
    let mut want = json!({
        "id": "res_7", "sku": "tee", "qty": 2, "warehouse": "w1", "customer_id": "c1",
        "channel": null, "status": "active", "created_at": 1000, "expires_at": 61000,
    });
    assert_eq!(value(&ReservationView::from(&record)), want);
    record.status = HoldStatus::Consumed;
    record.order = Some(OrderId(3));
    want["status"] = json!("consumed");
    want["order_id"] = json!("ord_3");
    assert_eq!(value(&ReservationView::from(&record)), want);
}

#[test]
fn order_view_leaves_out_absent_country_and_reservation() {
    let mut o = order();
    let want = json!({
        "id": "ord_3", "status": "ready", "hold_reason": null, "payment_status": "pending",
        "payment_required": false, "pay_by": null, "currency": null,
        "channel": "web", "customer_id": "c1",
        "ship_to": {"lat": 48.0, "lon": 2.5},
        "lines": [{"sku": "tee", "qty": 2, "reservation_id": "res_7"}],
        "shipments": [{"warehouse": "w1", "lines": [{"sku": "tee", "qty": 2}]}],
        "totals": null,
        "items": [{"sku": "tee", "ordered": 2, "cancelled": 0, "shipped": 0, "delivered": 0,
                   "returned": 0}],
        "fulfillments": [], "returns": [],
        "created_at": 2000, "updated_at": 2500,
    });
    assert_eq!(value(&OrderView::from(&o)), want);
    o.ship_to.country = Some("FR".into());
    o.lines[0].reservation = None;
    life::apply(
        &mut o,
        &Event::OrderCancelled {
            order: OrderId(3),
            skus: vec![sku("tee")],
            reason: "changed my mind".into(),
            at: 3000,
        },
    );
    let v = value(&OrderView::from(&o));
    assert_eq!(
        v["ship_to"],
        json!({"lat": 48.0, "lon": 2.5, "country": "FR"})
    );
    assert_eq!(v["lines"], json!([{"sku": "tee", "qty": 2}]));
    assert_eq!(v["status"], "cancelled");
    assert_eq!(v["items"][0]["cancelled"], 2);
}

fn eur() -> Currency {
    Currency::parse("EUR").unwrap()
}

fn payment(kind: PaymentKind, amount: u64, reference: &str, at: u64) -> Event {
    Event::OrderPayment {
        order: OrderId(3),
        effect: PaymentEffect {
            kind,
            amount,
            reference: PaymentReference::parse(reference).unwrap(),
            at,
        },
    }
}

/// Order 3, priced in EUR, waiting for payment: 2 tees at 15.00 and a cap
/// at 5.00 from w1, as placement makes it (one pending fulfilment).
fn priced_order() -> Order {
    let mut o = order();
    o.lines = vec![
        OrderLine {
            sku: sku("tee"),
            qty: 2,
            reservation: None,
            unit_price: Some(1500),
        },
        OrderLine {
            sku: sku("cap"),
            qty: 1,
            reservation: None,
            unit_price: Some(500),
        },
    ];
    o.shipments = vec![Shipment {
        warehouse: wh("w1"),
        lines: vec![(sku("tee"), 2), (sku("cap"), 1)],
    }];
    o.life.currency = Some(eur());
    o.life.payment_required = true;
    o.life.pay_by = Some(9000);
    o.life.fulfillments = life::fulfillments_at_placement(OrderId(3), &o.shipments, 2000);
    o
}

fn ful() -> FulfillmentId {
    FulfillmentId {
        order: OrderId(3),
        n: 1,
    }
}

fn ret() -> ReturnId {
    ReturnId {
        order: OrderId(3),
        n: 1,
    }
}

/// The priced order's life: paid, held and released, the cap cancelled,
/// the tees shipped, delivered and one returned and restocked.
fn lived_order() -> Order {
    let mut o = priced_order();
    let events = [
        payment(PaymentKind::Authorize, 3500, "pi_1", 2100),
        payment(PaymentKind::Capture, 3500, "ch_1", 2150),
        Event::OrderHoldSet {
            order: OrderId(3),
            reason: Some(HoldReason::parse("fraud_review").unwrap()),
            at: 2160,
        },
        Event::OrderHoldSet {
            order: OrderId(3),
            reason: None,
            at: 2170,
        },
        Event::FulfillmentStaged {
            order: OrderId(3),
            fulfillment: ful(),
            command: Command::Accept,
            reason: None,
            at: 2200,
        },
        Event::OrderLinesCancelled {
            order: OrderId(3),
            units: vec![CancelledUnits {
                fulfillment: ful(),
                warehouse: wh("w1"),
                sku: sku("cap"),
                qty: 1,
            }],
            reason: "out of caps".into(),
            expired: false,
            at: 2250,
            step: 0,
        },
        Event::FulfillmentShipped {
            order: OrderId(3),
            fulfillment: ful(),
            warehouse: wh("w1"),
            parcel: Parcel {
                carrier: "dhl".into(),
                tracking: "JD0001".into(),
                lines: vec![(sku("tee"), 2)],
                at: 2300,
            },
            step: 0,
        },
        Event::FulfillmentDelivered {
            order: OrderId(3),
            fulfillment: ful(),
            lines: vec![(sku("tee"), 2)],
            at: 2400,
        },
        Event::ReturnRequested {
            order: OrderId(3),
            ret: ret(),
            lines: vec![(sku("tee"), 1)],
            reason: "too small".into(),
            at: 2500,
        },
        Event::ReturnReceived {
            order: OrderId(3),
            ret: ret(),
            lines: vec![(sku("tee"), 1)],
            restock: Some(wh("w1")),
            at: 2600,
            step: 0,
        },
    ];
    for e in &events {
        life::apply(&mut o, e);
    }
    o
}

#[test]
fn a_priced_order_shows_its_money_and_waits_for_payment() {
    let v = value(&OrderView::from(&priced_order()));
    assert_eq!(v["status"], "pending_payment");
    assert_eq!(v["payment_status"], "pending");
    assert_eq!(v["payment_required"], true);
    assert_eq!(v["pay_by"], 9000);
    assert_eq!(v["currency"], "EUR");
    assert_eq!(
        v["lines"],
        json!([{"sku": "tee", "qty": 2, "unit_price": 1500},
               {"sku": "cap", "qty": 1, "unit_price": 500}])
    );
    assert_eq!(
        v["totals"],
        json!({"currency": "EUR", "ordered": 3500, "cancelled": 0, "authorized": 0,
               "captured": 0, "refunded": 0, "refund_due": 0})
    );
    // One item per SKU, sorted by SKU.
    assert_eq!(v["items"][0]["sku"], "cap");
    assert_eq!(v["items"][1]["sku"], "tee");
    assert_eq!(
        v["fulfillments"],
        json!([{"id": "ful_3_1", "order_id": "ord_3", "warehouse": "w1", "status": "pending",
                "lines": [
                    {"sku": "cap", "qty": 1, "cancelled": 0, "shipped": 0, "delivered": 0},
                    {"sku": "tee", "qty": 2, "cancelled": 0, "shipped": 0, "delivered": 0}],
                "parcels": [], "reason": null, "created_at": 2000, "updated_at": 2000}])
    );
    let mut held = priced_order();
    held.life.hold = Some(HoldReason::parse("address_check").unwrap());
    let v = value(&OrderView::from(&held));
    assert_eq!(v["status"], "on_hold");
    assert_eq!(v["hold_reason"], "address_check");
}

#[test]
fn an_order_view_shows_its_life() {
    let o = lived_order();
    assert_eq!(
        value(&OrderView::from(&o)),
        json!({
            "id": "ord_3", "status": "partially_returned", "hold_reason": null,
            "payment_status": "captured", "payment_required": true, "pay_by": 9000,
            "currency": "EUR", "channel": "web", "customer_id": "c1",
            "ship_to": {"lat": 48.0, "lon": 2.5},
            "lines": [{"sku": "tee", "qty": 2, "unit_price": 1500},
                      {"sku": "cap", "qty": 1, "unit_price": 500}],
            "shipments": [{"warehouse": "w1", "lines": [{"sku": "tee", "qty": 2}, {"sku": "cap", "qty": 1}]}],
            "totals": {"currency": "EUR", "ordered": 3500, "cancelled": 500, "authorized": 3500,
                       "captured": 3500, "refunded": 0, "refund_due": 500},
            "items": [
                {"sku": "cap", "ordered": 1, "cancelled": 1, "shipped": 0, "delivered": 0, "returned": 0},
                {"sku": "tee", "ordered": 2, "cancelled": 0, "shipped": 2, "delivered": 2, "returned": 1}],
            "fulfillments": [{
                "id": "ful_3_1", "order_id": "ord_3", "warehouse": "w1", "status": "delivered",
                "lines": [
                    {"sku": "cap", "qty": 1, "cancelled": 1, "shipped": 0, "delivered": 0},
                    {"sku": "tee", "qty": 2, "cancelled": 0, "shipped": 2, "delivered": 2}],
                "parcels": [{"carrier": "dhl", "tracking": "JD0001",
                             "lines": [{"sku": "tee", "qty": 2}], "at": 2300}],
                "reason": null, "created_at": 2000, "updated_at": 2400}],
            "returns": [{
                "id": "ret_3_1", "order_id": "ord_3", "status": "received", "reason": "too small",
                "lines": [{"sku": "tee", "qty": 1}], "received": [{"sku": "tee", "qty": 1}],
                "restocked_to": "w1", "created_at": 2500, "updated_at": 2600}],
            "created_at": 2000, "updated_at": 2600,
        })
    );
}

#[test]
fn a_rejected_fulfilment_says_why_and_an_overflowing_order_has_no_totals() {
    let mut o = priced_order();
    life::apply(
        &mut o,
        &Event::FulfillmentStaged {
            order: OrderId(3),
            fulfillment: ful(),
            command: Command::Reject,
            reason: Some("flooded".into()),
            at: 2200,
        },
    );
    let f = value(&FulfillmentView::from(&o.life.fulfillments[0]));
    assert_eq!(f["status"], "rejected");
    assert_eq!(f["reason"], "flooded");
    // Placement refuses an order it cannot total; should one exist, it
    // shows no totals rather than a wrong sum.
    o.lines[0].unit_price = Some(u64::MAX);
    let v = value(&OrderView::from(&o));
    assert_eq!(v["totals"], Value::Null);
    assert_eq!(v["currency"], "EUR");
}

#[test]
fn fulfillment_page_and_payment_views() {
    let o = lived_order();
    let page = FulfillmentPageView {
        fulfillments: vec![FulfillmentView::from(&o.life.fulfillments[0])],
        next_cursor: Some("c1".into()),
    };
    assert_eq!(
        value(&page),
        json!({"fulfillments": [value(&FulfillmentView::from(&o.life.fulfillments[0]))],
               "next_cursor": "c1"})
    );
    let empty = FulfillmentPageView {
        fulfillments: vec![],
        next_cursor: None,
    };
    assert_eq!(
        value(&empty),
        json!({"fulfillments": [], "next_cursor": null})
    );
    let Event::OrderPayment { effect, .. } = payment(PaymentKind::Refund, 500, "re_1", 2700) else {
        unreachable!()
    };
    assert_eq!(
        value(&PaymentView::from(&effect)),
        json!({"kind": "refund", "amount": 500, "reference": "re_1", "at": 2700})
    );
    let r = &o.life.returns[0];
    let mut requested = r.clone();
    requested.status = ReturnStatus::Requested;
    requested.received.clear();
    requested.restocked_to = None;
    assert_eq!(
        value(&ReturnView::from(&requested)),
        json!({"id": "ret_3_1", "order_id": "ord_3", "status": "requested", "reason": "too small",
               "lines": [{"sku": "tee", "qty": 1}], "received": [], "restocked_to": null,
               "created_at": 2500, "updated_at": 2600})
    );
}

/// A status field's documentation (the OpenAPI description) names every
/// value it can take.
#[test]
fn status_fields_document_every_value() {
    fn description<T: utoipa::PartialSchema>(field: &str) -> String {
        let schema = serde_json::to_value(T::schema()).unwrap();
        schema["properties"][field]["description"]
            .as_str()
            .unwrap_or_else(|| panic!("{field} has no description: {schema}"))
            .to_owned()
    }
    let cases: [(String, Vec<&str>); 5] = [
        (
            description::<OrderView>("status"),
            LifeStatus::ALL.iter().map(|s| s.as_str()).collect(),
        ),
        (
            description::<OrderView>("payment_status"),
            PaymentStatus::ALL.iter().map(|s| s.as_str()).collect(),
        ),
        (
            description::<FulfillmentView>("status"),
            FulfillmentStatus::ALL.iter().map(|s| s.as_str()).collect(),
        ),
        (
            description::<ReturnView>("status"),
            ReturnStatus::ALL.iter().map(|s| s.as_str()).collect(),
        ),
        (
            description::<PaymentView>("kind"),
            PaymentKind::ALL.iter().map(|s| s.as_str()).collect(),
        ),
    ];
    for (text, names) in cases {
        let listed: Vec<&str> = text
            .split(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .collect();
        for n in names {
            assert!(listed.contains(&n), "{n} missing from {text:?}");
        }
    }
}

#[test]
fn shapes_shared_with_request_bodies_read_back_and_refuse_unknown_fields() {
    let l: LocationView = serde_json::from_str(r#"{"lat":1.5,"lon":-2}"#).unwrap();
    assert_eq!(
        l,
        LocationView {
            lat: 1.5,
            lon: -2.0
        }
    );
    let s: ShipToView = serde_json::from_str(r#"{"lat":1,"lon":2}"#).unwrap();
    assert_eq!(s.country, None);
    let line: LineView = serde_json::from_str(r#"{"sku":"tee","qty":1}"#).unwrap();
    assert_eq!(line.reservation_id, None);
    assert_eq!(line.unit_price, None);
    let line: LineView = serde_json::from_str(r#"{"sku":"tee","qty":1,"unit_price":250}"#).unwrap();
    assert_eq!(line.unit_price, Some(250));
    assert!(serde_json::from_str::<LocationView>(r#"{"lat":1,"lon":2,"alt":3}"#).is_err());
    assert!(serde_json::from_str::<ShipToView>(r#"{"lat":1,"lon":2,"zip":"1"}"#).is_err());
    assert!(serde_json::from_str::<LineView>(r#"{"sku":"a","qty":1,"x":1}"#).is_err());
}

#[test]
fn feed_envelopes() {
    let topics = vec!["sku:tee".to_owned(), "stock".to_owned()];
    let cases = [
        (
            ServerMsg::Hello { epoch: 9, seq: 4 },
            json!({"type": "hello", "epoch": 9, "seq": 4}),
        ),
        (
            ServerMsg::Subscribed {
                topics: &topics,
                epoch: 9,
            },
            json!({"type": "subscribed", "topics": ["sku:tee", "stock"], "epoch": 9}),
        ),
        (
            ServerMsg::Unsubscribed {
                topics: &topics[1..],
            },
            json!({"type": "unsubscribed", "topics": ["stock"]}),
        ),
        (
            ServerMsg::ResyncRequired {
                since: 3,
                reason: "fell behind the feed",
            },
            json!({"type": "resync_required", "since": 3, "reason": "fell behind the feed"}),
        ),
        (
            ServerMsg::Error {
                code: "invalid_topic",
                message: "unknown topic",
            },
            json!({"type": "error", "code": "invalid_topic", "message": "unknown topic"}),
        ),
        (
            ServerMsg::Snapshot {
                topic: "holds",
                seq: 4,
                data: &TopicSnapshot::Holds {},
            },
            json!({"type": "snapshot", "topic": "holds", "seq": 4, "data": {}}),
        ),
        (
            ServerMsg::Event {
                seq: 5,
                log_seq: 2,
                t_us: 77,
                event: &FeedEvent::availability(&sku("tee"), true, 0).unwrap(),
            },
            json!({"type": "event", "seq": 5, "log_seq": 2, "t_us": 77, "event": "sold_out",
                   "sku": "tee", "sku_available": 0}),
        ),
    ];
    for (msg, want) in cases {
        assert_eq!(value(&msg), want);
    }
}

#[test]
fn feed_events() {
    let s = tee();
    let o = OrderView::from(&order());
    let record = HoldRecord {
        hold: hold(),
        status: HoldStatus::Released,
        order: None,
        closed_at: Some(3000),
    };
    let cases = [
        (
            FeedEvent::WarehouseUpdated {
                warehouse: WarehouseView::from(&warehouse()),
            },
            json!({"event": "warehouse_updated", "warehouse": value(&WarehouseView::from(&warehouse()))}),
        ),
        (
            FeedEvent::sku_updated(&sku("tee"), &None, Some(2)),
            json!({"event": "sku_updated", "sku": "tee", "name": null, "per_customer_limit": 2}),
        ),
        (
            FeedEvent::HoldCreated { reservation: None },
            json!({"event": "hold_created", "reservation": null}),
        ),
        (
            FeedEvent::hold_extended(&sku("tee"), HoldId(7), 9000),
            json!({"event": "hold_extended", "reservation_id": "res_7", "sku": "tee", "expires_at": 9000}),
        ),
        (
            FeedEvent::hold_closed(
                ReleaseReason::Released,
                HoldClosed::new(&sku("tee"), HoldId(7), Some(&record), 3000),
            ),
            json!({"event": "hold_released", "reservation_id": "res_7", "sku": "tee", "qty": 2,
                   "warehouse": "w1", "at": 3000}),
        ),
        (
            FeedEvent::hold_closed(
                ReleaseReason::Expired,
                HoldClosed::new(&sku("tee"), HoldId(8), None, 3000),
            ),
            json!({"event": "hold_expired", "reservation_id": "res_8", "sku": "tee", "qty": null,
                   "warehouse": null, "at": 3000}),
        ),
        (
            FeedEvent::hold_consumed(&sku("tee"), HoldId(7), OrderId(3)),
            json!({"event": "hold_consumed", "reservation_id": "res_7", "sku": "tee", "order_id": "ord_3"}),
        ),
        (
            FeedEvent::OrderCreated {
                order: Box::new(o.clone()),
            },
            json!({"event": "order_created", "order": value(&o)}),
        ),
        (
            FeedEvent::order_routed(&o),
            json!({"event": "order_routed", "order_id": "ord_3",
                   "shipments": [{"warehouse": "w1", "lines": [{"sku": "tee", "qty": 2}]}]}),
        ),
        (
            FeedEvent::order_cancelled(OrderId(3), "changed my mind", 4000, Default::default()),
            json!({"event": "order_status_changed", "order_id": "ord_3", "status": "cancelled",
                   "reason": "changed my mind", "at": 4000}),
        ),
        (
            FeedEvent::StockChanged(StockChanged::from_state(&s, &wh("w1"))),
            json!({"event": "stock_changed", "sku": "tee", "warehouse": "w1", "on_hand": 5,
                   "reserved": 2, "allocated": 0, "safety_stock": 1, "available": 2, "incoming": 0,
                   "sku_available": 3}),
        ),
        (
            FeedEvent::availability(&sku("tee"), false, 3).unwrap(),
            json!({"event": "back_in_stock", "sku": "tee", "sku_available": 3}),
        ),
    ];
    for (event, want) in cases {
        assert_eq!(value(&event), want);
    }
    assert!(FeedEvent::availability(&sku("tee"), true, 1).is_none());
    assert!(FeedEvent::availability(&sku("tee"), false, 0).is_none());
}

#[test]
fn lifecycle_feed_events() {
    let o = lived_order();
    let f = FulfillmentView::from(&o.life.fulfillments[0]);
    let r = ReturnView::from(&o.life.returns[0]);
    let Event::OrderPayment { effect, .. } = payment(PaymentKind::Capture, 3500, "ch_1", 2150)
    else {
        unreachable!()
    };
    // An unpriced order has no totals to show.
    let authorize = payment(PaymentKind::Authorize, 100, "pi_9", 5);
    let mut unpriced = order();
    life::apply(&mut unpriced, &authorize);
    let Event::OrderPayment { effect: auth, .. } = authorize else {
        unreachable!()
    };
    let cancelled = [CancelledUnits {
        fulfillment: ful(),
        warehouse: wh("w1"),
        sku: sku("cap"),
        qty: 1,
    }];
    let parcel = &o.life.fulfillments[0].parcels[0];
    let cases = [
        (
            FeedEvent::payment(PaymentKind::Capture, PaymentChanged::new(&o, &effect)),
            json!({"event": "payment_captured", "order_id": "ord_3",
                   "payment": {"kind": "capture", "amount": 3500, "reference": "ch_1", "at": 2150},
                   "payment_status": "captured",
                   "totals": {"currency": "EUR", "ordered": 3500, "cancelled": 500,
                              "authorized": 3500, "captured": 3500, "refunded": 0,
                              "refund_due": 500}}),
        ),
        (
            FeedEvent::payment(
                PaymentKind::Authorize,
                PaymentChanged::new(&unpriced, &auth),
            ),
            json!({"event": "payment_authorized", "order_id": "ord_3",
                   "payment": {"kind": "authorize", "amount": 100, "reference": "pi_9", "at": 5},
                   "payment_status": "authorized", "totals": null}),
        ),
        (
            FeedEvent::order_hold(
                OrderId(3),
                Some(&HoldReason::parse("fraud_review").unwrap()),
                10,
            ),
            json!({"event": "order_held", "order_id": "ord_3", "reason": "fraud_review", "at": 10}),
        ),
        (
            FeedEvent::order_hold(OrderId(3), None, 11),
            json!({"event": "order_released", "order_id": "ord_3", "reason": null, "at": 11}),
        ),
        (
            FeedEvent::lines_cancelled(
                false,
                LinesCancelled::new(OrderId(3), &cancelled, "out of caps", 12),
            ),
            json!({"event": "order_lines_cancelled", "order_id": "ord_3",
                   "lines": [{"sku": "cap", "warehouse": "w1", "qty": 1}],
                   "reason": "out of caps", "at": 12}),
        ),
        (
            FeedEvent::lines_cancelled(
                true,
                LinesCancelled::new(OrderId(3), &cancelled, "expired", 13),
            ),
            json!({"event": "order_expired", "order_id": "ord_3",
                   "lines": [{"sku": "cap", "warehouse": "w1", "qty": 1}],
                   "reason": "expired", "at": 13}),
        ),
        (
            FeedEvent::fulfillment_staged(
                Command::Accept,
                FulfillmentChanged {
                    fulfillment: f.clone(),
                    at: 14,
                },
            ),
            json!({"event": "fulfillment_accepted", "fulfillment": value(&f), "at": 14}),
        ),
        (
            FeedEvent::fulfillment_staged(
                Command::Reject,
                FulfillmentChanged {
                    fulfillment: f.clone(),
                    at: 15,
                },
            ),
            json!({"event": "fulfillment_rejected", "fulfillment": value(&f), "at": 15}),
        ),
        (
            FeedEvent::FulfillmentShipped(FulfillmentShipped {
                fulfillment: f.clone(),
                parcel: ParcelView::from(parcel),
                at: 2300,
            }),
            json!({"event": "fulfillment_shipped", "fulfillment": value(&f),
                   "parcel": {"carrier": "dhl", "tracking": "JD0001",
                              "lines": [{"sku": "tee", "qty": 2}], "at": 2300},
                   "at": 2300}),
        ),
        (
            FeedEvent::FulfillmentDelivered(FulfillmentChanged {
                fulfillment: f.clone(),
                at: 2400,
            }),
            json!({"event": "fulfillment_delivered", "fulfillment": value(&f), "at": 2400}),
        ),
        (
            FeedEvent::ReturnReceived(ReturnChanged { ret: r.clone() }),
            json!({"event": "return_received", "return": value(&r)}),
        ),
        (
            FeedEvent::return_settled(Command::ReturnDecline, ReturnChanged { ret: r.clone() }),
            json!({"event": "return_declined", "return": value(&r)}),
        ),
        (
            FeedEvent::return_settled(Command::ReturnClose, ReturnChanged { ret: r.clone() }),
            json!({"event": "return_closed", "return": value(&r)}),
        ),
        (
            FeedEvent::order_status_changed(
                OrderId(3),
                "shipped",
                "fulfillment_shipped",
                16,
                Default::default(),
            ),
            json!({"event": "order_status_changed", "order_id": "ord_3", "status": "shipped",
                   "reason": "fulfillment_shipped", "at": 16}),
        ),
        (FeedEvent::OrderCounts(counts()), {
            let mut j = counts_json();
            j["event"] = json!("order_counts");
            j
        }),
    ];
    // Each matches the documented schema (the OpenAPI document's
    // `FeedEvent`, from the derives).
    let doc: Value = serde_json::from_slice(crate::api::openapi::json()).unwrap();
    let root = json!({"$ref": "#/components/schemas/FeedEvent", "components": doc["components"]});
    let validator = jsonschema::validator_for(&root).unwrap();
    for (event, want) in cases {
        let got = value(&event);
        assert_eq!(got, want);
        let errors: Vec<String> = validator.iter_errors(&got).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{got}: {errors:?}");
    }
    // The check has teeth: a payload missing its fields is refused.
    assert!(!validator.is_valid(&json!({"event": "payment_captured", "order_id": "ord_3"})));
    assert!(!validator.is_valid(&json!({"event": "return_closed", "ret": {}})));
}

#[test]
fn topic_snapshots() {
    let s = tee();
    let o = OrderView::from(&order());
    let w = WarehouseView::from(&warehouse());
    let cases = [
        (
            TopicSnapshot::Sku {
                stock: Some(StockView::from(&s)),
            },
            json!({"stock": value(&StockView::from(&s))}),
        ),
        (TopicSnapshot::Sku { stock: None }, json!({"stock": null})),
        (
            TopicSnapshot::Warehouse {
                warehouse: Some(w.clone()),
                truncated: true,
                stock: SkuRowView::from_state(&s, &wh("w1")).into_iter().collect(),
            },
            json!({"warehouse": value(&w), "truncated": true,
                   "stock": [value(&SkuRowView::from_state(&s, &wh("w1")).unwrap())]}),
        ),
        (TopicSnapshot::Order { order: None }, json!({"order": null})),
        (
            TopicSnapshot::Orders {
                recent: vec![o.clone()],
                workload: [("w1".to_owned(), WorkloadView::new(20_420, 3, Some(3)))].into(),
                counts: counts(),
            },
            json!({"recent": [value(&o)], "workload": {"w1": {
                "day": "2025-11-28", "routed": 3, "capacity_per_day": 3, "at_capacity": true}},
                "counts": counts_json()}),
        ),
        (
            TopicSnapshot::Stock {
                truncated: false,
                skus: vec![],
                warehouses: vec![w.clone()],
            },
            json!({"truncated": false, "skus": [], "warehouses": [value(&w)]}),
        ),
        (TopicSnapshot::Holds {}, json!({})),
    ];
    for (snapshot, want) in cases {
        assert_eq!(value(&snapshot), want);
    }
}

#[test]
fn feed_stats() {
    let stats = FeedStats {
        epoch: 1,
        seq: 2,
        window: 3,
        window_max: 4,
        connections: 5,
        cut_off_slow: 6,
        resyncs: 7,
    };
    assert_eq!(
        value(&stats),
        json!({"epoch": 1, "seq": 2, "window": 3, "window_max": 4, "connections": 5,
               "cut_off_slow": 6, "resyncs": 7})
    );
}

/// The feed renders views from here and nothing else: no JSON by hand, no
/// HTTP types.
#[test]
fn feed_builds_no_json_by_hand_and_knows_no_http() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/feed");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for banned in ["json!", "crate::api", "api::dto", "Value::Object"] {
            assert!(!text.contains(banned), "{} uses {banned}", path.display());
        }
        seen += 1;
    }
    assert!(seen >= 2, "read {seen} files in {}", dir.display());
}

#[test]
fn a_workload_day_is_a_local_date() {
    assert_eq!(warehouse::local_date(0), "1970-01-01");
    assert_eq!(warehouse::local_date(-1), "1969-12-31");
    assert_eq!(warehouse::local_date(20_420), "2025-11-28");
    // Beyond the calendar: the number, not a panic.
    assert_eq!(warehouse::local_date(i32::MAX), i32::MAX.to_string());
    let open = WorkloadView::new(0, 2, Some(3));
    let full = WorkloadView::new(0, 3, Some(3));
    let unlimited = WorkloadView::new(0, 1_000_000, None);
    assert!(!open.at_capacity && full.at_capacity && !unlimited.at_capacity);
    assert_eq!(
        value(&unlimited),
        json!({"day": "1970-01-01", "routed": 1_000_000, "capacity_per_day": null, "at_capacity": false})
    );
}

/// Order counts as the read model keeps them, and their JSON.
fn counts() -> crate::wire::OrderCountsView {
    crate::wire::OrderCountsView {
        funnel: crate::wire::FunnelView {
            placed: 4,
            paid: 2,
            shipped: 1,
            delivered: 1,
            cancelled: 1,
            expired: 0,
            returned: 0,
        },
        by_status: [("delivered".to_owned(), 1), ("ready".to_owned(), 2)].into(),
        by_payment_status: [("captured".to_owned(), 2), ("pending".to_owned(), 1)].into(),
        open_fulfillments: [("w1".to_owned(), 2)].into(),
    }
}

fn counts_json() -> Value {
    json!({
        "funnel": {"placed": 4, "paid": 2, "shipped": 1, "delivered": 1,
                   "cancelled": 1, "expired": 0, "returned": 0},
        "by_status": {"delivered": 1, "ready": 2},
        "by_payment_status": {"captured": 2, "pending": 1},
        "open_fulfillments": {"w1": 2}
    })
}

#[test]
fn incoming_views_and_feed_events() {
    use crate::core::sku::incoming::Receipt;
    use crate::wire::{LowStock, ReceiptClosed, ReceiptReceived, ReceiptView};
    let mut r = Receipt {
        n: 2,
        warehouse: wh("w1"),
        expected: 10,
        received: 4,
        expected_at: 900,
        reference: "PO-9".into(),
        created_at: 100,
        closed_at: None,
        idempotency: None,
        receive_keys: Vec::new(),
    };
    let open = json!({"id": "tee~2", "sku": "tee", "warehouse": "w1", "qty": 10, "received": 4,
        "outstanding": 6, "short": 0, "expected_at": 900, "reference": "PO-9", "status": "open",
        "created_at": 100, "closed_at": null});
    assert_eq!(value(&ReceiptView::new(&sku("tee"), &r)), open);
    assert_eq!(
        value(&FeedEvent::IncomingExpected(ReceiptView::new(
            &sku("tee"),
            &r
        ))),
        json!({"event": "incoming_expected", "id": "tee~2", "sku": "tee", "warehouse": "w1",
            "qty": 10, "received": 4, "outstanding": 6, "short": 0, "expected_at": 900,
            "reference": "PO-9", "status": "open", "created_at": 100, "closed_at": null})
    );
    r.received = 10;
    r.closed_at = Some(700);
    assert_eq!(
        value(&FeedEvent::IncomingReceived(ReceiptReceived {
            qty: 6,
            receipt: ReceiptView::new(&sku("tee"), &r)
        })),
        json!({"event": "incoming_received", "qty": 6, "receipt": {"id": "tee~2", "sku": "tee",
            "warehouse": "w1", "qty": 10, "received": 10, "outstanding": 0, "short": 0,
            "expected_at": 900, "reference": "PO-9", "status": "closed", "created_at": 100,
            "closed_at": 700}})
    );
    r.received = 4;
    assert_eq!(
        value(&FeedEvent::IncomingClosed(ReceiptClosed {
            short: 6,
            reason: "cut".into(),
            receipt: ReceiptView::new(&sku("tee"), &r)
        })),
        json!({"event": "incoming_closed", "short": 6, "reason": "cut", "receipt": {"id": "tee~2",
            "sku": "tee", "warehouse": "w1", "qty": 10, "received": 4, "outstanding": 0,
            "short": 6, "expected_at": 900, "reference": "PO-9", "status": "closed",
            "created_at": 100, "closed_at": 700}})
    );
    assert_eq!(
        value(&FeedEvent::LowStock(LowStock::new(
            &sku("tee"),
            &None,
            5,
            Some(5)
        ))),
        json!({"event": "low_stock", "sku": "tee", "warehouse": null, "available": 5, "threshold": 5})
    );
    assert_eq!(
        value(&FeedEvent::StockRecovered(LowStock::new(
            &sku("tee"),
            &Some(wh("w1")),
            6,
            None
        ))),
        json!({"event": "stock_recovered", "sku": "tee", "warehouse": "w1", "available": 6, "threshold": null})
    );
}
