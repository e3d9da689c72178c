use super::dto::{AdjustmentBody, SkuBody};
use super::error::{ApiError, ErrorCode};
use super::{id, text, App};
use crate::core::sku::Adjustment;
use crate::core::{SkuId, WarehouseId};
use crate::wire::StockView;
use actix_web::{web, HttpRequest, HttpResponse};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/skus/{sku}", web::put().to(put))
        .route("/skus/{sku}/stock", web::get().to(stock))
        .route("/stock/adjustments", web::post().to(adjust));
}

async fn stock_view(app: &App, sku: &SkuId) -> Result<StockView, ApiError> {
    Ok(app.sku_stock(sku).await?)
}

async fn put(
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
    app.put_sku(sku.clone(), body.name, body.per_customer_limit)
        .await?;
    Ok(HttpResponse::Ok().json(stock_view(&app, &sku).await?))
}

async fn stock(app: App, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let sku = SkuId::parse(&path)
        .map_err(|_| ApiError::new(ErrorCode::SkuNotFound, format!("sku {path} not found")))?;
    Ok(HttpResponse::Ok().json(stock_view(&app, &sku).await?))
}

async fn adjust(
    app: App,
    req: HttpRequest,
    body: web::Json<AdjustmentBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    // A `warehouse:<id>` key adjusts only its own warehouse.
    super::auth::check_warehouse(&req, &b.warehouse)?;
    let sku = id("sku", &b.sku, SkuId::parse)?;
    let warehouse = id("warehouse", &b.warehouse, WarehouseId::parse)?;
    text(app.config(), "reason", &b.reason)?;
    if b.reason.trim().is_empty() {
        return Err(ApiError::invalid("reason", "must not be empty"));
    }
    let max = app.config().on_hand_max;
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
    app.adjust(sku.clone(), warehouse, adjustment, b.reason)
        .await?;
    Ok(HttpResponse::Ok().json(stock_view(&app, &sku).await?))
}
