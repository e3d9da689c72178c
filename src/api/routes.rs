//! The route table: every route is registered through [`Routes`], which
//! remembers its method and full path as it registers it. The OpenAPI test
//! walks that record, so a route cannot be served without being documented
//! (and the document cannot name a route that is not served).
//!
//! A `GET` route also answers `HEAD` (same status and headers, no body);
//! the record keeps it as one `GET` operation. [`Methods`], built from the
//! record, tells a path the server knows (405 with `Allow`) from one it
//! does not (404).

use actix_web::dev::{Handler, ResourceDef};
use actix_web::http::Method;
use actix_web::{guard, web, FromRequest, Responder};
use std::sync::Arc;

/// What a registered route is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Part of the API: documented in `/v1/openapi.json`.
    Api,
    /// A file of the dashboard (HTML, scripts, styles): not part of the API.
    Asset,
}

/// One registered route: method, full path (with `{param}` segments as
/// actix writes them, which is also how OpenAPI writes them) and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub method: Method,
    pub path: String,
    pub kind: Kind,
}

/// Registers routes on an actix `ServiceConfig` and records each one.
/// Registration is the same as `cfg.route(path, web::method(m).to(h))`:
/// one resource per call, tried in the order of the calls.
pub struct Routes<'a> {
    cfg: &'a mut web::ServiceConfig,
    prefix: String,
    table: &'a mut Vec<Registered>,
}

impl<'a> Routes<'a> {
    pub fn new(cfg: &'a mut web::ServiceConfig, table: &'a mut Vec<Registered>) -> Self {
        Self {
            cfg,
            prefix: String::new(),
            table,
        }
    }

    /// The actix config underneath, for what is not a route (app data).
    pub fn config(&mut self) -> &mut web::ServiceConfig {
        self.cfg
    }

    /// Routes under `prefix`, registered by `f` as one actix scope.
    pub fn scope(&mut self, prefix: &str, f: impl FnOnce(&mut Routes<'_>)) -> &mut Self {
        let full = format!("{}{prefix}", self.prefix);
        let table = &mut *self.table;
        self.cfg.service(web::scope(prefix).configure(|cfg| {
            f(&mut Routes {
                cfg,
                prefix: full,
                table,
            })
        }));
        self
    }

    /// Any route of the API.
    pub fn add<F, Args>(&mut self, method: Method, path: &str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.register(Kind::Api, method, path, handler)
    }

    /// A dashboard file (not part of the API).
    pub fn asset<F, Args>(&mut self, path: &str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.register(Kind::Asset, Method::GET, path, handler)
    }

    pub fn get<F, Args>(&mut self, path: &str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add(Method::GET, path, handler)
    }

    pub fn post<F, Args>(&mut self, path: &str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add(Method::POST, path, handler)
    }

    pub fn put<F, Args>(&mut self, path: &str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add(Method::PUT, path, handler)
    }

    pub fn patch<F, Args>(&mut self, path: &str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add(Method::PATCH, path, handler)
    }

    pub fn delete<F, Args>(&mut self, path: &str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add(Method::DELETE, path, handler)
    }

    fn register<F, Args>(&mut self, kind: Kind, method: Method, path: &str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.table.push(Registered {
            method: method.clone(),
            path: format!("{}{path}", self.prefix),
            kind,
        });
        let route = if method == Method::GET {
            // HEAD is GET without the body: actix-http leaves the body out
            // of the answer to a HEAD request.
            web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
        } else {
            web::method(method)
        };
        self.cfg.route(path, route.to(handler));
        self
    }
}

/// The methods each registered path pattern answers: the `Allow` of a 405.
#[derive(Debug, Clone)]
pub struct Methods(Arc<Vec<(ResourceDef, Method)>>);

impl Methods {
    pub fn of(table: &[Registered]) -> Self {
        Self(Arc::new(
            table
                .iter()
                .map(|r| (ResourceDef::new(r.path.as_str()), r.method.clone()))
                .collect(),
        ))
    }

    /// Every method some route with a pattern matching `path` answers
    /// (`HEAD` with `GET`), sorted; empty when no route has such a path.
    pub fn allowed(&self, path: &str) -> Vec<Method> {
        let mut out: Vec<Method> = Vec::new();
        for (def, method) in self.0.iter() {
            if def.is_match(path) {
                out.push(method.clone());
                if *method == Method::GET {
                    out.push(Method::HEAD);
                }
            }
        }
        out.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Vec<Registered> {
        [
            (Method::GET, "/v1/warehouses"),
            (Method::PUT, "/v1/warehouses/{id}"),
            (Method::GET, "/v1/warehouses/{id}"),
            (Method::POST, "/v1/reservations"),
            (Method::DELETE, "/v1/reservations/{id}"),
        ]
        .into_iter()
        .map(|(method, path)| Registered {
            method,
            path: path.into(),
            kind: Kind::Api,
        })
        .collect()
    }

    #[test]
    fn allowed_methods_of_a_path() {
        let m = Methods::of(&table());
        let names = |p: &str| {
            m.allowed(p)
                .iter()
                .map(|m| m.as_str().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(names("/v1/warehouses"), ["GET", "HEAD"]);
        assert_eq!(names("/v1/warehouses/w1"), ["GET", "HEAD", "PUT"]);
        assert_eq!(names("/v1/reservations"), ["POST"]);
        assert_eq!(names("/v1/reservations/res_1"), ["DELETE"]);
        assert!(names("/v1/reservations/res_1/x").is_empty());
        assert!(names("/v1/nothing").is_empty());
        assert!(names("/v1/warehouses/").is_empty());
    }
}
