//! Methods: `HEAD` on every `GET` route, 405 with `Allow` for a path that
//! is served with other methods, 404 for a path that is not served at all.

use crate::common::Srv;
use reqwest::{Method, StatusCode};
use serde_json::Value;

#[tokio::test]
async fn head_answers_like_get_without_a_body() {
    let srv = Srv::start();
    srv.warehouse("w1", 1).await;
    srv.sku("s1", None, &[("w1", 5)]).await;
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/",
        "/v1/warehouses",
        "/v1/warehouses/w1",
        "/v1/warehouses/nope",
        "/v1/skus/s1/stock",
        "/v1/feed/stats",
        "/v1/openapi.json",
        "/v1/orders/ord_99",
    ] {
        let get = srv.client.get(srv.url(path)).send().await.unwrap();
        let head = srv.client.head(srv.url(path)).send().await.unwrap();
        assert_eq!(head.status(), get.status(), "HEAD {path}");
        assert_eq!(
            head.headers().get("content-type"),
            get.headers().get("content-type"),
            "HEAD {path}"
        );
        assert!(head.headers().get("allow").is_none(), "HEAD {path}");
        let get_body = get.bytes().await.unwrap();
        assert!(!get_body.is_empty(), "GET {path}");
        assert!(
            head.bytes().await.unwrap().is_empty(),
            "HEAD {path} has a body"
        );
    }
}

#[tokio::test]
async fn a_known_path_with_another_method_is_405_with_allow() {
    let srv = Srv::start();
    for (method, path, allow) in [
        ("TRACE", "/v1/reservations", "POST"),
        ("GET", "/v1/reservations", "POST"),
        ("DELETE", "/v1/warehouses", "GET, HEAD"),
        ("POST", "/v1/warehouses/w1", "GET, HEAD, PUT"),
        ("PATCH", "/v1/reservations/res_1", "DELETE, GET, HEAD"),
        ("PUT", "/healthz", "GET, HEAD"),
        ("OPTIONS", "/v1/orders/ord_1/cancel", "POST"),
    ] {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        // JSON, so the media-type check (before routing) lets it through.
        let res = srv
            .client
            .request(m, srv.url(path))
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(
            res.headers().get("allow").and_then(|v| v.to_str().ok()),
            Some(allow),
            "{method} {path}"
        );
        assert_eq!(
            res.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "{method} {path}"
        );
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], "method_not_allowed", "{method} {path}");
    }
}

#[tokio::test]
async fn an_unknown_path_is_404_whatever_the_method() {
    let srv = Srv::start();
    for (method, path) in [
        ("GET", "/v1/nothing"),
        ("TRACE", "/v1/nothing"),
        ("DELETE", "/v1/reservations/res_1/extend/x"),
        ("HEAD", "/v2/warehouses"),
        ("GET", "/v1/warehouses/"),
    ] {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let res = srv.client.request(m, srv.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{method} {path}");
        assert!(res.headers().get("allow").is_none(), "{method} {path}");
        if method != "HEAD" {
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["code"], "not_found", "{method} {path}");
        }
    }
}

/// A query string the feed cannot read is a JSON error, like every other
/// (found by schemathesis: it was a `text/plain` 400).
#[tokio::test]
async fn a_bad_feed_query_is_a_json_error() {
    let srv = Srv::start();
    for query in ["since=-1", "x-unknown=42", "conflate_ms=abc"] {
        let (s, e) = srv.get(&format!("/v1/feed?{query}")).await;
        assert_eq!(
            (s, e["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_field")),
            "{query}: {e}"
        );
    }
}

/// A method no route serves is 405 even without a JSON body: the
/// media-type check before routing steps aside for it.
#[tokio::test]
async fn an_unserved_method_is_405_before_the_media_type_check() {
    let srv = Srv::start();
    for (method, path) in [
        ("PUT", "/healthz"),
        ("PUT", "/metrics"),
        ("POST", "/v1/warehouses/w1"),
    ] {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let res = srv.client.request(m, srv.url(path)).send().await.unwrap();
        assert_eq!(
            res.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
    }
    // A served method still needs JSON.
    let res = srv
        .client
        .put(srv.url("/v1/skus/x"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

/// A PATCH body is an object, never an array of its fields.
#[tokio::test]
async fn a_patch_body_must_be_an_object() {
    let srv = Srv::start();
    srv.sku("x", Some(2), &[]).await;
    let res = srv
        .client
        .patch(srv.url("/v1/skus/x"))
        .header("content-type", "application/json")
        .body("[null, null]")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(srv.stock("x").await["per_customer_limit"], 2);
}
