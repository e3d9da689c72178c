//! Browsers and the open web: what every request passes after the auth
//! guard and before routing ([`Browser::check`]), and the answers of the HTTP
//! framework itself made JSON ([`framework_error`]).
//!
//! - **Host** (against DNS rebinding): with `http_allowed_hosts` set, a
//!   request whose `Host` is not listed gets 421 `host_not_allowed`. An
//!   entry `name` allows any port, `name:port` that port only; names
//!   compare case-insensitively, a trailing dot ignored. `/healthz` and
//!   `/readyz` are exempt: probes often name the server by an address
//!   nobody lists, and they change and reveal nothing.
//! - **Content-Encoding** other than absent or `identity`: 415 (the server
//!   decodes no compression, and reading gzip as JSON is not an answer).
//! - **Content-Type** (against cross-site form posts: a page can send a
//!   form as `application/x-www-form-urlencoded`, `multipart/form-data` or
//!   `text/plain` to any site without asking, but never
//!   `application/json`): every POST, PUT and PATCH, with or without a body,
//!   and a DELETE with a body, must say `application/json`, with no
//!   parameter but `charset=utf-8` (any case, quoted or not); else 415
//!   `unsupported_media_type`. A DELETE without a body passes: a page
//!   cannot send a cross-site DELETE without a CORS preflight, which this
//!   server never grants.
//! - **Content-Length** above `http_body_bytes_max`: 413
//!   `payload_too_large` on any route, before a handler (a route that reads
//!   no body would otherwise ignore it).
//!
//! An unauthenticated request is refused by the guard first (401), so a
//! probe learns nothing of these rules without a key.
//!
//! [`check_origin`] is the feed's `Origin` rule (`feed_allowed_origins`),
//! called by its handler.

use super::error::{ApiError, ErrorCode};
use crate::config::Config;
use crate::log_limit::{self, Kind};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, ResponseError};
use std::sync::Arc;

/// The checks of every request, as configured.
#[derive(Debug, Clone)]
pub struct Browser {
    hosts: Arc<[Host]>,
    /// Protected mode with no allow-list: a dotted name other than
    /// `localhost` is refused (see [`Browser::new`]).
    local_names_only: bool,
    body_bytes_max: u64,
    /// The routes' methods: a request no route serves skips the body rules
    /// below, so routing answers it 405 (or 404) rather than 415 or 413.
    methods: Option<super::routes::Methods>,
}

/// Paths the Host allow-list does not apply to.
const HOST_EXEMPT: &[&str] = &["/healthz", "/readyz"];

impl Browser {
    /// In protected mode (no keys: loopback clients let in by address
    /// alone) with no `http_allowed_hosts`, a browser on this machine is a
    /// loopback client whatever page it runs: a page on `evil.example` that
    /// re-points its name at 127.0.0.1 would be served as its own origin.
    /// So there a `Host` must be an address, `localhost` (or a name under
    /// it), or a single-label machine name; a dotted name, the kind an
    /// attacker can point anywhere, is refused unless listed.
    pub fn new(config: &Config) -> Browser {
        Browser {
            hosts: config
                .http_allowed_hosts
                .iter()
                .filter_map(|h| Host::parse(h))
                .collect(),
            local_names_only: config.http_allowed_hosts.is_empty()
                && config.keys.is_empty()
                && config.protected_mode,
            body_bytes_max: config.http_body_bytes_max as u64,
            methods: None,
        }
    }

    /// With the served routes' methods (see `methods`).
    pub fn with_routes(mut self, methods: super::routes::Methods) -> Browser {
        self.methods = Some(methods);
        self
    }

    /// Lets the request through or says why not.
    pub fn check(&self, req: &ServiceRequest) -> Result<(), ApiError> {
        let refused = self.refusal(req);
        if let Err(e) = &refused {
            if let Some(suppressed) = log_limit::admit(Kind::Refused) {
                tracing::debug!(code = e.code.as_str(), suppressed, "{}", e.message);
            }
        }
        refused
    }

    fn refusal(&self, req: &ServiceRequest) -> Result<(), ApiError> {
        if !self.hosts.is_empty() && !HOST_EXEMPT.contains(&req.path()) {
            let host = request_host(req.request());
            if !host.is_some_and(|h| self.hosts.iter().any(|a| a.allows(&h))) {
                return Err(ApiError::new(
                    ErrorCode::HostNotAllowed,
                    "this server does not answer for that Host (http_allowed_hosts)",
                ));
            }
        }
        if self.local_names_only && !HOST_EXEMPT.contains(&req.path()) {
            if let Some(h) = request_host(req.request()) {
                if !h.is_local_name() {
                    return Err(ApiError::new(
                        ErrorCode::HostNotAllowed,
                        "protected mode (no API keys) answers only for localhost, addresses \
                         and single-label names: list this Host in http_allowed_hosts, or \
                         configure API keys",
                    ));
                }
            }
        }
        let body_rules = self.body_rules(req);
        // Looked up only for a request the rules refuse: no cost to others.
        if body_rules.is_err() {
            if let Some(m) = &self.methods {
                if !m.allowed(req.path()).contains(req.method()) {
                    return Ok(());
                }
            }
        }
        body_rules
    }

    /// Encoding, media type and declared length of the request's body.
    fn body_rules(&self, req: &ServiceRequest) -> Result<(), ApiError> {
        let headers = req.headers();
        content_encoding(headers)?;
        let method = req.method();
        let needs_json = method == Method::POST
            || method == Method::PUT
            || method == Method::PATCH
            || (method == Method::DELETE && has_body(headers));
        if needs_json {
            json_content_type(headers)?;
        }
        if let Some(len) = content_length(headers) {
            if len > self.body_bytes_max {
                return Err(ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!(
                        "body of {len} bytes exceeds the limit of {}",
                        self.body_bytes_max
                    ),
                )
                .with("limit", self.body_bytes_max));
            }
        }
        Ok(())
    }
}

fn unsupported(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::UnsupportedMediaType, message)
}

fn content_encoding(headers: &HeaderMap) -> Result<(), ApiError> {
    for value in headers.get_all(header::CONTENT_ENCODING) {
        let ok = value.to_str().is_ok_and(|v| {
            v.split(',')
                .map(str::trim)
                .all(|c| c.is_empty() || c.eq_ignore_ascii_case("identity"))
        });
        if !ok {
            return Err(unsupported(
                "Content-Encoding is not supported: send the body uncompressed",
            ));
        }
    }
    Ok(())
}

/// Whether the request says it has a body.
fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || content_length(headers).is_some_and(|n| n > 0)
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `application/json`, with no parameter but `charset=utf-8`.
fn json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    const EXPECTED: &str = "expected Content-Type: application/json";
    let mut values = headers.get_all(header::CONTENT_TYPE);
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(unsupported(EXPECTED));
    };
    let value = value.to_str().map_err(|_| unsupported(EXPECTED))?;
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(unsupported(EXPECTED));
    }
    for param in parts.map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = param.split_once('=').unwrap_or((param, ""));
        if !name.trim().eq_ignore_ascii_case("charset") {
            return Err(unsupported(format!(
                "{EXPECTED}: parameter `{}` is not supported",
                name.trim()
            )));
        }
        let charset = value.trim();
        let charset = charset
            .strip_prefix('"')
            .and_then(|c| c.strip_suffix('"'))
            .unwrap_or(charset);
        if !charset.eq_ignore_ascii_case("utf-8") {
            return Err(unsupported("JSON bodies must be UTF-8 (charset=utf-8)"));
        }
    }
    Ok(())
}

/// A host name (lower case, no trailing dot) and maybe a port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Host {
    name: String,
    port: Option<u16>,
}

impl Host {
    /// `name`, `name:port`, `[v6]` or `[v6]:port`.
    fn parse(raw: &str) -> Option<Host> {
        let raw = raw.trim();
        let (name, port) = if let Some(rest) = raw.strip_prefix('[') {
            let (inside, after) = rest.split_once(']')?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':')?.parse().ok()?),
            };
            (format!("[{inside}]"), port)
        } else {
            match raw.rsplit_once(':') {
                Some((name, port)) => (name.to_owned(), Some(port.parse().ok()?)),
                None => (raw.to_owned(), None),
            }
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let valid = match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
            Some(v6) => {
                !v6.is_empty()
                    && v6
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() || b":.".contains(&b))
            }
            None => {
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
            }
        };
        valid.then_some(Host { name, port })
    }

    /// An address, `localhost` or a name under it, or a single-label
    /// machine name: none of them a name in a domain someone else controls.
    fn is_local_name(&self) -> bool {
        let n = self.name.as_str();
        n.starts_with('[')
            || n.parse::<std::net::Ipv4Addr>().is_ok()
            || n == "localhost"
            || n.ends_with(".localhost")
            || !n.contains('.')
    }

    /// Whether this allow-list entry lets `req` (a request's Host) in.
    fn allows(&self, req: &Host) -> bool {
        self.name == req.name && (self.port.is_none() || self.port == req.port)
    }
}

/// The request's `Host` header (or the authority of an absolute URI).
fn request_host(req: &HttpRequest) -> Option<Host> {
    match req.headers().get(header::HOST) {
        Some(h) => Host::parse(h.to_str().ok()?),
        None => Host::parse(req.uri().authority()?.as_str()),
    }
}

/// An origin: scheme, host, port (the scheme's default when not written).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

impl Origin {
    fn parse(raw: &str) -> Option<Origin> {
        let (scheme, rest) = raw.trim().split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return None;
        }
        let host = Host::parse(rest)?;
        let port = host.port.or_else(|| default_port(&scheme))?;
        Some(Origin {
            scheme,
            host: host.name,
            port,
        })
    }
}

/// The feed's `Origin` rule: a handshake without `Origin` (not from a
/// browser) passes; with one, it must be in `allowed` (`"*"`: any), or,
/// when `allowed` is empty, be this server's own origin: `http://` or
/// `https://` and the request's `Host`.
pub fn check_origin(req: &HttpRequest, allowed: &[String]) -> Result<(), ApiError> {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    if allowed.iter().any(|a| a == "*") {
        return Ok(());
    }
    let origin = origin.to_str().ok().and_then(Origin::parse);
    let ok = origin.is_some_and(|o| {
        if allowed.is_empty() {
            request_host(req).is_some_and(|h| {
                (o.scheme == "http" || o.scheme == "https")
                    && h.name == o.host
                    && h.port.or_else(|| default_port(&o.scheme)) == Some(o.port)
            })
        } else {
            allowed
                .iter()
                .filter_map(|a| Origin::parse(a))
                .any(|a| a == o)
        }
    });
    if ok {
        return Ok(());
    }
    let e = ApiError::new(
        ErrorCode::OriginNotAllowed,
        "the feed does not accept WebSocket handshakes from this page's origin \
         (feed_allowed_origins)",
    );
    if let Some(suppressed) = log_limit::admit(Kind::Refused) {
        tracing::debug!(code = e.code.as_str(), suppressed, "{}", e.message);
    }
    Err(e)
}

/// Checks `http_allowed_hosts` entries at load.
pub fn validate_hosts(hosts: &[String]) -> Result<(), String> {
    match hosts.iter().find(|h| Host::parse(h).is_none()) {
        Some(h) => Err(format!(
            "`{h}` is not a host name, `name:port`, or `[v6]:port`"
        )),
        None => Ok(()),
    }
}

/// Checks `feed_allowed_origins` entries at load.
pub fn validate_origins(origins: &[String]) -> Result<(), String> {
    match origins
        .iter()
        .find(|o| *o != "*" && Origin::parse(o).is_none())
    {
        Some(o) => Err(format!(
            "`{o}` is not an origin like `https://shop.example.com` (or \"*\")"
        )),
        None => Ok(()),
    }
}

/// The status's code for an error the framework raised (an extractor, the
/// payload reader): 413, 415, 404 and 5xx keep their meaning; any other
/// client error is `bad_request`.
fn framework_code(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        s if s.is_server_error() => ErrorCode::InternalError,
        _ => ErrorCode::BadRequest,
    }
}

/// Replaces an answer carrying an error that is not an [`ApiError`] (one
/// the framework raised: a payload too large for `Bytes`, an unreadable
/// body, a missing extension) by the same status as JSON
/// `{code, message}`; every other answer passes unchanged.
pub fn framework_error(res: ServiceResponse) -> ServiceResponse {
    let Some(err) = res.response().error() else {
        return res;
    };
    if err.as_error::<ApiError>().is_some() {
        return res;
    }
    let status = res.status();
    let mut api = ApiError::new(framework_code(status), err.to_string());
    // Keep the framework's status: a `bad_request` for a 4xx other than
    // 400 says so in its `status`.
    api.status = status;
    let (req, _) = res.into_parts();
    ServiceResponse::new(req, api.error_response())
}

/// [`framework_error`] for an error a service returned instead of an
/// answer (the layers outside render it).
pub fn framework_err(err: actix_web::Error) -> actix_web::Error {
    if err.as_error::<ApiError>().is_some() {
        return err;
    }
    let status = err.as_response_error().status_code();
    let mut api = ApiError::new(framework_code(status), err.to_string());
    api.status = status;
    api.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;
    use actix_web::test::TestRequest;

    fn with(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_static(k),
                HeaderValue::from_static(v),
            );
        }
        h
    }

    #[test]
    fn config_refuses_bad_entries_and_takes_good_ones() {
        use crate::config::{Config, Overrides};
        let load = |k: &str, v: &str| {
            let env = [(k.to_string(), v.to_string())].into();
            Config::load(None, &env, &Overrides::default())
        };
        let c = load(
            "SURGE_HTTP_ALLOWED_HOSTS",
            r#"["shop.example", "127.0.0.1:8080"]"#,
        )
        .unwrap();
        assert_eq!(c.http_allowed_hosts.len(), 2);
        assert!(load("SURGE_HTTP_ALLOWED_HOSTS", r#"["http://shop.example"]"#).is_err());
        let c = load("SURGE_FEED_ALLOWED_ORIGINS", r#"["*"]"#).unwrap();
        assert_eq!(c.feed_allowed_origins, ["*"]);
        assert!(load("SURGE_FEED_ALLOWED_ORIGINS", r#"["shop.example"]"#).is_err());
        assert_eq!(
            load("SURGE_LOG_CLIENT_ERRORS_PER_S", "0")
                .unwrap()
                .log_client_errors_per_s,
            0
        );
        assert!(load("SURGE_LOG_CLIENT_ERRORS_PER_S", "-1").is_err());
    }

    #[test]
    fn json_media_types() {
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=UTF-8",
            "application/json; charset=\"utf-8\"",
            "application/json;",
        ] {
            assert!(
                json_content_type(&with(&[("content-type", ok)])).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/json; charset=latin1",
            "application/json; charset=iso-8859-1",
            "application/json; boundary=x",
            "application/jsonx",
            "application/json-patch+json",
            "",
        ] {
            let e = json_content_type(&with(&[("content-type", bad)])).unwrap_err();
            assert_eq!(e.code, ErrorCode::UnsupportedMediaType, "{bad}");
        }
        assert!(json_content_type(&with(&[])).is_err());
        assert!(json_content_type(&with(&[
            ("content-type", "application/json"),
            ("content-type", "text/plain")
        ]))
        .is_err());
    }

    #[test]
    fn encodings() {
        assert!(content_encoding(&with(&[])).is_ok());
        assert!(content_encoding(&with(&[("content-encoding", "identity")])).is_ok());
        assert!(content_encoding(&with(&[("content-encoding", "IDENTITY")])).is_ok());
        for bad in ["gzip", "br", "deflate", "identity, gzip", "x"] {
            assert!(
                content_encoding(&with(&[("content-encoding", bad)])).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn hosts_match_name_and_optional_port() {
        let p = |s: &str| Host::parse(s).unwrap();
        assert!(p("Shop.Example.com.").allows(&p("shop.example.com:8080")));
        assert!(p("shop.example.com:8080").allows(&p("shop.example.com:8080")));
        assert!(!p("shop.example.com:8080").allows(&p("shop.example.com:8081")));
        assert!(!p("shop.example.com:8080").allows(&p("shop.example.com")));
        assert!(!p("shop.example.com").allows(&p("evil.example.com")));
        assert!(p("[::1]").allows(&p("[::1]:8080")));
        assert!(p("127.0.0.1").allows(&p("127.0.0.1:80")));
        for bad in ["", "a b", "x:port", "[::1", "a/b", "user@host", "::1", "[]"] {
            assert!(Host::parse(bad).is_none(), "{bad}");
        }
        assert!(validate_hosts(&["a.example".into(), "b:1".into()]).is_ok());
        assert!(validate_hosts(&["http://a.example".into()]).is_err());
    }

    #[test]
    fn origins() {
        let req = |origin: Option<&'static str>| {
            let mut r = TestRequest::get().insert_header((header::HOST, "127.0.0.1:8080"));
            if let Some(o) = origin {
                r = r.insert_header((header::ORIGIN, o));
            }
            r.to_http_request()
        };
        let none: &[String] = &[];
        assert!(check_origin(&req(None), none).is_ok());
        assert!(check_origin(&req(Some("http://127.0.0.1:8080")), none).is_ok());
        assert!(check_origin(&req(Some("https://127.0.0.1:8080")), none).is_ok());
        for bad in [
            "http://evil.example",
            "http://127.0.0.1:8081",
            "null",
            "http://127.0.0.1",
            "file://",
        ] {
            assert_eq!(
                check_origin(&req(Some(bad)), none).unwrap_err().code,
                ErrorCode::OriginNotAllowed,
                "{bad}"
            );
        }
        let listed = ["https://ops.example.com".to_string()];
        assert!(check_origin(&req(Some("https://OPS.example.com:443")), &listed).is_ok());
        assert!(check_origin(&req(Some("http://ops.example.com")), &listed).is_err());
        assert!(check_origin(&req(Some("http://127.0.0.1:8080")), &listed).is_err());
        assert!(check_origin(&req(Some("http://anything")), &["*".to_string()]).is_ok());
        assert!(validate_origins(&["*".into(), "https://a.example:8443".into()]).is_ok());
        assert!(validate_origins(&["a.example".into()]).is_err());
        assert!(validate_origins(&["https://a.example/path".into()]).is_err());
    }
}
