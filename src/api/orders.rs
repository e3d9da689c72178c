use super::dto::{CancelBody, OrderBody, OrderListQuery, RerouteBody};
use super::error::{ApiError, ErrorCode};
use super::openapi::ErrorBody;
use super::routes::Routes;
use super::{created, id, idempotency, qty, text, App};
use crate::app::{Idempotency, OrderFilter, OrderRequest, RerouteRequest};
use crate::config::Config;
use crate::core::{
    lifecycle, ChannelId, CustomerId, HoldId, Location, OrderId, OrderLine, ShipTo, SkuId,
    WarehouseId,
};
use crate::wire::{OrderPageView, OrderView, ShipToView};
use actix_web::{web, HttpRequest, HttpResponse};

pub fn routes(r: &mut Routes<'_>) {
    r.post("/orders", create)
        .get("/orders", list)
        .get("/orders/{id}", get)
        .post("/orders/{id}/cancel", cancel)
        .post("/orders/{id}/reroute", reroute);
}

pub(super) fn order_id(raw: &str) -> Result<OrderId, ApiError> {
    OrderId::parse(raw)
        .map_err(|_| ApiError::new(ErrorCode::OrderNotFound, format!("order {raw} not found")))
}

/// Places an order: each line uses its reservation, or stock directly, and
/// the order is routed to warehouses.
#[utoipa::path(
    post,
    path = "/v1/orders",
    operation_id = "place_order",
    tag = "orders",
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Makes a retry safe: the same key and body answer the first answer again")),
    request_body = OrderBody,
    responses(
        (status = 201, description = "Placed", body = OrderView),
        (status = 200, description = "A retry with the same Idempotency-Key: the first answer, with `Idempotent-Replayed: true`", body = OrderView),
        (status = 409, description = "`insufficient_stock`, `reservation_not_active`, `reservation_in_use`, `idempotency_key_in_flight`", body = ErrorBody),
        (status = 422, description = "`reservation_mismatch`, `reservation_not_found`, `purchase_limit_exceeded`, `idempotency_key_reused`", body = ErrorBody),
        (status = 429, description = "`rate_limited` (the customer's or the key's rate limit; `Retry-After` says when to retry)", body = ErrorBody),
        (status = 503, description = "`overloaded` (a SKU's mailbox or the log's queue is full: retry), `storage_unavailable`", body = ErrorBody),
    )
)]
pub(super) async fn create(
    app: App,
    req: HttpRequest,
    body: web::Json<OrderBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let idem = idempotency(&req, "orders", &b)?;
    let mut request = order_request(app.config(), &b, idem)?;
    request.caller = super::auth::caller(&req);
    super::ratelimit::check_customer(&req, app.metrics(), request.customer.as_str())?;
    let (order, outcome) = app.place_order(request).await?;
    Ok(created(outcome, OrderView::from(&order)))
}

/// Checks an order's body and turns it into the request the app takes.
pub(super) fn order_request(
    config: &Config,
    b: &OrderBody,
    idem: Option<Idempotency>,
) -> Result<OrderRequest, ApiError> {
    if b.lines.is_empty() || b.lines.len() > config.order_lines_max {
        return Err(ApiError::invalid(
            "lines",
            format!("an order has 1 to {} lines", config.order_lines_max),
        ));
    }
    let ship_to = ship_to(&b.ship_to)?;
    let mut lines = Vec::with_capacity(b.lines.len());
    for (i, l) in b.lines.iter().enumerate() {
        lines.push(OrderLine {
            sku: id(&format!("lines[{i}].sku"), &l.sku, SkuId::parse)?,
            qty: qty(config, &format!("lines[{i}].qty"), l.qty)?,
            reservation: l
                .reservation_id
                .as_deref()
                .map(|r| id(&format!("lines[{i}].reservation_id"), r, HoldId::parse))
                .transpose()?,
            unit_price: l.unit_price,
        });
    }
    let currency = b
        .currency
        .as_deref()
        .map(|c| lifecycle::Currency::parse(c).map_err(|e| ApiError::invalid("currency", e)))
        .transpose()?;
    check_prices(&lines, currency)?;
    Ok(OrderRequest {
        channel: id("channel", &b.channel, ChannelId::parse)?,
        customer: id("customer_id", &b.customer_id, CustomerId::parse)?,
        ship_to,
        lines,
        currency,
        idempotency: idem,
        caller: Default::default(),
    })
}

/// Prices come with a currency, one SKU has one price, and the order's
/// total fits in 64 bits (so every later total does).
fn check_prices(
    lines: &[OrderLine],
    currency: Option<lifecycle::Currency>,
) -> Result<(), ApiError> {
    let priced = lines.iter().any(|l| l.unit_price.is_some());
    if priced && currency.is_none() {
        return Err(ApiError::invalid(
            "currency",
            "required when a line has a unit_price",
        ));
    }
    for (i, l) in lines.iter().enumerate() {
        let other = lines[..i]
            .iter()
            .find(|o| o.sku == l.sku && o.unit_price != l.unit_price);
        if other.is_some() {
            return Err(ApiError::invalid(
                &format!("lines[{i}].unit_price"),
                format!("sku {} is on another line at another price", l.sku),
            ));
        }
    }
    let value: Vec<(u64, Option<u64>)> = lines.iter().map(|l| (l.qty, l.unit_price)).collect();
    lifecycle::life::check_value(&value).map_err(|e| {
        ApiError::new(
            ErrorCode::AmountOverflow,
            format!("the order's total overflows: {e}"),
        )
    })?;
    Ok(())
}

/// Checks a destination (an order's, a hold's): coordinates in range, the
/// country an ISO 3166-1 alpha-2 code.
pub(super) fn ship_to(b: &ShipToView) -> Result<ShipTo, ApiError> {
    let location = Location {
        lat: b.lat,
        lon: b.lon,
    };
    if !location.is_valid() {
        return Err(ApiError::invalid(
            "ship_to",
            "lat must be in [-90, 90] and lon in [-180, 180]",
        ));
    }
    if let Some(c) = &b.country {
        if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(ApiError::invalid(
                "ship_to.country",
                "must be an ISO 3166-1 alpha-2 code such as \"DE\"",
            ));
        }
    }
    Ok(ShipTo {
        location,
        country: b.country.clone(),
    })
}

/// Orders by id, newest first, filtered and paged: pass each page's
/// `next_cursor` as `cursor` to get the next one. Paging is stable while
/// orders come in: no order is in two pages, every order acknowledged
/// before the first page is in one, and one placed meanwhile is in one at
/// most. A `storefront` key limited to its own sees only the orders it
/// placed.
#[utoipa::path(
    get,
    path = "/v1/orders",
    operation_id = "list_orders",
    tag = "orders",
    params(OrderListQuery),
    responses(
        (status = 200, description = "One page of orders", body = OrderPageView),
        (status = 400, description = "`invalid_field` (with `field`): a bad filter, `limit` out of range, or a cursor this server did not give", body = ErrorBody),
    )
)]
pub(super) async fn list(
    app: App,
    req: HttpRequest,
    query: web::Query<OrderListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let config = app.config();
    let limit = match number("limit", q.limit.as_deref())? {
        None => config.orders_page_default,
        Some(n) if n >= 1 && n <= config.orders_page_max as u64 => n as usize,
        Some(_) => {
            return Err(ApiError::invalid(
                "limit",
                format!("must be 1 to {}", config.orders_page_max),
            ))
        }
    };
    let created_after = number("created_after", q.created_after.as_deref())?;
    let created_before = number("created_before", q.created_before.as_deref())?;
    if let (Some(a), Some(b)) = (created_after, created_before) {
        if b <= a {
            return Err(ApiError::invalid(
                "created_before",
                "must be after created_after",
            ));
        }
    }
    let filter = OrderFilter {
        status: q.status.as_deref().map(order_status).transpose()?,
        payment_status: q
            .payment_status
            .as_deref()
            .map(payment_status)
            .transpose()?,
        channel: q
            .channel
            .as_deref()
            .map(|c| id("channel", c, ChannelId::parse))
            .transpose()?,
        customer: q
            .customer_id
            .as_deref()
            .map(|c| id("customer_id", c, CustomerId::parse))
            .transpose()?,
        warehouse: q
            .warehouse
            .as_deref()
            .map(|w| id("warehouse", w, WarehouseId::parse))
            .transpose()?,
        created_after,
        created_before,
    };
    let from = q.cursor.as_deref().map(read_cursor).transpose()?;
    let caller = super::auth::caller(&req);
    let page = app.orders_page(&filter, &caller, from, limit).await?;
    Ok(HttpResponse::Ok().json(OrderPageView {
        orders: page.orders.iter().map(OrderView::from).collect(),
        next_cursor: page.next.map(write_cursor),
    }))
}

/// A whole number in a query, named by its parameter when it is not one.
pub(super) fn number(field: &str, raw: Option<&str>) -> Result<Option<u64>, ApiError> {
    raw.map(|r| {
        r.parse::<u64>()
            .ok()
            .filter(|_| r.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| ApiError::invalid(field, "must be a whole number"))
    })
    .transpose()
}

fn order_status(s: &str) -> Result<lifecycle::OrderStatus, ApiError> {
    lifecycle::OrderStatus::parse(s).map_err(|_| {
        let names: Vec<&str> = lifecycle::OrderStatus::ALL
            .iter()
            .map(|s| s.as_str())
            .collect();
        ApiError::invalid("status", format!("must be one of {}", names.join(", ")))
    })
}

fn payment_status(s: &str) -> Result<lifecycle::PaymentStatus, ApiError> {
    lifecycle::PaymentStatus::parse(s).map_err(|_| {
        let names: Vec<&str> = lifecycle::PaymentStatus::ALL
            .iter()
            .map(|s| s.as_str())
            .collect();
        ApiError::invalid(
            "payment_status",
            format!("must be one of {}", names.join(", ")),
        )
    })
}

/// A page's cursor: where the next page starts, as text clients pass back
/// without reading it.
fn write_cursor(from: OrderId) -> String {
    format!("o{:x}", from.0)
}

/// A cursor has one spelling: the one `write_cursor` gives.
fn read_cursor(c: &str) -> Result<OrderId, ApiError> {
    c.strip_prefix('o')
        .filter(|hex| hex.len() <= 16)
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .filter(|&id| id >= 1 && write_cursor(OrderId(id)) == c)
        .map(OrderId)
        .ok_or_else(|| ApiError::invalid("cursor", "not a cursor this server gave"))
}

/// One order.
#[utoipa::path(
    get,
    path = "/v1/orders/{id}",
    operation_id = "get_order",
    tag = "orders",
    params(("id" = String, Path, description = "Order id (`ord_N`)", pattern = r"^[A-Za-z0-9._:-]{1,64}$")),
    responses(
        (status = 200, description = "The order", body = OrderView),
        (status = 404, description = "`order_not_found` (also one another `storefront` key placed)", body = ErrorBody),
    )
)]
pub(super) async fn get(
    app: App,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = super::auth::caller(&req);
    let order = app.order_seen_by(order_id(&path)?, &caller).await?;
    Ok(HttpResponse::Ok().json(OrderView::from(&order)))
}

/// Cancels an order, or some of its units (`lines`): only what has not
/// shipped; exactly the cancelled units are available again. A cancelled
/// captured amount shows as `refund_due` in the order's totals. The body
/// is optional; when present it must be a valid `CancelBody`.
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/cancel",
    operation_id = "cancel_order",
    tag = "orders",
    params(("id" = String, Path, description = "Order id (`ord_N`)", pattern = r"^[A-Za-z0-9._:-]{1,64}$")),
    request_body(content = CancelBody, description = "Optional: why", content_type = "application/json"),
    responses(
        (status = 200, description = "The cancelled order", body = OrderView),
        (status = 404, description = "`order_not_found`", body = ErrorBody),
        (status = 400, description = "`invalid_field` (a SKU not in the order, given twice), `malformed_json`", body = ErrorBody),
        (status = 409, description = "`invalid_transition` (with `status`: shipped, delivered, cancelled, returned), `quantity_unavailable` (with `sku`, `max`), `order_busy` (being placed or re-routed: retry)", body = ErrorBody),
    )
)]
pub(super) async fn cancel(
    app: App,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = order_id(&path)?;
    let body: CancelBody = if body.iter().all(u8::is_ascii_whitespace) {
        CancelBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            let code = if e.is_data() {
                ErrorCode::InvalidField
            } else {
                ErrorCode::MalformedJson
            };
            ApiError::new(code, e.to_string())
        })?
    };
    let idem = super::lifecycle::key(&req, &body)?;
    let reason = body.reason.unwrap_or_else(|| "cancelled".into());
    text(app.config(), "reason", &reason)?;
    let caller = super::auth::caller(&req);
    let a = match body.lines {
        None => app.cancel_order(id, reason, caller, idem).await?,
        Some(lines) => {
            let lines = super::lifecycle::qty_lines(app.config(), "lines", &lines)?;
            let cmd = lifecycle::LifeCmd::Cancel {
                lines: Some(lines),
                reason,
            };
            app.order_command(id, cmd, caller, idem).await?
        }
    };
    Ok(super::lifecycle::marked(
        a.outcome,
        HttpResponse::Ok().json(OrderView::from(&a.order)),
    ))
}

/// Moves the order's allocation to the next best plan that leaves out the
/// `exclude`d warehouses, atomically: the old allocation is released only
/// once the new one is taken. Answers the order (with its new shipments
/// and routing trace); when the best plan is the one it has, nothing
/// changes.
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/reroute",
    operation_id = "reroute_order",
    tag = "orders",
    params(("id" = String, Path, description = "Order id (`ord_N`)", pattern = r"^[A-Za-z0-9._:-]{1,64}$")),
    request_body(content = RerouteBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The order, re-routed", body = OrderView),
        (status = 404, description = "`order_not_found`, `warehouse_not_found` (an excluded one)", body = ErrorBody),
        (status = 409, description = "`order_not_reroutable` (with `status`: the order's status, or `placing` / `rerouting` while it is being placed or re-routed); `insufficient_stock` (with `lines`): no plan without those warehouses places the order, which stays as it was", body = ErrorBody),
        (status = 503, description = "`overloaded`, `unavailable`, `storage_unavailable`", body = ErrorBody),
        (status = 400, description = "`invalid_field`, `malformed_json`", body = ErrorBody),
    )
)]
pub(super) async fn reroute(
    app: App,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<RerouteBody>,
) -> Result<HttpResponse, ApiError> {
    let order = order_id(&path)?;
    let body = body.into_inner();
    let max = app.config().warehouses_max;
    if body.exclude.len() > max {
        return Err(ApiError::invalid(
            "exclude",
            format!("more than {max} warehouses (warehouses_max)"),
        ));
    }
    let exclude = body
        .exclude
        .iter()
        .enumerate()
        .map(|(i, w)| id(&format!("exclude[{i}]"), w, WarehouseId::parse))
        .collect::<Result<Vec<_>, _>>()?;
    let reason = body.reason.unwrap_or_else(|| "rerouted".into());
    text(app.config(), "reason", &reason)?;
    let order = app
        .reroute_order(RerouteRequest {
            order,
            exclude,
            reason,
            caller: super::auth::caller(&req),
        })
        .await?;
    Ok(HttpResponse::Ok().json(OrderView::from(&order)))
}
