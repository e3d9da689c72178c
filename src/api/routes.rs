//! The route table: every route is registered through [`Routes`], which
//! remembers its method and full path as it registers it. The OpenAPI test
//! walks that record, so a route cannot be served without being documented
//! (and the document cannot name a route that is not served).

use actix_web::dev::Handler;
use actix_web::http::Method;
use actix_web::{web, FromRequest, Responder};

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
        self.cfg.route(path, web::method(method).to(handler));
        self
    }
}
