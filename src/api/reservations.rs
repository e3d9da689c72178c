use super::dto::{
    batch_json, reservation_bytes, BatchItemReply, BatchResponse, ExtendBody, ReserveBatchBody,
    ReserveBody,
};
use super::error::{ApiError, ErrorCode};
use super::openapi::ErrorBody;
use super::routes::Routes;
use super::{created_json, id, idempotency, idempotency_key, ok_json, per_key, qty, ttl, App};
use crate::actors::CmdError;
use crate::app::{Caller, Idempotency, Outcome, ReserveRequest};
use crate::config::Config;
use crate::core::{ChannelId, CustomerId, HoldId, SkuId};
use crate::projection::HoldRecord;
use crate::wire::ReservationView;
use actix_web::{web, HttpRequest, HttpResponse};

/// The static reservation routes; registered before every route with a
/// path parameter (see `api::configure`).
pub fn hot_routes(r: &mut Routes<'_>) {
    r.post("/reservations", create)
        .post("/reservations:batch", create_batch);
}

pub fn routes(r: &mut Routes<'_>) {
    r.get("/reservations/{id}", get)
        .delete("/reservations/{id}", release)
        .post("/reservations/{id}/extend", extend);
}

fn hold_id(raw: &str) -> Result<HoldId, ApiError> {
    HoldId::parse(raw).map_err(|_| {
        ApiError::new(
            ErrorCode::ReservationNotFound,
            format!("reservation {raw} not found"),
        )
    })
}

/// Holds stock for a while (a reservation).
#[utoipa::path(
    post,
    path = "/v1/reservations",
    operation_id = "reserve",
    tag = "reservations",
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Makes a retry safe: the same key and body answer the first answer again")),
    request_body = ReserveBody,
    responses(
        (status = 201, description = "Held", body = ReservationView),
        (status = 200, description = "A retry with the same Idempotency-Key: the first answer, with `Idempotent-Replayed: true`", body = ReservationView),
        (status = 404, description = "`sku_not_found`", body = ErrorBody),
        (status = 409, description = "`insufficient_stock`, `idempotency_key_in_flight`", body = ErrorBody),
        (status = 422, description = "`purchase_limit_exceeded`, `customer_required` (the SKU has a per-customer limit and no `customer_id` was given), `quantity_too_large`, `idempotency_key_reused`", body = ErrorBody),
        (status = 429, description = "`rate_limited` (the customer's or the key's rate limit; `Retry-After` says when to retry)", body = ErrorBody),
        (status = 503, description = "`overloaded` (the SKU's mailbox or the log's queue is full: retry), `storage_unavailable`", body = ErrorBody),
    )
)]
pub(super) async fn create(
    app: App,
    req: HttpRequest,
    body: web::Json<ReserveBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let idem = idempotency(&req, "reservations", &b)?;
    let mut request = reserve_request(app.config(), &b, idem)?;
    request.caller = super::auth::caller(&req);
    if let Some(c) = &request.customer {
        super::ratelimit::check_customer(&req, app.metrics(), c.as_str())?;
    }
    let (record, outcome) = app.reserve(request).await?;
    Ok(created_json(outcome, reservation_bytes(&record)))
}

pub(super) fn reserve_request(
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
        ship_to: b.ship_to.as_ref().map(super::orders::ship_to).transpose()?,
        idempotency,
        caller: Caller::anyone(),
    })
}

/// `POST /v1/reservations:batch`: every item is checked first (one bad item
/// refuses the whole batch, nothing applied); then each is decided on its
/// own and answered in order with the status it would have had alone. The
/// reply comes once every accepted item is durable.
/// Many reservations in one request: each answered in order with the status
/// it would have had alone. One invalid item refuses the whole batch.
#[utoipa::path(
    post,
    path = "/v1/reservations:batch",
    operation_id = "reserve_batch",
    tag = "reservations",
    request_body = ReserveBatchBody,
    responses(
        (status = 200, description = "One result per reservation, in order", body = BatchResponse),
        (status = 400, description = "An item is invalid (`index` names it)", body = ErrorBody),
        (status = 429, description = "`rate_limited` (the key's rate limit; an item over its customer's limit is answered 429 in `results`)", body = ErrorBody),
    )
)]
pub(super) async fn create_batch(
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
    let caller = super::auth::caller(&req);
    for (i, item) in items.into_iter().enumerate() {
        let (b, key) = item.split();
        let at = |e: ApiError| e.with("index", i);
        let idem = key
            .map(|k| idempotency_key(Some(&k), "reservations", &b).map(|i| per_key(i, &req)))
            .transpose()
            .map_err(at)?;
        let mut request = reserve_request(app.config(), &b, idem).map_err(at)?;
        request.caller = caller.clone();
        requests.push(request);
    }
    // An item over its customer's rate limit is answered 429 in its place
    // and not tried; the others go on.
    let mut limited: Vec<Option<ApiError>> = Vec::with_capacity(requests.len());
    let mut tried = Vec::with_capacity(requests.len());
    for r in requests {
        let refused = r
            .customer
            .as_ref()
            .and_then(|c| super::ratelimit::check_customer(&req, app.metrics(), c.as_str()).err());
        if refused.is_none() {
            tried.push(r);
        }
        limited.push(refused);
    }
    let mut answers = app.reserve_batch(tried).await?.into_iter();
    let results: Vec<Result<_, ApiError>> = limited
        .into_iter()
        .map(|refused| match refused {
            Some(e) => Err(e),
            None => answers
                .next()
                .unwrap_or(Err(CmdError::Unavailable))
                .map_err(ApiError::from),
        })
        .collect();
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

/// One reservation.
#[utoipa::path(
    get,
    path = "/v1/reservations/{id}",
    operation_id = "get_reservation",
    tag = "reservations",
    params(("id" = String, Path, description = "Reservation id (`res_N`)", pattern = r"^[A-Za-z0-9._:-]{1,64}$")),
    responses(
        (status = 200, description = "The reservation", body = ReservationView),
        (status = 404, description = "`reservation_not_found` (also one another `storefront` key created)", body = ErrorBody),
    )
)]
pub(super) async fn get(
    app: App,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = super::auth::caller(&req);
    let record = app.hold_seen_by(hold_id(&path)?, &caller).await?;
    Ok(ok_json(reservation_bytes(&record)))
}

/// Gives an active reservation a new time to live, from now.
#[utoipa::path(
    post,
    path = "/v1/reservations/{id}/extend",
    operation_id = "extend_reservation",
    tag = "reservations",
    params(("id" = String, Path, description = "Reservation id (`res_N`)", pattern = r"^[A-Za-z0-9._:-]{1,64}$")),
    request_body = ExtendBody,
    responses(
        (status = 200, description = "The reservation", body = ReservationView),
        (status = 404, description = "`reservation_not_found`", body = ErrorBody),
        (status = 409, description = "`reservation_not_active`, `reservation_in_use`", body = ErrorBody),
    )
)]
pub(super) async fn extend(
    app: App,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<ExtendBody>,
) -> Result<HttpResponse, ApiError> {
    let hold = hold_id(&path)?;
    let ttl_ms = ttl(app.config(), Some(body.ttl_ms))?;
    let record = app.extend(hold, ttl_ms, super::auth::caller(&req)).await?;
    Ok(ok_json(reservation_bytes(&record)))
}

/// Releases a reservation: its stock is available again.
#[utoipa::path(
    delete,
    path = "/v1/reservations/{id}",
    operation_id = "release_reservation",
    tag = "reservations",
    params(("id" = String, Path, description = "Reservation id (`res_N`)", pattern = r"^[A-Za-z0-9._:-]{1,64}$")),
    responses(
        (status = 200, description = "The released reservation", body = ReservationView),
        (status = 404, description = "`reservation_not_found`", body = ErrorBody),
        (status = 409, description = "`reservation_not_active`, `reservation_in_use`", body = ErrorBody),
    )
)]
pub(super) async fn release(
    app: App,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let record = app
        .release(hold_id(&path)?, super::auth::caller(&req))
        .await?;
    Ok(ok_json(reservation_bytes(&record)))
}
