//! Smoke runs of `surge loadgen` against a real server: small numbers, a
//! second or two each. Every mode must sell out exactly and never oversell.

use crate::common::Srv;
use surge::loadgen::{self, Mode, Options};

fn opts(srv: &Srv, mode: Mode) -> Options {
    let mut o = Options::new(&srv.url(""));
    o.mode = mode;
    o.connections = 8;
    o.duration_s = 20.0; // a bound, not a wait: the request count ends it
    o.quiet = true;
    o
}

#[tokio::test]
async fn reserve_mode_sells_out_exactly() {
    let srv = Srv::start();
    let mut o = opts(&srv, Mode::Reserve);
    o.stock = 200;
    o.warehouses = 2;
    o.requests = 300;
    let r = loadgen::run(o).await.unwrap();
    assert!(r.check.ok, "{}", r.table());
    assert_eq!(r.requests, 300);
    assert_eq!(r.units_acknowledged, 200);
    assert_eq!(r.errors.get("insufficient_stock"), Some(&100));
    assert_eq!(r.check.sold_out, 1);
    assert_eq!(r.latency["reserve"].count, 300);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["check"]["ok"], true);
    assert!(r.table().contains("oversell check: OK"));
}

#[tokio::test]
async fn batch_mode_sells_out_exactly_over_several_skus() {
    let srv = Srv::start();
    let mut o = opts(&srv, Mode::Batch);
    o.batch = 8;
    o.skus = 5;
    o.hot_share = 0.5;
    o.stock = 60;
    o.requests = 100;
    let r = loadgen::run(o).await.unwrap();
    assert!(r.check.ok, "{}", r.table());
    assert_eq!(r.items, 800);
    assert_eq!(r.units_acknowledged, 300, "{}", r.table());
    assert_eq!(r.check.sold_out, 5);
}

#[tokio::test]
async fn hold_then_order_with_cancels_keeps_exact_accounting() {
    let srv = Srv::start();
    let mut o = opts(&srv, Mode::HoldOrder);
    o.skus = 3;
    o.hot_share = 0.6;
    o.warehouses = 2;
    o.stock = 40;
    o.cancel_share = 0.3;
    o.requests = 200;
    let r = loadgen::run(o).await.unwrap();
    assert!(r.check.ok, "{}", r.table());
    assert!(r.latency.contains_key("order") && r.latency.contains_key("cancel"));
    let committed: u64 = r.check.skus.iter().map(|c| c.reserved + c.allocated).sum();
    assert_eq!(committed as i64, r.units_acknowledged);
}

#[tokio::test]
async fn multi_line_orders_never_oversell() {
    let srv = Srv::start();
    let mut o = opts(&srv, Mode::Order);
    o.skus = 4;
    o.lines = 2;
    o.stock = 30;
    o.requests = 150;
    let r = loadgen::run(o).await.unwrap();
    assert!(r.check.ok, "{}", r.table());
    assert!(r.check.skus.iter().all(|c| c.acknowledged <= 30));
}

#[tokio::test]
async fn bad_options_are_refused_before_anything_is_sent() {
    let srv = Srv::start();
    let mut o = opts(&srv, Mode::Order);
    o.lines = 3; // more lines than SKUs
    assert!(matches!(
        loadgen::run(o).await,
        Err(loadgen::LoadgenError::Options(_))
    ));
    let (_, list) = srv.get("/v1/warehouses").await;
    assert_eq!(
        list["warehouses"].as_array().map(Vec::len),
        Some(0),
        "{list}"
    );
}

#[tokio::test]
async fn feed_subscribers_see_every_change_in_order() {
    let srv = Srv::start();
    let mut o = opts(&srv, Mode::Reserve);
    o.stock = 100;
    o.requests = 150;
    o.subscribers = 4;
    o.subscribe_topic = "all".into();
    let r = loadgen::run(o).await.unwrap();
    assert!(r.check.ok, "{}", r.table());
    let f = r.feed.clone().unwrap();
    // Every accepted hold is a hold_created and a stock_changed (plus one
    // sold_out), seen by each subscriber.
    assert!(f.events >= 4 * 200, "{f:?}");
    assert_eq!((f.out_of_order, f.gaps, f.dropped), (0, 0, 0));
    assert!(r.table().contains("feed: 4 subscribers on all"));

    let mut o = opts(&srv, Mode::Reserve);
    o.skus = 4;
    o.hot_share = 0.0;
    o.requests = 100;
    o.subscribers = 8;
    o.subscribe_topic = "sku:{sku}".into();
    let r = loadgen::run(o).await.unwrap();
    let f = r.feed.clone().unwrap();
    assert_eq!((f.out_of_order, f.dropped), (0, 0), "{f:?}");
    assert!(
        f.events >= 2 * 100,
        "each change reaches its SKU's followers: {f:?}"
    );
}

#[tokio::test]
async fn journeys_ship_cancel_and_return_with_exact_row_accounting() {
    let srv = Srv::start();
    let mut o = opts(&srv, Mode::Journey);
    o.run_id = Some("j1".into());
    o.skus = 3;
    o.hot_share = 0.5;
    o.warehouses = 2;
    o.stock = 1000;
    o.cancel_share = 0.2;
    o.return_share = 0.3;
    o.requests = 50; // journeys
    let r = loadgen::run(o).await.unwrap();
    assert!(r.check.ok, "{}", r.table());
    let j = r.journeys.clone().unwrap();
    assert_eq!((j.started, j.stopped), (50, 0), "{}", r.table());
    assert_eq!(j.delivered + j.cancelled + j.returned, 50);
    assert!(j.cancelled > 0 && j.returned > 0, "{j:?}");
    let step = |name: &str| {
        let s = r.steps.iter().find(|s| s.step == name).unwrap();
        assert_eq!(s.requests, s.ok, "{}", r.table());
        s.ok
    };
    let paid = 50 - j.cancelled;
    assert_eq!((step("hold"), step("order")), (50, 50));
    assert_eq!(step("cancel"), j.cancelled);
    assert_eq!((step("authorize"), step("capture")), (paid, paid));
    // One unit per order: one shipment each.
    assert_eq!(
        (step("accept"), step("ship"), step("deliver")),
        (paid, paid, paid)
    );
    assert_eq!((step("return"), step("receive")), (j.returned, j.returned));
    let sent: u64 = r.steps.iter().map(|s| s.requests).sum();
    assert_eq!(sent, r.requests);
    assert!(r.errors.is_empty(), "{:?}", r.errors);

    // Every row: on hand moved by exactly what shipped and came back,
    // nothing left allocated or reserved once every journey finished.
    assert_eq!(r.check.rows.len(), 6);
    for row in &r.check.rows {
        assert_eq!(row.on_hand, row.initial - row.shipped + row.restocked);
        assert_eq!((row.allocated, row.reserved), (0, 0), "{row:?}");
    }
    let shipped: u64 = r.check.rows.iter().map(|x| x.shipped).sum();
    let restocked: u64 = r.check.rows.iter().map(|x| x.restocked).sum();
    assert_eq!((shipped, restocked), (paid, j.returned));
    let (_, stock) = srv.get(&format!("/v1/skus/{}/stock", "j1-s0")).await;
    let s0 = r.check.skus.iter().find(|c| c.sku == "j1-s0").unwrap();
    assert_eq!(stock["on_hand"], 1000 - s0.shipped + s0.restocked);

    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["journeys"]["started"], 50);
    assert_eq!(json["steps"][0]["step"], "hold");
    assert!(json["steps"][6]["per_s"].as_f64().unwrap() > 0.0);
    assert!(r.table().contains("journeys 50: delivered"));
    assert!(r.table().contains("oversell check: OK"));
}

#[tokio::test]
async fn journeys_that_sell_out_stop_at_the_hold_and_never_oversell() {
    let srv = Srv::start();
    let mut o = opts(&srv, Mode::Journey);
    o.warehouses = 2;
    o.stock = 20;
    o.return_share = 0.0;
    o.requests = 50;
    let r = loadgen::run(o).await.unwrap();
    assert!(r.check.ok, "{}", r.table());
    let j = r.journeys.clone().unwrap();
    assert_eq!((j.delivered, j.stopped), (20, 30), "{}", r.table());
    assert_eq!(r.errors.get("insufficient_stock"), Some(&30));
    assert_eq!(r.check.sold_out, 1);
    for row in &r.check.rows {
        assert_eq!((row.on_hand, row.shipped), (0, 10), "{row:?}");
    }
}

#[tokio::test]
async fn journey_shares_beyond_one_are_refused() {
    let srv = Srv::start();
    let mut o = opts(&srv, Mode::Journey);
    o.cancel_share = 0.6;
    o.return_share = 0.5;
    assert!(matches!(
        loadgen::run(o).await,
        Err(loadgen::LoadgenError::Options(_))
    ));
}
