//! The stock ledger: `GET /v1/skus/{sku}/ledger`.

use super::error::{ApiError, ErrorCode};
use super::openapi::ErrorBody;
use super::routes::Routes;
use super::{id, App};
use crate::app::LedgerQuery;
use crate::core::{SkuId, WarehouseId};
use crate::wire::ledger::parse_cursor;
use crate::wire::LedgerPageView;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

pub fn routes(r: &mut Routes<'_>) {
    r.get("/skus/{sku}/ledger", list);
}

/// `GET /v1/skus/{sku}/ledger`: filter and paging.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LedgerListQuery {
    /// Only this warehouse's row.
    pub warehouse: Option<String>,
    /// A `next_cursor`: the entries after it.
    pub after: Option<String>,
    /// Entries per page, 1 to `ledger.page_max` (default that).
    #[param(value_type = Option<u64>, minimum = 1)]
    pub limit: Option<u64>,
}

/// Every change to the SKU's stock rows, oldest first: which bucket moved
/// by how much, why, on whose behalf, and the row's values after. Waits up
/// to `ledger.read_wait_ms` for the ledger to hold every change synced
/// before the request.
#[utoipa::path(
    get,
    path = "/v1/skus/{sku}/ledger",
    operation_id = "get_sku_ledger",
    tag = "skus",
    params(
        ("sku" = String, Path, description = "SKU id", pattern = r"^[A-Za-z0-9._:-]{1,64}$"),
        LedgerListQuery,
    ),
    responses(
        (status = 200, description = "A page of the SKU's ledger", body = LedgerPageView),
        (status = 400, description = "A parameter is invalid", body = ErrorBody),
        (status = 404, description = "`sku_not_found`", body = ErrorBody),
        (status = 503, description = "`ledger_behind` (retry; with `lag_events` and `Retry-After`), `ledger_disabled`", body = ErrorBody),
    )
)]
pub(super) async fn list(
    app: App,
    path: web::Path<String>,
    query: web::Query<LedgerListQuery>,
) -> Result<HttpResponse, ApiError> {
    let sku = SkuId::parse(&path)
        .map_err(|_| ApiError::new(ErrorCode::SkuNotFound, format!("sku {path} not found")))?;
    let q = query.into_inner();
    let page_max = app.config().ledger.page_max;
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
    let query = LedgerQuery {
        sku: sku.clone(),
        warehouse: q
            .warehouse
            .as_deref()
            .map(|w| id("warehouse", w, WarehouseId::parse))
            .transpose()?,
        after: q
            .after
            .as_deref()
            .map(|a| {
                parse_cursor(a).ok_or_else(|| ApiError::invalid("after", "not a ledger cursor"))
            })
            .transpose()?,
        limit,
    };
    let page = app.ledger_page(query).await?;
    Ok(HttpResponse::Ok().json(LedgerPageView::new(&sku, &page)))
}
