use super::dto::{WarehouseBody, WarehouseList};
use super::error::{ApiError, ErrorCode};
use super::openapi::ErrorBody;
use super::routes::Routes;
use super::{id, text, App};
use crate::core::{Location, Warehouse, WarehouseId};
use crate::wire::WarehouseView;
use actix_web::{web, HttpResponse};

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
        (status = 400, description = "A field or the id is invalid", body = ErrorBody),
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
    let w = app
        .put_warehouse(Warehouse {
            id: wid,
            name: body.name,
            location,
            priority: body.priority,
            routing: Default::default(),
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
        (status = 200, description = "The warehouse", body = WarehouseView),
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
    let w = found.map(|w| WarehouseView::from(&w)).ok_or_else(|| {
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
    responses((status = 200, description = "Every warehouse", body = WarehouseList))
)]
pub(super) async fn list(app: App) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(WarehouseList {
        warehouses: app
            .warehouses()
            .await?
            .iter()
            .map(WarehouseView::from)
            .collect(),
    }))
}
