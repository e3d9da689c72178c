//! Browsers and the open web: cross-site form posts refused (415) with
//! nothing changed, charsets and encodings, the feed's Origin rule, the Host
//! allow-list, the framework's own errors as JSON on every route, and
//! requests the HTTP parser refuses: answered, logged below ERROR and
//! rate-limited, the server still serving.

use crate::child::spawn;
use crate::common::Srv;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HOST};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use surge::api::error::ErrorCode;
use surge::auth::{hash_hex, KeyConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

/// A server with warehouse `w`, SKU `a` (10 in `w`) and one order for 1
/// of it; returns the order's id.
async fn with_order(srv: &Srv) -> String {
    srv.warehouse("w", 1).await;
    srv.sku("a", None, &[("w", 10)]).await;
    let (s, o) = srv
        .post(
            "/v1/orders",
            json!({"channel": "web", "customer_id": "c1", "ship_to": {"lat": 1.0, "lon": 1.0},
                   "lines": [{"sku": "a", "qty": 1}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    o["id"].as_str().unwrap().to_owned()
}

/// Sends `body` with the given headers; status, content type and JSON body.
async fn raw_req(
    srv: &Srv,
    method: Method,
    path: &str,
    headers: &[(reqwest::header::HeaderName, &str)],
    body: impl Into<reqwest::Body>,
) -> (StatusCode, String, Value) {
    let mut req = srv.client.request(method, srv.url(path)).body(body);
    for (k, v) in headers {
        req = req.header(k.clone(), *v);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let ctype = res
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = res.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, ctype, json)
}

fn assert_refused(got: &(StatusCode, String, Value), status: StatusCode, code: &str, what: &str) {
    assert_eq!(got.0, status, "{what}: {:?}", got.2);
    assert!(got.1.starts_with("application/json"), "{what}: {}", got.1);
    assert_eq!(got.2["code"], code, "{what}: {:?}", got.2);
}

async fn order_status(srv: &Srv, id: &str) -> String {
    let (s, o) = srv.get(&format!("/v1/orders/{id}")).await;
    assert_eq!(s, StatusCode::OK, "{o}");
    o["status"].as_str().unwrap().to_owned()
}

/// What an HTML form on any page can send, to any site, without a CORS
/// preflight: every one is refused with 415 and the order stays ready.
#[tokio::test]
async fn cross_site_form_posts_are_refused_and_change_nothing() {
    let srv = Srv::start();
    let id = with_order(&srv).await;
    let cancel = format!("/v1/orders/{id}/cancel");
    let before = (order_status(&srv, &id).await, srv.stock("a").await);
    for (ctype, body) in [
        ("application/x-www-form-urlencoded", "reason=csrf"),
        ("text/plain", "{\"reason\":\"csrf\"}"),
        (
            "multipart/form-data; boundary=x",
            "--x\r\nContent-Disposition: form-data; name=\"reason\"\r\n\r\ncsrf\r\n--x--\r\n",
        ),
        ("text/plain", ""),
    ] {
        let got = raw_req(&srv, Method::POST, &cancel, &[(CONTENT_TYPE, ctype)], body).await;
        assert_refused(
            &got,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            ctype,
        );
    }
    // No Content-Type at all, with and without a body.
    for body in ["", "{}"] {
        let got = raw_req(&srv, Method::POST, &cancel, &[], body).await;
        assert_refused(
            &got,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "none",
        );
    }
    // A form post of a reservation or a stock change is refused the same way.
    for (path, body) in [
        ("/v1/reservations", "sku=a&qty=5"),
        (
            "/v1/stock/adjustments",
            "sku=a&warehouse=w&delta=-9&reason=x",
        ),
    ] {
        let got = raw_req(
            &srv,
            Method::POST,
            path,
            &[(CONTENT_TYPE, "application/x-www-form-urlencoded")],
            body,
        )
        .await;
        assert_refused(
            &got,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            path,
        );
    }
    let after = (order_status(&srv, &id).await, srv.stock("a").await);
    assert_eq!(before, after, "state changed by a refused request");
    assert_eq!(after.0, "ready");

    // The same cancel as JSON (charset utf-8 in any case), body or not, works.
    let got = raw_req(
        &srv,
        Method::POST,
        &cancel,
        &[(CONTENT_TYPE, "application/json; Charset=UTF-8")],
        "{\"reason\":\"asked\"}",
    )
    .await;
    assert_eq!(
        (got.0, got.2["status"].as_str()),
        (StatusCode::OK, Some("cancelled")),
        "{:?}",
        got.2
    );
    let (s, o) = srv
        .post(
            "/v1/orders",
            json!({"channel": "web", "customer_id": "c2", "ship_to": {"lat": 1.0, "lon": 1.0},
                   "lines": [{"sku": "a", "qty": 1}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let got = raw_req(
        &srv,
        Method::POST,
        &format!("/v1/orders/{}/cancel", o["id"].as_str().unwrap()),
        &[(CONTENT_TYPE, "application/json")],
        "",
    )
    .await;
    assert_eq!(got.0, StatusCode::OK, "{:?}", got.2);
}

#[tokio::test]
async fn charsets_and_encodings_other_than_utf8_and_identity_are_refused() {
    let srv = Srv::start();
    let id = with_order(&srv).await;
    let cancel = format!("/v1/orders/{id}/cancel");
    for ctype in [
        "application/json; charset=latin1",
        "application/json; charset=iso-8859-1",
        "application/json; charset=utf-16",
        "application/json; boundary=x",
    ] {
        let got = raw_req(&srv, Method::POST, &cancel, &[(CONTENT_TYPE, ctype)], "{}").await;
        assert_refused(
            &got,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            ctype,
        );
    }
    // gzip is refused, not read as JSON; on a reservation too.
    let gz: &[u8] = &[
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xab, 0xae, 0x05, 0x00,
    ];
    for (path, enc) in [
        (cancel.as_str(), "gzip"),
        ("/v1/reservations", "gzip"),
        ("/v1/reservations", "br"),
    ] {
        let got = raw_req(
            &srv,
            Method::POST,
            path,
            &[(CONTENT_TYPE, "application/json"), (CONTENT_ENCODING, enc)],
            gz.to_vec(),
        )
        .await;
        assert_refused(
            &got,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            enc,
        );
    }
    assert_eq!(order_status(&srv, &id).await, "ready");
    assert_eq!(srv.stock("a").await["reserved"].as_u64(), Some(0));
    // identity is no encoding at all.
    let got = raw_req(
        &srv,
        Method::POST,
        "/v1/reservations",
        &[
            (CONTENT_TYPE, "application/json; charset=utf-8"),
            (CONTENT_ENCODING, "identity"),
        ],
        "{\"sku\":\"a\",\"qty\":1}",
    )
    .await;
    assert_eq!(got.0, StatusCode::CREATED, "{:?}", got.2);
}

/// A DELETE without a body needs no Content-Type (a page cannot send a
/// cross-site DELETE without a preflight); one with a body must be JSON.
#[tokio::test]
async fn delete_needs_json_only_with_a_body() {
    let srv = Srv::start();
    with_order(&srv).await;
    let (s, h) = srv
        .post("/v1/reservations", json!({"sku": "a", "qty": 2}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let path = format!("/v1/reservations/{}", h["id"].as_str().unwrap());
    let got = raw_req(
        &srv,
        Method::DELETE,
        &path,
        &[(CONTENT_TYPE, "text/plain")],
        "x",
    )
    .await;
    assert_refused(
        &got,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "delete",
    );
    assert_eq!(srv.get(&path).await.1["status"], "active");
    let (s, r) = srv.delete(&path).await;
    assert_eq!(
        (s, r["status"].as_str()),
        (StatusCode::OK, Some("released"))
    );
}

/// With keys, a form post without a key is 401 (the guard runs first); with
/// a key, 415.
#[tokio::test]
async fn an_unauthenticated_form_post_gets_401_first() {
    let srv = Srv::start_with(|c| {
        c.keys = vec![KeyConfig {
            name: "web".into(),
            sha256: hash_hex("k-web"),
            scopes: vec!["storefront".into()],
        }]
    });
    let form = [(CONTENT_TYPE, "application/x-www-form-urlencoded")];
    let got = raw_req(&srv, Method::POST, "/v1/orders/ord_1/cancel", &form, "a=b").await;
    assert_refused(&got, StatusCode::UNAUTHORIZED, "unauthenticated", "no key");
    let res = srv
        .client
        .post(srv.url("/v1/orders/ord_1/cancel"))
        .bearer_auth("k-web")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("a=b")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

/// A feed handshake with `origin` (if any); Ok, or the refusal's status and body.
async fn handshake(srv: &Srv, origin: Option<&str>) -> Result<(), (u16, Value)> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Error;
    let mut req = surge::feedclient::feed_url(&srv.url(""), "topics=stock")
        .into_client_request()
        .unwrap();
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    match timeout(WAIT, tokio_tungstenite::connect_async(req))
        .await
        .unwrap()
    {
        Ok((mut ws, _)) => {
            let hello = surge::feedclient::next_json(&mut ws)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(hello["type"], "hello");
            Ok(())
        }
        Err(Error::Http(res)) => {
            let body = res.body().clone().unwrap_or_default();
            Err((
                res.status().as_u16(),
                serde_json::from_slice(&body).unwrap_or(Value::Null),
            ))
        }
        Err(e) => panic!("handshake: {e}"),
    }
}

#[tokio::test]
async fn feed_origin_default_is_the_servers_own() {
    let srv = Srv::start();
    let port = srv.bg().addr.port();
    for bad in [
        "http://evil.example".to_string(),
        format!("http://localhost.evil.example:{port}"),
        format!("http://127.0.0.1:{}", port.wrapping_add(1)),
        "null".to_string(),
    ] {
        let (status, body) = handshake(&srv, Some(&bad)).await.unwrap_err();
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("origin_not_allowed")),
            "{bad}"
        );
    }
    // Refused before a connection slot is taken.
    let (s, stats) = srv.get("/v1/feed/stats").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(stats["connections"].as_u64(), Some(0), "{stats}");
    let own = format!("http://{}", srv.bg().addr);
    assert_eq!(
        handshake(&srv, None).await,
        Ok(()),
        "no Origin: not a browser"
    );
    assert_eq!(
        handshake(&srv, Some(&own)).await,
        Ok(()),
        "the dashboard's own origin"
    );
    let own_https = format!("https://{}", srv.bg().addr);
    assert_eq!(
        handshake(&srv, Some(&own_https)).await,
        Ok(()),
        "behind a TLS proxy"
    );
}

#[tokio::test]
async fn feed_origin_allow_list_and_wildcard() {
    let srv = Srv::start_with(|c| c.feed_allowed_origins = vec!["https://ops.example.com".into()]);
    let own = format!("http://{}", srv.bg().addr);
    assert_eq!(
        handshake(&srv, Some("https://ops.example.com")).await,
        Ok(())
    );
    assert_eq!(
        handshake(&srv, Some("https://OPS.example.com:443")).await,
        Ok(())
    );
    assert_eq!(handshake(&srv, None).await, Ok(()));
    for bad in [
        "http://ops.example.com",
        "https://ops.example.com:8443",
        own.as_str(),
    ] {
        let (status, body) = handshake(&srv, Some(bad)).await.unwrap_err();
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("origin_not_allowed")),
            "{bad}"
        );
    }
    drop(srv);
    let srv = Srv::start_with(|c| c.feed_allowed_origins = vec!["*".into()]);
    assert_eq!(
        handshake(&srv, Some("http://anywhere.example")).await,
        Ok(())
    );
}

/// Protected mode (no keys) with no allow-list: a browser on this machine
/// is a loopback client whatever page it runs, so a dotted name that could
/// be re-pointed at 127.0.0.1 (DNS rebinding) is refused; addresses and
/// localhost are served. With keys, the key is what protects.
#[tokio::test]
async fn protected_mode_refuses_rebound_names() {
    let srv = Srv::start();
    let port = srv.bg().addr.port();
    for (host, want) in [
        (
            format!("evil.example:{port}"),
            StatusCode::MISDIRECTED_REQUEST,
        ),
        ("evil.example".to_owned(), StatusCode::MISDIRECTED_REQUEST),
        (
            "127.0.0.1.nip.io".to_owned(),
            StatusCode::MISDIRECTED_REQUEST,
        ),
        (format!("127.0.0.1:{port}"), StatusCode::OK),
        (format!("localhost:{port}"), StatusCode::OK),
        ("shop.localhost".to_owned(), StatusCode::OK),
        ("[::1]".to_owned(), StatusCode::OK),
        ("myhost".to_owned(), StatusCode::OK),
    ] {
        let got = raw_req(
            &srv,
            Method::GET,
            "/v1/warehouses",
            &[(HOST, host.as_str())],
            "",
        )
        .await;
        assert_eq!(got.0, want, "{host}: {:?}", got.2);
        if want != StatusCode::OK {
            assert_eq!(got.2["code"], "host_not_allowed", "{host}");
        }
    }
    // A write from a rebound page changes nothing.
    let res = srv
        .client
        .put(srv.url("/v1/warehouses/x"))
        .header(HOST, "evil.example")
        .json(&json!({"name": "x", "location": {"lat": 1.0, "lon": 1.0}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::MISDIRECTED_REQUEST);
    let (_, list) = srv.get("/v1/warehouses").await;
    assert_eq!(list["warehouses"], json!([]));
    // Probes are exempt.
    let got = raw_req(&srv, Method::GET, "/healthz", &[(HOST, "evil.example")], "").await;
    assert_eq!(got.0, StatusCode::OK);
}

#[tokio::test]
async fn host_allow_list() {
    let srv =
        Srv::start_with(|c| c.http_allowed_hosts = vec!["surge.test".into(), "ops.test:1".into()]);
    let port = srv.bg().addr.port();
    let get = |host: String, path: &'static str| {
        let srv = &srv;
        async move { raw_req(srv, Method::GET, path, &[(HOST, host.as_str())], "").await }
    };
    let ok = get(format!("surge.test:{port}"), "/v1/warehouses").await;
    assert_eq!(ok.0, StatusCode::OK, "{:?}", ok.2);
    let ok = get("SURGE.test.".into(), "/v1/warehouses").await;
    assert_eq!(ok.0, StatusCode::OK, "{:?}", ok.2);
    let ok = get("ops.test:1".into(), "/v1/warehouses").await;
    assert_eq!(ok.0, StatusCode::OK, "{:?}", ok.2);
    for bad in [
        format!("127.0.0.1:{port}"),
        format!("ops.test:{port}"),
        "evil.example".into(),
        "surge.test.evil.example".into(),
    ] {
        let got = get(bad.clone(), "/v1/warehouses").await;
        assert_refused(
            &got,
            StatusCode::MISDIRECTED_REQUEST,
            "host_not_allowed",
            &bad,
        );
        // A write too: refused before anything happens.
        let res = srv
            .client
            .put(srv.url("/v1/warehouses/x"))
            .header(HOST, bad.as_str())
            .json(&json!({"name": "x", "location": {"lat": 1.0, "lon": 1.0}}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::MISDIRECTED_REQUEST);
    }
    // Health checks are exempt.
    for path in ["/healthz", "/readyz"] {
        let got = get("10.1.2.3:9".into(), path).await;
        assert_eq!(got.0, StatusCode::OK, "{path}: {:?}", got.2);
    }
    let list = get(format!("surge.test:{port}"), "/v1/warehouses").await;
    assert_eq!(list.2["warehouses"], json!([]), "{:?}", list.2);
}

/// Every route of the table with `{..}` segments filled in.
fn every_route() -> Vec<(Method, String)> {
    surge::api::auth::ROUTES
        .iter()
        .map(|(m, p, _)| {
            let path = p
                .split('/')
                .map(|s| if s.starts_with('{') { "x1" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            (Method::from_bytes(m.as_bytes()).unwrap(), path)
        })
        .collect()
}

fn known_code(code: &Value) -> bool {
    ErrorCode::ALL.iter().any(|c| code == c.as_str())
}

/// Every 4xx of every route, with a bad query string, an oversized body
/// and an empty body, is JSON with a known code.
#[tokio::test]
async fn framework_errors_are_json_on_every_route() {
    let srv = Srv::start_with(|c| c.http_body_bytes_max = 1024);
    let json_ct = [(CONTENT_TYPE, "application/json")];
    let mut checked = 0;
    for (method, path) in every_route() {
        let cases: Vec<(String, Vec<u8>)> = vec![
            (format!("{path}?since=abc&nope=%ZZ"), b"{}".to_vec()),
            (path.clone(), vec![b' '; 1025]),
            (path.clone(), vec![]),
            (path.clone(), b"{\"truncated\":".to_vec()),
        ];
        for (url, body) in cases {
            let got = raw_req(&srv, method.clone(), &url, &json_ct, body.clone()).await;
            if got.0.is_client_error() {
                assert!(
                    got.1.starts_with("application/json"),
                    "{method} {url}: {}",
                    got.1
                );
                assert!(known_code(&got.2["code"]), "{method} {url}: {:?}", got.2);
                checked += 1;
            }
            // A path no route serves (`/assets/x1` stands for the
            // `{file}` row) is routing's 404 whatever its body.
            if body.len() > 1024 && got.0 != StatusCode::NOT_FOUND {
                assert_refused(
                    &got,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    &url,
                );
            }
        }
    }
    assert!(checked > every_route().len(), "{checked}");
    // The feed's query string, refused by the framework before the handler.
    let (s, e) = srv.get("/v1/feed?since=abc").await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_field"))
    );
    let (s, e) = srv.get("/v1/feed?bogus=1").await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_field"))
    );
}

/// At the body limit a request is read; one byte past it is 413 JSON, on a
/// JSON route and on cancel (read as raw bytes).
#[tokio::test]
async fn body_limit_edge() {
    let srv = Srv::start_with(|c| c.http_body_bytes_max = 1024);
    let padded = |n: usize| {
        let mut b = b"{}".to_vec();
        b.resize(n, b' ');
        b
    };
    let ct = [(CONTENT_TYPE, "application/json")];
    let at = raw_req(
        &srv,
        Method::POST,
        "/v1/orders/ord_77/cancel",
        &ct,
        padded(1024),
    )
    .await;
    assert_refused(
        &at,
        StatusCode::NOT_FOUND,
        "order_not_found",
        "at the limit",
    );
    let past = raw_req(
        &srv,
        Method::POST,
        "/v1/orders/ord_77/cancel",
        &ct,
        padded(1025),
    )
    .await;
    assert_refused(
        &past,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "one past",
    );
    assert_eq!(past.2["limit"], 1024);
    let at = raw_req(&srv, Method::POST, "/v1/reservations", &ct, padded(1024)).await;
    assert_refused(
        &at,
        StatusCode::BAD_REQUEST,
        "invalid_field",
        "at the limit",
    );
    let past = raw_req(&srv, Method::POST, "/v1/reservations", &ct, padded(1025)).await;
    assert_refused(
        &past,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "one past",
    );
}

/// Writes `request` on a new connection; what came back until the server
/// closed it (or `WAIT` passed): status (0 if none) and the whole answer.
async fn raw_tcp(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            Ok(Ok(_)) | Ok(Err(_)) => break,
            Err(_) => panic!("the server neither answered nor closed in time: {buf:?}"),
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// A chunked body past the limit on cancel (no Content-Length to check
/// first; the framework's payload reader refuses it) is 413 JSON.
#[tokio::test]
async fn chunked_body_past_the_limit_is_json() {
    let srv = Srv::start_with(|c| c.http_body_bytes_max = 1024);
    let body = " ".repeat(2000);
    let req = format!(
        "POST /v1/orders/ord_1/cancel HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let (status, text) = raw_tcp(srv.bg().addr, req.as_bytes()).await;
    assert_eq!(status, 413, "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{text}"
    );
    assert!(text.contains("\"code\":\"payload_too_large\""), "{text}");
}

/// Requests actix-http refuses by itself, before the app: 400 with an
/// empty body and `connection: close`, then the connection is closed.
const MALFORMED: &[&[u8]] = &[
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n",
    b"POST /v1/reservations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n{}",
    b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
];

/// A head that is fine and a chunked body that is not: the app answers
/// (400 `bad_request`, JSON), then the connection is closed.
const BAD_CHUNKED: &[u8] = b"POST /v1/reservations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n";

#[tokio::test]
async fn malformed_requests_get_400_and_the_server_stays_healthy() {
    let srv = Srv::start();
    for req in MALFORMED {
        let (status, text) = raw_tcp(srv.bg().addr, req).await;
        let what = String::from_utf8_lossy(req);
        assert_eq!(status, 400, "{what:?}: {text}");
        let head = text.to_ascii_lowercase();
        assert!(head.contains("content-length: 0"), "{what:?}: {text}");
        assert!(head.contains("connection: close"), "{what:?}: {text}");
    }
    let (status, text) = raw_tcp(srv.bg().addr, BAD_CHUNKED).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("\"code\":\"bad_request\""), "{text}");
    let (s, _) = srv.get("/v1/warehouses").await;
    assert_eq!(s, StatusCode::OK);
    let (s, h) = srv.get("/healthz").await;
    assert_eq!((s, h["status"].as_str()), (StatusCode::OK, Some("ok")));
}

/// The real binary with JSON logs: malformed requests log at WARN as
/// `client error`, never ERROR, at most `log_client_errors_per_s` (3) a
/// second plus the burst, and a later line counts the suppressed ones.
#[tokio::test]
async fn client_mistakes_log_below_error_and_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = spawn(
        &dir.path().join("data"),
        dir.path(),
        &[
            ("SURGE_LOG_FORMAT", "json"),
            ("SURGE_LOG", "info"),
            ("SURGE_LOG_CLIENT_ERRORS_PER_S", "3"),
        ],
        None,
    );
    let http = reqwest::Client::new();
    server.ready(&http).await;
    let addr: SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    // Lines from the start (the replay stand-in's hand-over) are not ours
    // to judge here.
    let skip = server.log().lines().count();
    let started = Instant::now();
    for _ in 0..20 {
        for req in MALFORMED.iter().chain([&BAD_CHUNKED]) {
            let (status, _) = raw_tcp(addr, req).await;
            assert_eq!(status, 400);
        }
    }
    let burst_s = started.elapsed().as_secs_f64();
    let lines = |log: &str| -> Vec<Value> {
        log.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect()
    };
    // Keep sending one more now and then until a line says how many were
    // suppressed (the bucket refills at 3 a second).
    let deadline = Instant::now() + WAIT;
    loop {
        let log = server.log();
        let suppressed = lines(&log).iter().any(|v| {
            v["target"] == "surge::client_error" && v["fields"]["suppressed"].as_u64() > Some(0)
        });
        if suppressed {
            break;
        }
        assert!(Instant::now() < deadline, "no `suppressed` line: {log}");
        raw_tcp(addr, MALFORMED[0]).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let total_s = started.elapsed().as_secs_f64();
    let log = server.log();
    let all = lines(&log.lines().skip(skip).collect::<Vec<_>>().join("\n"));
    assert!(all.len() > 2, "{all:?}");
    let errors: Vec<_> = all.iter().filter(|v| v["level"] == "ERROR").collect();
    assert!(
        errors.is_empty(),
        "client mistakes logged at ERROR: {errors:?}"
    );
    let client: Vec<_> = all
        .iter()
        .filter(|v| v["target"] == "surge::client_error")
        .collect();
    assert!(client.iter().all(|v| v["level"] == "WARN"), "{client:?}");
    assert!(
        client.iter().all(|v| v["fields"]["kind"] == "malformed"),
        "{client:?}"
    );
    // 3 at once, then 3 a second.
    let bound = 3.0 + 3.0 * total_s + 1.0;
    assert!(
        (client.len() as f64) <= bound,
        "{} client error lines in {total_s:.1} s (burst {burst_s:.1} s), at most {bound}",
        client.len()
    );
    assert!(
        all.iter()
            .all(|v| !v["target"].as_str().unwrap_or("").starts_with("actix_http")),
        "{all:?}"
    );
    // Still serving.
    let res = client_get(&http, &server.base).await;
    assert_eq!(res, StatusCode::OK);
}

async fn client_get(client: &reqwest::Client, base: &str) -> StatusCode {
    client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap()
        .status()
}
