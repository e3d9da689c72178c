use super::dto::{CancelBody, OrderBody};
use super::error::{ApiError, ErrorCode};
use super::{created, id, idempotency, qty, text, App};
use crate::app::OrderRequest;
use crate::core::{ChannelId, CustomerId, HoldId, Location, OrderId, OrderLine, ShipTo, SkuId};
use crate::wire::OrderView;
use actix_web::{web, HttpRequest, HttpResponse};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/orders", web::post().to(create))
        .route("/orders/{id}", web::get().to(get))
        .route("/orders/{id}/cancel", web::post().to(cancel));
}

fn order_id(raw: &str) -> Result<OrderId, ApiError> {
    OrderId::parse(raw)
        .map_err(|_| ApiError::new(ErrorCode::OrderNotFound, format!("order {raw} not found")))
}

async fn create(
    app: App,
    req: HttpRequest,
    body: web::Json<OrderBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let idem = idempotency(&req, "orders", &b)?;
    let config = app.config();
    if b.lines.is_empty() || b.lines.len() > config.order_lines_max {
        return Err(ApiError::invalid(
            "lines",
            format!("an order has 1 to {} lines", config.order_lines_max),
        ));
    }
    let location = Location {
        lat: b.ship_to.lat,
        lon: b.ship_to.lon,
    };
    if !location.is_valid() {
        return Err(ApiError::invalid(
            "ship_to",
            "lat must be in [-90, 90] and lon in [-180, 180]",
        ));
    }
    if let Some(c) = &b.ship_to.country {
        if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(ApiError::invalid(
                "ship_to.country",
                "must be an ISO 3166-1 alpha-2 code such as \"DE\"",
            ));
        }
    }
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
        });
    }
    let request = OrderRequest {
        channel: id("channel", &b.channel, ChannelId::parse)?,
        customer: id("customer_id", &b.customer_id, CustomerId::parse)?,
        ship_to: ShipTo {
            location,
            country: b.ship_to.country.clone(),
        },
        lines,
        idempotency: idem,
    };
    let (order, outcome) = app.place_order(request).await?;
    Ok(created(outcome, OrderView::from(&order)))
}

async fn get(app: App, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let order = app.order(order_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(OrderView::from(&order)))
}

/// The body is optional; when present it must be a valid `CancelBody`.
async fn cancel(
    app: App,
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
    let reason = body.reason.unwrap_or_else(|| "cancelled".into());
    text(app.config(), "reason", &reason)?;
    let order = app.cancel_order(id, reason).await?;
    Ok(HttpResponse::Ok().json(OrderView::from(&order)))
}
