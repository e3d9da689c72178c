//! What operators and load balancers poll: `/readyz` and `/metrics`, and
//! the stand-in server that answers while the log is replayed at start.

use super::dto::Ready;
use super::error::{ApiError, ErrorCode};
use super::routes::Routes;
use super::App;
use actix_web::{web, HttpResponse};

pub fn routes(r: &mut Routes<'_>) {
    r.get("/readyz", readyz).get("/metrics", metrics);
}

/// 200 when the server takes traffic; 503 while storage has failed (and,
/// from the stand-in server, while the log is replayed).
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "meta",
    responses(
        (status = 200, description = "Replay is done and storage works", body = super::dto::Ready),
        (status = 503, description = "The log is being replayed, or storage failed", body = super::dto::Ready),
    )
)]
pub(super) async fn readyz(app: App) -> HttpResponse {
    let failed = app.storage_failed();
    let body = Ready {
        ready: !failed,
        replay: "done",
        storage: Some(if failed { "failed" } else { "ok" }),
        status: None,
    };
    if failed {
        HttpResponse::ServiceUnavailable().json(body)
    } else {
        HttpResponse::Ok().json(body)
    }
}

/// Every series in the Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "meta",
    responses((status = 200, description = "Every series, in the Prometheus text exposition format", content_type = "text/plain"))
)]
pub(super) async fn metrics(app: App) -> HttpResponse {
    let text = crate::metrics::render(app.metrics(), app.wal_stats(), app.gauges());
    HttpResponse::Ok()
        .content_type(crate::metrics::CONTENT_TYPE)
        .body(text)
}

/// The routes of the stand-in server that holds the listener while the log
/// is replayed: `/readyz` and `/healthz` say so with 503, every other
/// request gets 503 `starting`.
pub fn starting_routes(cfg: &mut web::ServiceConfig) {
    let mut table = Vec::new();
    Routes::new(cfg, &mut table)
        .get("/readyz", starting_probe)
        .get("/healthz", starting_probe)
        .config()
        .default_service(web::to(starting));
}

async fn starting_probe() -> HttpResponse {
    HttpResponse::ServiceUnavailable().json(Ready {
        ready: false,
        replay: "running",
        storage: None,
        status: Some("starting"),
    })
}

async fn starting() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        ErrorCode::Starting,
        "the server is replaying its log; retry shortly",
    ))
}
