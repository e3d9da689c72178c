//! The feed's JSON, pinned: every message each event type makes and every
//! topic's snapshot, field by field. A change here is a change of the wire
//! protocol, made on purpose.

use super::*;
use crate::core::lifecycle::{
    life, CancelledUnits, Command, Currency, FulfillmentId, HoldReason, Parcel, PaymentEffect,
    PaymentKind, PaymentReference, ReturnId,
};
use crate::core::routing::{Chain, RoutingTrace, Rule, SplitPolicy};
use crate::core::{
    ChannelId, CustomerId, HoldId, Location, Order, OrderLine, OrderStatus, ReleaseReason, ShipTo,
    Shipment, SkuAllocation, Warehouse,
};
use serde_json::Value;

fn sku(s: &str) -> SkuId {
    SkuId::parse(s).unwrap()
}

fn wh(s: &str) -> WarehouseId {
    WarehouseId::parse(s).unwrap()
}

fn hold(n: u64, warehouse: &str, qty: u64, customer: bool) -> crate::core::Hold {
    crate::core::Hold {
        id: HoldId(n),
        sku: sku("tee"),
        warehouse: wh(warehouse),
        qty,
        customer: customer.then(|| CustomerId::parse("c1").unwrap()),
        channel: customer.then(|| ChannelId::parse("web").unwrap()),
        created_at: 1000,
        expires_at: 2000,
        created_by: None,
    }
}

fn warehouse(id: &str, name: &str, lat: f64, lon: f64, priority: i32) -> Event {
    Event::WarehouseUpserted {
        warehouse: Warehouse {
            id: wh(id),
            name: name.into(),
            location: Location { lat, lon },
            priority,
            routing: Default::default(),
        },
    }
}

fn order() -> Order {
    Order {
        id: OrderId(1),
        channel: ChannelId::parse("web").unwrap(),
        customer: CustomerId::parse("c1").unwrap(),
        ship_to: ShipTo {
            location: Location {
                lat: 50.5,
                lon: 8.25,
            },
            country: Some("DE".into()),
        },
        lines: vec![
            OrderLine {
                sku: sku("tee"),
                qty: 2,
                reservation: Some(HoldId(1)),
                unit_price: None,
            },
            OrderLine {
                sku: sku("tee"),
                qty: 1,
                reservation: None,
                unit_price: None,
            },
        ],
        shipments: vec![
            Shipment {
                warehouse: wh("w1"),
                lines: vec![(sku("tee"), 2)],
            },
            Shipment {
                warehouse: wh("w2"),
                lines: vec![(sku("tee"), 1)],
            },
        ],
        status: OrderStatus::Placed,
        created_at: 4000,
        updated_at: 4000,
        created_by: None,
        routing: None,
        life: Default::default(),
    }
}

fn allocation(lines: &[(&str, u64)]) -> SkuAllocation {
    SkuAllocation {
        sku: sku("tee"),
        customer: CustomerId::parse("c1").unwrap(),
        lines: lines.iter().map(|(w, q)| (wh(w), *q)).collect(),
        consumed_holds: vec![HoldId(1)],
        shipped: 0,
        step: 0,
    }
}

/// Every event type, in an order the core could have logged them.
fn history() -> Vec<Event> {
    vec![
        warehouse("w1", "Berlin", 52.5, 13.25, 1),
        warehouse("w2", "Paris", 48.75, 2.5, 2),
        Event::RoutingRulesSet {
            channel: Some(ChannelId::parse("web").unwrap()),
            chain: Some(Chain {
                rules: vec![Rule::Enabled, Rule::Nearest],
                split: SplitPolicy::Forbid,
            }),
            at: 900,
        },
        Event::RoutingRulesSet {
            channel: None,
            chain: None,
            at: 950,
        },
        Event::SkuUpserted {
            sku: sku("tee"),
            name: Some("Tee".into()),
            per_customer_limit: Some(5),
        },
        Event::StockAdjusted {
            sku: sku("tee"),
            warehouse: wh("w1"),
            delta: 3,
            reason: "delivery".into(),
        },
        Event::SafetyStockSet {
            sku: sku("tee"),
            warehouse: wh("w1"),
            safety_stock: 1,
            reason: "display".into(),
        },
        Event::HoldCreated {
            hold: hold(1, "w1", 2, true),
            idempotency: None,
        },
        Event::HoldExtended {
            sku: sku("tee"),
            hold: HoldId(1),
            expires_at: 3000,
        },
        Event::StockAdjusted {
            sku: sku("tee"),
            warehouse: wh("w2"),
            delta: 2,
            reason: "delivery".into(),
        },
        Event::HoldCreated {
            hold: hold(2, "w2", 1, false),
            idempotency: None,
        },
        Event::HoldReleased {
            sku: sku("tee"),
            hold: HoldId(2),
            reason: ReleaseReason::Released,
            at: 1500,
        },
        Event::HoldCreated {
            hold: hold(3, "w2", 1, false),
            idempotency: None,
        },
        Event::HoldReleased {
            sku: sku("tee"),
            hold: HoldId(3),
            reason: ReleaseReason::Expired,
            at: 2500,
        },
        Event::OrderPlaced {
            order: order(),
            allocations: vec![SkuAllocation {
                sku: sku("tee"),
                customer: CustomerId::parse("c1").unwrap(),
                lines: vec![(wh("w1"), 2), (wh("w2"), 1)],
                consumed_holds: vec![HoldId(1)],
                shipped: 0,
                step: 0,
            }],
            idempotency: None,
        },
        Event::OrderRerouted {
            order: OrderId(1),
            from: vec![allocation(&[("w1", 2), ("w2", 1)])],
            to: vec![allocation(&[("w1", 1), ("w2", 2)])],
            shipments: vec![
                Shipment {
                    warehouse: wh("w1"),
                    lines: vec![(sku("tee"), 1)],
                },
                Shipment {
                    warehouse: wh("w2"),
                    lines: vec![(sku("tee"), 2)],
                },
            ],
            routing: std::sync::Arc::new(RoutingTrace {
                rules: vec![Rule::Enabled, Rule::Nearest],
                split: SplitPolicy::Allow,
                excluded: vec![],
                candidates: vec![],
                deciding_rule: None,
                attempts: 1,
            }),
            reason: "w1 short".into(),
            at: 4500,
        },
        Event::OrderCancelled {
            order: OrderId(1),
            skus: vec![sku("tee")],
            reason: "customer asked".into(),
            at: 5000,
        },
    ]
}

fn hub() -> Hub {
    Hub::new(FeedConfig {
        window_events: 1000,
        snapshot_items_max: 100,
    })
}

/// One line per message: its topics, its conflation row and its JSON (with
/// `t_us`, a clock reading, checked and then left out).
fn describe(m: &FeedMsg) -> String {
    let mut v: Value = serde_json::from_str(&m.json()).unwrap();
    let t = v.as_object_mut().unwrap().remove("t_us");
    assert!(t.and_then(|t| t.as_u64()).is_some(), "t_us: {}", m.json());
    let row = m
        .row
        .as_ref()
        .map(|(s, w)| format!("{s}@{w}"))
        .unwrap_or_else(|| "-".into());
    format!("{} {row} {v}", m.topics.join(","))
}

const MESSAGES: &str = r#"
stock,warehouse:w1 - {"event":"warehouse_updated","log_seq":1,"seq":1,"type":"event","warehouse":{"capacity_per_day":null,"channels":[],"countries":[],"cutoff":null,"enabled":true,"id":"w1","location":{"lat":52.5,"lon":13.25},"name":"Berlin","priority":1,"shipping_cost":null}}
stock,warehouse:w2 - {"event":"warehouse_updated","log_seq":2,"seq":2,"type":"event","warehouse":{"capacity_per_day":null,"channels":[],"countries":[],"cutoff":null,"enabled":true,"id":"w2","location":{"lat":48.75,"lon":2.5},"name":"Paris","priority":2,"shipping_cost":null}}
routing - {"at":900,"chain":{"rules":["enabled","nearest"],"source":"runtime","split":"forbid"},"channel":"web","event":"routing_rules_set","log_seq":3,"seq":3,"type":"event"}
routing - {"at":950,"chain":null,"channel":null,"event":"routing_rules_set","log_seq":4,"seq":4,"type":"event"}
stock,sku:tee - {"event":"sku_updated","log_seq":5,"name":"Tee","per_customer_limit":5,"seq":5,"sku":"tee","type":"event"}
stock,sku:tee,warehouse:w1 tee@w1 {"allocated":0,"available":3,"event":"stock_changed","incoming":0,"log_seq":6,"on_hand":3,"reserved":0,"safety_stock":0,"seq":6,"sku":"tee","sku_available":3,"type":"event","warehouse":"w1"}
stock,sku:tee - {"event":"back_in_stock","log_seq":6,"seq":7,"sku":"tee","sku_available":3,"type":"event"}
stock,sku:tee,warehouse:w1 tee@w1 {"allocated":0,"available":2,"event":"stock_changed","incoming":0,"log_seq":7,"on_hand":3,"reserved":0,"safety_stock":1,"seq":8,"sku":"tee","sku_available":2,"type":"event","warehouse":"w1"}
holds,sku:tee - {"event":"hold_created","log_seq":8,"reservation":{"channel":"web","created_at":1000,"customer_id":"c1","expires_at":2000,"id":"res_1","qty":2,"sku":"tee","status":"active","warehouse":"w1"},"seq":9,"type":"event"}
stock,sku:tee,warehouse:w1 tee@w1 {"allocated":0,"available":0,"event":"stock_changed","incoming":0,"log_seq":8,"on_hand":3,"reserved":2,"safety_stock":1,"seq":10,"sku":"tee","sku_available":0,"type":"event","warehouse":"w1"}
stock,sku:tee - {"event":"sold_out","log_seq":8,"seq":11,"sku":"tee","sku_available":0,"type":"event"}
holds,sku:tee - {"event":"hold_extended","expires_at":3000,"log_seq":9,"reservation_id":"res_1","seq":12,"sku":"tee","type":"event"}
stock,sku:tee,warehouse:w2 tee@w2 {"allocated":0,"available":2,"event":"stock_changed","incoming":0,"log_seq":10,"on_hand":2,"reserved":0,"safety_stock":0,"seq":13,"sku":"tee","sku_available":2,"type":"event","warehouse":"w2"}
stock,sku:tee - {"event":"back_in_stock","log_seq":10,"seq":14,"sku":"tee","sku_available":2,"type":"event"}
holds,sku:tee - {"event":"hold_created","log_seq":11,"reservation":{"channel":null,"created_at":1000,"customer_id":null,"expires_at":2000,"id":"res_2","qty":1,"sku":"tee","status":"active","warehouse":"w2"},"seq":15,"type":"event"}
stock,sku:tee,warehouse:w2 tee@w2 {"allocated":0,"available":1,"event":"stock_changed","incoming":0,"log_seq":11,"on_hand":2,"reserved":1,"safety_stock":0,"seq":16,"sku":"tee","sku_available":1,"type":"event","warehouse":"w2"}
holds,sku:tee - {"at":1500,"event":"hold_released","log_seq":12,"qty":1,"reservation_id":"res_2","seq":17,"sku":"tee","type":"event","warehouse":"w2"}
stock,sku:tee,warehouse:w2 tee@w2 {"allocated":0,"available":2,"event":"stock_changed","incoming":0,"log_seq":12,"on_hand":2,"reserved":0,"safety_stock":0,"seq":18,"sku":"tee","sku_available":2,"type":"event","warehouse":"w2"}
holds,sku:tee - {"event":"hold_created","log_seq":13,"reservation":{"channel":null,"created_at":1000,"customer_id":null,"expires_at":2000,"id":"res_3","qty":1,"sku":"tee","status":"active","warehouse":"w2"},"seq":19,"type":"event"}
stock,sku:tee,warehouse:w2 tee@w2 {"allocated":0,"available":1,"event":"stock_changed","incoming":0,"log_seq":13,"on_hand":2,"reserved":1,"safety_stock":0,"seq":20,"sku":"tee","sku_available":1,"type":"event","warehouse":"w2"}
holds,sku:tee - {"at":2500,"event":"hold_expired","log_seq":14,"qty":1,"reservation_id":"res_3","seq":21,"sku":"tee","type":"event","warehouse":"w2"}
stock,sku:tee,warehouse:w2 tee@w2 {"allocated":0,"available":2,"event":"stock_changed","incoming":0,"log_seq":14,"on_hand":2,"reserved":0,"safety_stock":0,"seq":22,"sku":"tee","sku_available":2,"type":"event","warehouse":"w2"}
holds,sku:tee - {"event":"hold_consumed","log_seq":15,"order_id":"ord_1","reservation_id":"res_1","seq":23,"sku":"tee","type":"event"}
orders,order:ord_1 - {"event":"order_created","log_seq":15,"order":{"channel":"web","created_at":4000,"currency":null,"customer_id":"c1","fulfillments":[],"hold_reason":null,"id":"ord_1","items":[{"cancelled":0,"delivered":0,"ordered":3,"returned":0,"shipped":0,"sku":"tee"}],"lines":[{"qty":2,"reservation_id":"res_1","sku":"tee"},{"qty":1,"sku":"tee"}],"pay_by":null,"payment_required":false,"payment_status":"pending","returns":[],"ship_to":{"country":"DE","lat":50.5,"lon":8.25},"shipments":[{"lines":[{"qty":2,"sku":"tee"}],"warehouse":"w1"},{"lines":[{"qty":1,"sku":"tee"}],"warehouse":"w2"}],"status":"ready","totals":null,"updated_at":4000},"seq":24,"type":"event"}
orders,order:ord_1,warehouse:w1,warehouse:w2 - {"event":"order_routed","log_seq":15,"order_id":"ord_1","seq":25,"shipments":[{"lines":[{"qty":2,"sku":"tee"}],"warehouse":"w1"},{"lines":[{"qty":1,"sku":"tee"}],"warehouse":"w2"}],"type":"event"}
stock,sku:tee,warehouse:w1 tee@w1 {"allocated":2,"available":0,"event":"stock_changed","incoming":0,"log_seq":15,"on_hand":3,"reserved":0,"safety_stock":1,"seq":26,"sku":"tee","sku_available":1,"type":"event","warehouse":"w1"}
stock,sku:tee,warehouse:w2 tee@w2 {"allocated":1,"available":1,"event":"stock_changed","incoming":0,"log_seq":15,"on_hand":2,"reserved":0,"safety_stock":0,"seq":27,"sku":"tee","sku_available":1,"type":"event","warehouse":"w2"}
orders - {"by_payment_status":{"pending":1},"by_status":{"ready":1},"event":"order_counts","funnel":{"cancelled":0,"delivered":0,"expired":0,"paid":0,"placed":1,"returned":0,"shipped":0},"log_seq":15,"open_fulfillments":{},"seq":28,"type":"event"}
orders,order:ord_1,warehouse:w1,warehouse:w2 - {"at":4500,"event":"order_rerouted","from":["w1","w2"],"log_seq":16,"order_id":"ord_1","reason":"w1 short","routing":{"attempts":1,"candidates":[],"deciding_rule":null,"excluded":[],"rules":["enabled","nearest"],"split":"allow"},"seq":29,"shipments":[{"lines":[{"qty":1,"sku":"tee"}],"warehouse":"w1"},{"lines":[{"qty":2,"sku":"tee"}],"warehouse":"w2"}],"type":"event","workload":{"w1":{"at_capacity":false,"capacity_per_day":null,"day":"1970-01-01","routed":1},"w2":{"at_capacity":false,"capacity_per_day":null,"day":"1970-01-01","routed":1}}}
stock,sku:tee,warehouse:w1 tee@w1 {"allocated":1,"available":1,"event":"stock_changed","incoming":0,"log_seq":16,"on_hand":3,"reserved":0,"safety_stock":1,"seq":30,"sku":"tee","sku_available":1,"type":"event","warehouse":"w1"}
stock,sku:tee,warehouse:w2 tee@w2 {"allocated":2,"available":0,"event":"stock_changed","incoming":0,"log_seq":16,"on_hand":2,"reserved":0,"safety_stock":0,"seq":31,"sku":"tee","sku_available":1,"type":"event","warehouse":"w2"}
orders,order:ord_1 - {"at":5000,"event":"order_status_changed","log_seq":17,"order_id":"ord_1","reason":"customer asked","seq":32,"status":"cancelled","type":"event","workload":{"w1":{"at_capacity":false,"capacity_per_day":null,"day":"1970-01-01","routed":0},"w2":{"at_capacity":false,"capacity_per_day":null,"day":"1970-01-01","routed":0}}}
stock,sku:tee,warehouse:w1 tee@w1 {"allocated":0,"available":2,"event":"stock_changed","incoming":0,"log_seq":17,"on_hand":3,"reserved":0,"safety_stock":1,"seq":33,"sku":"tee","sku_available":4,"type":"event","warehouse":"w1"}
stock,sku:tee,warehouse:w2 tee@w2 {"allocated":0,"available":2,"event":"stock_changed","incoming":0,"log_seq":17,"on_hand":2,"reserved":0,"safety_stock":0,"seq":34,"sku":"tee","sku_available":4,"type":"event","warehouse":"w2"}
orders - {"by_payment_status":{"pending":1},"by_status":{"cancelled":1},"event":"order_counts","funnel":{"cancelled":1,"delivered":0,"expired":0,"paid":0,"placed":1,"returned":0,"shipped":0},"log_seq":17,"open_fulfillments":{},"seq":35,"type":"event"}
"#;

#[test]
fn every_event_renders_the_pinned_messages() {
    let projection = Projection::new();
    let hub = hub();
    for (i, e) in history().iter().enumerate() {
        hub.apply_durable(&projection, i as u64 + 1, e);
    }
    let Read::Msgs(msgs, _) = hub.read(1, usize::MAX, |_| true) else {
        panic!("the window lost messages");
    };
    let got: Vec<String> = msgs.iter().map(|m| describe(m)).collect();
    let want: Vec<&str> = MESSAGES.lines().filter(|l| !l.is_empty()).collect();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "message {}", i + 1);
    }
    assert_eq!(got.len(), want.len(), "{}", got.join("\n"));
    for (i, m) in msgs.iter().enumerate() {
        assert_eq!(m.seq, i as u64 + 1);
        assert_eq!(
            m.keys,
            m.topics.iter().map(|t| topic_key(t)).collect::<Vec<_>>()
        );
    }
}

const SNAPSHOTS: &str = r#"
sku:tee {"stock":{"allocated":3,"available":1,"incoming":0,"low_stock_threshold":null,"name":"Tee","on_hand":5,"per_customer_limit":5,"reserved":0,"safety_stock":1,"sku":"tee","warehouses":[{"allocated":1,"available":1,"incoming":0,"low_stock_threshold":null,"on_hand":3,"reserved":0,"safety_stock":1,"warehouse":"w1"},{"allocated":2,"available":0,"incoming":0,"low_stock_threshold":null,"on_hand":2,"reserved":0,"safety_stock":0,"warehouse":"w2"}]}}
sku:nope {"stock":null}
warehouse:w1 {"stock":[{"allocated":1,"available":1,"incoming":0,"on_hand":3,"reserved":0,"safety_stock":1,"sku":"tee"}],"truncated":false,"warehouse":{"capacity_per_day":null,"channels":[],"countries":[],"cutoff":null,"enabled":true,"id":"w1","location":{"lat":52.5,"lon":13.25},"name":"Berlin","priority":1,"shipping_cost":null}}
warehouse:nope {"stock":[],"truncated":false,"warehouse":null}
order:ord_1 {"order":{"channel":"web","created_at":4000,"currency":null,"customer_id":"c1","fulfillments":[],"hold_reason":null,"id":"ord_1","items":[{"cancelled":0,"delivered":0,"ordered":3,"returned":0,"shipped":0,"sku":"tee"}],"lines":[{"qty":2,"reservation_id":"res_1","sku":"tee"},{"qty":1,"sku":"tee"}],"pay_by":null,"payment_required":false,"payment_status":"pending","returns":[],"routing":{"attempts":1,"candidates":[],"deciding_rule":null,"excluded":[],"rules":["enabled","nearest"],"split":"allow"},"ship_to":{"country":"DE","lat":50.5,"lon":8.25},"shipments":[{"lines":[{"qty":1,"sku":"tee"}],"warehouse":"w1"},{"lines":[{"qty":2,"sku":"tee"}],"warehouse":"w2"}],"status":"ready","totals":null,"updated_at":4500}}
order:ord_9 {"order":null}
orders {"counts":{"by_payment_status":{"pending":1},"by_status":{"ready":1},"funnel":{"cancelled":0,"delivered":0,"expired":0,"paid":0,"placed":1,"returned":0,"shipped":0},"open_fulfillments":{}},"recent":[{"channel":"web","created_at":4000,"currency":null,"customer_id":"c1","fulfillments":[],"hold_reason":null,"id":"ord_1","items":[{"cancelled":0,"delivered":0,"ordered":3,"returned":0,"shipped":0,"sku":"tee"}],"lines":[{"qty":2,"reservation_id":"res_1","sku":"tee"},{"qty":1,"sku":"tee"}],"pay_by":null,"payment_required":false,"payment_status":"pending","returns":[],"routing":{"attempts":1,"candidates":[],"deciding_rule":null,"excluded":[],"rules":["enabled","nearest"],"split":"allow"},"ship_to":{"country":"DE","lat":50.5,"lon":8.25},"shipments":[{"lines":[{"qty":1,"sku":"tee"}],"warehouse":"w1"},{"lines":[{"qty":2,"sku":"tee"}],"warehouse":"w2"}],"status":"ready","totals":null,"updated_at":4500}],"workload":{"w1":{"at_capacity":false,"capacity_per_day":null,"day":"1970-01-01","routed":1},"w2":{"at_capacity":false,"capacity_per_day":null,"day":"1970-01-01","routed":1}}}
stock {"skus":[{"allocated":3,"available":1,"incoming":0,"low_stock_threshold":null,"name":"Tee","on_hand":5,"per_customer_limit":5,"reserved":0,"safety_stock":1,"sku":"tee","warehouses":[{"allocated":1,"available":1,"incoming":0,"low_stock_threshold":null,"on_hand":3,"reserved":0,"safety_stock":1,"warehouse":"w1"},{"allocated":2,"available":0,"incoming":0,"low_stock_threshold":null,"on_hand":2,"reserved":0,"safety_stock":0,"warehouse":"w2"}]}],"truncated":false,"warehouses":[{"capacity_per_day":null,"channels":[],"countries":[],"cutoff":null,"enabled":true,"id":"w1","location":{"lat":52.5,"lon":13.25},"name":"Berlin","priority":1,"shipping_cost":null},{"capacity_per_day":null,"channels":[],"countries":[],"cutoff":null,"enabled":true,"id":"w2","location":{"lat":48.75,"lon":2.5},"name":"Paris","priority":2,"shipping_cost":null}]}
all {"skus":[{"allocated":3,"available":1,"incoming":0,"low_stock_threshold":null,"name":"Tee","on_hand":5,"per_customer_limit":5,"reserved":0,"safety_stock":1,"sku":"tee","warehouses":[{"allocated":1,"available":1,"incoming":0,"low_stock_threshold":null,"on_hand":3,"reserved":0,"safety_stock":1,"warehouse":"w1"},{"allocated":2,"available":0,"incoming":0,"low_stock_threshold":null,"on_hand":2,"reserved":0,"safety_stock":0,"warehouse":"w2"}]}],"truncated":false,"warehouses":[{"capacity_per_day":null,"channels":[],"countries":[],"cutoff":null,"enabled":true,"id":"w1","location":{"lat":52.5,"lon":13.25},"name":"Berlin","priority":1,"shipping_cost":null},{"capacity_per_day":null,"channels":[],"countries":[],"cutoff":null,"enabled":true,"id":"w2","location":{"lat":48.75,"lon":2.5},"name":"Paris","priority":2,"shipping_cost":null}]}
holds {}
routing {"runtime":{"web":{"rules":["enabled","nearest"],"source":"runtime","split":"forbid"}}}
"#;

#[test]
fn every_topic_snapshots_the_pinned_json() {
    let projection = Projection::new();
    let hub = hub();
    // Up to the order's re-routing, so it is still placed and holds are in
    // every state.
    let events = history();
    for (i, e) in events.iter().take(events.len() - 1).enumerate() {
        hub.apply_durable(&projection, i as u64 + 1, e);
    }
    let topics = [
        "sku:tee",
        "sku:nope",
        "warehouse:w1",
        "warehouse:nope",
        "order:ord_1",
        "order:ord_9",
        "orders",
        "stock",
        "all",
        "holds",
        "routing",
    ];
    let got: Vec<String> = topics
        .iter()
        .map(|t| {
            let (seq, msg) = hub.snapshot_msg(&projection, &Topic::parse(t).unwrap());
            assert_eq!(seq, hub.head());
            let mut v: Value = serde_json::from_str(&msg).unwrap();
            let data = v.as_object_mut().unwrap().remove("data").unwrap();
            assert_eq!(
                v,
                serde_json::from_str::<Value>(&format!(
                    r#"{{"type":"snapshot","topic":"{t}","seq":{seq}}}"#
                ))
                .unwrap()
            );
            format!("{t} {data}")
        })
        .collect();
    let want: Vec<&str> = SNAPSHOTS.lines().filter(|l| !l.is_empty()).collect();
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w);
    }
    assert_eq!(got.len(), want.len(), "{}", got.join("\n"));
}

/// A snapshot is copied under `cut` and rendered outside it: while one is
/// being rendered (here: for as long as the test likes), the WAL writer
/// applies and publishes the next event. Were rendering done under `cut`,
/// `apply_durable` would wait for it and the bounded wait below would fail.
#[test]
fn rendering_a_snapshot_never_holds_up_the_writer() {
    let projection = Projection::new();
    let hub = hub();
    let events = history();
    // Up to the first delivery: the SKU has 3 on hand.
    let upto = 1 + events
        .iter()
        .position(|e| matches!(e, Event::StockAdjusted { .. }))
        .unwrap();
    for (i, e) in events.iter().take(upto).enumerate() {
        hub.apply_durable(&projection, i as u64 + 1, e);
    }
    let head = hub.head();
    let more = Event::StockAdjusted {
        sku: sku("tee"),
        warehouse: wh("w1"),
        delta: 2,
        reason: "delivery".into(),
    };
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let (seq, (writer_done, on_hand)) = std::thread::scope(|scope| {
        hub.snapshot_with(&projection, &Topic::Sku(sku("tee")), |_, data| {
            scope.spawn(|| {
                hub.apply_durable(&projection, upto as u64 + 1, &more);
                let _ = done_tx.send(());
            });
            let writer_done = done_rx
                .recv_timeout(std::time::Duration::from_secs(10))
                .is_ok();
            let on_hand = match data {
                TopicSnapshot::Sku { stock: Some(s) } => s.totals.on_hand,
                other => panic!("not the sku's stock: {other:?}"),
            };
            (writer_done, on_hand)
        })
    });
    assert!(
        writer_done,
        "the writer waited for a snapshot being rendered"
    );
    // The copy is the state as of its seq, untouched by the later event...
    assert_eq!((seq, on_hand), (head, 3));
    // ... which was published after it, for the subscriber to get next.
    let Read::Msgs(after, _) = hub.read(seq + 1, usize::MAX, |_| true) else {
        panic!("the window lost messages");
    };
    assert!(!after.is_empty());
    let v: Value = serde_json::from_str(&after[0].json()).unwrap();
    assert_eq!(
        (v["event"].as_str(), v["on_hand"].as_u64()),
        (Some("stock_changed"), Some(5))
    );
}

#[test]
fn messages_are_rendered_only_when_read_and_then_once() {
    let projection = Projection::new();
    let hub = hub();
    for (i, e) in history().iter().enumerate() {
        hub.apply_durable(&projection, i as u64 + 1, e);
    }
    let Read::Msgs(msgs, _) = hub.read(1, usize::MAX, |_| true) else {
        panic!("the window lost messages");
    };
    // Nobody has sent them: nothing was rendered, yet a resume finds all.
    assert_eq!(
        msgs.len(),
        MESSAGES.lines().filter(|l| !l.is_empty()).count()
    );
    assert!(msgs.iter().all(|m| !m.is_rendered()));
    let first = msgs[0].json();
    assert!(msgs[0].is_rendered());
    assert!(msgs[1..].iter().all(|m| !m.is_rendered()));
    // Every later reader shares the same bytes.
    let again = hub.read(1, 1, |_| true);
    let Read::Msgs(again, _) = again else {
        panic!("the window lost messages");
    };
    assert!(std::ptr::eq(first.as_ptr(), again[0].json().as_ptr()));
}

/// The `orders` snapshot's workload of a hub that saw every order fed
/// equals that of a hub started on the same read model (as after a
/// restart, where it is counted from the orders replay left).
#[test]
fn the_workload_counted_live_equals_the_one_seeded_from_the_read_model() {
    let projection = Arc::new(Projection::new());
    let live = hub();
    let events = history();
    for (i, e) in events.iter().take(events.len() - 1).enumerate() {
        live.apply_durable(&projection, i as u64 + 1, e);
    }
    let workload = |hub: &Hub| match hub.snapshot(&projection, &Topic::Orders).1 {
        TopicSnapshot::Orders { workload, .. } => workload,
        other => panic!("{other:?}"),
    };
    let counted = workload(&live);
    assert_eq!(counted.len(), 2, "{counted:?}");
    let restarted = Arc::new(hub());
    let _publisher = Publisher::new(restarted.clone(), projection.clone());
    assert_eq!(workload(&restarted), counted);
}

// --- the order lifecycle ---------------------------------------------------------

fn cap() -> SkuId {
    sku("cap")
}

/// Order `n`, priced in EUR, waiting for payment: 2 tees at 15.00 from w1
/// and a cap at 5.00 from w2, with its fulfilments as placement makes them.
fn priced_order(n: u64) -> (Order, Vec<SkuAllocation>) {
    let mut o = order();
    o.id = OrderId(n);
    o.lines = vec![
        OrderLine {
            sku: sku("tee"),
            qty: 2,
            reservation: None,
            unit_price: Some(1500),
        },
        OrderLine {
            sku: cap(),
            qty: 1,
            reservation: None,
            unit_price: Some(500),
        },
    ];
    o.shipments = vec![
        Shipment {
            warehouse: wh("w1"),
            lines: vec![(sku("tee"), 2)],
        },
        Shipment {
            warehouse: wh("w2"),
            lines: vec![(cap(), 1)],
        },
    ];
    o.life.currency = Some(Currency::parse("EUR").unwrap());
    o.life.payment_required = true;
    o.life.pay_by = Some(9000);
    o.life.fulfillments = life::fulfillments_at_placement(o.id, &o.shipments, o.created_at);
    let allocations = vec![
        SkuAllocation {
            sku: sku("tee"),
            customer: CustomerId::parse("c1").unwrap(),
            lines: vec![(wh("w1"), 2)],
            consumed_holds: vec![],
            shipped: 0,
            step: 0,
        },
        SkuAllocation {
            sku: cap(),
            customer: CustomerId::parse("c1").unwrap(),
            lines: vec![(wh("w2"), 1)],
            consumed_holds: vec![],
            shipped: 0,
            step: 0,
        },
    ];
    (o, allocations)
}

fn ful(order: u64, n: u32) -> FulfillmentId {
    FulfillmentId {
        order: OrderId(order),
        n,
    }
}

fn ret(order: u64, n: u32) -> ReturnId {
    ReturnId {
        order: OrderId(order),
        n,
    }
}

fn pay(order: u64, kind: PaymentKind, amount: u64, reference: &str, at: u64) -> Event {
    Event::OrderPayment {
        order: OrderId(order),
        effect: PaymentEffect {
            kind,
            amount,
            reference: PaymentReference::parse(reference).unwrap(),
            at,
        },
    }
}

fn staged(order: u64, n: u32, command: Command, reason: Option<&str>, at: u64) -> Event {
    Event::FulfillmentStaged {
        order: OrderId(order),
        fulfillment: ful(order, n),
        command,
        reason: reason.map(Into::into),
        at,
    }
}

fn shipped(qty: u64, at: u64) -> Event {
    Event::FulfillmentShipped {
        order: OrderId(2),
        fulfillment: ful(2, 1),
        warehouse: wh("w1"),
        parcel: Parcel {
            carrier: "dhl".into(),
            tracking: format!("JD{at}"),
            lines: vec![(sku("tee"), qty)],
            at,
        },
        step: at,
    }
}

/// Stock for two orders, then the events before the lifecycle's.
fn life_setup() -> Vec<Event> {
    let (two, two_alloc) = priced_order(2);
    let (three, three_alloc) = priced_order(3);
    vec![
        warehouse("w1", "Berlin", 52.5, 13.25, 1),
        warehouse("w2", "Paris", 48.75, 2.5, 2),
        Event::SkuUpserted {
            sku: sku("tee"),
            name: None,
            per_customer_limit: None,
        },
        Event::SkuUpserted {
            sku: cap(),
            name: None,
            per_customer_limit: None,
        },
        Event::StockAdjusted {
            sku: sku("tee"),
            warehouse: wh("w1"),
            delta: 10,
            reason: "delivery".into(),
        },
        Event::StockAdjusted {
            sku: cap(),
            warehouse: wh("w2"),
            delta: 10,
            reason: "delivery".into(),
        },
        Event::OrderPlaced {
            order: two,
            allocations: two_alloc,
            idempotency: None,
        },
        Event::OrderPlaced {
            order: three,
            allocations: three_alloc,
            idempotency: None,
        },
    ]
}

/// Order 2's life, then order 3's expiry; each event with the messages it
/// must make: their topics and event names, in order.
fn life_steps() -> Vec<(Event, Vec<(&'static str, &'static str)>)> {
    const O2: &str = "orders,order:ord_2";
    const O2_W1: &str = "orders,order:ord_2,warehouse:w1";
    const O2_W2: &str = "orders,order:ord_2,warehouse:w2";
    const TEE_W1: &str = "stock,sku:tee,warehouse:w1";
    const CAP_W2: &str = "stock,sku:cap,warehouse:w2";
    const O3: &str = "orders,order:ord_3";
    vec![
        (
            pay(2, PaymentKind::Authorize, 3500, "pi_1", 5100),
            vec![(O2, "payment_authorized"), (O2, "order_status_changed")],
        ),
        // Still ready: no status message.
        (
            pay(2, PaymentKind::Capture, 3500, "ch_1", 5200),
            vec![(O2, "payment_captured")],
        ),
        (
            Event::OrderHoldSet {
                order: OrderId(2),
                reason: Some(HoldReason::parse("fraud_review").unwrap()),
                at: 5300,
            },
            vec![(O2, "order_held"), (O2, "order_status_changed")],
        ),
        (
            Event::OrderHoldSet {
                order: OrderId(2),
                reason: None,
                at: 5400,
            },
            vec![(O2, "order_released"), (O2, "order_status_changed")],
        ),
        (
            staged(2, 1, Command::Accept, None, 5500),
            vec![
                (O2_W1, "fulfillment_accepted"),
                (O2, "order_status_changed"),
            ],
        ),
        (
            staged(2, 1, Command::Pick, None, 5600),
            vec![(O2_W1, "fulfillment_picked")],
        ),
        (
            staged(2, 1, Command::Pack, None, 5700),
            vec![(O2_W1, "fulfillment_packed")],
        ),
        (
            staged(2, 2, Command::Reject, Some("flooded"), 5800),
            vec![(O2_W2, "fulfillment_rejected")],
        ),
        (
            Event::OrderLinesCancelled {
                order: OrderId(2),
                units: vec![CancelledUnits {
                    fulfillment: ful(2, 2),
                    warehouse: wh("w2"),
                    sku: cap(),
                    qty: 1,
                }],
                reason: "out of caps".into(),
                expired: false,
                at: 5900,
                step: 5900,
            },
            vec![(O2_W2, "order_lines_cancelled"), (CAP_W2, "stock_changed")],
        ),
        (
            shipped(1, 6000),
            vec![
                (O2_W1, "fulfillment_shipped"),
                (O2, "order_status_changed"),
                (TEE_W1, "stock_changed"),
            ],
        ),
        (
            shipped(1, 6100),
            vec![
                (O2_W1, "fulfillment_shipped"),
                (O2, "order_status_changed"),
                (TEE_W1, "stock_changed"),
            ],
        ),
        (
            Event::FulfillmentDelivered {
                order: OrderId(2),
                fulfillment: ful(2, 1),
                lines: vec![(sku("tee"), 2)],
                at: 6200,
            },
            vec![
                (O2_W1, "fulfillment_delivered"),
                (O2, "order_status_changed"),
            ],
        ),
        (
            Event::ReturnRequested {
                order: OrderId(2),
                ret: ret(2, 1),
                lines: vec![(sku("tee"), 1)],
                reason: "too small".into(),
                at: 6300,
            },
            vec![(O2, "return_requested")],
        ),
        (
            Event::ReturnReceived {
                order: OrderId(2),
                ret: ret(2, 1),
                lines: vec![(sku("tee"), 1)],
                restock: Some(wh("w1")),
                at: 6400,
                step: 6400,
            },
            vec![
                (O2_W1, "return_received"),
                (O2, "order_status_changed"),
                (TEE_W1, "stock_changed"),
            ],
        ),
        (
            Event::ReturnSettled {
                order: OrderId(2),
                ret: ret(2, 1),
                command: Command::ReturnClose,
                at: 6500,
            },
            vec![(O2, "return_closed")],
        ),
        (
            Event::ReturnRequested {
                order: OrderId(2),
                ret: ret(2, 2),
                lines: vec![(sku("tee"), 1)],
                reason: "changed my mind".into(),
                at: 6600,
            },
            vec![(O2, "return_requested")],
        ),
        (
            Event::ReturnSettled {
                order: OrderId(2),
                ret: ret(2, 2),
                command: Command::ReturnDecline,
                at: 6700,
            },
            vec![(O2, "return_declined")],
        ),
        (
            pay(2, PaymentKind::Refund, 2000, "re_1", 6800),
            vec![(O2, "payment_refunded")],
        ),
        // Order 3 stays unpaid past its time: everything cancelled.
        (
            Event::OrderLinesCancelled {
                order: OrderId(3),
                units: vec![
                    CancelledUnits {
                        fulfillment: ful(3, 2),
                        warehouse: wh("w2"),
                        sku: cap(),
                        qty: 1,
                    },
                    CancelledUnits {
                        fulfillment: ful(3, 1),
                        warehouse: wh("w1"),
                        sku: sku("tee"),
                        qty: 2,
                    },
                ],
                reason: "expired".into(),
                expired: true,
                at: 9000,
                step: 9000,
            },
            vec![
                (
                    "orders,order:ord_3,warehouse:w1,warehouse:w2",
                    "order_expired",
                ),
                (O3, "order_status_changed"),
                (CAP_W2, "stock_changed"),
                (TEE_W1, "stock_changed"),
            ],
        ),
    ]
}

/// JSON text as a value (the feed's code, tests included, builds no JSON
/// by hand).
fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// The messages `event` makes, as JSON values with their topics.
fn fed(hub: &Hub, projection: &Projection, log_seq: u64, event: &Event) -> Vec<(String, Value)> {
    let head = hub.head();
    hub.apply_durable(projection, log_seq, event);
    let Read::Msgs(msgs, _) = hub.read(head + 1, usize::MAX, |_| true) else {
        panic!("the window lost messages");
    };
    msgs.iter()
        .map(|m| (m.topics.join(","), serde_json::from_str(&m.json()).unwrap()))
        .collect()
}

#[test]
fn lifecycle_events_make_typed_messages_and_a_status_change_only_on_a_change() {
    let projection = Projection::new();
    let hub = hub();
    let mut log_seq = 0;
    for e in life_setup() {
        log_seq += 1;
        hub.apply_durable(&projection, log_seq, &e);
    }
    let mut statuses = Vec::new();
    for (event, want) in life_steps() {
        log_seq += 1;
        let changes = projection.order_tally.changes();
        let mut got = fed(&hub, &projection, log_seq, &event);
        // The orders' numbers: last, only when they changed, and the sums
        // over every order as the read model has them now.
        let counts = match got.last() {
            Some((_, v)) if v["event"] == "order_counts" => got.pop(),
            _ => None,
        };
        assert_eq!(
            counts.is_some(),
            projection.order_tally.changes() != changes,
            "after {}",
            event.kind()
        );
        let orders: Vec<crate::core::Order> = projection
            .orders
            .iter()
            .map(|o| o.value().clone())
            .collect();
        let fresh = crate::projection::Tally::of(&orders);
        assert_eq!(
            projection.order_tally.get(),
            fresh,
            "after {}",
            event.kind()
        );
        if let Some((topics, mut v)) = counts {
            assert_eq!(topics, "orders");
            let o = v.as_object_mut().unwrap();
            for k in ["type", "event", "seq", "log_seq", "t_us"] {
                o.remove(k);
            }
            assert_eq!(
                v,
                serde_json::to_value(crate::wire::OrderCountsView::from(&fresh)).unwrap()
            );
        }
        let names: Vec<(&str, &str)> = got
            .iter()
            .map(|(t, v)| (t.as_str(), v["event"].as_str().unwrap()))
            .collect();
        assert_eq!(names, want, "after {}", event.kind());
        // The first message is the event's own, named as the log names it.
        assert_eq!(got[0].1["event"], event.kind());
        for (_, v) in &got {
            assert_eq!(v["log_seq"], log_seq);
            if v["event"] == "order_status_changed" {
                statuses.push((
                    v["status"].as_str().unwrap().to_owned(),
                    v["reason"].as_str().unwrap().to_owned(),
                    v["at"].as_u64().unwrap(),
                ));
                // The status the read model shows now.
                let id = OrderId::parse(v["order_id"].as_str().unwrap()).unwrap();
                let o = projection.orders.get(&id).unwrap();
                assert_eq!(v["status"], o.lifecycle_status().as_str());
            }
        }
    }
    // The whole life, counted: one order paid, shipped, delivered and
    // partly returned, one expired unpaid.
    let t = projection.order_tally.get();
    assert_eq!(
        (t.placed, t.paid, t.shipped, t.delivered),
        (2, 1, 1, 1),
        "{t:?}"
    );
    assert_eq!((t.cancelled, t.expired, t.returned), (0, 1, 1), "{t:?}");
    assert_eq!(
        t.by_status,
        [("cancelled", 1), ("partially_returned", 1)].into()
    );
    assert!(t.open_fulfillments.is_empty(), "{t:?}");
    let statuses: Vec<(&str, &str, u64)> = statuses
        .iter()
        .map(|(s, r, at)| (s.as_str(), r.as_str(), *at))
        .collect();
    assert_eq!(
        statuses,
        [
            ("ready", "payment_authorized", 5100),
            ("on_hold", "fraud_review", 5300),
            ("ready", "order_released", 5400),
            ("in_fulfillment", "fulfillment_accepted", 5500),
            ("partially_shipped", "fulfillment_shipped", 6000),
            ("shipped", "fulfillment_shipped", 6100),
            ("delivered", "fulfillment_delivered", 6200),
            ("partially_returned", "return_received", 6400),
            ("cancelled", "expired", 9000),
        ]
    );
}

#[test]
fn lifecycle_payloads_carry_the_state_after_the_event() {
    let projection = Projection::new();
    let hub = hub();
    let mut log_seq = 0;
    for e in life_setup() {
        log_seq += 1;
        hub.apply_durable(&projection, log_seq, &e);
    }
    let mut by_step: Vec<Vec<(String, Value)>> = Vec::new();
    for (event, _) in life_steps() {
        log_seq += 1;
        by_step.push(fed(&hub, &projection, log_seq, &event));
    }
    let payload = |step: usize, i: usize| {
        let mut v = by_step[step][i].1.clone();
        let m = v.as_object_mut().unwrap();
        for k in ["type", "seq", "log_seq", "t_us"] {
            m.remove(k);
        }
        v
    };
    // Authorized: the payment, the status and the money after it.
    assert_eq!(
        payload(0, 0),
        json(
            r#"{"event": "payment_authorized", "order_id": "ord_2", "payment": {"kind": "authorize", "amount": 3500, "reference": "pi_1", "at": 5100}, "payment_status": "authorized", "totals": {"currency": "EUR", "ordered": 3500, "cancelled": 0, "authorized": 3500, "captured": 0, "refunded": 0, "refund_due": 0}}"#
        )
    );
    assert_eq!(
        payload(2, 0),
        json(
            r#"{"event": "order_held", "order_id": "ord_2", "reason": "fraud_review", "at": 5300}"#
        )
    );
    assert_eq!(payload(3, 0)["reason"], Value::Null);
    // The fulfilment as it is after the event.
    let accepted = payload(4, 0);
    assert_eq!(accepted["fulfillment"]["id"], "ful_2_1");
    assert_eq!(accepted["fulfillment"]["status"], "accepted");
    assert_eq!(accepted["at"], 5500);
    let rejected = payload(7, 0);
    assert_eq!(rejected["fulfillment"]["status"], "rejected");
    assert_eq!(rejected["fulfillment"]["reason"], "flooded");
    assert_eq!(rejected["fulfillment"]["warehouse"], "w2");
    assert_eq!(
        payload(8, 0),
        json(
            r#"{"event": "order_lines_cancelled", "order_id": "ord_2", "lines": [{"sku": "cap", "warehouse": "w2", "qty": 1}], "reason": "out of caps", "at": 5900}"#
        )
    );
    let first = payload(9, 0);
    assert_eq!(first["fulfillment"]["status"], "partially_shipped");
    assert_eq!(
        first["fulfillment"]["lines"],
        json(r#"[{"sku": "tee", "qty": 2, "cancelled": 0, "shipped": 1, "delivered": 0}]"#)
    );
    assert_eq!(
        first["parcel"],
        json(
            r#"{"carrier": "dhl", "tracking": "JD6000", "lines": [{"sku": "tee", "qty": 1}], "at": 6000}"#
        )
    );
    assert_eq!(first["at"], 6000);
    let second = payload(10, 0);
    assert_eq!(second["fulfillment"]["status"], "shipped");
    assert_eq!(
        second["fulfillment"]["parcels"].as_array().unwrap().len(),
        2
    );
    // Shipping took order 2's units out of on hand and allocated (order 3
    // still has 2 allocated there).
    let row = payload(10, 2);
    assert_eq!(
        (row["on_hand"].as_u64(), row["allocated"].as_u64()),
        (Some(8), Some(2))
    );
    assert_eq!(payload(11, 0)["fulfillment"]["status"], "delivered");
    let requested = payload(12, 0);
    assert_eq!(requested["return"]["id"], "ret_2_1");
    assert_eq!(requested["return"]["status"], "requested");
    let received = payload(13, 0);
    assert_eq!(received["return"]["status"], "received");
    assert_eq!(received["return"]["restocked_to"], "w1");
    assert_eq!(
        received["return"]["received"],
        json(r#"[{"sku": "tee", "qty": 1}]"#)
    );
    assert_eq!(payload(14, 0)["return"]["status"], "closed");
    assert_eq!(payload(16, 0)["return"]["status"], "declined");
    let refunded = payload(17, 0);
    assert_eq!(refunded["payment_status"], "partially_refunded");
    assert_eq!(refunded["totals"]["refunded"], 2000);
    // Expired: every unit cancelled, and the order leaves its warehouses'
    // workload (order 2 still counts).
    let expired = payload(18, 0);
    assert_eq!(expired["event"], "order_expired");
    assert_eq!(expired["reason"], "expired");
    let status = payload(18, 1);
    assert_eq!(status["status"], "cancelled");
    assert_eq!(status["workload"]["w1"]["routed"], 1);
    assert_eq!(status["workload"]["w2"]["routed"], 1);
    let o = projection.orders.get(&OrderId(3)).unwrap();
    assert_eq!(life::payment_status(&o).as_str(), "expired");
}

/// The fed workload of orders whose lines were all cancelled equals the one
/// a restart counts from the read model.
#[test]
fn an_order_cancelled_line_by_line_leaves_the_fed_workload() {
    let projection = Arc::new(Projection::new());
    let live = hub();
    let mut log_seq = 0;
    for e in life_setup()
        .into_iter()
        .chain(life_steps().into_iter().map(|(e, _)| e))
    {
        log_seq += 1;
        live.apply_durable(&projection, log_seq, &e);
    }
    let workload = |hub: &Hub| match hub.snapshot(&projection, &Topic::Orders).1 {
        TopicSnapshot::Orders { workload, .. } => workload,
        other => panic!("{other:?}"),
    };
    let counted = workload(&live);
    assert_eq!(counted["w1"].routed, 1, "{counted:?}");
    let restarted = Arc::new(hub());
    let _publisher = Publisher::new(restarted.clone(), projection.clone());
    assert_eq!(workload(&restarted), counted);
}

/// A lifecycle event for an order the read model does not have changes
/// nothing and says only what it can without the order.
#[test]
fn lifecycle_events_of_an_unknown_order_make_no_status_change() {
    let projection = Projection::new();
    let hub = hub();
    let got = fed(
        &hub,
        &projection,
        1,
        &pay(9, PaymentKind::Authorize, 100, "pi_9", 1),
    );
    assert!(got.is_empty(), "{got:?}");
    let got = fed(
        &hub,
        &projection,
        2,
        &staged(9, 1, Command::Accept, None, 2),
    );
    assert!(got.is_empty(), "{got:?}");
    let hold = Event::OrderHoldSet {
        order: OrderId(9),
        reason: None,
        at: 3,
    };
    let got = fed(&hub, &projection, 3, &hold);
    let names: Vec<&str> = got
        .iter()
        .map(|(_, v)| v["event"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["order_released"]);
}

/// The orders' counts a snapshot's import rebuilds are the ones kept live,
/// and an order the retention rule forgets leaves them.
#[test]
fn order_counts_survive_a_snapshot_and_leave_with_forgotten_orders() {
    let projection = Projection::new();
    let hub = hub();
    let mut log_seq = 0;
    for e in life_setup()
        .into_iter()
        .chain(life_steps().into_iter().map(|(e, _)| e))
    {
        log_seq += 1;
        hub.apply_durable(&projection, log_seq, &e);
    }
    let live = projection.order_tally.get();
    assert_eq!(live.placed, 2, "{live:?}");
    let copy = Projection::new();
    projection.export(|e| copy.import(e));
    copy.finish_import(log_seq);
    assert_eq!(copy.order_tally.get(), live);

    // Everything closed long ago is forgotten: no order is left to count.
    let horizon = crate::core::Horizon {
        holds_closed_before: u64::MAX,
        orders_closed_before: u64::MAX,
        keys_used_before: u64::MAX,
    };
    let (_, orders, _) = copy.apply_retention(&horizon);
    let left: Vec<crate::core::Order> = copy.orders.iter().map(|o| o.value().clone()).collect();
    assert!(orders > 0, "an order was forgotten");
    assert_eq!(copy.order_tally.get(), crate::projection::Tally::of(&left));
}
