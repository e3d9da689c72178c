//! HTTP API v1: the only module that knows HTTP and JSON. Handlers parse and
//! validate, call one [`Surge`] operation, and render the answer; errors go
//! through the single table in [`error`].

pub mod auth;
pub mod browser;
mod dashboard;
pub mod decode;
pub mod dto;
pub mod error;
mod feed;
pub mod front;
mod incoming;
mod ledger;
mod lifecycle;
pub mod limits;
pub mod monitor;
pub mod observe;
pub mod openapi;
mod orders;
pub mod ratelimit;
mod reservations;
pub mod routes;
mod routing;
mod simulate;
mod skus;
pub mod slow;
mod warehouses;

use crate::app::{Idempotency, Outcome, Surge};
use crate::config::Config;
use crate::core::IdError;
use actix_web::http::header::ContentType;
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use error::{ApiError, ErrorCode};
use routes::{Registered, Routes};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub type App = web::Data<Arc<Surge>>;

/// Longest `Idempotency-Key` header, in bytes.
pub const IDEMPOTENCY_KEY_LEN_MAX: usize = 255;

/// Registers every route, the JSON limits and the error mapping.
pub fn configure(cfg: &mut web::ServiceConfig, config: &Config) {
    register(cfg, config);
}

/// The methods of every route [`configure`] registers (for checks made
/// before routing).
pub fn route_methods(config: &Config) -> routes::Methods {
    let mut table = Vec::new();
    let _app = actix_web::App::new().configure(|cfg| table = register(cfg, config));
    routes::Methods::of(&table)
}

/// [`configure`], returning the table of the routes it registered.
pub fn register(cfg: &mut web::ServiceConfig, config: &Config) -> Vec<Registered> {
    let limit = config.http_body_bytes_max;
    cfg.app_data(
        web::JsonConfig::default()
            .limit(limit)
            .error_handler(|e, _| error::json_error(e).into()),
    )
    .app_data(web::PayloadConfig::new(limit))
    .app_data(web::QueryConfig::default().error_handler(|e, _| {
        ApiError::new(ErrorCode::InvalidField, format!("query string: {e}"))
            .with("field", "query")
            .into()
    }))
    .app_data(
        web::PathConfig::default()
            .error_handler(|e, _| ApiError::new(ErrorCode::InvalidPath, e.to_string()).into()),
    );
    let mut table = Vec::new();
    let mut r = Routes::new(cfg, &mut table);
    r.get("/healthz", healthz);
    monitor::routes(&mut r);
    dashboard::routes(&mut r);
    // Resources are tried in order, and a path with `{..}` segments is
    // matched by a regex: the hot routes (`POST /v1/reservations`,
    // `/v1/reservations:batch`, static paths) go first, so they match by a
    // string compare before any regex is tried.
    r.scope("/v1", |r| {
        reservations::hot_routes(r);
        warehouses::routes(r);
        skus::routes(r);
        reservations::routes(r);
        orders::routes(r);
        lifecycle::routes(r);
        routing::routes(r);
        simulate::routes(r);
        feed::routes(r);
        openapi::routes(r);
        incoming::routes(r);
        ledger::routes(r);
    });
    // What no route takes: 405 with `Allow` for a known path, else 404.
    let methods = routes::Methods::of(&table);
    cfg.default_service(web::to(move |req: HttpRequest| {
        let methods = methods.clone();
        async move { unrouted(&req, &methods) }
    }));
    table
}

/// The answer to a request no route took.
fn unrouted(req: &HttpRequest, methods: &routes::Methods) -> HttpResponse {
    use actix_web::ResponseError;
    let allowed = methods.allowed(req.path());
    if allowed.is_empty() {
        return ApiError::new(
            ErrorCode::NotFound,
            format!("no route for {} {}", req.method(), req.path()),
        )
        .error_response();
    }
    let allow = allowed
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    let mut res = ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!(
            "{} {} is not served; allowed: {allow}",
            req.method(),
            req.path()
        ),
    )
    .error_response();
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&allow) {
        res.headers_mut().insert(actix_web::http::header::ALLOW, v);
    }
    res
}

/// Whether the server can take writes.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "meta",
    responses(
        (status = 200, description = "Storage works", body = dto::Health),
        (status = 503, description = "Storage failed: writes are stopped", body = dto::Health),
    )
)]
pub(super) async fn healthz(app: App) -> HttpResponse {
    let failed = app.storage_failed();
    let body = dto::Health {
        durability: app.config().durability.as_str(),
        seq: app.durable_seq(),
        status: if failed { "degraded" } else { "ok" },
        storage: if failed { "failed" } else { "ok" },
    };
    if failed {
        HttpResponse::ServiceUnavailable().json(body)
    } else {
        HttpResponse::Ok().json(body)
    }
}

/// Parses a client-chosen id from a named field.
fn id<T>(
    field: &str,
    value: &str,
    parse: impl Fn(&str) -> Result<T, IdError>,
) -> Result<T, ApiError> {
    parse(value).map_err(|e| ApiError::invalid(field, e))
}

fn text(config: &Config, field: &str, value: &str) -> Result<(), ApiError> {
    if value.len() > config.text_len_max {
        return Err(ApiError::invalid(
            field,
            format!("longer than {} bytes", config.text_len_max),
        ));
    }
    Ok(())
}

fn qty(config: &Config, field: &str, value: u64) -> Result<u64, ApiError> {
    if value == 0 || value > config.qty_max {
        return Err(ApiError::invalid(
            field,
            format!("must be from 1 to {}", config.qty_max),
        ));
    }
    Ok(value)
}

fn ttl(config: &Config, value: Option<u64>) -> Result<u64, ApiError> {
    let ttl = value.unwrap_or(config.hold_ttl_ms_default);
    if ttl == 0 || ttl > config.hold_ttl_ms_max {
        return Err(ApiError::invalid(
            "ttl_ms",
            format!("must be from 1 to {}", config.hold_ttl_ms_max),
        ));
    }
    Ok(ttl)
}

/// Reads `Idempotency-Key`, scoped to `scope`, with the request's hash.
fn idempotency(
    req: &HttpRequest,
    scope: &str,
    body: &impl Serialize,
) -> Result<Option<Idempotency>, ApiError> {
    let Some(raw) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    idempotency_key(raw.to_str().ok(), scope, body).map(|i| Some(per_key(i, req)))
}

/// Each API key has idempotency keys of its own: another key cannot take
/// one first (or learn that it was used). A space never occurs in a
/// client's key, so the key's name after one cannot run into it.
fn per_key(mut idem: Idempotency, req: &HttpRequest) -> Idempotency {
    if let Some(name) = auth::caller(req).key {
        idem.key.push(' ');
        idem.key.push_str(&name);
    }
    idem
}

/// Checks a client's idempotency key and scopes it, with the request's hash.
fn idempotency_key(
    raw: Option<&str>,
    scope: &str,
    body: &impl Serialize,
) -> Result<Idempotency, ApiError> {
    let key = raw
        .filter(|k| !k.is_empty() && k.len() <= IDEMPOTENCY_KEY_LEN_MAX && k.bytes().all(|b| (0x21..0x7f).contains(&b)))
        .ok_or_else(|| {
            ApiError::new(ErrorCode::InvalidIdempotencyKey,
                format!("Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_LEN_MAX} visible ASCII characters"),
            )
        })?;
    let canonical = serde_json::to_vec(body)
        .map_err(|e| ApiError::new(ErrorCode::InvalidField, e.to_string()))?;
    let mut hasher = Sha256::new();
    hasher.update(scope.as_bytes());
    hasher.update([0]);
    hasher.update(&canonical);
    Ok(Idempotency {
        key: format!("{scope}:{key}"),
        request_hash: hasher.finalize().into(),
    })
}

/// 201 for a new resource; 200 with `Idempotent-Replayed: true` for a retry.
fn created(outcome: Outcome, body: impl Serialize) -> HttpResponse {
    match outcome {
        Outcome::Created => HttpResponse::Created().json(body),
        Outcome::Replayed => HttpResponse::Ok()
            .insert_header(("Idempotent-Replayed", "true"))
            .json(body),
    }
}

/// `created` with a body already rendered as JSON.
fn created_json(outcome: Outcome, json: Vec<u8>) -> HttpResponse {
    let mut res = match outcome {
        Outcome::Created => HttpResponse::Created(),
        Outcome::Replayed => {
            let mut r = HttpResponse::Ok();
            r.insert_header(("Idempotent-Replayed", "true"));
            r
        }
    };
    res.content_type(ContentType::json()).body(json)
}

/// 200 with a body already rendered as JSON.
fn ok_json(json: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(json)
}
