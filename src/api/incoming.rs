//! Incoming stock: receipts (purchase orders, shipping notices) announced
//! to a SKU and received into a warehouse's `on_hand`.

use super::error::{ApiError, ErrorCode};
use super::openapi::ErrorBody;
use super::routes::Routes;
use super::{created_json, id, idempotency, qty, text, App};
use crate::app::{IncomingFilter, IncomingRequest};
use crate::core::sku::incoming::ReceiptId;
use crate::core::{SkuId, WarehouseId};
use crate::wire::{ReceiptPage, ReceiptView};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn routes(r: &mut Routes<'_>) {
    r.post("/stock/incoming", create)
        .get("/stock/incoming", list)
        .get("/stock/incoming/{id}", get)
        .post("/stock/incoming/{id}/receive", receive)
        .post("/stock/incoming/{id}/close", close);
}

/// `POST /v1/stock/incoming`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct IncomingBody {
    pub sku: String,
    pub warehouse: String,
    /// Units announced, 1 to `qty_max`.
    #[schema(minimum = 1)]
    pub qty: u64,
    /// When the goods are expected (ms since the epoch).
    pub expected_at: u64,
    /// The purchase order or shipping notice number (at most
    /// `text_len_max` bytes, not empty).
    pub reference: String,
}

/// `POST /v1/stock/incoming/{id}/receive`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct IncomingReceiveBody {
    /// Units arrived, 1 to `qty_max` and at most what the receipt still
    /// expects.
    #[schema(minimum = 1)]
    pub qty: u64,
}

/// `POST /v1/stock/incoming/{id}/close`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct IncomingCloseBody {
    /// Why no more units will come (the vendor shipped less, the order was
    /// cut): at most `text_len_max` bytes, not empty.
    pub reason: String,
}

crate::wire::object_only!(IncomingBody, serialize);
crate::wire::object_only!(IncomingCloseBody, serialize);
crate::wire::object_only!(IncomingReceiveBody, serialize);

/// `GET /v1/stock/incoming`: filters and paging.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IncomingListQuery {
    /// Only this SKU's receipts.
    pub sku: Option<String>,
    /// Only receipts into this warehouse.
    pub warehouse: Option<String>,
    /// A `next_cursor`: the receipts after it.
    pub after: Option<String>,
    /// Receipts per page, 1 to `incoming.page_max` (default that).
    #[param(value_type = Option<u64>, minimum = 1)]
    pub limit: Option<u64>,
}

fn receipt_id(raw: &str) -> Result<ReceiptId, ApiError> {
    ReceiptId::parse(raw).ok_or_else(|| {
        ApiError::new(
            ErrorCode::IncomingNotFound,
            format!("incoming receipt {raw} not found"),
        )
    })
}

/// Announces incoming stock of a SKU to a warehouse: counted in the row's
/// `incoming`, never in `available`, until received.
#[utoipa::path(
    post,
    path = "/v1/stock/incoming",
    operation_id = "create_incoming",
    tag = "incoming",
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Makes a retry safe: the same key and body answer the first answer again")),
    request_body = IncomingBody,
    responses(
        (status = 201, description = "The receipt, open", body = ReceiptView),
        (status = 200, description = "A retry with the same Idempotency-Key: the first answer, with `Idempotent-Replayed: true`", body = ReceiptView),
        (status = 400, description = "A field is invalid", body = ErrorBody),
        (status = 404, description = "`sku_not_found`, `warehouse_not_found`", body = ErrorBody),
        (status = 409, description = "`incoming_limit_reached`, `idempotency_key_in_flight`", body = ErrorBody),
        (status = 422, description = "`quantity_too_large` (received in full it would pass `on_hand_max`), `idempotency_key_reused`", body = ErrorBody),
        (status = 503, description = "`overloaded`, `storage_unavailable`", body = ErrorBody),
    )
)]
pub(super) async fn create(
    app: App,
    req: HttpRequest,
    body: web::Json<IncomingBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    super::auth::check_warehouse(&req, &b.warehouse)?;
    let idem = idempotency(&req, "stock/incoming", &b)?;
    text(app.config(), "reference", &b.reference)?;
    if b.reference.trim().is_empty() {
        return Err(ApiError::invalid("reference", "must not be empty"));
    }
    let request = IncomingRequest {
        sku: id("sku", &b.sku, SkuId::parse)?,
        warehouse: id("warehouse", &b.warehouse, WarehouseId::parse)?,
        qty: qty(app.config(), "qty", b.qty)?,
        expected_at: b.expected_at,
        reference: b.reference,
        idempotency: idem,
    };
    let (view, outcome) = app.create_incoming(request).await?;
    let json = serde_json::to_vec(&view)
        .map_err(|e| ApiError::new(ErrorCode::InternalError, e.to_string()))?;
    Ok(created_json(outcome, json))
}

/// Receives units of an open receipt into its warehouse's `on_hand`
/// (partial receipts allowed); the receipt closes once nothing more is
/// expected. More than it still expects is refused (`over_receipt`).
#[utoipa::path(
    post,
    path = "/v1/stock/incoming/{id}/receive",
    operation_id = "receive_incoming",
    tag = "incoming",
    params(
        ("id" = String, Path, description = "Receipt id, `<sku>~<n>`"),
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Makes a retry safe: the same key and body answer the receipt as it is now, and receive nothing more"),
    ),
    request_body = IncomingReceiveBody,
    responses(
        (status = 200, description = "The receipt after; for a retry with the same Idempotency-Key, the receipt as it is now, with `Idempotent-Replayed: true`", body = ReceiptView),
        (status = 400, description = "A field is invalid", body = ErrorBody),
        (status = 404, description = "`incoming_not_found`", body = ErrorBody),
        (status = 409, description = "`incoming_closed`, `over_receipt` (with `outstanding`), `idempotency_key_in_flight`", body = ErrorBody),
        (status = 422, description = "`quantity_too_large` (the row would pass `on_hand_max`), `idempotency_key_reused`", body = ErrorBody),
        (status = 503, description = "`overloaded`, `storage_unavailable`", body = ErrorBody),
    )
)]
pub(super) async fn receive(
    app: App,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<IncomingReceiveBody>,
) -> Result<HttpResponse, ApiError> {
    let rid = receipt_id(&path)?;
    // Scoped like the lifecycle routes: the hash covers the path (which
    // receipt) and the body.
    let idem = super::lifecycle::key(&req, &*body)?;
    let n = qty(app.config(), "qty", body.qty)?;
    if super::auth::warehouse_limit(&req).is_some() {
        // A `warehouse:<id>` key receives into its own warehouse only.
        let r = app.incoming_receipt(&rid).await?;
        super::auth::check_warehouse(&req, &r.warehouse)?;
    }
    let (view, outcome) = app.receive_incoming(rid, n, idem).await?;
    Ok(super::lifecycle::marked(
        outcome,
        HttpResponse::Ok().json(view),
    ))
}

/// Closes an open receipt short: the sender ships no more, so what it
/// still expects leaves the row's `incoming` (`short` on the receipt
/// says how many). What was received stays. A closed receipt takes no
/// more units (`incoming_closed`).
#[utoipa::path(
    post,
    path = "/v1/stock/incoming/{id}/close",
    operation_id = "close_incoming",
    tag = "incoming",
    params(
        ("id" = String, Path, description = "Receipt id, `<sku>~<n>`"),
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Makes a retry safe: the same key and body answer the receipt as it is now"),
    ),
    request_body = IncomingCloseBody,
    responses(
        (status = 200, description = "The receipt, closed; for a retry with the same Idempotency-Key, the receipt as it is now, with `Idempotent-Replayed: true`", body = ReceiptView),
        (status = 400, description = "A field is invalid", body = ErrorBody),
        (status = 404, description = "`incoming_not_found`", body = ErrorBody),
        (status = 409, description = "`incoming_closed`, `idempotency_key_in_flight`", body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`", body = ErrorBody),
        (status = 503, description = "`overloaded`, `storage_unavailable`", body = ErrorBody),
    )
)]
pub(super) async fn close(
    app: App,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<IncomingCloseBody>,
) -> Result<HttpResponse, ApiError> {
    let rid = receipt_id(&path)?;
    let idem = super::lifecycle::key(&req, &*body)?;
    let reason = body.into_inner().reason;
    if reason.trim().is_empty() {
        return Err(ApiError::invalid("reason", "must not be empty"));
    }
    text(app.config(), "reason", &reason)?;
    if super::auth::warehouse_limit(&req).is_some() {
        // A `warehouse:<id>` key closes its own warehouse's receipts only.
        let r = app.incoming_receipt(&rid).await?;
        super::auth::check_warehouse(&req, &r.warehouse)?;
    }
    let (view, outcome) = app.close_incoming(rid, reason, idem).await?;
    Ok(super::lifecycle::marked(
        outcome,
        HttpResponse::Ok().json(view),
    ))
}

/// One receipt, open or closed (a SKU remembers its latest
/// `incoming.closed_kept_max` closed ones).
#[utoipa::path(
    get,
    path = "/v1/stock/incoming/{id}",
    operation_id = "get_incoming",
    tag = "incoming",
    params(("id" = String, Path, description = "Receipt id, `<sku>~<n>`")),
    responses(
        (status = 200, description = "The receipt", body = ReceiptView),
        (status = 404, description = "`incoming_not_found`", body = ErrorBody),
    )
)]
pub(super) async fn get(app: App, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let rid = receipt_id(&path)?;
    Ok(HttpResponse::Ok().json(app.incoming_receipt(&rid).await?))
}

/// Receipts, open and remembered closed ones, by SKU then number.
#[utoipa::path(
    get,
    path = "/v1/stock/incoming",
    operation_id = "list_incoming",
    tag = "incoming",
    params(IncomingListQuery),
    responses(
        (status = 200, description = "A page of receipts", body = ReceiptPage),
        (status = 400, description = "A parameter is invalid", body = ErrorBody),
        (status = 404, description = "`sku_not_found`", body = ErrorBody),
    )
)]
pub(super) async fn list(
    app: App,
    query: web::Query<IncomingListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let page_max = app.config().incoming.page_max;
    let limit = match q.limit {
        None => page_max,
        Some(n) if n >= 1 && n <= page_max as u64 => n as usize,
        Some(_) => {
            return Err(ApiError::invalid(
                "limit",
                format!("must be 1 to {page_max}"),
            ))
        }
    };
    let filter = IncomingFilter {
        sku: q
            .sku
            .as_deref()
            .map(|s| id("sku", s, SkuId::parse))
            .transpose()?,
        warehouse: q
            .warehouse
            .as_deref()
            .map(|w| id("warehouse", w, WarehouseId::parse))
            .transpose()?,
        after: q
            .after
            .as_deref()
            .map(|a| {
                ReceiptId::parse(a).ok_or_else(|| ApiError::invalid("after", "not a receipt id"))
            })
            .transpose()?,
        limit,
    };
    Ok(HttpResponse::Ok().json(app.incoming_page(filter).await?))
}
