//! `/v1/routing/rules`: the rule chains in force, and changing them at run
//! time.

use super::dto::{RoutingRulesBody, RoutingRulesQuery};
use super::error::ApiError;
use super::openapi::ErrorBody;
use super::routes::Routes;
use super::{id, App};
use crate::app::RulesInForce;
use crate::core::ChannelId;
use crate::wire::routing::{parse_chain, parse_split, split_name};
use crate::wire::{ChainView, RoutingRulesView};
use actix_web::{web, HttpResponse};

pub fn routes(r: &mut Routes<'_>) {
    r.get("/routing/rules", get)
        .put("/routing/rules", put)
        .delete("/routing/rules", delete);
}

fn view(rules: &RulesInForce) -> RoutingRulesView {
    RoutingRulesView {
        default: ChainView::new(&rules.default.chain, rules.default.runtime),
        channels: rules
            .channels
            .iter()
            .map(|(c, v)| (c.to_string(), ChainView::new(&v.chain, v.runtime)))
            .collect(),
    }
}

fn channel(c: Option<&str>) -> Result<Option<ChannelId>, ApiError> {
    c.map(|c| id("channel", c, ChannelId::parse)).transpose()
}

/// The chains in force: the default, and each channel's own.
#[utoipa::path(
    get,
    path = "/v1/routing/rules",
    operation_id = "get_routing_rules",
    tag = "routing",
    responses((status = 200, description = "The chains in force", body = RoutingRulesView))
)]
pub(super) async fn get(app: App) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(view(&app.routing_rules_in_force())))
}

/// Sets a channel's chain (or, without `channel`, the default chain) at
/// run time; `rules: null` goes back to the configured one. Logged and
/// fed (`routing_rules_set` on the `routing` topic).
#[utoipa::path(
    put,
    path = "/v1/routing/rules",
    operation_id = "put_routing_rules",
    tag = "routing",
    request_body = RoutingRulesBody,
    responses(
        (status = 200, description = "The chains in force", body = RoutingRulesView),
        (status = 400, description = "`invalid_field`: an unknown or repeated rule, a bad split policy or channel", body = ErrorBody),
    )
)]
pub(super) async fn put(
    app: App,
    body: web::Json<RoutingRulesBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let channel = channel(body.channel.as_deref())?;
    let chain = match body.rules {
        None => {
            return Err(ApiError::invalid(
                "rules",
                "required: rule names in order, or null for the configured chain",
            ))
        }
        Some(None) => None,
        Some(Some(rules)) => {
            let split = parse_split(body.split.as_deref().unwrap_or("allow"))
                .map_err(|e| ApiError::invalid("split", e))?;
            let chain = parse_chain(&rules, &split_name(split))
                .map_err(|e| ApiError::invalid("rules", e))?;
            Some(chain)
        }
    };
    let rules = app.set_routing_rules(channel, chain).await?;
    Ok(HttpResponse::Ok().json(view(&rules)))
}

/// Returns a channel's chain (or, without `channel`, the default chain)
/// to the configured one. Logged and fed like `PUT`.
#[utoipa::path(
    delete,
    path = "/v1/routing/rules",
    operation_id = "delete_routing_rules",
    tag = "routing",
    params(RoutingRulesQuery),
    responses(
        (status = 200, description = "The chains in force", body = RoutingRulesView),
        (status = 400, description = "`invalid_field`: a bad channel", body = ErrorBody),
    )
)]
pub(super) async fn delete(
    app: App,
    query: web::Query<RoutingRulesQuery>,
) -> Result<HttpResponse, ApiError> {
    let channel = channel(query.channel.as_deref())?;
    let rules = app.set_routing_rules(channel, None).await?;
    Ok(HttpResponse::Ok().json(view(&rules)))
}
