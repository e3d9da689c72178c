//! Who may call what: the one table from routes to the scopes they need
//! ([`ROUTES`]), and the check every request passes before routing
//! ([`Guard::check`]): protected mode without keys, `Authorization: Bearer`
//! with them. A route missing from the table needs `admin` (and a tidy test
//! fails until it is added).
//!
//! Two rules need the request itself and are finished by the handler with
//! what the guard leaves in the request's extensions: a `warehouse:<id>`
//! key may adjust only that warehouse's stock ([`check_warehouse`], the
//! warehouse is in the body) and a `feed:<prefix>` key may subscribe only to
//! topics under its prefixes ([`FeedTopics`], also in-band subscriptions).
//!
//! Every keyed request also carries its key as an [`app::Caller`]: its name
//! is recorded as the creator of the holds and orders it makes, and a key
//! let in through `storefront` alone (not `read`, not `admin`) sees and
//! uses only its own ([`caller`]).
//!
//! A browser cannot send `Authorization: Bearer` when it loads the
//! dashboard or opens its WebSocket, so those routes ([`BASIC_ROUTES`])
//! also take HTTP Basic with the key as the password (any user name): a
//! 401 on the dashboard's files asks with `WWW-Authenticate: Basic
//! realm="surge"`, the browser prompts, then resends the credentials with
//! every request to the server, the feed's WebSocket handshake included.
//! Because it resends them to any request, cross-site ones too, no route
//! that changes anything takes Basic.

use super::error::{ApiError, ErrorCode};
use crate::app::Caller;
use crate::auth::{Key, Keyring, Scope};
use crate::config::Config;
use actix_web::dev::ServiceRequest;
use actix_web::http::{header, Method};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, ResponseError};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Besides `admin`, who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allow {
    /// Anyone, with or without a key, in every mode (health checks).
    Open,
    /// Any configured key.
    AnyKey,
    Storefront,
    Read,
    /// A `feed` or `feed:<prefix>` key (topics checked by the feed).
    Feed,
    /// A `warehouse:<id>` key whose id is the path's last `{..}` segment.
    WarehouseInPath,
    /// A `warehouse:<id>` key; the handler checks the body's warehouse.
    WarehouseInBody,
}

/// Every route: method, path pattern (`{..}` matches one segment), and who
/// besides `admin` may call it. `HEAD` is checked as `GET`.
pub const ROUTES: &[(&str, &str, &[Allow])] = {
    use Allow::*;
    &[
        ("GET", "/healthz", &[Open]),
        ("GET", "/readyz", &[Open]),
        ("GET", "/metrics", &[Read]),
        // The dashboard's static files (its data comes from the feed).
        ("GET", "/", &[AnyKey]),
        ("GET", "/assets/{file}", &[AnyKey]),
        ("GET", "/v1/warehouses", &[Read]),
        ("PUT", "/v1/warehouses/{id}", &[]),
        ("GET", "/v1/warehouses/{id}", &[Read, WarehouseInPath]),
        ("PUT", "/v1/skus/{sku}", &[]),
        ("PATCH", "/v1/skus/{sku}", &[]),
        ("GET", "/v1/skus/{sku}/stock", &[Read, Storefront]),
        ("GET", "/v1/skus/{sku}/ledger", &[Read]),
        ("POST", "/v1/stock/adjustments", &[WarehouseInBody]),
        ("POST", "/v1/reservations", &[Storefront]),
        ("POST", "/v1/reservations:batch", &[Storefront]),
        ("GET", "/v1/reservations/{id}", &[Read, Storefront]),
        ("DELETE", "/v1/reservations/{id}", &[Storefront]),
        ("POST", "/v1/reservations/{id}/extend", &[Storefront]),
        ("POST", "/v1/orders", &[Storefront]),
        ("GET", "/v1/orders", &[Read, Storefront]),
        ("GET", "/v1/orders/{id}", &[Read, Storefront]),
        ("POST", "/v1/orders/{id}/cancel", &[Storefront]),
        ("POST", "/v1/orders/{id}/reroute", &[]),
        // Payments and holds come from the payment provider's and the
        // operations team's integrations: admin.
        ("POST", "/v1/orders/{id}/payments", &[]),
        ("POST", "/v1/orders/{id}/hold", &[]),
        ("POST", "/v1/orders/{id}/release", &[]),
        ("POST", "/v1/orders/{id}/returns", &[Storefront]),
        // A warehouse key acts on its own warehouse's fulfilments only
        // (the handler checks the fulfilment's warehouse).
        ("GET", "/v1/fulfillments/{id}", &[Read, WarehouseInBody]),
        ("POST", "/v1/fulfillments/{id}/accept", &[WarehouseInBody]),
        ("POST", "/v1/fulfillments/{id}/pick", &[WarehouseInBody]),
        ("POST", "/v1/fulfillments/{id}/pack", &[WarehouseInBody]),
        ("POST", "/v1/fulfillments/{id}/ship", &[WarehouseInBody]),
        ("POST", "/v1/fulfillments/{id}/deliver", &[WarehouseInBody]),
        ("POST", "/v1/fulfillments/{id}/reject", &[WarehouseInBody]),
        (
            "GET",
            "/v1/warehouses/{id}/fulfillments",
            &[Read, WarehouseInPath],
        ),
        ("GET", "/v1/returns/{id}", &[Read, Storefront]),
        ("POST", "/v1/returns/{id}/receive", &[WarehouseInBody]),
        ("POST", "/v1/returns/{id}/close", &[]),
        ("POST", "/v1/returns/{id}/decline", &[]),
        ("GET", "/v1/routing/rules", &[Read]),
        ("PUT", "/v1/routing/rules", &[]),
        ("DELETE", "/v1/routing/rules", &[]),
        ("POST", "/v1/routing/simulate", &[Read, Storefront]),
        ("GET", "/v1/feed", &[Feed]),
        ("GET", "/v1/feed/stats", &[Read, Feed]),
        ("GET", "/v1/openapi.json", &[AnyKey]),
        // Incoming stock: a warehouse key announces and receives into its
        // own warehouse only (the handler checks).
        ("POST", "/v1/stock/incoming", &[WarehouseInBody]),
        ("GET", "/v1/stock/incoming", &[Read]),
        ("GET", "/v1/stock/incoming/{id}", &[Read]),
        (
            "POST",
            "/v1/stock/incoming/{id}/receive",
            &[WarehouseInBody],
        ),
        ("POST", "/v1/stock/incoming/{id}/close", &[WarehouseInBody]),
    ]
};

/// The routes that also take HTTP Basic (the key as the password): the
/// dashboard's files and the feed it opens. Only GETs: a browser attaches
/// Basic credentials it remembers to cross-site requests too.
pub const BASIC_ROUTES: &[(&str, &str)] =
    &[("GET", "/"), ("GET", "/assets/{file}"), ("GET", "/v1/feed")];

/// Of those, the ones whose 401 asks a browser to log in (a WebSocket
/// cannot show a login prompt; the page it is opened from did).
const LOGIN_ROUTES: &[(&str, &str)] = &[("GET", "/"), ("GET", "/assets/{file}")];

/// The realm of the dashboard's login.
pub const REALM: &str = "surge";

/// Whether the table has a row for `method` and `pattern` (parameter names
/// aside): the tidy test that walks the registered routes asks.
pub fn has_row(method: &str, pattern: &str) -> bool {
    fn shape(p: &str) -> String {
        p.split('/')
            .map(|s| if s.starts_with('{') { "{}" } else { s })
            .collect::<Vec<_>>()
            .join("/")
    }
    // A route registered with a fixed path (a dashboard file) may fall
    // under a row with a `{..}` segment.
    let fixed = |p: &str| {
        p.split('/').count() == pattern.split('/').count()
            && p.split('/')
                .zip(pattern.split('/'))
                .all(|(want, seg)| want == seg || (want.starts_with('{') && !seg.is_empty()))
    };
    ROUTES
        .iter()
        .any(|(m, p, _)| m.eq_ignore_ascii_case(method) && (shape(p) == shape(pattern) || fixed(p)))
}

/// Who needs admin: a route the table does not know.
const ADMIN_ONLY: &[Allow] = &[];

/// The table's row for a request: who may call it, and the path's last
/// `{..}` segment (the warehouse of `WarehouseInPath`).
pub fn rule<'p>(method: &Method, path: &'p str) -> (&'static [Allow], Option<&'p str>) {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    for (m, pattern, allow) in ROUTES {
        if *m != method {
            continue;
        }
        if let Some(param) = matches(pattern, path) {
            return (allow, param);
        }
    }
    (ADMIN_ONLY, None)
}

/// Whether `path` matches `pattern` (`{..}` is one non-empty segment):
/// `Some` with the last `{..}` segment, if any.
fn matches<'p>(pattern: &str, path: &'p str) -> Option<Option<&'p str>> {
    let mut param = None;
    let mut segments = path.split('/');
    for want in pattern.split('/') {
        match segments.next() {
            Some(seg) if want.starts_with('{') && !seg.is_empty() => param = Some(seg),
            Some(seg) if seg == want => {}
            _ => return None,
        }
    }
    segments.next().is_none().then_some(param)
}

/// Whether a request is one of `routes` (`HEAD` as `GET`).
fn listed(routes: &[(&str, &str)], method: &Method, path: &str) -> bool {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    routes
        .iter()
        .any(|(m, p)| *m == method && matches(p, path).is_some())
}

/// How requests are let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Keys are configured: every route but the open ones needs one.
    Keys,
    /// No keys, protected mode: loopback clients only.
    LoopbackOnly,
    /// No keys, protected mode off: everyone.
    Unprotected,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Keys => "api keys required",
            Mode::LoopbackOnly => "protected (no keys configured: loopback clients only)",
            Mode::Unprotected => "UNPROTECTED (no keys, protected_mode = false: anyone is served)",
        }
    }
}

/// The warehouses a `warehouse:<id>` key (not admin) is limited to; set by
/// the guard for the handler of a `WarehouseInBody` route.
#[derive(Debug, Clone)]
pub struct WarehouseLimit(pub Vec<String>);

/// The topic prefixes a feed key (not admin, not plain `feed`) is limited
/// to; set by the guard on `GET /v1/feed`.
#[derive(Debug, Clone)]
pub struct FeedTopics(pub Vec<String>);

impl FeedTopics {
    pub fn permits(&self, topic: &str) -> bool {
        self.0.iter().any(|p| topic.starts_with(p.as_str()))
    }
}

/// The name of the API key a request authenticated with; set by the guard.
#[derive(Debug, Clone)]
pub struct KeyName(pub Arc<str>);

/// Checks every request before routing.
#[derive(Debug, Clone)]
pub struct Guard {
    keys: Arc<Keyring>,
    mode: Mode,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct GuardError(String);

/// A request the guard refuses: the error, and on the dashboard's files a
/// 401 that asks a browser to log in with Basic.
#[derive(Debug)]
pub struct Refusal {
    pub error: ApiError,
    login: bool,
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Refusal {
            error,
            login: false,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl ResponseError for Refusal {
    fn status_code(&self) -> actix_web::http::StatusCode {
        self.error.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = self.error.error_response();
        if self.login && self.error.code == ErrorCode::Unauthenticated {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static(r#"Basic realm="surge", charset="UTF-8""#),
            );
        }
        res
    }
}

impl Guard {
    /// The guard for `config`, for a server listening on `listen`; refuses
    /// a non-loopback address without keys unless the config allows it.
    pub fn new(config: &Config, listen: SocketAddr) -> Result<Guard, GuardError> {
        let keys = Keyring::from_config(&config.keys).map_err(GuardError)?;
        let mode = if !keys.is_empty() {
            Mode::Keys
        } else if config.protected_mode {
            Mode::LoopbackOnly
        } else {
            Mode::Unprotected
        };
        if mode != Mode::Keys
            && !is_loopback(listen.ip())
            && !config.allow_non_loopback_without_keys
        {
            return Err(GuardError(format!(
                "refusing to listen on {listen} with no API keys configured: anyone who can \
                 reach it could change stock and orders. Add a key (`surge keys new --name admin \
                 --scope admin`, then paste its lines into the config), listen on 127.0.0.1, or \
                 set allow_non_loopback_without_keys = true"
            )));
        }
        Ok(Guard {
            keys: Arc::new(keys),
            mode,
        })
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Lets the request through (with its [`Caller`] and any limit for its
    /// handler in its extensions) or answers 401/403.
    pub fn check(&self, req: &ServiceRequest) -> Result<(), Refusal> {
        // Without keys, a loopback client (the default set-up) passes
        // before any route is looked up.
        let loopback = || req.peer_addr().is_some_and(|a| is_loopback(a.ip()));
        match self.mode {
            Mode::Unprotected => return Ok(()),
            Mode::LoopbackOnly if loopback() => return Ok(()),
            _ => {}
        }
        let (allow, param) = rule(req.method(), req.path());
        if allow.contains(&Allow::Open) {
            return Ok(());
        }
        match self.mode {
            Mode::Unprotected => return Ok(()),
            // A remote client: loopback ones passed above.
            Mode::LoopbackOnly => {
                return Err(Refusal::from(ApiError::new(
                    ErrorCode::Unauthenticated,
                    "no API keys are configured, so only clients on this machine (loopback) \
                     are served. Make a key with `surge keys new --name NAME --scope SCOPE`, \
                     add the printed [[keys]] lines to the server's config and restart; then \
                     send `Authorization: Bearer <key>`",
                )));
            }
            Mode::Keys => {}
        }
        let basic = listed(BASIC_ROUTES, req.method(), req.path());
        let key = self.authenticate(req, basic).map_err(|error| Refusal {
            error,
            login: listed(LOGIN_ROUTES, req.method(), req.path()),
        })?;
        let caller = |own_only| Caller {
            key: Some(key.name.clone()),
            own_only,
        };
        // For the per-key rate limit, which runs after this check.
        req.extensions_mut()
            .insert(KeyName(Arc::from(key.name.as_str())));
        if key.is_admin() {
            req.extensions_mut().insert(caller(false));
            return Ok(());
        }
        let mut ok = false;
        for a in allow {
            match a {
                Allow::Open | Allow::AnyKey => ok = true,
                // Let in as a storefront (not as a reader): its own only.
                Allow::Storefront if key.has(&Scope::Storefront) => {
                    req.extensions_mut().insert(caller(true));
                    return Ok(());
                }
                Allow::Storefront => {}
                Allow::Read => ok |= key.has(&Scope::Read),
                Allow::Feed if key.has_feed() => {
                    if let Some(prefixes) = key.feed_prefixes() {
                        req.extensions_mut().insert(FeedTopics(prefixes));
                    }
                    ok = true;
                }
                Allow::WarehouseInPath => {
                    ok |= param.is_some_and(|id| key.warehouses().any(|w| w == id));
                }
                Allow::WarehouseInBody if key.has_warehouse() => {
                    let mine = key.warehouses().map(String::from).collect();
                    req.extensions_mut().insert(WarehouseLimit(mine));
                    ok = true;
                }
                Allow::Feed | Allow::WarehouseInBody => {}
            }
            if ok {
                req.extensions_mut().insert(caller(false));
                return Ok(());
            }
        }
        let scopes: Vec<String> = key.scopes.iter().map(|s| s.to_string()).collect();
        Err(Refusal::from(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "key `{}` (scopes: {}) may not {} {}",
                key.name,
                scopes.join(", "),
                req.method(),
                req.path()
            ),
        )))
    }

    /// The key of `Authorization: Bearer <key>`, or with `basic` also of
    /// `Authorization: Basic` (the key is the password).
    fn authenticate(&self, req: &ServiceRequest, basic: bool) -> Result<&Key, ApiError> {
        let expected = if basic {
            "`Bearer <key>`, or Basic with the key as the password"
        } else {
            "`Bearer <key>`"
        };
        let header = req.headers().get(header::AUTHORIZATION).ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthenticated,
                format!("this route needs an API key: send `Authorization: {expected}`"),
            )
        })?;
        let presented = header
            .to_str()
            .ok()
            .and_then(|h| {
                let (scheme, rest) = h.split_once(' ')?;
                if scheme.eq_ignore_ascii_case("bearer") {
                    Some(rest.trim().to_owned())
                } else if basic && scheme.eq_ignore_ascii_case("basic") {
                    basic_password(rest.trim())
                } else {
                    None
                }
            })
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unauthenticated,
                    format!("the Authorization header must be {expected}"),
                )
            })?;
        let cache = req.conn_data::<KeyCache>();
        if let Some(key) = cache
            .and_then(|c| c.recall(&presented))
            .and_then(|i| self.keys.get(i))
        {
            return Ok(key);
        }
        // The key itself never appears in a message or a log line.
        let i = self
            .keys
            .find_index(&presented)
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, "unknown API key"))?;
        if let Some(c) = cache {
            c.remember(presented, i);
        }
        self.keys
            .get(i)
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, "unknown API key"))
    }
}

/// The last key a connection presented that was found, and which it is:
/// a client on a kept-alive connection sends the same key with every
/// request, and its hash need not be taken again. The server puts one in
/// each connection's extensions. Comparing with it takes time that depends
/// on the bytes, but it only ever holds a key this connection already
/// proved it has; an unknown key is never remembered.
#[derive(Debug, Default)]
pub struct KeyCache(std::cell::RefCell<Option<(String, usize)>>);

impl KeyCache {
    fn recall(&self, presented: &str) -> Option<usize> {
        match &*self.0.borrow() {
            Some((key, i)) if key == presented => Some(*i),
            _ => None,
        }
    }

    fn remember(&self, presented: String, index: usize) {
        *self.0.borrow_mut() = Some((presented, index));
    }
}

/// The password of Basic credentials (`base64(user ":" password)`).
fn basic_password(credentials: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(credentials)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (_user, password) = text.split_once(':')?;
    Some(password.to_owned())
}

/// The key behind the request, as the application sees it (no key: sees
/// everything, records no creator).
pub fn caller(req: &HttpRequest) -> Caller {
    req.extensions()
        .get::<Caller>()
        .cloned()
        .unwrap_or_else(Caller::anyone)
}

/// Refuses a `warehouse:<id>` key (limited by the guard) on any other
/// warehouse; others pass.
pub fn check_warehouse(req: &HttpRequest, warehouse: &str) -> Result<(), ApiError> {
    match req.extensions().get::<WarehouseLimit>() {
        Some(WarehouseLimit(mine)) if !mine.iter().any(|w| w == warehouse) => Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "this key may adjust the stock of warehouse {} only, not {warehouse}",
                mine.join(", ")
            ),
        )),
        _ => Ok(()),
    }
}

/// The warehouses the request's key is limited to (a `warehouse:<id>` key
/// on a `WarehouseInBody` route), if any.
pub fn warehouse_limit(req: &HttpRequest) -> Option<Vec<String>> {
    req.extensions()
        .get::<WarehouseLimit>()
        .map(|WarehouseLimit(mine)| mine.clone())
}

/// The topic prefixes the request's key is limited to, if any.
pub fn feed_topics(req: &HttpRequest) -> Option<FeedTopics> {
    req.extensions().get::<FeedTopics>().cloned()
}

/// Loopback, including an IPv4 loopback address mapped into IPv6.
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rows_match_by_segment() {
        let r = |m: Method, p: &'static str| rule(&m, p);
        assert_eq!(r(Method::GET, "/healthz").0, &[Allow::Open]);
        assert_eq!(r(Method::HEAD, "/healthz").0, &[Allow::Open]);
        assert_eq!(
            r(Method::POST, "/v1/reservations:batch").0,
            &[Allow::Storefront]
        );
        let (allow, param) = r(Method::GET, "/v1/warehouses/berlin");
        assert_eq!(allow, &[Allow::Read, Allow::WarehouseInPath]);
        assert_eq!(param, Some("berlin"));
        // Unknown routes, methods and longer paths need admin.
        assert!(r(Method::GET, "/v1/warehouses/berlin/x").0.is_empty());
        assert!(r(Method::PATCH, "/v1/skus/a").0.is_empty());
        assert!(r(Method::GET, "/v1/nope").0.is_empty());
        assert!(r(Method::GET, "/v1/warehouses/").0.is_empty());
        assert!(r(Method::GET, "/healthz/").0.is_empty());
    }

    #[test]
    fn loopback_includes_mapped_v4() {
        assert!(is_loopback("127.0.0.1".parse().unwrap()));
        assert!(is_loopback("127.1.2.3".parse().unwrap()));
        assert!(is_loopback("::1".parse().unwrap()));
        assert!(is_loopback("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!is_loopback("0.0.0.0".parse().unwrap()));
        assert!(!is_loopback("10.0.0.1".parse().unwrap()));
        assert!(!is_loopback("::ffff:10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn a_non_loopback_listen_without_keys_is_refused_unless_allowed() {
        let mut c = Config::default_config();
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert!(Guard::new(&c, any)
            .unwrap_err()
            .to_string()
            .contains("surge keys new"));
        assert_eq!(Guard::new(&c, local).unwrap().mode(), Mode::LoopbackOnly);
        c.allow_non_loopback_without_keys = true;
        assert_eq!(Guard::new(&c, any).unwrap().mode(), Mode::LoopbackOnly);
        c.protected_mode = false;
        assert_eq!(Guard::new(&c, any).unwrap().mode(), Mode::Unprotected);
        c.allow_non_loopback_without_keys = false;
        assert!(Guard::new(&c, any).is_err());
        c.keys.push(crate::auth::KeyConfig {
            name: "ops".into(),
            sha256: crate::auth::hash_hex("k"),
            scopes: vec!["admin".into()],
        });
        assert_eq!(Guard::new(&c, any).unwrap().mode(), Mode::Keys);
    }
}
