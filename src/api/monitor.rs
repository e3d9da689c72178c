//! What operators and load balancers poll: `/readyz` and `/metrics`, and
//! the stand-in server that answers while the log is replayed at start.

use super::error::{ApiError, ErrorCode};
use super::App;
use actix_web::http::header::ContentType;
use actix_web::{web, HttpResponse};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

/// 200 when the server takes traffic; 503 while storage has failed (and,
/// from the stand-in server, while the log is replayed).
async fn readyz(app: App) -> HttpResponse {
    let failed = app.storage_failed();
    let body = serde_json::json!({
        "ready": !failed,
        "replay": "done",
        "storage": if failed { "failed" } else { "ok" },
    });
    if failed {
        HttpResponse::ServiceUnavailable().json(body)
    } else {
        HttpResponse::Ok().json(body)
    }
}

/// Every series in the Prometheus text format.
async fn metrics(app: App) -> HttpResponse {
    let text = crate::metrics::render(app.metrics(), app.wal_stats(), app.gauges());
    HttpResponse::Ok()
        .content_type(crate::metrics::CONTENT_TYPE)
        .body(text)
}

/// The routes of the stand-in server that holds the listener while the log
/// is replayed: `/readyz` and `/healthz` say so with 503, every other
/// request gets 503 `starting`.
pub fn starting_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/readyz", web::get().to(starting_probe))
        .route("/healthz", web::get().to(starting_probe))
        .default_service(web::to(starting));
}

async fn starting_probe() -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .content_type(ContentType::json())
        .body(r#"{"ready":false,"replay":"running","status":"starting"}"#)
}

async fn starting() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        ErrorCode::Starting,
        "the server is replaying its log; retry shortly",
    ))
}
