use super::dto::{AdjustmentBody, SkuBody, SkuPatchBody};
use super::error::{ApiError, ErrorCode};
use super::openapi::ErrorBody;
use super::routes::Routes;
use super::{id, text, App};
use crate::app::SkuPatch;
use crate::config::Config;
use crate::core::sku::incoming::ThresholdUpdate;
use crate::core::sku::Adjustment;
use crate::core::{SkuId, WarehouseId};
use crate::wire::StockView;
use actix_web::{web, HttpRequest, HttpResponse};

pub fn routes(r: &mut Routes<'_>) {
    r.put("/skus/{sku}", put)
        .patch("/skus/{sku}", patch)
        .get("/skus/{sku}/stock", stock)
        .post("/stock/adjustments", adjust);
}

async fn stock_view(app: &App, sku: &SkuId) -> Result<StockView, ApiError> {
    Ok(app.sku_stock(sku).await?)
}

/// Creates a SKU or replaces its name and per-customer limit: a field left
/// out is cleared (use PATCH to change one field). Answers the SKU after.
#[utoipa::path(
    put,
    path = "/v1/skus/{sku}",
    operation_id = "put_sku",
    tag = "skus",
    params(("sku" = String, Path, description = "SKU id", pattern = r"^[A-Za-z0-9._:-]{1,64}$")),
    request_body = SkuBody,
    responses(
        (status = 200, description = "The SKU after the replacement, with its stock", body = StockView),
        (status = 400, description = "A field or the id is invalid", body = ErrorBody),
        (status = 503, description = "`overloaded` (the SKU's mailbox or the log's queue is full: retry), `storage_unavailable`", body = ErrorBody),
    )
)]
pub(super) async fn put(
    app: App,
    path: web::Path<String>,
    body: web::Json<SkuBody>,
) -> Result<HttpResponse, ApiError> {
    let sku = id("sku", &path, SkuId::parse)?;
    let body = body.into_inner();
    if let Some(name) = &body.name {
        text(app.config(), "name", name)?;
    }
    if body.per_customer_limit == Some(0) {
        return Err(ApiError::invalid(
            "per_customer_limit",
            "must be at least 1 (omit it for no limit)",
        ));
    }
    let low_stock = ThresholdUpdate {
        total: Some(body.low_stock_threshold),
        rows: low_stock_rows(
            app.config(),
            body.low_stock_threshold,
            body.low_stock_thresholds
                .iter()
                .flatten()
                .map(|(w, t)| (w, Some(*t))),
        )?,
        replace_rows: true,
    };
    app.put_sku(sku.clone(), body.name, body.per_customer_limit, low_stock)
        .await?;
    Ok(HttpResponse::Ok().json(stock_view(&app, &sku).await?))
}

/// Changes some of an existing SKU's fields: only those present change,
/// `null` clears one, unknown fields are refused. Answers the SKU after.
#[utoipa::path(
    patch,
    path = "/v1/skus/{sku}",
    operation_id = "patch_sku",
    tag = "skus",
    params(("sku" = String, Path, description = "SKU id", pattern = r"^[A-Za-z0-9._:-]{1,64}$")),
    request_body = SkuPatchBody,
    responses(
        (status = 200, description = "The SKU after the change, with its stock", body = StockView),
        (status = 400, description = "A field or the id is invalid, or unknown", body = ErrorBody),
        (status = 404, description = "`sku_not_found`", body = ErrorBody),
        (status = 503, description = "`overloaded` (the SKU's mailbox or the log's queue is full: retry), `storage_unavailable`", body = ErrorBody),
    )
)]
pub(super) async fn patch(
    app: App,
    path: web::Path<String>,
    body: web::Json<SkuPatchBody>,
) -> Result<HttpResponse, ApiError> {
    let sku = SkuId::parse(&path)
        .map_err(|_| ApiError::new(ErrorCode::SkuNotFound, format!("sku {path} not found")))?;
    let body = body.into_inner();
    if let Some(Some(name)) = &body.name {
        text(app.config(), "name", name)?;
    }
    if body.per_customer_limit == Some(Some(0)) {
        return Err(ApiError::invalid(
            "per_customer_limit",
            "must be at least 1 (null for no limit)",
        ));
    }
    let low_stock = ThresholdUpdate {
        total: body.low_stock_threshold,
        rows: low_stock_rows(
            app.config(),
            body.low_stock_threshold.flatten(),
            body.low_stock_thresholds
                .iter()
                .flatten()
                .map(|(w, t)| (w, *t)),
        )?,
        replace_rows: false,
    };
    let patch = SkuPatch {
        name: body.name,
        per_customer_limit: body.per_customer_limit,
        low_stock,
    };
    app.patch_sku(sku.clone(), patch).await?;
    Ok(HttpResponse::Ok().json(stock_view(&app, &sku).await?))
}

/// A SKU's stock: totals and one row per warehouse.
#[utoipa::path(
    get,
    path = "/v1/skus/{sku}/stock",
    operation_id = "get_sku_stock",
    tag = "skus",
    params(("sku" = String, Path, description = "SKU id", pattern = r"^[A-Za-z0-9._:-]{1,64}$")),
    responses(
        (status = 200, description = "The SKU's stock", body = StockView),
        (status = 404, description = "`sku_not_found`", body = ErrorBody),
    )
)]
pub(super) async fn stock(app: App, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let sku = SkuId::parse(&path)
        .map_err(|_| ApiError::new(ErrorCode::SkuNotFound, format!("sku {path} not found")))?;
    Ok(HttpResponse::Ok().json(stock_view(&app, &sku).await?))
}

/// Adjusts one stock row: exactly one of `delta`, `set_on_hand` (with an
/// optional `expected_on_hand`, compare-and-set) or `set_safety_stock`.
#[utoipa::path(
    post,
    path = "/v1/stock/adjustments",
    operation_id = "adjust_stock",
    tag = "skus",
    request_body = AdjustmentBody,
    responses(
        (status = 200, description = "The SKU's stock after the change (to a `warehouse:<id>` key: its own rows, totals over them)", body = StockView),
        (status = 400, description = "A field is invalid", body = ErrorBody),
        (status = 404, description = "`sku_not_found` or `warehouse_not_found`", body = ErrorBody),
        (status = 409, description = "`stock_changed` or `stock_below_committed`", body = ErrorBody),
    )
)]
pub(super) async fn adjust(
    app: App,
    req: HttpRequest,
    body: web::Json<AdjustmentBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    // A `warehouse:<id>` key adjusts only its own warehouse.
    super::auth::check_warehouse(&req, &b.warehouse)?;
    let (sku, warehouse, adjustment) = adjustment(app.config(), &b)?;
    app.adjust(sku.clone(), warehouse, adjustment, b.reason)
        .await?;
    let view = stock_view(&app, &sku).await?;
    // A `warehouse:<id>` key sees its own rows only.
    let view = match super::auth::warehouse_limit(&req) {
        Some(mine) => view.only(&mine),
        None => view,
    };
    Ok(HttpResponse::Ok().json(view))
}

/// Checks low-stock thresholds: each at most `on_hand_max`, rows by valid
/// warehouse ids.
fn low_stock_rows<'a>(
    config: &Config,
    total: Option<u64>,
    rows: impl Iterator<Item = (&'a String, Option<u64>)>,
) -> Result<Vec<(WarehouseId, Option<u64>)>, ApiError> {
    let max = config.on_hand_max;
    if total.is_some_and(|t| t > max) {
        return Err(ApiError::invalid(
            "low_stock_threshold",
            format!("must be at most {max}"),
        ));
    }
    rows.map(|(w, t)| {
        if t.is_some_and(|t| t > max) {
            return Err(ApiError::invalid(
                "low_stock_thresholds",
                format!("must be at most {max}"),
            ));
        }
        Ok((id("low_stock_thresholds", w, WarehouseId::parse)?, t))
    })
    .collect()
}

/// Checks an adjustment's body: its SKU, warehouse and change.
pub(super) fn adjustment(
    config: &Config,
    b: &AdjustmentBody,
) -> Result<(SkuId, WarehouseId, Adjustment), ApiError> {
    let sku = id("sku", &b.sku, SkuId::parse)?;
    let warehouse = id("warehouse", &b.warehouse, WarehouseId::parse)?;
    text(config, "reason", &b.reason)?;
    if b.reason.trim().is_empty() {
        return Err(ApiError::invalid("reason", "must not be empty"));
    }
    let max = config.on_hand_max;
    let adjustment = match (b.delta, b.set_on_hand, b.set_safety_stock) {
        (Some(d), None, None) if b.expected_on_hand.is_none() => {
            if d == 0 || d.unsigned_abs() > max {
                return Err(ApiError::invalid("delta", format!("must be non-zero and at most {max} in size")));
            }
            Adjustment::Delta(d)
        }
        (None, Some(on_hand), None) => Adjustment::SetOnHand {
            on_hand,
            expected: b.expected_on_hand,
        },
        (None, None, Some(s)) if b.expected_on_hand.is_none() => Adjustment::SetSafetyStock(s),
        _ => {
            return Err(ApiError::invalid(
                "delta",
                "give exactly one of delta, set_on_hand (with optional expected_on_hand) or set_safety_stock",
            ))
        }
    };
    Ok((sku, warehouse, adjustment))
}
