//! `GET /v1/openapi.json`: the OpenAPI 3.1 document of the API, derived
//! from the handlers' `#[utoipa::path]` annotations and the request and
//! response types themselves (`api::dto`, `wire`), so it moves with them.
//! Errors are one schema ([`ErrorBody`]) whose `code` lists every
//! [`ErrorCode`]; every operation answers it as its `default` response.
//! Tests check that every registered route is documented (through the
//! route table, [`super::routes`]) and that real answers match their
//! documented schemas.

use super::error::ErrorCode;
use super::routes::Routes;
use super::{
    feed, incoming, ledger, lifecycle, orders, reservations, routing, simulate, skus, warehouses,
};
use crate::wire;
use actix_web::http::header::ContentType;
use actix_web::HttpResponse;
use std::collections::BTreeSet;
use std::sync::OnceLock;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{ContentBuilder, RefOr, Schema};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

pub fn routes(r: &mut Routes<'_>) {
    r.get("/openapi.json", serve);
}

/// The document of the API.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    operation_id = "openapi",
    tag = "meta",
    responses((status = 200, description = "This OpenAPI 3.1 document", content_type = "application/json"))
)]
pub(super) async fn serve() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(json())
}

/// The document as JSON, built once.
pub fn json() -> &'static [u8] {
    static JSON: OnceLock<Vec<u8>> = OnceLock::new();
    JSON.get_or_init(|| {
        // A document of plain maps and strings always serializes.
        let mut doc = serde_json::to_value(document()).unwrap_or_default();
        unsigned_formats(&mut doc);
        serde_json::to_vec(&doc).unwrap_or_default()
    })
}

/// utoipa names the formats of unsigned integers `u-int64` (and `u-int32`,
/// ...); the name schema tools know is `uint64`.
fn unsigned_formats(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                match item {
                    serde_json::Value::String(f) if k == "format" && f.starts_with("u-int") => {
                        *f = f.replacen("u-int", "uint", 1);
                    }
                    _ => unsigned_formats(item),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(unsigned_formats),
        _ => {}
    }
}

/// The document (`json()` is what is served).
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Surge",
        description = "Order management: stock, reservations (holds), orders and a live feed. \
            Every error is JSON `{code, message, ...details}` (schema `ErrorBody`); \
            the codes and their statuses are listed in `ErrorCode`.",
        license(name = "Apache-2.0")
    ),
    paths(
        super::healthz,
        super::monitor::readyz,
        super::monitor::metrics,
        serve,
        warehouses::list,
        warehouses::get,
        warehouses::put,
        skus::put,
        skus::patch,
        skus::stock,
        skus::adjust,
        reservations::create,
        reservations::create_batch,
        reservations::get,
        reservations::release,
        reservations::extend,
        orders::create,
        orders::list,
        orders::get,
        orders::cancel,
        orders::reroute,
        lifecycle::payment,
        lifecycle::hold,
        lifecycle::release,
        lifecycle::request_return,
        lifecycle::get_fulfillment,
        lifecycle::accept,
        lifecycle::pick,
        lifecycle::pack,
        lifecycle::ship,
        lifecycle::deliver,
        lifecycle::reject,
        lifecycle::warehouse_fulfillments,
        lifecycle::get_return,
        lifecycle::receive,
        lifecycle::close_return,
        lifecycle::decline_return,
        routing::get,
        routing::put,
        routing::delete,
        simulate::simulate,
        feed::connect,
        feed::stats,
        incoming::create,
        incoming::list,
        incoming::get,
        incoming::receive,
        incoming::close,
        ledger::list,
    ),
    components(schemas(
        ErrorBody,
        ErrorCode,
        wire::ServerMsg,
        wire::FeedEvent,
        wire::TopicSnapshot,
    )),
    modifiers(&Errors, &OptionalBodies, &Untagged, &Security, &GenericErrors),
    tags(
        (name = "meta", description = "Health and this document"),
        (name = "warehouses"),
        (name = "skus", description = "SKUs and their stock"),
        (name = "reservations", description = "Holds on stock, with a time to live"),
        (name = "orders"),
        (name = "lifecycle", description = "An order's life after placement: payments, holds, fulfilment by warehouses and 3PLs, returns"),
        (name = "routing", description = "Which warehouses orders come from: the rule chains in force"),
        (name = "feed", description = "The live feed over a WebSocket"),
    )
)]
struct ApiDoc;

/// The details an error may carry besides `code` and `message`: name,
/// whether a string (else a non-negative integer), meaning.
const ERROR_DETAILS: &[(&str, bool, &str)] = &[
    ("field", true, "`invalid_field`: the field at fault"),
    ("index", false, "`reservations:batch`: the item at fault"),
    ("available", false, "`insufficient_stock`: what is available"),
    ("limit", false, "`purchase_limit_exceeded`: the per-customer limit; `payload_too_large`: the body limit in bytes"),
    ("limit_by", true, "`rate_limited`: the limit hit: `key`, `client_ip` or `customer`"),
    ("retry_after_s", false, "`rate_limited`: seconds to wait, also sent as `Retry-After`"),
    ("used", false, "`purchase_limit_exceeded`: what the customer already holds or bought"),
    ("on_hand", false, "`stock_changed`, `stock_below_committed`: the row's on_hand"),
    ("committed", false, "`stock_below_committed`: reserved plus allocated"),
    ("max", false, "`quantity_too_large`: qty_max"),
    ("status", true, "`order_not_cancellable`, `order_not_reroutable`, `invalid_transition`: the current status"),
    ("subject", true, "`invalid_transition`: `order`, `fulfillment` or `return`"),
    ("command", true, "`invalid_transition`, `quantity_unavailable`: the command refused"),
    ("reason", true, "`order_on_hold`: why the order is held"),
    ("open", false, "`payment_refused`: the open authorization a void must match"),
    ("captured", false, "`payment_refused`: what was captured already"),
    ("payment_status", true, "`payment_refused`: the order's payment status"),
    ("sku", true, "`quantity_unavailable`: the line at fault"),
    ("lag_events", false, "`ledger_behind`: how many events the stock ledger is behind the log"),
];

/// Every error: `{code, message}` and, depending on the code, details such
/// as `field`, `index`, `available`, `limit`, `used`, `on_hand`, `max`.
pub struct ErrorBody;

impl PartialSchema for ErrorBody {
    fn schema() -> RefOr<Schema> {
        let mut body = ObjectBuilder::new()
            .description(Some(
                "An error: a stable `code` (see `ErrorCode`), a human-readable `message`, \
                 and details that depend on the code (`field`, `index`, `available`, `limit`, \
                 `used`, `on_hand`, `committed`, `max`, `status`).",
            ))
            .property(
                "code",
                utoipa::openapi::Ref::from_schema_name(ErrorCode::name()),
            )
            .property(
                "message",
                ObjectBuilder::new().schema_type(SchemaType::Type(Type::String)),
            )
            .required("code")
            .required("message");
        for (name, is_string, description) in ERROR_DETAILS {
            let schema_type = if *is_string {
                Type::String
            } else {
                Type::Integer
            };
            let mut detail = ObjectBuilder::new()
                .schema_type(SchemaType::Type(schema_type))
                .description(Some(*description));
            if !*is_string {
                detail = detail.minimum(Some(0));
            }
            body = body.property(*name, detail);
        }
        // `insufficient_stock` from an order that no routing plan places.
        let line = ObjectBuilder::new()
            .property(
                "index",
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::Integer))
                    .minimum(Some(0))
                    .description(Some("The line's index in the order's `lines`")),
            )
            .property(
                "sku",
                ObjectBuilder::new().schema_type(SchemaType::Type(Type::String)),
            )
            .property(
                "qty",
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::Integer))
                    .minimum(Some(0)),
            )
            .required("index")
            .required("sku")
            .required("qty");
        body = body.property(
            "lines",
            utoipa::openapi::ArrayBuilder::new()
                .items(line)
                .description(Some(
                    "`insufficient_stock` for an order: the lines no routing plan places",
                )),
        );
        body.into()
    }
}

impl ToSchema for ErrorBody {}

impl PartialSchema for ErrorCode {
    fn schema() -> RefOr<Schema> {
        let names: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        let mut table = String::from(
            "Every error code, with its HTTP status and meaning. A code is never renamed or \
             reused.\n\n| code | status | meaning |\n| --- | --- | --- |\n",
        );
        for c in ErrorCode::ALL {
            table.push_str(&format!(
                "| `{}` | {} | {} |\n",
                c.as_str(),
                c.status().as_u16(),
                c.meaning()
            ));
        }
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .enum_values(Some(names))
            .description(Some(table))
            .into()
    }
}

impl ToSchema for ErrorCode {}

/// Adds the error answer to every operation, as its `default` response:
/// whatever status an error has, its body is an [`ErrorBody`].
struct Errors;

impl Modify for Errors {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let error = ResponseBuilder::new()
            .description("An error (see `ErrorCode` for every code and its status)")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                        ErrorBody::name(),
                    ))))
                    .build(),
            )
            .build();
        for item in doc.paths.paths.values_mut() {
            for op in operations(item) {
                op.responses
                    .responses
                    .entry("default".to_owned())
                    .or_insert_with(|| RefOr::T(error.clone()));
            }
        }
    }
}

/// Operations whose body may be left out (`POST /v1/orders/{id}/cancel`):
/// their handlers read the raw bytes, so the annotation cannot say it.
const OPTIONAL_BODIES: &[&str] = &["/v1/orders/{id}/cancel"];

struct OptionalBodies;

impl Modify for OptionalBodies {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        for path in OPTIONAL_BODIES {
            if let Some(item) = doc.paths.paths.get_mut(*path) {
                for op in operations(item) {
                    if let Some(body) = op.request_body.as_mut() {
                        body.required = Some(utoipa::openapi::Required::False);
                    }
                }
            }
        }
    }
}

/// Untagged enums whose variants can overlap (`TopicSnapshot`: `holds` is
/// an empty object): utoipa writes them as `oneOf`, which a message that
/// fits two variants breaks; `anyOf` says what serde does.
const UNTAGGED: &[&str] = &["TopicSnapshot"];

struct Untagged;

impl Modify for Untagged {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let Some(components) = doc.components.as_mut() else {
            return;
        };
        for name in UNTAGGED {
            if let Some(RefOr::T(Schema::OneOf(one))) = components.schemas.get(*name) {
                let mut any = AnyOfBuilder::new().description(one.description.clone());
                for item in &one.items {
                    any = any.item(item.clone());
                }
                components
                    .schemas
                    .insert((*name).to_owned(), RefOr::T(Schema::AnyOf(any.build())));
            }
        }
    }
}

/// The routes anyone may call, with or without a key.
const OPEN_PATHS: &[&str] = &["/healthz", "/readyz"];

/// `bearerAuth` (`Authorization: Bearer <key>`), required by every
/// operation but the open ones. With no keys configured the server runs in
/// protected mode and takes loopback clients without one (see the README).
struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            utoipa::openapi::security::SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key (`surge keys new`), sent as `Authorization: Bearer <key>`",
                    ))
                    .build(),
            ),
        );
        for (path, item) in doc.paths.paths.iter_mut() {
            if OPEN_PATHS.contains(&path.as_str()) {
                continue;
            }
            for op in operations(item) {
                op.security = Some(vec![SecurityRequirement::new(
                    "bearerAuth",
                    Vec::<String>::new(),
                )]);
            }
        }
    }
}

/// Which operations an error answer that is not theirs alone applies to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Applies {
    /// Every operation.
    All,
    /// Operations that need a key.
    Secured,
    /// Operations that take a body.
    WithBody,
}

/// The answers any operation may give before (or besides) its handler: a
/// refused key, a body too large or not JSON, a request too slow, too many
/// requests, headers too large, the server overloaded or starting. Listed
/// on every operation they apply to, so clients and checkers know them;
/// an operation's own description of a status is kept.
const GENERIC_ERRORS: &[(&str, Applies, &str)] = &[
    ("401", Applies::Secured, "`unauthenticated`: no API key or an unknown one (with no keys configured: a client not on this machine)"),
    ("403", Applies::Secured, "`forbidden`: the key's scopes do not allow this request"),
    ("408", Applies::All, "The request or its body did not arrive in time"),
    ("413", Applies::WithBody, "`payload_too_large`: the body exceeds `http_body_bytes_max`"),
    ("415", Applies::WithBody, "`unsupported_media_type`: the body is not `application/json`"),
    ("429", Applies::All, "Too many requests: retry after `Retry-After` seconds"),
    ("431", Applies::All, "The request's headers are too large or too many"),
    ("503", Applies::All, "`overloaded`, `storage_unavailable`, `starting` or another refusal to take work now: retry"),
];

struct GenericErrors;

impl Modify for GenericErrors {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                            ErrorBody::name(),
                        ))))
                        .build(),
                )
                .build()
        };
        for (path, item) in doc.paths.paths.iter_mut() {
            let open = OPEN_PATHS.contains(&path.as_str());
            for op in operations(item) {
                let with_body = op.request_body.is_some();
                for (status, applies, description) in GENERIC_ERRORS {
                    let applies = match applies {
                        Applies::All => true,
                        Applies::Secured => !open,
                        Applies::WithBody => with_body,
                    };
                    if applies {
                        op.responses
                            .responses
                            .entry((*status).to_owned())
                            .or_insert_with(|| RefOr::T(error(description)));
                    }
                }
            }
        }
    }
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.options.as_mut(),
        item.head.as_mut(),
        item.patch.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::api::routes::{Kind, Registered};
    use crate::config::Config;
    use serde_json::Value;

    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];

    /// The routes `api::configure` registers, walked from its route table.
    fn registered() -> Vec<Registered> {
        let config = Config::default_config();
        let mut table = Vec::new();
        let _app =
            actix_web::App::new().configure(|cfg| table = crate::api::register(cfg, &config));
        table
    }

    fn doc() -> Value {
        serde_json::from_slice(json()).unwrap()
    }

    /// Every API route is in the document with its method, and the document
    /// names no operation that is not served.
    #[test]
    fn every_route_is_documented_and_nothing_else() {
        let table = registered();
        let served: BTreeSet<(String, String)> = table
            .iter()
            .filter(|r| r.kind == Kind::Api)
            .map(|r| (r.method.as_str().to_ascii_lowercase(), r.path.clone()))
            .collect();
        assert!(
            served.contains(&("post".into(), "/v1/reservations".into())),
            "the table records the routes: {served:?}"
        );
        assert!(table.iter().any(|r| r.kind == Kind::Asset && r.path == "/"));
        let doc = doc();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for m in METHODS {
                if item.get(m).is_some() {
                    documented.insert((m.to_owned(), path.clone()));
                }
            }
        }
        let missing: Vec<_> = served.difference(&documented).collect();
        let phantom: Vec<_> = documented.difference(&served).collect();
        assert!(
            missing.is_empty() && phantom.is_empty(),
            "routes served but not in /v1/openapi.json: {missing:?}; documented but not served: {phantom:?}"
        );
        // Each route once: a second registration would never be reached.
        assert_eq!(
            served.len(),
            table.iter().filter(|r| r.kind == Kind::Api).count()
        );
    }

    /// Every operation has a unique id and answers errors as `ErrorBody`.
    #[test]
    fn operations_have_ids_and_the_error_answer() {
        let doc = doc();
        let mut ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for m in METHODS {
                let Some(op) = item.get(m) else { continue };
                let id = op["operationId"].as_str().unwrap().to_owned();
                assert!(ids.insert(id.clone()), "operationId {id} twice");
                assert_eq!(
                    op["responses"]["default"]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{m} {path}"
                );
            }
        }
    }

    /// Every operation but the open ones needs `bearerAuth`; every one
    /// lists the answers that do not depend on its handler.
    #[test]
    fn security_and_generic_errors_are_on_every_operation() {
        let doc = doc();
        let scheme = &doc["components"]["securitySchemes"]["bearerAuth"];
        assert_eq!(scheme["type"], "http");
        assert_eq!(scheme["scheme"], "bearer");
        let mut secured = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for m in METHODS {
                let Some(op) = item.get(m) else { continue };
                let open = OPEN_PATHS.contains(&path.as_str());
                let security = &op["security"];
                if open {
                    assert!(security.is_null(), "{m} {path} is open");
                } else {
                    assert_eq!(
                        security,
                        &serde_json::json!([{"bearerAuth": []}]),
                        "{m} {path}"
                    );
                    secured += 1;
                }
                let responses = &op["responses"];
                for status in ["408", "429", "431", "503"] {
                    assert!(responses.get(status).is_some(), "{m} {path} {status}");
                }
                for status in ["401", "403"] {
                    assert_eq!(
                        responses.get(status).is_some(),
                        !open,
                        "{m} {path} {status}"
                    );
                }
                let body = op.get("requestBody").is_some();
                for status in ["413", "415"] {
                    assert_eq!(responses.get(status).is_some(), body, "{m} {path} {status}");
                }
            }
        }
        assert!(secured > 10, "{secured}");
        // A status an operation describes itself keeps its description.
        assert_eq!(
            doc["paths"]["/healthz"]["get"]["responses"]["503"]["content"]["application/json"]
                ["schema"]["$ref"],
            "#/components/schemas/Health"
        );
    }

    /// Unsigned integers say so, so generated values fit what the server
    /// reads (a `u64` goes past `int64`).
    #[test]
    fn unsigned_integers_are_uint64_and_not_negative() {
        let doc = doc();
        let schemas = &doc["components"]["schemas"];
        for (schema, field) in [
            ("ReserveBody", "qty"),
            ("ExtendBody", "ttl_ms"),
            ("SkuBody", "per_customer_limit"),
            ("AdjustmentBody", "set_on_hand"),
            ("LineView", "qty"),
        ] {
            let f = &schemas[schema]["properties"][field];
            assert_eq!(f["format"], "uint64", "{schema}.{field}: {f}");
            assert!(f["minimum"].as_u64().is_some(), "{schema}.{field}: {f}");
            let t = &f["type"];
            assert!(
                t == "integer" || t.as_array().is_some_and(|a| a.contains(&"integer".into())),
                "{schema}.{field}: {f}"
            );
        }
        assert_eq!(
            schemas["AdjustmentBody"]["properties"]["delta"]["format"],
            "int64"
        );
    }

    /// The error schema names every code, and its description every
    /// code's status and meaning.
    #[test]
    fn error_schema_lists_every_code() {
        let doc = doc();
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["ErrorBody"]["properties"]["code"]["$ref"],
            "#/components/schemas/ErrorCode"
        );
        let code = &schemas["ErrorCode"];
        let listed: BTreeSet<&str> = code["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let all: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(listed, all);
        let table = code["description"].as_str().unwrap();
        for c in ErrorCode::ALL {
            let row = format!("| `{}` | {} | {} |", c, c.status().as_u16(), c.meaning());
            assert!(table.contains(&row), "{row}");
        }
    }
}
