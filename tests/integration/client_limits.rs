//! Limits on what one client can hold: a body's deadline and minimum rate,
//! header count and size, connections per client address, and entities
//! created; each at its edge.

use crate::common::Srv;
use crate::hostile::{closed_within, exchange, post, read_response};
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const ANSWER: Duration = Duration::from_secs(10);

#[tokio::test]
async fn short_endless_and_upgrade_bodies_are_cut_at_the_body_timeout() {
    let srv = Srv::start_with(|c| {
        c.http_body_timeout_ms = 1000;
        c.http_body_rate_min_bytes_per_sec = 0;
    });
    srv.warehouse("w1", 1).await;
    srv.sku("s", None, &[("w1", 10)]).await;
    let before = srv.stock("s").await;
    let addr = srv.bg().addr;
    let head = "POST /v1/reservations HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n";
    let cases = [
        (
            "short content-length",
            format!("{head}Content-Length: 100\r\n\r\n{{\"sku\":\"s\","),
        ),
        (
            "endless chunked",
            format!("{head}Transfer-Encoding: chunked\r\n\r\n5\r\n{{\"sku\r\n"),
        ),
        (
            "post with upgrade",
            format!("{head}Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n{{\"sku\":\"s\""),
        ),
        (
            "endless chunked to a route that ignores it",
            "GET /healthz HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
                .to_owned(),
        ),
        (
            "upgrade to a missing route",
            "PUT /v1/nowhere HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nUpgrade: websocket\r\n\r\n{".to_owned(),
        ),
    ];
    let runs = cases.iter().map(|(what, raw)| async move {
        let start = Instant::now();
        let (res, mut s) = exchange(addr, raw.as_bytes()).await;
        let took = start.elapsed();
        let res = res.unwrap_or_else(|| panic!("{what}: closed without an answer"));
        (
            what,
            took,
            res,
            closed_within(&mut s, Duration::from_secs(5)).await,
        )
    });
    for (what, took, res, closed) in futures_util::future::join_all(runs).await {
        if *what == "upgrade to a missing route" {
            // Not read by any handler: answered at once, and closed
            // because its body was not read.
            assert_eq!(res.status, 404, "{what}: {res:?}");
        } else if what.contains("ignores") {
            // Answered at once; closed rather than drained forever.
            assert_eq!(res.status, 200, "{what}: {res:?}");
        } else {
            assert_eq!(
                (res.status, res.code().as_str()),
                (408, "body_timeout"),
                "{what}"
            );
            assert!(res.closes(), "{what}: {res:?}");
            assert!(
                took >= Duration::from_millis(900),
                "{what}: cut after {took:?}"
            );
            assert!(took < Duration::from_secs(5), "{what}: cut after {took:?}");
        }
        assert!(closed, "{what}: connection left open");
    }
    assert_eq!(srv.stock("s").await, before);

    // At the edge: a body whose last byte arrives before the deadline.
    let body = r#"{"sku":"s","qty":1}"#;
    let raw = post("/v1/reservations", body);
    let (first, rest) = raw.split_at(raw.len() - 5);
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(first).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.write_all(rest).await.unwrap();
    let res = read_response(&mut s, ANSWER).await.unwrap();
    assert_eq!(res.status, 201, "{res:?}");
}

#[tokio::test]
async fn a_body_slower_than_the_minimum_rate_is_cut_after_the_grace_period() {
    let srv = Srv::start_with(|c| {
        c.http_body_timeout_ms = 30_000;
        c.http_body_rate_min_bytes_per_sec = 200;
        c.http_body_rate_grace_ms = 500;
    });
    srv.warehouse("w1", 1).await;
    srv.sku("s", None, &[("w1", 10)]).await;
    let addr = srv.bg().addr;
    // Padded with JSON whitespace to 600 bytes.
    let body = format!(r#"{{"sku":"s",{}"qty":1}}"#, " ".repeat(580));
    let raw = post("/v1/reservations", &body);

    // About 3,000 bytes/s: far above the minimum (so a stall of the
    // machine cannot bring it near), passes.
    let mut s = TcpStream::connect(addr).await.unwrap();
    for piece in raw.chunks(300) {
        s.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let res = read_response(&mut s, ANSWER).await.unwrap();
    assert_eq!(res.status, 201, "{res:?}");

    // About 20 bytes/s: cut soon after the grace period, long before the
    // 30 s body timeout.
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let (head, body) = raw.split_at(raw.len() - body.len());
    s.write_all(head).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    let body = body.to_vec();
    let writer = tokio::spawn(async move {
        for b in body {
            if wr.write_all(&[b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let mut buf = Vec::new();
    let res = tokio::time::timeout(ANSWER, async {
        use tokio::io::AsyncReadExt;
        let mut chunk = [0u8; 4096];
        loop {
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
    .await
    .expect("cut off in time");
    writer.abort();
    let took = start.elapsed();
    assert!(res.starts_with("HTTP/1.1 408"), "{res}");
    assert!(res.contains("\"code\":\"body_timeout\""), "{res}");
    assert!(res.contains("http_body_rate_min_bytes_per_sec"), "{res}");
    assert!(took >= Duration::from_millis(450), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn header_count_and_size_limits() {
    let srv = Srv::start_with(|c| {
        c.http_headers_max = 8;
        c.http_header_bytes_max = 300;
    });
    let addr = srv.bg().addr;
    let get = |headers: &[(String, String)]| {
        let mut raw = "GET /healthz HTTP/1.1\r\n".to_owned();
        for (k, v) in headers {
            raw.push_str(&format!("{k}: {v}\r\n"));
        }
        raw.push_str("\r\n");
        raw
    };
    let host = ("Host".to_owned(), "a".to_owned());
    // Count: Host and 7 more = 8 passes; 9 is refused.
    for (n, want) in [(8, 200), (9, 431)] {
        let mut h = vec![host.clone()];
        h.extend((1..n).map(|i| (format!("X-H{i}"), "1".to_owned())));
        let (res, mut s) = exchange(addr, get(&h).as_bytes()).await;
        let res = res.unwrap();
        assert_eq!(res.status, want, "{n} headers: {res:?}");
        if want == 431 {
            assert_eq!(res.code(), "headers_too_large");
            assert_eq!(res.json()["limit"], 8);
            assert!(closed_within(&mut s, Duration::from_secs(5)).await);
        }
    }
    // Bytes: `host: a` is 1 + 4 + 4 = 9, `x-pad: v` is 5 + len + 4.
    for (total, want) in [(300, 200), (301, 431)] {
        let v = "v".repeat(total - 9 - 5 - 4);
        let h = vec![host.clone(), ("X-Pad".to_owned(), v)];
        let (res, _) = exchange(addr, get(&h).as_bytes()).await;
        let res = res.unwrap();
        assert_eq!(res.status, want, "{total} bytes: {res:?}");
        if want == 431 {
            assert_eq!(res.code(), "headers_too_large");
            assert_eq!(res.json()["limit"], 300);
        }
    }
}

#[tokio::test]
async fn connections_per_client_address_are_limited() {
    let srv = Srv::start_with(|c| c.http_connections_per_client_max = 3);
    let addr = srv.bg().addr;
    let health = b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut open = Vec::new();
    for _ in 0..3 {
        let (res, s) = exchange(addr, health).await;
        assert_eq!(res.unwrap().status, 200);
        open.push(s);
    }
    // Kept alive, they still count: a fourth is refused and closed.
    let (res, mut s) = exchange(addr, health).await;
    let res = res.unwrap();
    assert_eq!(
        (res.status, res.code().as_str()),
        (503, "too_many_connections")
    );
    assert!(res.closes(), "{res:?}");
    assert!(closed_within(&mut s, Duration::from_secs(5)).await);
    // A refused connection whose chunked body never ends is closed too,
    // not drained for as long as the client keeps it open.
    let endless =
        b"POST /v1/reservations HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
    let (res, mut s) = exchange(addr, endless).await;
    assert_eq!(res.map(|r| r.status), Some(503));
    assert!(
        closed_within(&mut s, Duration::from_secs(5)).await,
        "a refused endless body kept its connection open"
    );
    // The three are still served.
    for s in open.iter_mut() {
        s.write_all(health).await.unwrap();
        assert_eq!(read_response(s, ANSWER).await.unwrap().status, 200);
    }
    // One closes: a new connection is served once the server has seen it go.
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (res, s) = exchange(addr, health).await;
        if res.as_ref().map(|r| r.status) == Some(200) {
            open.push(s);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the closed connection was never uncounted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn wh(id: &str) -> (String, serde_json::Value) {
    (
        format!("/v1/warehouses/{id}"),
        json!({"name": id, "location": {"lat": 1.0, "lon": 1.0}}),
    )
}

/// At both limits: one more is refused, nothing half-made, and replacing
/// an existing one works.
async fn at_entity_limits(srv: &Srv) {
    let (p, b) = wh("w3");
    let (s, e) = srv.put(&p, b).await;
    assert_eq!(
        (
            s,
            e["code"].as_str(),
            e["entity"].as_str(),
            e["limit"].as_u64()
        ),
        (
            StatusCode::CONFLICT,
            Some("entity_limit_reached"),
            Some("warehouse"),
            Some(2)
        )
    );
    let (s, e) = srv.put("/v1/skus/c", json!({"name": "c"})).await;
    assert_eq!(
        (
            s,
            e["code"].as_str(),
            e["entity"].as_str(),
            e["limit"].as_u64()
        ),
        (
            StatusCode::CONFLICT,
            Some("entity_limit_reached"),
            Some("sku"),
            Some(2)
        )
    );
    assert_eq!(srv.get("/v1/skus/c/stock").await.0, StatusCode::NOT_FOUND);
    let (_, list) = srv.get("/v1/warehouses").await;
    assert_eq!(
        list["warehouses"].as_array().map(Vec::len),
        Some(2),
        "{list}"
    );
    let (p, b) = wh("w1");
    assert_eq!(srv.put(&p, b).await.0, StatusCode::OK);
    assert_eq!(
        srv.put("/v1/skus/b", json!({"name": "b2"})).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn skus_and_warehouses_are_limited_across_restarts() {
    let srv = Srv::start_with(|c| {
        c.skus_max = 2;
        c.warehouses_max = 2;
    });
    for id in ["w1", "w2"] {
        let (p, b) = wh(id);
        assert_eq!(srv.put(&p, b).await.0, StatusCode::OK);
    }
    for id in ["a", "b"] {
        assert_eq!(
            srv.put(&format!("/v1/skus/{id}"), json!({"name": id}))
                .await
                .0,
            StatusCode::OK
        );
    }
    at_entity_limits(&srv).await;
    let srv = srv.restart();
    at_entity_limits(&srv).await;
}
