//! What a request costs before its handler (`api/front.rs`), in process:
//! a reservation-sized POST through the front layer to a handler that
//! reads the body and answers 201, with
//! - `open`: no keys (a loopback client passes the guard at once) and
//!   request counting off (`metrics_http = false`);
//! - `keyed`: an API key checked on every request and every request
//!   counted, as a production server runs. The test request has no
//!   connection, so the key is hashed every time (a kept-alive connection
//!   hashes it once): the worst case.
//!
//! The difference between the two is what authentication and metrics add
//! to each request's CPU.
//!
//!     cargo bench --bench front

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness, like a test

use actix_web::dev::{Service, ServiceResponse};
use actix_web::{test, web, App, HttpResponse};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use surge::api::front::Front;
use surge::config::Config;

const KEY: &str = "sk_front_bench_0123456789abcdef0123456789abcdef";
const BODY: &str = r#"{"sku":"hot","qty":1,"ttl_s":300}"#;

fn front(keyed: bool) -> Front {
    let mut config = Config::default_config();
    if keyed {
        config.keys = vec![surge::auth::KeyConfig {
            name: "bench".into(),
            sha256: surge::auth::hash_hex(KEY),
            scopes: vec!["admin".into()],
        }];
    }
    // Far above what this loop sends: the limiter is consulted, never
    // refuses.
    config.rate_limit_key_per_sec = u32::MAX;
    config.rate_limit_key_burst = u32::MAX;
    config.metrics_http = keyed;
    let listen: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    Front {
        ids: Arc::default(),
        metrics: Arc::default(),
        count: config.metrics_http,
        head: surge::api::limits::HeadLimits::new(&config),
        body: surge::api::slow::BodyLimits::new(&config),
        guard: surge::api::auth::Guard::new(&config, listen).unwrap(),
        rates: web::Data::new(surge::ratelimit::RateLimits::from_config(&config)),
        browser: surge::api::browser::Browser::new(&config),
    }
}

async fn handler(body: web::Bytes) -> HttpResponse {
    HttpResponse::Created()
        .content_type("application/json")
        .body(format!(r#"{{"received":{}}}"#, body.len()))
}

fn bench(c: &mut Criterion) {
    let rt = actix_rt::Runtime::new().unwrap();
    let mut g = c.benchmark_group("front");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(4));
    for (name, keyed) in [("open", false), ("keyed", true)] {
        let app = rt.block_on(async {
            let front = front(keyed);
            test::init_service(
                App::new()
                    .wrap_fn(move |req, srv| front.call(req, srv))
                    .route("/v1/reservations", web::post().to(handler)),
            )
            .await
        });
        g.bench_function(name, |b| {
            b.iter_custom(|n| {
                rt.block_on(async {
                    let started = Instant::now();
                    for _ in 0..n {
                        let req = test::TestRequest::post()
                            .uri("/v1/reservations")
                            .peer_addr("127.0.0.1:40000".parse().unwrap())
                            .insert_header(("content-type", "application/json"))
                            .insert_header(("authorization", format!("Bearer {KEY}")))
                            .set_payload(BODY)
                            .to_request();
                        let res: ServiceResponse = app.call(req).await.unwrap();
                        assert_eq!(res.status(), 201);
                        let _ = test::read_body(res).await;
                    }
                    started.elapsed()
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
