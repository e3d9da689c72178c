//! The feed's JSON, pinned: every message each event type makes and every
//! topic's snapshot, field by field. A change here is a change of the wire
//! protocol, made on purpose.

use super::*;
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
stock,sku:tee,warehouse:w1 tee@w1 {"allocated":0,"available":3,"event":"stock_changed","log_seq":6,"on_hand":3,"reserved":0,"safety_stock":0,"seq":6,"sku":"tee","sku_available":3,"type":"event","warehouse":"w1"}
stock,sku:tee - {"event":"back_in_stock","log_seq":6,"seq":7,"sku":"tee","sku_available":3,"type":"event"}
stock,sku:tee,warehouse:w1 tee@w1 {"allocated":0,"available":2,"event":"stock_changed","log_seq":7,"on_hand":3,"reserved":0,"safety_stock":1,"seq":8,"sku":"tee","sku_available":2,"type":"event","warehouse":"w1"}
holds,sku:tee - {"event":"hold_created","log_seq":8,"reservation":{"channel":"web","created_at":1000,"customer_id":"c1","expires_at":2000,"id":"res_1","qty":2,"sku":"tee","status":"active","warehouse":"w1"},"seq":9,"type":"event"}
stock,sku:tee,warehouse:w1 tee@w1 {"allocated":0,"available":0,"event":"stock_changed","log_seq":8,"on_hand":3,"reserved":2,"safety_stock":1,"seq":10,"sku":"tee","sku_available":0,"type":"event","warehouse":"w1"}
stock,sku:tee - {"event":"sold_out","log_seq":8,"seq":11,"sku":"tee","sku_available":0,"type":"event"}
holds,sku:tee - {"event":"hold_extended","expires_at":3000,"log_seq":9,"reservation_id":"res_1","seq":12,"sku":"tee","type":"event"}
stock,sku:tee,warehouse:w2 tee@w2 {"allocated":0,"available":2,"event":"stock_changed","log_seq":10,"on_hand":2,"reserved":0,"safety_stock":0,"seq":13,"sku":"tee","sku_available":2,"type":"event","warehouse":"w2"}
stock,sku:tee - {"event":"back_in_stock","log_seq":10,"seq":14,"sku":"tee","sku_available":2,"type":"event"}
holds,sku:tee - {"event":"hold_created","log_seq":11,"reservation":{"channel":null,"created_at":1000,"customer_id":null,"expires_at":2000,"id":"res_2","qty":1,"sku":"tee","status":"active","warehouse":"w2"},"seq":15,"type":"event"}
stock,sku:tee,warehouse:w2 tee@w2 {"allocated":0,"available":1,"event":"stock_changed","log_seq":11,"on_hand":2,"reserved":1,"safety_stock":0,"seq":16,"sku":"tee","sku_available":1,"type":"event","warehouse":"w2"}
holds,sku:tee - {"at":1500,"event":"hold_released","log_seq":12,"qty":1,"reservation_id":"res_2","seq":17,"sku":"tee","type":"event","warehouse":"w2"}
stock,sku:tee,warehouse:w2 tee@w2 {"allocated":0,"available":2,"event":"stock_changed","log_seq":12,"on_hand":2,"reserved":0,"safety_stock":0,"seq":18,"sku":"tee","sku_available":2,"type":"event","warehouse":"w2"}
holds,sku:tee - {"event":"hold_created","log_seq":13,"reservation":{"channel":null,"created_at":1000,"customer_id":null,"expires_at":2000,"id":"res_3","qty":1,"sku":"tee","status":"active","warehouse":"w2"},"seq":19,"type":"event"}
stock,sku:tee,warehouse:w2 tee@w2 {"allocated":0,"available":1,"event":"stock_changed","log_seq":13,"on_hand":2,"reserved":1,"safety_stock":0,"seq":20,"sku":"tee","sku_available":1,"type":"event","warehouse":"w2"}
holds,sku:tee - {"at":2500,"event":"hold_expired","log_seq":14,"qty":1,"reservation_id":"res_3","seq":21,"sku":"tee","type":"event","warehouse":"w2"}
stock,sku:tee,warehouse:w2 tee@w2 {"allocated":0,"available":2,"event":"stock_changed","log_seq":14,"on_hand":2,"reserved":0,"safety_stock":0,"seq":22,"sku":"tee","sku_available":2,"type":"event","warehouse":"w2"}
holds,sku:tee - {"event":"hold_consumed","log_seq":15,"order_id":"ord_1","reservation_id":"res_1","seq":23,"sku":"tee","type":"event"}
orders,order:ord_1 - {"event":"order_created","log_seq":15,"order":{"channel":"web","created_at":4000,"currency":null,"customer_id":"c1","fulfillments":[],"hold_reason":null,"id":"ord_1","items":[{"cancelled":0,"delivered":0,"ordered":3,"returned":0,"shipped":0,"sku":"tee"}],"lines":[{"qty":2,"reservation_id":"res_1","sku":"tee","unit_price":null},{"qty":1,"sku":"tee","unit_price":null}],"pay_by":null,"payment_required":false,"payment_status":"pending","returns":[],"ship_to":{"country":"DE","lat":50.5,"lon":8.25},"shipments":[{"lines":[{"qty":2,"sku":"tee"}],"warehouse":"w1"},{"lines":[{"qty":1,"sku":"tee"}],"warehouse":"w2"}],"status":"ready","totals":null,"updated_at":4000},"seq":24,"type":"event"}
orders,order:ord_1,warehouse:w1,warehouse:w2 - {"event":"order_routed","log_seq":15,"order_id":"ord_1","seq":25,"shipments":[{"lines":[{"qty":2,"sku":"tee"}],"warehouse":"w1"},{"lines":[{"qty":1,"sku":"tee"}],"warehouse":"w2"}],"type":"event"}
stock,sku:tee,warehouse:w1 tee@w1 {"allocated":2,"available":0,"event":"stock_changed","log_seq":15,"on_hand":3,"reserved":0,"safety_stock":1,"seq":26,"sku":"tee","sku_available":1,"type":"event","warehouse":"w1"}
stock,sku:tee,warehouse:w2 tee@w2 {"allocated":1,"available":1,"event":"stock_changed","log_seq":15,"on_hand":2,"reserved":0,"safety_stock":0,"seq":27,"sku":"tee","sku_available":1,"type":"event","warehouse":"w2"}
orders,order:ord_1,warehouse:w1,warehouse:w2 - {"at":4500,"event":"order_rerouted","from":["w1","w2"],"log_seq":16,"order_id":"ord_1","reason":"w1 short","routing":{"attempts":1,"candidates":[],"deciding_rule":null,"excluded":[],"rules":["enabled","nearest"],"split":"allow"},"seq":28,"shipments":[{"lines":[{"qty":1,"sku":"tee"}],"warehouse":"w1"},{"lines":[{"qty":2,"sku":"tee"}],"warehouse":"w2"}],"type":"event","workload":{"w1":{"at_capacity":false,"capacity_per_day":null,"day":"1970-01-01","routed":1},"w2":{"at_capacity":false,"capacity_per_day":null,"day":"1970-01-01","routed":1}}}
stock,sku:tee,warehouse:w1 tee@w1 {"allocated":1,"available":1,"event":"stock_changed","log_seq":16,"on_hand":3,"reserved":0,"safety_stock":1,"seq":29,"sku":"tee","sku_available":1,"type":"event","warehouse":"w1"}
stock,sku:tee,warehouse:w2 tee@w2 {"allocated":2,"available":0,"event":"stock_changed","log_seq":16,"on_hand":2,"reserved":0,"safety_stock":0,"seq":30,"sku":"tee","sku_available":1,"type":"event","warehouse":"w2"}
orders,order:ord_1 - {"at":5000,"event":"order_status_changed","log_seq":17,"order_id":"ord_1","reason":"customer asked","seq":31,"status":"cancelled","type":"event","workload":{"w1":{"at_capacity":false,"capacity_per_day":null,"day":"1970-01-01","routed":0},"w2":{"at_capacity":false,"capacity_per_day":null,"day":"1970-01-01","routed":0}}}
stock,sku:tee,warehouse:w1 tee@w1 {"allocated":0,"available":2,"event":"stock_changed","log_seq":17,"on_hand":3,"reserved":0,"safety_stock":1,"seq":32,"sku":"tee","sku_available":4,"type":"event","warehouse":"w1"}
stock,sku:tee,warehouse:w2 tee@w2 {"allocated":0,"available":2,"event":"stock_changed","log_seq":17,"on_hand":2,"reserved":0,"safety_stock":0,"seq":33,"sku":"tee","sku_available":4,"type":"event","warehouse":"w2"}
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
sku:tee {"stock":{"allocated":3,"available":1,"name":"Tee","on_hand":5,"per_customer_limit":5,"reserved":0,"safety_stock":1,"sku":"tee","warehouses":[{"allocated":1,"available":1,"on_hand":3,"reserved":0,"safety_stock":1,"warehouse":"w1"},{"allocated":2,"available":0,"on_hand":2,"reserved":0,"safety_stock":0,"warehouse":"w2"}]}}
sku:nope {"stock":null}
warehouse:w1 {"stock":[{"allocated":1,"available":1,"on_hand":3,"reserved":0,"safety_stock":1,"sku":"tee"}],"truncated":false,"warehouse":{"capacity_per_day":null,"channels":[],"countries":[],"cutoff":null,"enabled":true,"id":"w1","location":{"lat":52.5,"lon":13.25},"name":"Berlin","priority":1,"shipping_cost":null}}
warehouse:nope {"stock":[],"truncated":false,"warehouse":null}
order:ord_1 {"order":{"channel":"web","created_at":4000,"currency":null,"customer_id":"c1","fulfillments":[],"hold_reason":null,"id":"ord_1","items":[{"cancelled":0,"delivered":0,"ordered":3,"returned":0,"shipped":0,"sku":"tee"}],"lines":[{"qty":2,"reservation_id":"res_1","sku":"tee","unit_price":null},{"qty":1,"sku":"tee","unit_price":null}],"pay_by":null,"payment_required":false,"payment_status":"pending","returns":[],"routing":{"attempts":1,"candidates":[],"deciding_rule":null,"excluded":[],"rules":["enabled","nearest"],"split":"allow"},"ship_to":{"country":"DE","lat":50.5,"lon":8.25},"shipments":[{"lines":[{"qty":1,"sku":"tee"}],"warehouse":"w1"},{"lines":[{"qty":2,"sku":"tee"}],"warehouse":"w2"}],"status":"ready","totals":null,"updated_at":4500}}
order:ord_9 {"order":null}
orders {"recent":[{"channel":"web","created_at":4000,"currency":null,"customer_id":"c1","fulfillments":[],"hold_reason":null,"id":"ord_1","items":[{"cancelled":0,"delivered":0,"ordered":3,"returned":0,"shipped":0,"sku":"tee"}],"lines":[{"qty":2,"reservation_id":"res_1","sku":"tee","unit_price":null},{"qty":1,"sku":"tee","unit_price":null}],"pay_by":null,"payment_required":false,"payment_status":"pending","returns":[],"routing":{"attempts":1,"candidates":[],"deciding_rule":null,"excluded":[],"rules":["enabled","nearest"],"split":"allow"},"ship_to":{"country":"DE","lat":50.5,"lon":8.25},"shipments":[{"lines":[{"qty":1,"sku":"tee"}],"warehouse":"w1"},{"lines":[{"qty":2,"sku":"tee"}],"warehouse":"w2"}],"status":"ready","totals":null,"updated_at":4500}],"workload":{"w1":{"at_capacity":false,"capacity_per_day":null,"day":"1970-01-01","routed":1},"w2":{"at_capacity":false,"capacity_per_day":null,"day":"1970-01-01","routed":1}}}
stock {"skus":[{"allocated":3,"available":1,"name":"Tee","on_hand":5,"per_customer_limit":5,"reserved":0,"safety_stock":1,"sku":"tee","warehouses":[{"allocated":1,"available":1,"on_hand":3,"reserved":0,"safety_stock":1,"warehouse":"w1"},{"allocated":2,"available":0,"on_hand":2,"reserved":0,"safety_stock":0,"warehouse":"w2"}]}],"truncated":false,"warehouses":[{"capacity_per_day":null,"channels":[],"countries":[],"cutoff":null,"enabled":true,"id":"w1","location":{"lat":52.5,"lon":13.25},"name":"Berlin","priority":1,"shipping_cost":null},{"capacity_per_day":null,"channels":[],"countries":[],"cutoff":null,"enabled":true,"id":"w2","location":{"lat":48.75,"lon":2.5},"name":"Paris","priority":2,"shipping_cost":null}]}
all {"skus":[{"allocated":3,"available":1,"name":"Tee","on_hand":5,"per_customer_limit":5,"reserved":0,"safety_stock":1,"sku":"tee","warehouses":[{"allocated":1,"available":1,"on_hand":3,"reserved":0,"safety_stock":1,"warehouse":"w1"},{"allocated":2,"available":0,"on_hand":2,"reserved":0,"safety_stock":0,"warehouse":"w2"}]}],"truncated":false,"warehouses":[{"capacity_per_day":null,"channels":[],"countries":[],"cutoff":null,"enabled":true,"id":"w1","location":{"lat":52.5,"lon":13.25},"name":"Berlin","priority":1,"shipping_cost":null},{"capacity_per_day":null,"channels":[],"countries":[],"cutoff":null,"enabled":true,"id":"w2","location":{"lat":48.75,"lon":2.5},"name":"Paris","priority":2,"shipping_cost":null}]}
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
