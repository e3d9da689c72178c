//! `POST /v1/routing/simulate`: what routing would do with an order (or a
//! hold) now, without taking anything.

use super::error::ApiError;
use super::openapi::ErrorBody;
use super::routes::Routes;
use super::{id, qty, App};
use crate::app::{SimulateRequest, Simulation};
use crate::core::{ChannelId, CustomerId, HoldId, OrderLine, SkuId};
use crate::wire::{LineView, RoutingTraceView, ShipToView, TraceView};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

pub fn routes(r: &mut Routes<'_>) {
    r.post("/routing/simulate", simulate);
}

/// An order's body (`channel`, `customer_id`, `ship_to`, `lines`) or a
/// hold's (`sku`, `qty`, optional `ship_to` and `channel`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct SimulateBody {
    #[schema(pattern = r"^[A-Za-z0-9._:-]{1,64}$")]
    pub channel: Option<String>,
    /// Accepted with an order's body; routing does not use it.
    #[schema(pattern = r"^[A-Za-z0-9._:-]{1,64}$")]
    pub customer_id: Option<String>,
    pub ship_to: Option<ShipToView>,
    /// An order's lines; or `sku` and `qty` for a hold.
    pub lines: Option<Vec<LineView>>,
    #[schema(pattern = r"^[A-Za-z0-9._:-]{1,64}$")]
    pub sku: Option<String>,
    #[schema(minimum = 1)]
    pub qty: Option<u64>,
}

crate::wire::object_only!(SimulateBody);

/// One line a simulated plan could not place.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnplacedLineView {
    /// Index into the order's `lines` (0 for a hold).
    pub index: usize,
    pub sku: String,
    pub qty: u64,
}

/// One shipment of the simulated plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct SimulatedShipmentView {
    pub warehouse: String,
    pub lines: Vec<UnplacedLineView>,
}

/// What placing the order (or the hold) now would do.
#[derive(Debug, Serialize, ToSchema)]
pub struct SimulationView {
    /// Whether a plan places every line.
    pub routable: bool,
    /// The plan's shipments (empty when not routable); each line names
    /// its index in the request.
    pub shipments: Vec<SimulatedShipmentView>,
    /// The trace an order placed now would keep.
    #[schema(value_type = RoutingTraceView)]
    pub routing: TraceView,
    /// The lines no plan places.
    pub unplaced_lines: Vec<UnplacedLineView>,
}

impl From<&Simulation> for SimulationView {
    fn from(s: &Simulation) -> Self {
        let shipments = s
            .plan
            .iter()
            .flat_map(|p| &p.shipments)
            .map(|sh| SimulatedShipmentView {
                warehouse: sh.warehouse.to_string(),
                lines: sh
                    .lines
                    .iter()
                    .filter_map(|&(i, qty)| {
                        s.lines.get(i).map(|l| UnplacedLineView {
                            index: i,
                            sku: l.sku.to_string(),
                            qty,
                        })
                    })
                    .collect(),
            })
            .collect();
        Self {
            routable: s.plan.is_some(),
            shipments,
            routing: TraceView(Arc::clone(&s.trace)),
            unplaced_lines: s
                .unplaced
                .iter()
                .map(|(index, sku, qty)| UnplacedLineView {
                    index: *index,
                    sku: sku.to_string(),
                    qty: *qty,
                })
                .collect(),
        }
    }
}

fn request(app: &App, b: &SimulateBody) -> Result<SimulateRequest, ApiError> {
    let config = app.config();
    let channel = b
        .channel
        .as_deref()
        .map(|c| id("channel", c, ChannelId::parse))
        .transpose()?;
    if let Some(c) = &b.customer_id {
        id("customer_id", c, CustomerId::parse)?;
    }
    let ship_to = b.ship_to.as_ref().map(super::orders::ship_to).transpose()?;
    let (lines, hold) = match (&b.lines, &b.sku, b.qty) {
        (Some(lines), None, None) => {
            if lines.is_empty() || lines.len() > config.order_lines_max {
                return Err(ApiError::invalid(
                    "lines",
                    format!("an order has 1 to {} lines", config.order_lines_max),
                ));
            }
            let mut out = Vec::with_capacity(lines.len());
            for (i, l) in lines.iter().enumerate() {
                out.push(OrderLine {
                    sku: id(&format!("lines[{i}].sku"), &l.sku, SkuId::parse)?,
                    qty: qty(config, &format!("lines[{i}].qty"), l.qty)?,
                    reservation: l
                        .reservation_id
                        .as_deref()
                        .map(|r| id(&format!("lines[{i}].reservation_id"), r, HoldId::parse))
                        .transpose()?,
                    unit_price: None,
                });
            }
            (out, false)
        }
        (None, Some(sku), Some(n)) => {
            let line = OrderLine {
                sku: id("sku", sku, SkuId::parse)?,
                qty: qty(config, "qty", n)?,
                reservation: None,
                unit_price: None,
            };
            (vec![line], true)
        }
        _ => {
            return Err(ApiError::invalid(
                "lines",
                "give an order's lines, or a hold's sku and qty, not both",
            ))
        }
    };
    if !hold && ship_to.is_none() {
        return Err(ApiError::invalid("ship_to", "an order needs a ship_to"));
    }
    Ok(SimulateRequest {
        lines,
        ship_to,
        channel,
        hold,
        caller: Default::default(),
    })
}

/// Plans an order (or a hold) as placing it now would, and changes
/// nothing: the plan, its trace and the lines no plan places.
#[utoipa::path(
    post,
    path = "/v1/routing/simulate",
    operation_id = "simulate_routing",
    tag = "routing",
    request_body = SimulateBody,
    responses(
        (status = 200, description = "The plan and its trace (`routable: false` with `unplaced_lines` when none fits)", body = SimulationView),
        (status = 400, description = "`invalid_field`", body = ErrorBody),
        (status = 404, description = "`sku_not_found`", body = ErrorBody),
        (status = 422, description = "`reservation_not_found`, `reservation_mismatch`", body = ErrorBody),
    )
)]
pub(super) async fn simulate(
    app: App,
    req: HttpRequest,
    body: web::Json<SimulateBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let mut request = request(&app, &b)?;
    request.caller = super::auth::caller(&req);
    let simulation = app.simulate(request).await?;
    Ok(HttpResponse::Ok().json(SimulationView::from(&simulation)))
}
