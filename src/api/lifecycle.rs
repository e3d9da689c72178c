//! The order lifecycle over HTTP: payments, holds, fulfilments (a
//! warehouse's or 3PL's work list and its steps), returns. Each command is
//! checked here for shape, then decided by the order's actor against the
//! transition table (`core::lifecycle`); an illegal one is 409
//! `invalid_transition` with the current status.

use super::dto::{
    FulfillmentListQuery, HoldBody, PaymentBody, QtyLine, ReceiveBody, RejectBody, ReturnBody,
    ShipBody,
};
use super::error::{ApiError, ErrorCode};
use super::openapi::ErrorBody;
use super::orders::{number, order_id};
use super::routes::Routes;
use super::{id, qty, text, App};
use crate::actors::CmdError;
use crate::app::{Idempotency, LifeAnswer, Outcome};
use crate::config::Config;
use crate::core::lifecycle::{
    Command, Currency, FulfillmentId, FulfillmentStatus, HoldReason, LifeCmd, LifeRefusal,
    LifeTarget, PaymentCmd, PaymentKind, PaymentReference, ReturnId,
};
use crate::core::{Order, OrderId, SkuId, WarehouseId};
use crate::wire::{FulfillmentPageView, FulfillmentView, OrderView, ReturnView};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::de::DeserializeOwned;

pub fn routes(r: &mut Routes<'_>) {
    r.post("/orders/{id}/payments", payment)
        .post("/orders/{id}/hold", hold)
        .post("/orders/{id}/release", release)
        .post("/orders/{id}/returns", request_return)
        .get("/fulfillments/{id}", get_fulfillment)
        .post("/fulfillments/{id}/accept", accept)
        .post("/fulfillments/{id}/pick", pick)
        .post("/fulfillments/{id}/pack", pack)
        .post("/fulfillments/{id}/ship", ship)
        .post("/fulfillments/{id}/deliver", deliver)
        .post("/fulfillments/{id}/reject", reject)
        .get("/warehouses/{id}/fulfillments", warehouse_fulfillments)
        .get("/returns/{id}", get_return)
        .post("/returns/{id}/receive", receive)
        .post("/returns/{id}/close", close_return)
        .post("/returns/{id}/decline", decline_return);
}

fn fulfillment_id(raw: &str) -> Result<FulfillmentId, ApiError> {
    FulfillmentId::parse(raw).map_err(|_| {
        ApiError::new(
            ErrorCode::FulfillmentNotFound,
            format!("fulfillment {raw} not found"),
        )
    })
}

fn return_id(raw: &str) -> Result<ReturnId, ApiError> {
    ReturnId::parse(raw)
        .map_err(|_| ApiError::new(ErrorCode::ReturnNotFound, format!("return {raw} not found")))
}

/// A body that may be left out (or be whitespace): its default then.
fn optional_body<T: DeserializeOwned + Default>(body: &web::Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        let code = if e.is_data() {
            ErrorCode::InvalidField
        } else {
            ErrorCode::MalformedJson
        };
        ApiError::new(code, e.to_string())
    })
}

/// Lines of units by SKU: each SKU valid, each quantity within `qty_max`,
/// at most `order_lines_max` of them. (Whether the order has those units
/// is the lifecycle's to say.)
pub(super) fn qty_lines(
    config: &Config,
    field: &str,
    lines: &[QtyLine],
) -> Result<Vec<(SkuId, u64)>, ApiError> {
    if lines.is_empty() || lines.len() > config.order_lines_max {
        return Err(ApiError::invalid(
            field,
            format!("1 to {} lines", config.order_lines_max),
        ));
    }
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            Ok((
                id(&format!("{field}[{i}].sku"), &l.sku, SkuId::parse)?,
                qty(config, &format!("{field}[{i}].qty"), l.qty)?,
            ))
        })
        .collect()
}

/// Runs `cmd` on `order` with the request's `Idempotency-Key`, if any.
async fn run(
    app: &App,
    req: &HttpRequest,
    order: OrderId,
    cmd: LifeCmd,
    idem: Option<Idempotency>,
) -> Result<LifeAnswer, ApiError> {
    // A fulfilment or return of an order that does not exist is not
    // found as what the path names.
    let named = cmd.target(None);
    app.order_command(order, cmd, super::auth::caller(req), idem)
        .await
        .map_err(|e| match (e, named) {
            (CmdError::UnknownOrder(_), LifeTarget::Fulfillment(f)) => {
                CmdError::Life(LifeRefusal::UnknownFulfillment(f)).into()
            }
            (CmdError::UnknownOrder(_), LifeTarget::Return(r)) => {
                CmdError::Life(LifeRefusal::UnknownReturn(r)).into()
            }
            (e, _) => e.into(),
        })
}

/// The request's `Idempotency-Key`, scoped to its route; its hash covers
/// the path (which order, fulfilment or return) and the body.
pub(super) fn key(
    req: &HttpRequest,
    body: &impl serde::Serialize,
) -> Result<Option<Idempotency>, ApiError> {
    let scope = req.match_pattern().unwrap_or_else(|| req.path().to_owned());
    super::idempotency(req, &scope, &(req.path(), body))
}

/// `res`, marked `Idempotent-Replayed: true` when it answers a retry.
pub(super) fn marked(outcome: Outcome, mut res: HttpResponse) -> HttpResponse {
    if outcome == Outcome::Replayed {
        res.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("idempotent-replayed"),
            actix_web::http::header::HeaderValue::from_static("true"),
        );
    }
    res
}

/// A body of a command that takes no fields: none, whitespace or `{}`.
#[derive(Debug, Default, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct NoFields {}

/// The fulfilment `raw` names, after a `warehouse:<id>` key is checked
/// against its warehouse.
async fn fulfillment_for(
    app: &App,
    req: &HttpRequest,
    raw: &str,
) -> Result<FulfillmentId, ApiError> {
    let id = fulfillment_id(raw)?;
    if super::auth::warehouse_limit(req).is_some() {
        let (_, f) = app
            .fulfillment_seen_by(id, &super::auth::caller(req))
            .await?;
        super::auth::check_warehouse(req, f.warehouse.as_str())?;
    }
    Ok(id)
}

fn fulfillment_view(order: &Order, id: FulfillmentId) -> Result<HttpResponse, ApiError> {
    let f = order
        .life
        .fulfillments
        .iter()
        .find(|f| f.id == id)
        .ok_or_else(|| ApiError::new(ErrorCode::FulfillmentNotFound, "fulfillment not found"))?;
    Ok(HttpResponse::Ok().json(FulfillmentView::from(f)))
}

fn return_view(order: &Order, id: ReturnId) -> Result<ReturnView, ApiError> {
    order
        .life
        .returns
        .iter()
        .find(|r| r.id == id)
        .map(ReturnView::from)
        .ok_or_else(|| ApiError::new(ErrorCode::ReturnNotFound, "return not found"))
}

/// Records a payment operation on the order: `authorize`, `capture`,
/// `void`, `fail` or `refund`. The `reference` makes it idempotent: the
/// same reference with the same kind and amount is one effect (answered
/// again with the order as it is); with another kind or amount it is
/// refused. Capture at most what is authorized, refund at most what is
/// captured, void only the whole open authorization and only before any
/// capture.
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/payments",
    operation_id = "order_payment",
    tag = "lifecycle",
    params(("id" = String, Path, description = "Order id (`ord_N`)", pattern = r"^[A-Za-z0-9._:-]{1,64}$")),
    request_body = PaymentBody,
    responses(
        (status = 200, description = "The order with its payment applied", body = OrderView),
        (status = 400, description = "`invalid_field` (an unknown `kind`, an empty `reference`, a zero `amount`), `malformed_json`", body = ErrorBody),
        (status = 404, description = "`order_not_found`", body = ErrorBody),
        (status = 409, description = "`invalid_transition` (with `status`), `payment_refused` (with `max`, `open`, `captured` or `payment_status`)", body = ErrorBody),
        (status = 422, description = "`currency_mismatch`, `amount_overflow`", body = ErrorBody),
    )
)]
pub(super) async fn payment(
    app: App,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<PaymentBody>,
) -> Result<HttpResponse, ApiError> {
    let id = order_id(&path)?;
    let b = body.into_inner();
    let idem = key(&req, &b)?;
    let kind = match PaymentKind::parse(&b.kind) {
        Ok(PaymentKind::Expire) | Err(_) => {
            return Err(ApiError::invalid(
                "kind",
                "must be authorize, capture, void, fail or refund",
            ))
        }
        Ok(k) => k,
    };
    let reference =
        PaymentReference::parse(&b.reference).map_err(|e| ApiError::invalid("reference", e))?;
    if b.amount == 0 {
        return Err(ApiError::invalid("amount", "must be above zero"));
    }
    if let Some(c) = &b.currency {
        let c = Currency::parse(c).map_err(|e| ApiError::invalid("currency", e))?;
        let order = app.order_seen_by(id, &super::auth::caller(&req)).await?;
        if order.life.currency != Some(c) {
            let theirs = order
                .life
                .currency
                .map_or("none (the order is unpriced)".to_owned(), |c| c.to_string());
            return Err(ApiError::new(
                ErrorCode::CurrencyMismatch,
                format!("the order's currency is {theirs}, not {c}"),
            ));
        }
    }
    let cmd = LifeCmd::Payment(PaymentCmd {
        kind,
        amount: b.amount,
        reference,
        at: app.now(),
    });
    let a = run(&app, &req, id, cmd, idem).await?;
    Ok(marked(
        a.outcome,
        HttpResponse::Ok().json(OrderView::from(&a.order)),
    ))
}

/// Puts the order on hold (fraud review, address check): no fulfilment
/// step is taken until it is released.
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/hold",
    operation_id = "hold_order",
    tag = "lifecycle",
    params(("id" = String, Path, description = "Order id (`ord_N`)", pattern = r"^[A-Za-z0-9._:-]{1,64}$")),
    request_body = HoldBody,
    responses(
        (status = 200, description = "The order, on hold", body = OrderView),
        (status = 400, description = "`invalid_field`, `malformed_json`", body = ErrorBody),
        (status = 404, description = "`order_not_found`", body = ErrorBody),
        (status = 409, description = "`invalid_transition` (with `status`)", body = ErrorBody),
    )
)]
pub(super) async fn hold(
    app: App,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<HoldBody>,
) -> Result<HttpResponse, ApiError> {
    let id = order_id(&path)?;
    let idem = key(&req, &body.0)?;
    let reason = HoldReason::parse(&body.reason).map_err(|e| ApiError::invalid("reason", e))?;
    let a = run(&app, &req, id, LifeCmd::Hold(reason), idem).await?;
    Ok(marked(
        a.outcome,
        HttpResponse::Ok().json(OrderView::from(&a.order)),
    ))
}

/// Releases the order's hold.
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/release",
    operation_id = "release_order",
    tag = "lifecycle",
    params(("id" = String, Path, description = "Order id (`ord_N`)", pattern = r"^[A-Za-z0-9._:-]{1,64}$")),
    responses(
        (status = 200, description = "The order, released", body = OrderView),
        (status = 404, description = "`order_not_found`", body = ErrorBody),
        (status = 409, description = "`invalid_transition` (with `status`: it is not on hold)", body = ErrorBody),
    )
)]
pub(super) async fn release(
    app: App,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = order_id(&path)?;
    let b: NoFields = optional_body(&body)?;
    let idem = key(&req, &b)?;
    let a = run(&app, &req, id, LifeCmd::Release, idem).await?;
    Ok(marked(
        a.outcome,
        HttpResponse::Ok().json(OrderView::from(&a.order)),
    ))
}

/// Asks some shipped units back: 201 with the return, `requested`. Nobody
/// can ask back more than shipped, less what came back or is asked back
/// already.
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/returns",
    operation_id = "request_return",
    tag = "lifecycle",
    params(("id" = String, Path, description = "Order id (`ord_N`)", pattern = r"^[A-Za-z0-9._:-]{1,64}$")),
    request_body = ReturnBody,
    responses(
        (status = 201, description = "The return", body = ReturnView),
        (status = 400, description = "`invalid_field` (a SKU not in the order, given twice), `malformed_json`", body = ErrorBody),
        (status = 404, description = "`order_not_found`", body = ErrorBody),
        (status = 409, description = "`invalid_transition` (nothing shipped), `quantity_unavailable` (with `sku`, `max`), `entity_limit_reached`", body = ErrorBody),
    )
)]
pub(super) async fn request_return(
    app: App,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<ReturnBody>,
) -> Result<HttpResponse, ApiError> {
    let id = order_id(&path)?;
    let b = body.into_inner();
    let idem = key(&req, &b)?;
    let lines = qty_lines(app.config(), "lines", &b.lines)?;
    text(app.config(), "reason", &b.reason)?;
    let a = run(
        &app,
        &req,
        id,
        LifeCmd::ReturnRequest {
            lines,
            reason: b.reason,
        },
        idem,
    )
    .await?;
    let LifeTarget::Return(ret) = a.target else {
        return Err(ApiError::new(ErrorCode::ReturnNotFound, "return not found"));
    };
    let view = return_view(&a.order, ret)?;
    Ok(super::created(a.outcome, view))
}

/// One fulfilment: the work of one warehouse or 3PL on one order.
#[utoipa::path(
    get,
    path = "/v1/fulfillments/{id}",
    operation_id = "get_fulfillment",
    tag = "lifecycle",
    params(("id" = String, Path, description = "Fulfilment id (`ful_N_K`)", pattern = r"^[A-Za-z0-9._:-]{1,64}$")),
    responses(
        (status = 200, description = "The fulfilment", body = FulfillmentView),
        (status = 403, description = "`forbidden` (a `warehouse:<id>` key of another warehouse)", body = ErrorBody),
        (status = 404, description = "`fulfillment_not_found`", body = ErrorBody),
    )
)]
pub(super) async fn get_fulfillment(
    app: App,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = fulfillment_id(&path)?;
    let (_, f) = app
        .fulfillment_seen_by(id, &super::auth::caller(&req))
        .await?;
    super::auth::check_warehouse(&req, f.warehouse.as_str())?;
    Ok(HttpResponse::Ok().json(FulfillmentView::from(&f)))
}

macro_rules! step {
    ($name:ident, $cmd:expr, $op:literal, $path:literal, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(
            post,
            path = $path,
            operation_id = $op,
            tag = "lifecycle",
            params(("id" = String, Path, description = "Fulfilment id (`ful_N_K`)", pattern = r"^[A-Za-z0-9._:-]{1,64}$")),
            responses(
                (status = 200, description = "The fulfilment after the step", body = FulfillmentView),
                (status = 403, description = "`forbidden` (a `warehouse:<id>` key of another warehouse)", body = ErrorBody),
                (status = 404, description = "`fulfillment_not_found`", body = ErrorBody),
                (status = 409, description = "`invalid_transition` (with `status`), `order_on_hold` (with `reason`), `awaiting_payment`, `order_busy`", body = ErrorBody),
            )
        )]
        pub(super) async fn $name(
            app: App,
            req: HttpRequest,
            path: web::Path<String>,
            body: web::Bytes,
        ) -> Result<HttpResponse, ApiError> {
            let b: NoFields = optional_body(&body)?;
            let idem = key(&req, &b)?;
            let id = fulfillment_for(&app, &req, &path).await?;
            let cmd: fn(FulfillmentId) -> LifeCmd = $cmd;
            let a = run(&app, &req, id.order, cmd(id), idem).await?;
            Ok(marked(a.outcome, fulfillment_view(&a.order, id)?))
        }
    };
}

fn stage(fulfillment: FulfillmentId, command: Command) -> LifeCmd {
    LifeCmd::Stage {
        fulfillment,
        command,
        reason: None,
    }
}

step!(
    accept,
    |f| stage(f, Command::Accept),
    "accept_fulfillment",
    "/v1/fulfillments/{id}/accept",
    "The warehouse takes the work."
);
step!(
    pick,
    |f| stage(f, Command::Pick),
    "pick_fulfillment",
    "/v1/fulfillments/{id}/pick",
    "The units are picked from the shelves."
);
step!(
    pack,
    |f| stage(f, Command::Pack),
    "pack_fulfillment",
    "/v1/fulfillments/{id}/pack",
    "The units are packed, ready for the carrier."
);

/// The carrier has the units. Partial shipments are allowed (`lines`);
/// without `lines`, every unit not shipped or cancelled. The shipped units
/// leave `allocated` and `on_hand` of the fulfilment's warehouse.
#[utoipa::path(
    post,
    path = "/v1/fulfillments/{id}/ship",
    operation_id = "ship_fulfillment",
    tag = "lifecycle",
    params(("id" = String, Path, description = "Fulfilment id (`ful_N_K`)", pattern = r"^[A-Za-z0-9._:-]{1,64}$")),
    request_body = ShipBody,
    responses(
        (status = 200, description = "The fulfilment with its new parcel", body = FulfillmentView),
        (status = 400, description = "`invalid_field` (a SKU not in it, given twice), `malformed_json`", body = ErrorBody),
        (status = 403, description = "`forbidden` (a `warehouse:<id>` key of another warehouse)", body = ErrorBody),
        (status = 404, description = "`fulfillment_not_found`", body = ErrorBody),
        (status = 409, description = "`invalid_transition`, `quantity_unavailable` (with `sku`, `max`), `order_on_hold`, `awaiting_payment`, `order_busy`", body = ErrorBody),
    )
)]
pub(super) async fn ship(
    app: App,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<ShipBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let idem = key(&req, &b)?;
    let config = app.config();
    let lines = b
        .lines
        .as_deref()
        .map(|l| qty_lines(config, "lines", l))
        .transpose()?;
    for (field, v) in [("carrier", &b.carrier), ("tracking", &b.tracking)] {
        if v.is_empty() || v.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                field,
                "must not be empty or hold control characters",
            ));
        }
        text(config, field, v)?;
    }
    let id = fulfillment_for(&app, &req, &path).await?;
    let cmd = LifeCmd::Ship {
        fulfillment: id,
        lines,
        carrier: b.carrier,
        tracking: b.tracking,
    };
    let a = run(&app, &req, id.order, cmd, idem).await?;
    Ok(marked(a.outcome, fulfillment_view(&a.order, id)?))
}

step!(
    deliver,
    |fulfillment| LifeCmd::Deliver { fulfillment },
    "deliver_fulfillment",
    "/v1/fulfillments/{id}/deliver",
    "Every shipped unit arrived."
);

/// The warehouse or 3PL cannot ship: its unshipped units move to the next
/// best warehouse (a re-route without it), or, when none can take them,
/// the order goes on hold with reason `out_of_stock`. Answers the
/// fulfilment, `rejected`; the order shows where the units went.
#[utoipa::path(
    post,
    path = "/v1/fulfillments/{id}/reject",
    operation_id = "reject_fulfillment",
    tag = "lifecycle",
    params(("id" = String, Path, description = "Fulfilment id (`ful_N_K`)", pattern = r"^[A-Za-z0-9._:-]{1,64}$")),
    request_body(content = RejectBody, description = "Optional: why", content_type = "application/json"),
    responses(
        (status = 200, description = "The fulfilment, rejected", body = FulfillmentView),
        (status = 403, description = "`forbidden` (a `warehouse:<id>` key of another warehouse)", body = ErrorBody),
        (status = 404, description = "`fulfillment_not_found`", body = ErrorBody),
        (status = 409, description = "`invalid_transition` (with `status`), `order_busy`", body = ErrorBody),
    )
)]
pub(super) async fn reject(
    app: App,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let b: RejectBody = optional_body(&body)?;
    let idem = key(&req, &b)?;
    if let Some(r) = &b.reason {
        text(app.config(), "reason", r)?;
    }
    let id = fulfillment_for(&app, &req, &path).await?;
    let cmd = LifeCmd::Stage {
        fulfillment: id,
        command: Command::Reject,
        reason: b.reason,
    };
    let a = run(&app, &req, id.order, cmd, idem).await?;
    Ok(marked(a.outcome, fulfillment_view(&a.order, id)?))
}

/// A warehouse's (or 3PL's) work list: its fulfilments, oldest first,
/// by default the ones still to do (`pending`, `accepted`, `picked`,
/// `packed`, `partially_shipped`). Pass `next_cursor` as `cursor` for the
/// next page.
#[utoipa::path(
    get,
    path = "/v1/warehouses/{id}/fulfillments",
    operation_id = "list_fulfillments",
    tag = "lifecycle",
    params(("id" = String, Path, description = "Warehouse id", pattern = r"^[A-Za-z0-9._:-]{1,64}$"), FulfillmentListQuery),
    responses(
        (status = 200, description = "One page of fulfilments", body = FulfillmentPageView),
        (status = 400, description = "`invalid_field` (with `field`): a bad status, `limit` out of range, or a cursor this server did not give", body = ErrorBody),
        (status = 404, description = "`warehouse_not_found`", body = ErrorBody),
    )
)]
pub(super) async fn warehouse_fulfillments(
    app: App,
    path: web::Path<String>,
    query: web::Query<FulfillmentListQuery>,
) -> Result<HttpResponse, ApiError> {
    let wh = id("warehouse", &path, WarehouseId::parse)
        .map_err(|_| ApiError::new(ErrorCode::WarehouseNotFound, "warehouse not found"))?;
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
    let status = q
        .status
        .as_deref()
        .map(|s| FulfillmentStatus::parse(s).map_err(|e| ApiError::invalid("status", e)))
        .transpose()?;
    let after = q
        .cursor
        .as_deref()
        .map(|c| {
            c.strip_prefix('f')
                .and_then(|rest| FulfillmentId::parse(&format!("ful_{rest}")).ok())
                .ok_or_else(|| ApiError::invalid("cursor", "not a cursor this server gave"))
        })
        .transpose()?;
    let page = app.fulfillments_page(&wh, status, after, limit).await?;
    Ok(HttpResponse::Ok().json(FulfillmentPageView {
        fulfillments: page
            .fulfillments
            .iter()
            .map(FulfillmentView::from)
            .collect(),
        next_cursor: page.next.map(|f| format!("f{}_{}", f.order.0, f.n)),
    }))
}

/// One return.
#[utoipa::path(
    get,
    path = "/v1/returns/{id}",
    operation_id = "get_return",
    tag = "lifecycle",
    params(("id" = String, Path, description = "Return id (`ret_N_K`)", pattern = r"^[A-Za-z0-9._:-]{1,64}$")),
    responses(
        (status = 200, description = "The return", body = ReturnView),
        (status = 404, description = "`return_not_found`", body = ErrorBody),
    )
)]
pub(super) async fn get_return(
    app: App,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = return_id(&path)?;
    let (_, r) = app.return_seen_by(id, &super::auth::caller(&req)).await?;
    Ok(HttpResponse::Ok().json(ReturnView::from(&r)))
}

/// The returned units came back (`lines`, or everything asked back); with
/// `restock: true` they go back into `warehouse`'s `on_hand`.
#[utoipa::path(
    post,
    path = "/v1/returns/{id}/receive",
    operation_id = "receive_return",
    tag = "lifecycle",
    params(("id" = String, Path, description = "Return id (`ret_N_K`)", pattern = r"^[A-Za-z0-9._:-]{1,64}$")),
    request_body = ReceiveBody,
    responses(
        (status = 200, description = "The return, received", body = ReturnView),
        (status = 400, description = "`invalid_field` (`warehouse` missing with `restock`, a SKU not asked back), `malformed_json`", body = ErrorBody),
        (status = 403, description = "`forbidden` (a `warehouse:<id>` key of another warehouse)", body = ErrorBody),
        (status = 404, description = "`return_not_found`, `warehouse_not_found`", body = ErrorBody),
        (status = 409, description = "`invalid_transition` (with `status`), `quantity_unavailable`", body = ErrorBody),
    )
)]
pub(super) async fn receive(
    app: App,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<ReceiveBody>,
) -> Result<HttpResponse, ApiError> {
    let id = return_id(&path)?;
    let b = body.into_inner();
    let idem = key(&req, &b)?;
    let lines = b
        .lines
        .as_deref()
        .map(|l| qty_lines(app.config(), "lines", l))
        .transpose()?;
    let warehouse = b
        .warehouse
        .as_deref()
        .map(|w| id_of_warehouse(&req, w))
        .transpose()?;
    if b.restock && warehouse.is_none() {
        return Err(ApiError::invalid(
            "warehouse",
            "required with restock: where the units go back",
        ));
    }
    if super::auth::warehouse_limit(&req).is_some() {
        // A warehouse key receives only what its own warehouse shipped.
        let Some(w) = &warehouse else {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "a warehouse key receives returns into its own warehouse: name it",
            ));
        };
        let (order, ret) = app.return_seen_by(id, &super::auth::caller(&req)).await?;
        let receiving: Vec<&SkuId> = match &lines {
            Some(l) => l.iter().map(|(s, _)| s).collect(),
            None => ret.lines.iter().map(|(s, _)| s).collect(),
        };
        let shipped_here = |sku: &SkuId| {
            order.life.fulfillments.iter().any(|f| {
                &f.warehouse == w && f.lines.iter().any(|(s, l)| s == sku && l.shipped > 0)
            })
        };
        if let Some(sku) = receiving.into_iter().find(|s| !shipped_here(s)) {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("warehouse {w} shipped no {sku} of this order: its return is not this key's to receive"),
            ));
        }
    }
    let cmd = LifeCmd::ReturnReceive {
        ret: id,
        lines,
        restock: if b.restock { warehouse } else { None },
    };
    let a = run(&app, &req, id.order, cmd, idem).await?;
    Ok(marked(
        a.outcome,
        HttpResponse::Ok().json(return_view(&a.order, id)?),
    ))
}

fn id_of_warehouse(req: &HttpRequest, raw: &str) -> Result<WarehouseId, ApiError> {
    let w = id("warehouse", raw, WarehouseId::parse)?;
    super::auth::check_warehouse(req, w.as_str())?;
    Ok(w)
}

macro_rules! settle {
    ($name:ident, $command:expr, $op:literal, $path:literal, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(
            post,
            path = $path,
            operation_id = $op,
            tag = "lifecycle",
            params(("id" = String, Path, description = "Return id (`ret_N_K`)", pattern = r"^[A-Za-z0-9._:-]{1,64}$")),
            responses(
                (status = 200, description = "The return", body = ReturnView),
                (status = 404, description = "`return_not_found`", body = ErrorBody),
                (status = 409, description = "`invalid_transition` (with `status`)", body = ErrorBody),
            )
        )]
        pub(super) async fn $name(
            app: App,
            req: HttpRequest,
            path: web::Path<String>,
            body: web::Bytes,
        ) -> Result<HttpResponse, ApiError> {
            let b: NoFields = optional_body(&body)?;
            let idem = key(&req, &b)?;
            let id = return_id(&path)?;
            let cmd = LifeCmd::ReturnSettle {
                ret: id,
                command: $command,
            };
            let a = run(&app, &req, id.order, cmd, idem).await?;
            Ok(marked(
                a.outcome,
                HttpResponse::Ok().json(return_view(&a.order, id)?),
            ))
        }
    };
}

settle!(
    close_return,
    Command::ReturnClose,
    "close_return",
    "/v1/returns/{id}/close",
    "Settles the return."
);
settle!(
    decline_return,
    Command::ReturnDecline,
    "decline_return",
    "/v1/returns/{id}/decline",
    "Refuses the return before anything came back."
);
