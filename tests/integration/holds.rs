//! Holds expire by themselves, on a timer, and the expiry is logged.

use crate::common::Srv;
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

/// Polls `check` until it returns true or `limit` passes. Waiting on a
/// condition, bounded; not a sleep standing in for synchronisation.
pub async fn eventually(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test]
async fn an_expired_hold_returns_its_stock_by_itself() {
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.sku("tee", None, &[("w1", 5)]).await;
    let (s, short) = srv
        .post(
            "/v1/reservations",
            json!({"sku": "tee", "qty": 2, "ttl_ms": 150}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, long) = srv
        .post(
            "/v1/reservations",
            json!({"sku": "tee", "qty": 1, "ttl_ms": 600000}),
        )
        .await;
    assert_eq!(srv.stock("tee").await["available"].as_u64(), Some(2));
    let path = format!("/v1/reservations/{}", short["id"].as_str().unwrap());
    let expired = eventually(Duration::from_secs(10), async || {
        srv.get(&path).await.1["status"] == "expired"
    })
    .await;
    assert!(expired, "hold did not expire");
    let st = srv.stock("tee").await;
    assert_eq!(
        (st["reserved"].as_u64(), st["available"].as_u64()),
        (Some(1), Some(4))
    );
    let (_, l) = srv
        .get(&format!(
            "/v1/reservations/{}",
            long["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(l["status"], "active");

    // The expiry was logged: it survives a restart.
    let srv = srv.restart();
    let (_, h) = srv.get(&path).await;
    assert_eq!(h["status"], "expired");
    assert_eq!(srv.stock("tee").await["available"].as_u64(), Some(4));
}

#[tokio::test]
async fn extending_sets_a_new_expiry() {
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.sku("tee", None, &[("w1", 5)]).await;
    let (_, a) = srv
        .post(
            "/v1/reservations",
            json!({"sku": "tee", "qty": 1, "ttl_ms": 60000}),
        )
        .await;
    let (_, b) = srv
        .post(
            "/v1/reservations",
            json!({"sku": "tee", "qty": 1, "ttl_ms": 60000}),
        )
        .await;
    let (pa, pb) = (
        format!("/v1/reservations/{}", a["id"].as_str().unwrap()),
        format!("/v1/reservations/{}", b["id"].as_str().unwrap()),
    );
    let (s, e) = srv
        .post(&format!("{pa}/extend"), json!({"ttl_ms": 600000}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(e["expires_at"].as_u64().unwrap() >= a["created_at"].as_u64().unwrap() + 600000);
    // Shortening is an extension too: b now runs out first, and alone.
    let (s, _) = srv
        .post(&format!("{pb}/extend"), json!({"ttl_ms": 50}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        eventually(Duration::from_secs(10), async || srv.get(&pb).await.1
            ["status"]
            == "expired")
        .await
    );
    assert_eq!(srv.get(&pa).await.1["status"], "active");
    assert_eq!(srv.stock("tee").await["reserved"].as_u64(), Some(1));
}

#[tokio::test]
async fn holds_that_ran_out_while_down_are_released_at_start_and_live_ones_keep_their_expiry() {
    use surge::clock::{Clock, ManualClock, SystemClock};
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.sku("tee", None, &[("w1", 5)]).await;
    let (_, short) = srv
        .post(
            "/v1/reservations",
            json!({"sku": "tee", "qty": 2, "ttl_ms": 60_000}),
        )
        .await;
    let (_, long) = srv
        .post(
            "/v1/reservations",
            json!({"sku": "tee", "qty": 1, "ttl_ms": 3_600_000}),
        )
        .await;
    // Come back two minutes later.
    let later = SystemClock::default().now_ms() + 120_000;
    let srv = srv.restart_with_clock(std::sync::Arc::new(ManualClock::new(later)));
    let spath = format!("/v1/reservations/{}", short["id"].as_str().unwrap());
    assert!(
        eventually(Duration::from_secs(10), async || srv.get(&spath).await.1
            ["status"]
            == "expired")
        .await
    );
    let (_, l) = srv
        .get(&format!(
            "/v1/reservations/{}",
            long["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        (&l["status"], &l["expires_at"]),
        (&json!("active"), &long["expires_at"])
    );
    let st = srv.stock("tee").await;
    assert_eq!(
        (st["reserved"].as_u64(), st["available"].as_u64()),
        (Some(1), Some(4))
    );
}

#[tokio::test]
async fn closed_holds_are_forgotten_after_their_retention_open_ones_never() {
    use surge::clock::{Clock, ManualClock, SystemClock};
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.sku("tee", None, &[("w1", 5)]).await;
    let (_, closed) = srv
        .post("/v1/reservations", json!({"sku": "tee", "qty": 1}))
        .await;
    let (_, open) = srv
        .post(
            "/v1/reservations",
            json!({"sku": "tee", "qty": 2, "ttl_ms": 86_400_000}),
        )
        .await;
    let cpath = format!("/v1/reservations/{}", closed["id"].as_str().unwrap());
    let opath = format!("/v1/reservations/{}", open["id"].as_str().unwrap());
    assert_eq!(srv.delete(&cpath).await.0, StatusCode::OK);
    // One day later: still within the retention (2 days by default).
    let day = 86_400_000;
    let start = SystemClock::default().now_ms();
    let srv = srv.restart_with_clock(std::sync::Arc::new(ManualClock::new(start + day)));
    assert_eq!(srv.get(&cpath).await.1["status"], "released");
    // Three days later: the released hold is forgotten; the open one stays
    // (it expires now, and is kept as history for the retention again).
    let srv = srv.restart_with_clock(std::sync::Arc::new(ManualClock::new(start + 3 * day)));
    let (s, e) = srv.get(&cpath).await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("reservation_not_found"))
    );
    assert!(
        eventually(Duration::from_secs(10), async || srv.get(&opath).await.1
            ["status"]
            == "expired")
        .await
    );
    assert_eq!(srv.stock("tee").await["available"].as_u64(), Some(5));
}
