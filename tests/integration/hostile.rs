//! Hostile input: numbers out of every range, deep nesting, odd unicode
//! and control characters in ids, duplicate keys, truncated and
//! contradictory bodies, slowloris heads, slow bodies and thousands of
//! idle connections. Every request gets a clean 4xx with a JSON code, or,
//! where actix-http refuses at parser level, an empty 4xx and a closed
//! connection; the state is unchanged afterwards; a normal client keeps
//! being served meanwhile.

use crate::common::Srv;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What came back on a raw connection.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Raw {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?} {}", self.head, self.body))
    }

    /// The JSON `code` of an error answer.
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }

    pub fn closes(&self) -> bool {
        self.head
            .lines()
            .any(|l| l.eq_ignore_ascii_case("connection: close"))
    }
}

/// Reads one response (head and a `Content-Length` body) within `within`;
/// `None` if the connection closed before a whole one arrived.
pub async fn read_response(s: &mut TcpStream, within: Duration) -> Option<Raw> {
    let mut buf = Vec::new();
    let read = async {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let len = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    let status = head
                        .split(' ')
                        .nth(1)
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
                    return Some(Raw { status, head, body });
                }
            }
            let mut chunk = [0u8; 8192];
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(within, read)
        .await
        .expect("an answer or a close in time")
}

/// Whether the server closes the connection within `within`.
pub async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut chunk = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// Sends `bytes` on a new connection and reads the answer.
pub async fn exchange(addr: SocketAddr, bytes: &[u8]) -> (Option<Raw>, TcpStream) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let raw = read_response(&mut s, Duration::from_secs(10)).await;
    (raw, s)
}

/// A JSON POST's raw bytes.
pub fn post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn send_raw_json(
    srv: &Srv,
    method: reqwest::Method,
    path: &str,
    body: String,
) -> (StatusCode, Value) {
    let res = srv
        .client
        .request(method, srv.url(path))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {status} {text}"));
    (status, v)
}

/// Everything observable that a refused request could have changed.
async fn state(srv: &Srv) -> Value {
    let (_, warehouses) = srv.get("/v1/warehouses").await;
    let (_, stats) = srv.get("/v1/feed/stats").await;
    json!({"stock": srv.stock("s").await, "warehouses": warehouses, "seq": stats["seq"]})
}

async fn seeded() -> Srv {
    let srv = Srv::start_with(|c| {
        c.http_request_timeout_ms = 1000;
        c.http_body_timeout_ms = 2000;
        c.http_connections_per_client_max = 10_000;
    });
    srv.warehouse("w1", 1).await;
    srv.sku("s", None, &[("w1", 100)]).await;
    srv
}

fn assert_clean_4xx(what: &str, status: StatusCode, body: &Value) {
    assert!(status.is_client_error(), "{what}: {status} {body}");
    let code = body["code"].as_str().unwrap_or_default();
    assert!(
        !code.is_empty() && body["message"].is_string(),
        "{what}: no JSON code: {body}"
    );
}

#[tokio::test]
async fn numbers_out_of_range_are_refused_and_change_nothing() {
    let srv = seeded().await;
    let before = state(&srv).await;
    let huge = [
        "18446744073709551616",
        "99999999999999999999999999",
        "-1",
        "-9223372036854775809",
        "1.5",
        "1e2",
        "1e400",
        "-0.0",
        "\"7\"",
        "null",
        "true",
        "[1]",
    ];
    for n in huge {
        let mut bodies = vec![format!(r#"{{"sku":"s","qty":{n}}}"#)];
        // A null ttl_ms is the default ttl.
        if n != "null" {
            bodies.push(format!(r#"{{"sku":"s","qty":1,"ttl_ms":{n}}}"#));
        }
        for body in bodies {
            let (status, b) = send_raw_json(
                &srv,
                reqwest::Method::POST,
                "/v1/reservations",
                body.clone(),
            )
            .await;
            assert_clean_4xx(&body, status, &b);
        }
        let body = format!(r#"{{"sku":"s","warehouse":"w1","delta":{n},"reason":"x"}}"#);
        // -1 is a valid delta; everything else here is not.
        if n != "-1" {
            let (status, b) = send_raw_json(
                &srv,
                reqwest::Method::POST,
                "/v1/stock/adjustments",
                body.clone(),
            )
            .await;
            assert_clean_4xx(&body, status, &b);
        }
        let body = format!(r#"{{"name":"w","location":{{"lat":1.0,"lon":1.0}},"priority":{n}}}"#);
        if n != "-1" {
            let (status, b) = send_raw_json(
                &srv,
                reqwest::Method::PUT,
                "/v1/warehouses/w9",
                body.clone(),
            )
            .await;
            assert_clean_4xx(&body, status, &b);
        }
    }
    for n in ["9223372036854775808", "2147483648", "-2147483649"] {
        let body = format!(r#"{{"name":"w","location":{{"lat":1.0,"lon":1.0}},"priority":{n}}}"#);
        let (status, b) = send_raw_json(
            &srv,
            reqwest::Method::PUT,
            "/v1/warehouses/w9",
            body.clone(),
        )
        .await;
        assert_clean_4xx(&body, status, &b);
    }
    // Past i64 in a delta, both ways.
    for n in ["9223372036854775808", "-9223372036854775809", "1e19"] {
        let body = format!(r#"{{"sku":"s","warehouse":"w1","delta":{n},"reason":"x"}}"#);
        let (status, b) = send_raw_json(
            &srv,
            reqwest::Method::POST,
            "/v1/stock/adjustments",
            body.clone(),
        )
        .await;
        assert_clean_4xx(&body, status, &b);
    }
    assert_eq!(state(&srv).await, before);
}

#[tokio::test]
async fn deep_nesting_duplicate_keys_and_odd_ids_are_refused() {
    let srv = seeded().await;
    let before = state(&srv).await;
    let mut bodies = vec![
        "[".repeat(10_000),
        format!(r#"{{"sku":{}"#, "[".repeat(10_000)),
        format!(
            r#"{{"sku":"s","qty":1,"x":{}1{}}}"#,
            "{\"a\":".repeat(5_000),
            "}".repeat(5_000)
        ),
        // Duplicate keys: refused, not last-one-wins.
        r#"{"sku":"s","qty":1,"qty":100}"#.to_owned(),
        r#"{"sku":"s","sku":"t","qty":1}"#.to_owned(),
        String::new(),
        "{".to_owned(),
        r#"{"sku":"s","qty":1"#.to_owned(),
        "\u{feff}{}".to_owned(),
    ];
    // Odd unicode and control characters in ids.
    for id in [
        "\\u0000",
        "s\\u0000",
        "\\ud800",
        "s\\udc00x",
        "\\u202e",
        "s\\u200b",
        "s\\u200f",
        "\\u0007",
        "s\\n",
        "\u{feff}s",
        "s\u{0301}",
        "𝕤",
        "",
    ] {
        bodies.push(format!(r#"{{"sku":"{id}","qty":1}}"#));
    }
    for body in bodies {
        let (status, b) = send_raw_json(
            &srv,
            reqwest::Method::POST,
            "/v1/reservations",
            body.clone(),
        )
        .await;
        assert_clean_4xx(&body.chars().take(60).collect::<String>(), status, &b);
    }
    for id in [
        "%00",
        "s%00",
        "%E2%80%8F",
        "%E2%80%8B",
        "%EF%BB%BF",
        "s%0A",
        "%F0%9F%98%80",
        "%FF",
        "%C0%AF",
        "s%20",
    ] {
        let (status, b) = srv
            .put(&format!("/v1/skus/{id}"), json!({"name": "x"}))
            .await;
        assert_clean_4xx(id, status, &b);
        let (status, b) = srv.get(&format!("/v1/skus/{id}/stock")).await;
        assert_clean_4xx(id, status, &b);
    }
    assert_eq!(state(&srv).await, before);
}

#[tokio::test]
async fn framing_attacks_are_refused_at_parser_level_or_as_json() {
    let srv = seeded().await;
    let addr = srv.bg().addr;
    let before = state(&srv).await;
    let body = r#"{"sku":"s","qty":1}"#;
    // Contradictory framing: actix-http refuses these before any handler
    // runs, with an empty 400, and closes the connection.
    let smuggles = [
        format!("POST /v1/reservations HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n{body}", body.len()),
        format!("POST /v1/reservations HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: {}\r\nContent-Length: {}\r\n\r\n{body}", body.len(), body.len() + 1),
        format!("POST /v1/reservations HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n{body}"),
        format!("POST /v1/reservations HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 18446744073709551616\r\n\r\n{body}"),
        format!("POST /v1/reservations HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip\r\n\r\n{body}"),
        "POST /v1/reservations HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_owned(),
        format!("POST /v1/reservations HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()),
        "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Bad\u{1}: 1\r\n\r\n".to_owned(),
        "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Bad: a\u{0}b\r\n\r\n".to_owned(),
    ];
    for raw in &smuggles {
        let (res, mut s) = exchange(addr, raw.as_bytes()).await;
        let first = raw.lines().take(6).collect::<Vec<_>>().join(" | ");
        let r = res.unwrap_or_else(|| panic!("{first}: closed without an answer"));
        assert_eq!((r.status, r.body.as_str()), (400, ""), "{first}: {r:?}");
        assert!(
            closed_within(&mut s, Duration::from_secs(5)).await,
            "{first}: left open"
        );
    }
    // More header fields than actix-http parses (96): its own empty 431.
    let mut many = "GET /healthz HTTP/1.1\r\nHost: a\r\n".to_owned();
    for i in 0..100 {
        many.push_str(&format!("X-H{i}: 1\r\n"));
    }
    many.push_str("\r\n");
    let (res, mut s) = exchange(addr, many.as_bytes()).await;
    assert_eq!(res.map(|r| r.status), Some(431));
    assert!(closed_within(&mut s, Duration::from_secs(5)).await);

    // A truncated body: the client stops writing (half-close) before its
    // Content-Length is reached.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /v1/reservations HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"sku\":\"s\",")
        .await
        .unwrap();
    s.shutdown().await.unwrap();
    let r = read_response(&mut s, Duration::from_secs(10)).await;
    println!("truncated body: {r:?}");
    let r = r.expect("an answer to a truncated body");
    // The payload reader fails before the JSON parser sees the end.
    assert_eq!((r.status, r.code().as_str()), (400, "bad_request"), "{r:?}");
    assert_eq!(state(&srv).await, before);
}

#[tokio::test]
async fn slowloris_head_is_cut_at_the_request_timeout() {
    let srv = seeded().await;
    let addr = srv.bg().addr;
    let start = Instant::now();
    let (mut rd, mut wr) = TcpStream::connect(addr).await.unwrap().into_split();
    // One byte every 50 ms: the head would take about 4 s to arrive.
    let head = b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n".to_vec();
    let writer = tokio::spawn(async move {
        for b in head {
            if wr.write_all(&[b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    // actix answers a head not read within http_request_timeout_ms (1 s
    // here) with an empty 408 and closes the connection.
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), rd.read_to_end(&mut got))
        .await
        .expect("closed in time")
        .ok();
    let took = start.elapsed();
    writer.abort();
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "held for {took:?}"
    );
}

/// Median of `samples`, in ms.
fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    samples[samples.len() / 2]
}

async fn timed_reservations(srv: &Srv, n: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let (status, b) = srv
            .post(
                "/v1/reservations",
                json!({"sku": "s", "qty": 1, "ttl_ms": 60_000}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{b}");
        let (status, b) = srv
            .delete(&format!("/v1/reservations/{}", b["id"].as_str().unwrap()))
            .await;
        assert!(status.is_success(), "{b}");
        out.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    out
}

#[tokio::test]
async fn normal_clients_are_served_while_slow_clients_and_idle_connections_are_held() {
    let srv = Srv::start_with(|c| {
        // Long enough that the attack lasts through the measurement.
        c.http_request_timeout_ms = 30_000;
        c.http_body_timeout_ms = 30_000;
        c.http_body_rate_min_bytes_per_sec = 0;
        c.http_connections_per_client_max = 10_000;
        c.http_keep_alive_ms = 60_000;
    });
    srv.warehouse("w1", 1).await;
    srv.sku("s", None, &[("w1", 100)]).await;
    let addr = srv.bg().addr;
    let calm = timed_reservations(&srv, 60).await;
    let before = state(&srv).await;

    // 2,000 idle connections, 300 slowloris heads and 300 slow bodies.
    let mut idle = Vec::new();
    for _ in 0..2_000 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut slow = Vec::new();
    for i in 0..600 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        if i % 2 == 0 {
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n")
                .await
                .unwrap();
        } else {
            s.write_all(b"POST /v1/reservations HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"sku\":\"s\",")
                .await
                .unwrap();
        }
        slow.push(s);
    }
    // Keep every slow connection trickling while the client is measured.
    let dripping = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            for s in slow.iter_mut() {
                let _ = s.write_all(b" ").await;
            }
        }
    });
    let attack = timed_reservations(&srv, 60).await;
    dripping.abort();
    let (calm_ms, attack_ms) = (median(calm), median(attack));
    println!("reservation median: calm {calm_ms:.2} ms, under attack {attack_ms:.2} ms");
    assert!(
        attack_ms < 10.0 * calm_ms + 50.0,
        "calm {calm_ms:.2} ms, under attack {attack_ms:.2} ms"
    );
    // Still all open: the attack was really held during the measurement.
    let mut open = 0;
    for s in idle.iter_mut().take(50) {
        if !closed_within(s, Duration::from_millis(1)).await {
            open += 1;
        }
    }
    assert_eq!(open, 50, "idle connections were closed early");
    drop(idle);
    // The reservations were released: stock is as before.
    assert_eq!(state(&srv).await["stock"], before["stock"]);
}
