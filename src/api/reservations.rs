use super::dto::{
    batch_json, reservation_bytes, BatchItemReply, ExtendBody, ReserveBatchBody, ReserveBody,
};
use super::error::{ApiError, ErrorCode};
use super::{created_json, id, idempotency, idempotency_key, ok_json, qty, ttl, App};
use crate::app::{Idempotency, Outcome, ReserveRequest};
use crate::config::Config;
use crate::core::{ChannelId, CustomerId, HoldId, SkuId};
use crate::projection::HoldRecord;
use actix_web::{web, HttpRequest, HttpResponse};

/// The static reservation routes; registered before every route with a
/// path parameter (see `api::configure`).
pub fn hot_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/reservations", web::post().to(create))
        .route("/reservations:batch", web::post().to(create_batch));
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/reservations/{id}", web::get().to(get))
        .route("/reservations/{id}", web::delete().to(release))
        .route("/reservations/{id}/extend", web::post().to(extend));
}

fn hold_id(raw: &str) -> Result<HoldId, ApiError> {
    HoldId::parse(raw).map_err(|_| {
        ApiError::new(
            ErrorCode::ReservationNotFound,
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
    let request = reserve_request(app.config(), &b, idem)?;
    let (record, outcome) = app.reserve(request).await?;
    Ok(created_json(outcome, reservation_bytes(&record)))
}

fn reserve_request(
    config: &Config,
    b: &ReserveBody,
    idempotency: Option<Idempotency>,
) -> Result<ReserveRequest, ApiError> {
    Ok(ReserveRequest {
        sku: id("sku", &b.sku, SkuId::parse)?,
        qty: qty(config, "qty", b.qty)?,
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
        ttl_ms: ttl(config, b.ttl_ms)?,
        idempotency,
    })
}

/// `POST /v1/reservations:batch`: every item is checked first (one bad item
/// refuses the whole batch, nothing applied); then each is decided on its
/// own and answered in order with the status it would have had alone. The
/// reply comes once every accepted item is durable.
async fn create_batch(
    app: App,
    req: HttpRequest,
    body: web::Json<ReserveBatchBody>,
) -> Result<HttpResponse, ApiError> {
    if req.headers().contains_key("idempotency-key") {
        return Err(ApiError::new(
            ErrorCode::InvalidIdempotencyKey,
            "a batch takes an idempotency_key per reservation, not an Idempotency-Key header",
        ));
    }
    let items = body.into_inner().reservations;
    let max = app.config().reservation_batch_max;
    if items.is_empty() || items.len() > max {
        return Err(ApiError::invalid(
            "reservations",
            format!("must hold from 1 to {max} reservations"),
        ));
    }
    let mut requests = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let (b, key) = item.split();
        let at = |e: ApiError| e.with("index", i);
        let idem = key
            .map(|k| idempotency_key(Some(&k), "reservations", &b))
            .transpose()
            .map_err(at)?;
        requests.push(reserve_request(app.config(), &b, idem).map_err(at)?);
    }
    let results = app.reserve_batch(requests).await?;
    // Each answer's status, and its error body (built once, borrowed below).
    let replies: Vec<(u16, Result<&HoldRecord, serde_json::Value>)> = results
        .iter()
        .map(|r| match r {
            Ok((record, Outcome::Created)) => {
                app.metrics().reservation_accepted(1);
                (201, Ok(record))
            }
            Ok((record, Outcome::Replayed)) => {
                app.metrics().reservation_accepted(1);
                (200, Ok(record))
            }
            Err(e) => {
                let e = ApiError::from(e.clone());
                app.metrics().reservation_refused(e.code);
                (e.status.as_u16(), Err(e.body()))
            }
        })
        .collect();
    let json = batch_json(replies.iter().map(|(status, r)| match r {
        Ok(record) => BatchItemReply::Reservation {
            status: *status,
            record,
        },
        Err(body) => BatchItemReply::Error {
            status: *status,
            body,
        },
    }));
    Ok(ok_json(json))
}

async fn get(app: App, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let record = app.hold(hold_id(&path)?).await?;
    Ok(ok_json(reservation_bytes(&record)))
}

async fn extend(
    app: App,
    path: web::Path<String>,
    body: web::Json<ExtendBody>,
) -> Result<HttpResponse, ApiError> {
    let hold = hold_id(&path)?;
    let ttl_ms = ttl(app.config(), Some(body.ttl_ms))?;
    let record = app.extend(hold, ttl_ms).await?;
    Ok(ok_json(reservation_bytes(&record)))
}

async fn release(app: App, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let record = app.release(hold_id(&path)?).await?;
    Ok(ok_json(reservation_bytes(&record)))
}
