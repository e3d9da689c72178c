//! The live feed over a real WebSocket (tokio-tungstenite): snapshot then
//! ordered events, no gaps, resume, resync beyond the window, a stalled
//! client cut off while others keep up, nothing fed for failures, limits,
//! conflation and shutdown.

use crate::common::Srv;
use crate::holds::eventually;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use surge::feedclient::{self, Ws};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

async fn open(srv: &Srv, query: &str) -> Ws {
    feedclient::connect(&srv.url(""), query).await.unwrap()
}

async fn next(ws: &mut Ws) -> Value {
    timeout(WAIT, feedclient::next_json(ws))
        .await
        .expect("a feed message in time")
        .unwrap()
        .expect("the connection is open")
}

/// Reads until a message satisfies `stop`; returns every message read.
async fn until(ws: &mut Ws, stop: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut seen = vec![];
    loop {
        let v = next(ws).await;
        let done = stop(&v);
        seen.push(v);
        if done {
            return seen;
        }
    }
}

fn events(msgs: &[Value]) -> Vec<&Value> {
    msgs.iter().filter(|m| m["type"] == "event").collect()
}

fn seqs(msgs: &[Value]) -> Vec<u64> {
    events(msgs)
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect()
}

fn consecutive(seqs: &[u64]) -> bool {
    seqs.windows(2).all(|w| w[1] == w[0] + 1)
}

async fn head(srv: &Srv) -> u64 {
    let (s, b) = srv.get("/v1/feed/stats").await;
    assert_eq!(s, StatusCode::OK);
    b["seq"].as_u64().unwrap()
}

async fn stats(srv: &Srv) -> Value {
    srv.get("/v1/feed/stats").await.1
}

async fn order(srv: &Srv, sku: &str, qty: u64) -> Value {
    let (s, b) = srv
        .post(
            "/v1/orders",
            json!({"channel": "web", "customer_id": "c1", "ship_to": {"lat": 48.1, "lon": 11.5},
                   "lines": [{"sku": sku, "qty": qty}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b
}

#[tokio::test]
async fn snapshot_then_every_change_in_order_without_gaps() {
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.sku("hot", None, &[("w1", 3)]).await;
    let mut ws = open(&srv, "topics=sku:hot,orders").await;
    let mut all = open(&srv, "topics=all").await;
    let start = until(&mut ws, |m| m["type"] == "subscribed").await;
    assert_eq!(start[0]["type"], "hello");
    let snap = start.iter().find(|m| m["topic"] == "sku:hot").unwrap();
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["data"]["stock"]["available"], 3);
    let at = snap["seq"].as_u64().unwrap();
    until(&mut all, |m| m["type"] == "subscribed").await;

    let (s, hold) = srv
        .post("/v1/reservations", json!({"sku": "hot", "qty": 1}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let placed = order(&srv, "hot", 2).await;

    let msgs = until(&mut ws, |m| m["event"] == "order_counts").await;
    let got = seqs(&msgs);
    assert_eq!(
        got.first(),
        Some(&(at + 1)),
        "the first event follows the snapshot"
    );
    assert!(consecutive(&got), "{got:?}");
    let kinds: Vec<&str> = events(&msgs)
        .iter()
        .map(|m| m["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "hold_created",
            "stock_changed",
            "order_created",
            "order_routed",
            "stock_changed",
            "sold_out",
            "order_counts"
        ]
    );
    let ev = events(&msgs);
    assert_eq!(ev[0]["reservation"]["id"], hold["id"]);
    assert_eq!(
        (ev[1]["reserved"].as_u64(), ev[1]["available"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(ev[2]["order"]["id"], placed["id"]);
    assert_eq!(ev[3]["shipments"][0]["warehouse"], "w1");
    assert_eq!(
        (ev[4]["allocated"].as_u64(), ev[4]["available"].as_u64()),
        (Some(2), Some(0))
    );

    // `all` sees the very same messages, seq for seq.
    let everything = until(&mut all, |m| m["event"] == "order_counts").await;
    assert_eq!(seqs(&everything), got);
    assert_eq!(head(&srv).await, *got.last().unwrap());
}

#[tokio::test]
async fn a_client_that_resumes_gets_exactly_what_it_missed() {
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.sku("hot", None, &[("w1", 100)]).await;
    let mut steady = open(&srv, "topics=all").await;
    let hello = until(&mut steady, |m| m["type"] == "subscribed").await;
    let epoch = hello[0]["epoch"].as_u64().unwrap();
    let mut leaver = open(&srv, "topics=sku:hot").await;
    until(&mut leaver, |m| m["type"] == "subscribed").await;
    srv.post("/v1/reservations", json!({"sku": "hot", "qty": 1}))
        .await;
    let before = until(&mut leaver, |m| m["event"] == "stock_changed").await;
    let last = *seqs(&before).last().unwrap();
    drop(leaver);

    for _ in 0..5 {
        srv.post("/v1/reservations", json!({"sku": "hot", "qty": 1}))
            .await;
    }
    let target = head(&srv).await;
    let at_target = |m: &Value| m["type"] == "event" && m["seq"].as_u64() == Some(target);
    let steady_msgs = until(&mut steady, at_target).await;
    let missed: Vec<u64> = seqs(&steady_msgs)
        .into_iter()
        .filter(|s| *s > last)
        .collect();
    assert_eq!(missed.len(), 10, "5 holds, each a hold and a stock change");

    let mut back = open(&srv, &format!("topics=sku:hot&since={last}&epoch={epoch}")).await;
    let msgs = until(&mut back, at_target).await;
    assert!(
        msgs.iter().all(|m| m["type"] != "snapshot"),
        "a resume within the window needs no snapshot"
    );
    assert_eq!(seqs(&msgs), missed);
}

#[tokio::test]
async fn beyond_the_window_a_client_is_told_to_resync_and_gets_a_snapshot() {
    let srv = Srv::start_with(|c| c.feed_window_events = 8);
    srv.warehouse("w1", 1).await;
    srv.sku("hot", None, &[("w1", 100)]).await;
    let mut ws = open(&srv, "topics=sku:hot").await;
    let hello = until(&mut ws, |m| m["type"] == "subscribed").await;
    let epoch = hello[0]["epoch"].as_u64().unwrap();
    let last = head(&srv).await;
    drop(ws);
    for _ in 0..10 {
        srv.post("/v1/reservations", json!({"sku": "hot", "qty": 1}))
            .await;
    }
    let st = stats(&srv).await;
    assert_eq!(st["window"], 8, "the window stays at its bound: {st}");
    let mut ws = open(&srv, &format!("topics=sku:hot&since={last}&epoch={epoch}")).await;
    let msgs = until(&mut ws, |m| m["type"] == "subscribed").await;
    assert_eq!(msgs[1]["type"], "resync_required", "{msgs:?}");
    assert_eq!(msgs[2]["type"], "snapshot");
    assert_eq!(msgs[2]["data"]["stock"]["reserved"], 10);
    // Another run of the server (another epoch) means resync too.
    let mut other = open(&srv, &format!("topics=sku:hot&since={last}&epoch=1")).await;
    let msgs = until(&mut other, |m| m["type"] == "subscribed").await;
    assert_eq!(msgs[1]["type"], "resync_required", "{msgs:?}");
}

#[tokio::test]
async fn a_stalled_client_is_cut_off_while_others_keep_up() {
    let srv = Srv::start_with(|c| {
        c.feed_window_events = 4096;
        c.feed_client_lag_events_max = 1024;
        c.feed_send_timeout_ms = 500;
        c.reservation_batch_max = 256;
    });
    srv.warehouse("w1", 1).await;
    srv.sku("hot", None, &[("w1", 1_000_000)]).await;
    // A stalled client: subscribes to everything and never reads, with a
    // small receive buffer so the server's sends back up quickly.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let stream = sock.connect(srv.bg().addr).await.unwrap();
    let (stalled, _) = tokio_tungstenite::client_async_with_config(
        feedclient::feed_url(&srv.url(""), "topics=all"),
        stream,
        Some(feedclient::ws_config()),
    )
    .await
    .unwrap();
    let mut good = open(&srv, "topics=all").await;
    until(&mut good, |m| m["type"] == "subscribed").await;
    let first = head(&srv).await + 1;

    let reader = tokio::spawn(async move {
        let mut got = vec![];
        loop {
            let v = next(&mut good).await;
            if v["type"] == "event" {
                got.push(v["seq"].as_u64().unwrap());
                if v["event"] == "sold_out" {
                    return (got, good);
                }
            }
        }
    });
    let batch: Vec<Value> = (0..256).map(|_| json!({"sku": "hot", "qty": 1})).collect();
    let mut stalled_cut = false;
    for _ in 0..200 {
        let (s, _) = srv
            .post("/v1/reservations:batch", json!({ "reservations": batch }))
            .await;
        assert_eq!(s, StatusCode::OK);
        if stats(&srv).await["cut_off_slow"].as_u64() >= Some(1) {
            stalled_cut = true;
            break;
        }
    }
    assert!(
        stalled_cut,
        "the stalled client was cut off: {}",
        stats(&srv).await
    );
    let st = stats(&srv).await;
    assert!(st["window"].as_u64() <= Some(4096), "{st}");
    // Sell out the rest in one go, then the good client must have every seq.
    let left = srv.stock("hot").await["available"].as_u64().unwrap();
    srv.post("/v1/reservations", json!({"sku": "hot", "qty": left}))
        .await;
    let (got, _good) = timeout(WAIT, reader).await.unwrap().unwrap();
    assert_eq!(got.first(), Some(&first));
    assert!(consecutive(&got), "the good client missed nothing");
    assert_eq!(*got.last().unwrap(), head(&srv).await);
    assert!(
        eventually(Duration::from_secs(10), async || stats(&srv).await
            ["connections"]
            == 1)
        .await,
        "the stalled connection is gone: {}",
        stats(&srv).await
    );
    drop(stalled);
}

#[tokio::test]
async fn nothing_is_fed_for_a_request_that_failed() {
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.sku("hot", None, &[("w1", 1)]).await;
    let mut ws = open(&srv, "topics=all").await;
    until(&mut ws, |m| m["type"] == "subscribed").await;
    let before = head(&srv).await;
    let refused = [
        srv.post("/v1/reservations", json!({"sku": "hot", "qty": 2}))
            .await,
        srv.post("/v1/reservations", json!({"sku": "nope", "qty": 1}))
            .await,
        srv.post("/v1/reservations", json!({"sku": "hot", "qty": 0}))
            .await,
        srv.post(
            "/v1/stock/adjustments",
            json!({"sku": "hot", "warehouse": "w1", "delta": -5, "reason": "x"}),
        )
        .await,
    ];
    assert!(refused.iter().all(|(s, _)| !s.is_success()));
    assert_eq!(head(&srv).await, before, "refusals publish nothing");
    let (_, hold) = srv
        .post("/v1/reservations", json!({"sku": "hot", "qty": 1}))
        .await;
    let first = next(&mut ws).await;
    assert_eq!(first["seq"].as_u64(), Some(before + 1));
    assert_eq!(first["event"], "hold_created");
    assert_eq!(first["reservation"]["id"], hold["id"]);
}

#[tokio::test]
async fn bad_subscriptions_and_frames_get_clear_answers() {
    let srv = Srv::start_with(|c| {
        c.feed_topics_max = 2;
        c.feed_inbound_bytes_max = 512;
        c.feed_connections_max = 3;
    });
    // Refused before the upgrade, as plain HTTP errors.
    for q in [
        "topics=bogus",
        "topics=sku:a,sku:b,sku:c",
        "topics=stock&conflate_ms=99999999",
    ] {
        let (s, b) = srv.get(&format!("/v1/feed?{q}")).await;
        assert_eq!(
            (s, b["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_field")),
            "{q}: {b}"
        );
    }
    let mut ws = open(&srv, "").await;
    assert_eq!(next(&mut ws).await["type"], "hello");
    let bad = [
        (
            json!({"op": "subscribe", "topics": ["what:ever"]}),
            "invalid_topic",
        ),
        (json!({"op": "dance"}), "malformed_message"),
        (
            json!({"op": "subscribe", "topics": ["sku:a", "sku:b", "sku:c"]}),
            "invalid_topic",
        ),
    ];
    for (msg, code) in bad {
        feedclient::send_json(&mut ws, &msg).await.unwrap();
        let e = next(&mut ws).await;
        assert_eq!(
            (e["type"].as_str(), e["code"].as_str()),
            (Some("error"), Some(code)),
            "{msg}"
        );
    }
    // At the topic limit it is accepted.
    feedclient::send_json(
        &mut ws,
        &json!({"op": "subscribe", "topics": ["sku:a", "sku:b"]}),
    )
    .await
    .unwrap();
    let msgs = until(&mut ws, |m| m["type"] == "subscribed").await;
    assert_eq!(msgs.last().unwrap()["topics"], json!(["sku:a", "sku:b"]));
    feedclient::send_json(
        &mut ws,
        &json!({"op": "unsubscribe", "topics": ["sku:a", "sku:b"]}),
    )
    .await
    .unwrap();
    assert_eq!(next(&mut ws).await["type"], "unsubscribed");
    // A frame of exactly the inbound limit is read (and answered).
    let pad = 512
        - json!({"op": "unsubscribe", "topics": [""]})
            .to_string()
            .len();
    let at_limit = json!({"op": "unsubscribe", "topics": ["x".repeat(pad)]});
    assert_eq!(at_limit.to_string().len(), 512);
    feedclient::send_json(&mut ws, &at_limit).await.unwrap();
    assert_eq!(next(&mut ws).await["code"], "invalid_topic");
    // Still usable; subscribing twice to the same topic is one subscription.
    feedclient::send_json(
        &mut ws,
        &json!({"op": "subscribe", "topics": ["stock", "stock"]}),
    )
    .await
    .unwrap();
    let msgs = until(&mut ws, |m| m["type"] == "subscribed").await;
    assert_eq!(msgs.iter().filter(|m| m["type"] == "snapshot").count(), 1);
    feedclient::send_json(&mut ws, &json!({"op": "unsubscribe", "topics": ["stock"]}))
        .await
        .unwrap();
    assert_eq!(next(&mut ws).await["topics"], json!(["stock"]));

    // Connections at the limit: the next one is refused with 503.
    let _b = open(&srv, "").await;
    let _c = open(&srv, "").await;
    let (s, b) = srv.get("/v1/feed").await;
    assert_eq!(
        (s, b["code"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("too_many_connections")
        )
    );
    // A frame over the limit closes the connection with 1009.
    feedclient::send_json(
        &mut ws,
        &json!({"op": "subscribe", "topics": ["x".repeat(600)]}),
    )
    .await
    .unwrap();
    let end = timeout(WAIT, feedclient::next_json(&mut ws)).await.unwrap();
    assert!(matches!(&end, Err(e) if e.contains("1009")), "{end:?}");
}

#[tokio::test]
async fn a_silent_client_is_closed_after_the_idle_timeout() {
    let srv = Srv::start_with(|c| {
        c.feed_ping_interval_ms = 50;
        c.feed_idle_timeout_ms = 300;
    });
    let mut ws = open(&srv, "").await;
    // Reading answers pings (the library sends pongs), so stay silent by
    // not reading until the server has had time to give up.
    assert!(
        eventually(Duration::from_secs(10), async || stats(&srv).await
            ["connections"]
            == 0)
        .await,
        "closed for idleness"
    );
    let msgs = timeout(WAIT, async {
        let mut out = vec![];
        loop {
            match feedclient::next_json(&mut ws).await {
                Ok(Some(v)) => out.push(v.to_string()),
                other => return (out, other),
            }
        }
    })
    .await
    .unwrap();
    assert!(
        matches!(&msgs.1, Err(e) if e.contains("idle timeout")),
        "{msgs:?}"
    );
}

#[tokio::test]
async fn conflation_sends_the_latest_values_not_every_change() {
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.sku("hot", None, &[("w1", 1000)]).await;
    let mut ws = open(&srv, "topics=stock&conflate_ms=300").await;
    until(&mut ws, |m| m["type"] == "subscribed").await;
    let batch: Vec<Value> = (0..50).map(|_| json!({"sku": "hot", "qty": 1})).collect();
    srv.post("/v1/reservations:batch", json!({ "reservations": batch }))
        .await;
    let msgs = until(&mut ws, |m| {
        m["event"] == "stock_changed" && m["reserved"] == 50
    })
    .await;
    let changes = events(&msgs).len();
    assert!(changes < 50, "{changes} stock messages for 50 changes");
    let s = seqs(&msgs);
    assert!(s.windows(2).all(|w| w[1] > w[0]), "still in order: {s:?}");
}

#[tokio::test]
async fn shutdown_closes_feeds_with_a_close_frame() {
    let srv = Srv::start();
    let mut ws = open(&srv, "topics=stock").await;
    until(&mut ws, |m| m["type"] == "subscribed").await;
    let stopper = std::thread::spawn(move || drop(srv));
    let end = loop {
        match timeout(WAIT, feedclient::next_json(&mut ws)).await.unwrap() {
            Ok(Some(_)) => continue,
            other => break other,
        }
    };
    assert!(matches!(&end, Err(e) if e.contains("1001")), "{end:?}");
    stopper.join().unwrap();
}

#[tokio::test]
async fn a_snapshot_stops_at_its_item_limit_and_says_so() {
    let srv = Srv::start_with(|c| c.feed_snapshot_items_max = 2);
    srv.warehouse("w1", 1).await;
    for sku in ["a", "b"] {
        srv.sku(sku, None, &[("w1", 1)]).await;
    }
    // (SKUs in the `stock` snapshot, whether it says it was cut).
    let snapshot = async || {
        let mut ws = open(&srv, "topics=stock").await;
        let msgs = until(&mut ws, |m| m["type"] == "subscribed").await;
        let snap = &msgs[1]["data"];
        (
            snap["skus"].as_array().map(Vec::len),
            snap["truncated"].as_bool(),
        )
    };
    assert_eq!(snapshot().await, (Some(2), Some(false)));
    srv.sku("c", None, &[("w1", 1)]).await;
    assert_eq!(snapshot().await, (Some(2), Some(true)));
}

#[tokio::test]
async fn surge_watch_prints_snapshots_and_events_as_json_lines() {
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.sku("hot", None, &[("w1", 100_000)]).await;
    let opts = surge::feedclient::WatchOptions {
        target: srv.url(""),
        topics: vec!["sku:hot".into()],
        since: None,
        epoch: None,
        conflate_ms: None,
        count: 2,
        reconnects: 0,
        key: None,
    };
    let watcher = tokio::spawn(async move {
        let mut out = Vec::new();
        surge::feedclient::watch(opts, &mut out).await.map(|_| out)
    });
    // Reserve until the watcher has seen its two events: it may subscribe
    // after the first reservations, which its snapshot then includes.
    let done = eventually(WAIT, async || {
        srv.post("/v1/reservations", json!({"sku": "hot", "qty": 1}))
            .await;
        watcher.is_finished()
    })
    .await;
    assert!(done, "watch exits after --count events");
    let text = String::from_utf8(watcher.await.unwrap().unwrap()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["type"], "hello");
    assert!(lines
        .iter()
        .any(|l| l["type"] == "snapshot" && l["topic"] == "sku:hot"));
    let events: Vec<&Value> = lines.iter().filter(|l| l["type"] == "event").collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["event"], "hold_created");
}
