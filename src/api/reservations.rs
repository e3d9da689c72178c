use super::dto::{ExtendBody, ReservationView, ReserveBody};
use super::error::ApiError;
use super::{created, id, idempotency, qty, ttl, App};
use crate::app::ReserveRequest;
use crate::core::{ChannelId, CustomerId, HoldId, SkuId};
use actix_web::{web, HttpRequest, HttpResponse};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/reservations", web::post().to(create))
        .route("/reservations/{id}", web::get().to(get))
        .route("/reservations/{id}", web::delete().to(release))
        .route("/reservations/{id}/extend", web::post().to(extend));
}

fn hold_id(raw: &str) -> Result<HoldId, ApiError> {
    HoldId::parse(raw).map_err(|_| {
        ApiError::not_found(
            "reservation_not_found",
            format!("reservation {raw} not found"),
        )
    })
}

async fn create(
    app: App,
    req: HttpRequest,
    body: web::Json<ReserveBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let idem = idempotency(&req, "reservations", &b)?;
    let request = ReserveRequest {
        sku: id("sku", &b.sku, SkuId::parse)?,
        qty: qty(&app.config, "qty", b.qty)?,
        customer: b
            .customer_id
            .as_deref()
            .map(|c| id("customer_id", c, CustomerId::parse))
            .transpose()?,
        channel: b
            .channel
            .as_deref()
            .map(|c| id("channel", c, ChannelId::parse))
            .transpose()?,
        ttl_ms: ttl(&app.config, b.ttl_ms)?,
        idempotency: idem,
    };
    let (record, outcome) = app.reserve(request).await?;
    Ok(created(outcome, ReservationView::from(&record)))
}

async fn get(app: App, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let record = app.hold(hold_id(&path)?)?;
    Ok(HttpResponse::Ok().json(ReservationView::from(&record)))
}

async fn extend(
    app: App,
    path: web::Path<String>,
    body: web::Json<ExtendBody>,
) -> Result<HttpResponse, ApiError> {
    let hold = hold_id(&path)?;
    let ttl_ms = ttl(&app.config, Some(body.ttl_ms))?;
    let record = app.extend(hold, ttl_ms).await?;
    Ok(HttpResponse::Ok().json(ReservationView::from(&record)))
}

async fn release(app: App, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let record = app.release(hold_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(ReservationView::from(&record)))
}
