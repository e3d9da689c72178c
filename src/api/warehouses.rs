use super::dto::{WarehouseBody, WarehouseDetail, WarehouseList};
use super::error::{ApiError, ErrorCode};
use super::openapi::ErrorBody;
use super::routes::Routes;
use super::{id, text, App};
use crate::config::Config;
use crate::core::routing::{Cutoff, Rate, ShippingCost, WarehouseRouting};
use crate::core::{ChannelId, Location, Warehouse, WarehouseId};
use crate::wire::{CutoffView, ShippingCostView, WarehouseView, WorkloadView};
use actix_web::{web, HttpResponse};
use std::collections::BTreeMap;

pub fn routes(r: &mut Routes<'_>) {
    r.get("/warehouses", list)
        .put("/warehouses/{id}", put)
        .get("/warehouses/{id}", get);
}

/// Creates or replaces a warehouse.
#[utoipa::path(
    put,
    path = "/v1/warehouses/{id}",
    operation_id = "put_warehouse",
    tag = "warehouses",
    params(("id" = String, Path, description = "Warehouse id", pattern = r"^[A-Za-z0-9._:-]{1,64}$")),
    request_body = WarehouseBody,
    responses(
        (status = 200, description = "The warehouse as stored", body = WarehouseView),
        (status = 400, description = "`invalid_field` (naming the field) or `invalid_path`", body = ErrorBody),
    )
)]
pub(super) async fn put(
    app: App,
    path: web::Path<String>,
    body: web::Json<WarehouseBody>,
) -> Result<HttpResponse, ApiError> {
    let wid = id("id", &path, WarehouseId::parse)?;
    let body = body.into_inner();
    text(app.config(), "name", &body.name)?;
    let location = Location {
        lat: body.location.lat,
        lon: body.location.lon,
    };
    if !location.is_valid() {
        return Err(ApiError::invalid(
            "location",
            "lat must be in [-90, 90] and lon in [-180, 180]",
        ));
    }
    let routing = routing_of(app.config(), &body)?;
    let w = app
        .put_warehouse(Warehouse {
            id: wid,
            name: body.name,
            location,
            priority: body.priority,
            routing,
        })
        .await?;
    Ok(HttpResponse::Ok().json(WarehouseView::from(&w)))
}

/// One warehouse.
#[utoipa::path(
    get,
    path = "/v1/warehouses/{id}",
    operation_id = "get_warehouse",
    tag = "warehouses",
    params(("id" = String, Path, description = "Warehouse id", pattern = r"^[A-Za-z0-9._:-]{1,64}$")),
    responses(
        (status = 200, description = "The warehouse and its workload today", body = WarehouseDetail),
        (status = 404, description = "`warehouse_not_found`", body = ErrorBody),
    )
)]
pub(super) async fn get(app: App, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let found = match WarehouseId::parse(&path) {
        Ok(wid) => match app.warehouse(&wid).await {
            Ok(w) => Some(w),
            Err(crate::actors::CmdError::UnknownWarehouse(_)) => None,
            Err(e) => return Err(e.into()),
        },
        Err(_) => None,
    };
    let w = found.map(|w| detail(&app, &w)).ok_or_else(|| {
        ApiError::new(
            ErrorCode::WarehouseNotFound,
            format!("warehouse {path} not found"),
        )
    })?;
    Ok(HttpResponse::Ok().json(w))
}

/// Every warehouse.
#[utoipa::path(
    get,
    path = "/v1/warehouses",
    operation_id = "list_warehouses",
    tag = "warehouses",
    responses((status = 200, description = "Every warehouse, each with its workload today", body = WarehouseList))
)]
pub(super) async fn list(app: App) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(WarehouseList {
        warehouses: app
            .warehouses()
            .await?
            .iter()
            .map(|w| detail(&app, w))
            .collect(),
    }))
}

/// A warehouse with the orders routed to it on its local day now: what
/// routing counts, 0 once a new local day has begun.
fn detail(app: &App, w: &Warehouse) -> WarehouseDetail {
    let today = crate::core::routing::local_day(&w.routing, app.now());
    let counted = app.workload(&w.id);
    let routed = if counted.day == today {
        counted.routed
    } else {
        0
    };
    WarehouseDetail {
        warehouse: WarehouseView::from(w),
        workload: WorkloadView::new(today, routed, w.routing.capacity_per_day),
    }
}

/// A warehouse body's routing attributes, checked and normalised; absent
/// ones are the defaults.
fn routing_of(config: &Config, body: &WarehouseBody) -> Result<WarehouseRouting, ApiError> {
    let limits = &config.routing;
    let mut routing = WarehouseRouting::default();
    if let Some(enabled) = body.enabled {
        routing.enabled = enabled;
    }
    if let Some(list) = &body.countries {
        bounded("countries", list.len(), limits.warehouse_countries_max)?;
        let mut codes = list
            .iter()
            .map(|c| country("countries", c))
            .collect::<Result<Vec<_>, _>>()?;
        codes.sort();
        codes.dedup();
        routing.countries = codes;
    }
    if let Some(list) = &body.channels {
        bounded("channels", list.len(), limits.warehouse_channels_max)?;
        let mut ids = list
            .iter()
            .map(|c| id("channels", c, ChannelId::parse))
            .collect::<Result<Vec<_>, _>>()?;
        ids.sort();
        ids.dedup();
        routing.channels = ids;
    }
    if let Some(n) = body.capacity_per_day {
        if n == 0 {
            return Err(ApiError::invalid(
                "capacity_per_day",
                "must be at least 1 (null: unlimited)",
            ));
        }
        routing.capacity_per_day = Some(n);
    }
    if let Some(c) = &body.cutoff {
        routing.cutoff = Some(cutoff(c)?);
    }
    if let Some(c) = &body.shipping_cost {
        routing.shipping_cost = Some(shipping_cost(config, c)?);
    }
    Ok(routing)
}

fn bounded(field: &str, n: usize, max: usize) -> Result<(), ApiError> {
    if n > max {
        return Err(ApiError::invalid(
            field,
            format!("at most {max} entries (routing.{field}_max), got {n}"),
        ));
    }
    Ok(())
}

/// An ISO 3166-1 alpha-2 code: two letters A-Z, upper-cased.
fn country(field: &str, code: &str) -> Result<String, ApiError> {
    if code.len() == 2 && code.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(code.to_ascii_uppercase())
    } else {
        Err(ApiError::invalid(
            field,
            format!("{code:?} is not an ISO 3166-1 alpha-2 country code (two letters A-Z)"),
        ))
    }
}

/// `HH:MM` (24 h) in an IANA time zone the bundled database knows.
fn cutoff(c: &CutoffView) -> Result<Cutoff, ApiError> {
    let bad_time = || {
        ApiError::invalid(
            "cutoff.time",
            format!("{:?} is not a time HH:MM (00:00 to 23:59)", c.time),
        )
    };
    let (h, m) = c.time.split_once(':').ok_or_else(bad_time)?;
    let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(h) || !two_digits(m) {
        return Err(bad_time());
    }
    let (hour, minute) = (
        h.parse::<u8>().map_err(|_| bad_time())?,
        m.parse::<u8>().map_err(|_| bad_time())?,
    );
    if hour > 23 || minute > 59 {
        return Err(bad_time());
    }
    if jiff::tz::db().get(&c.tz).is_err() {
        return Err(ApiError::invalid(
            "cutoff.tz",
            format!(
                "{:?} is not an IANA time zone (e.g. \"Europe/Berlin\")",
                c.tz
            ),
        ));
    }
    Ok(Cutoff {
        hour,
        minute,
        tz: c.tz.clone(),
    })
}

fn shipping_cost(config: &Config, c: &ShippingCostView) -> Result<ShippingCost, ApiError> {
    const FIELD: &str = "shipping_cost.by_country";
    let max = config.routing.shipping_cost_countries_max;
    if c.by_country.len() > max {
        return Err(ApiError::invalid(
            FIELD,
            format!(
                "at most {max} countries (routing.shipping_cost_countries_max), got {}",
                c.by_country.len()
            ),
        ));
    }
    let mut by_country = BTreeMap::new();
    for (code, rate) in &c.by_country {
        let code = country(FIELD, code)?;
        let rate = Rate {
            fixed: rate.fixed,
            per_km: rate.per_km,
        };
        if by_country.insert(code.clone(), rate).is_some() {
            return Err(ApiError::invalid(FIELD, format!("{code} is named twice")));
        }
    }
    Ok(ShippingCost {
        default: Rate {
            fixed: c.fixed,
            per_km: c.per_km,
        },
        by_country,
    })
}
