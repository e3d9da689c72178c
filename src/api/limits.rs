//! Limits checked before routing: header count and size
//! (`http_headers_max`, `http_header_bytes_max`, 431 `headers_too_large`)
//! and open connections per client address
//! (`http_connections_per_client_max`, 503 `too_many_connections`).
//!
//! Connections are counted when accepted (`HttpServer::on_connect` puts a
//! [`ClientSlot`] in the connection's extensions) and uncounted when the
//! connection's extensions are dropped, i.e. once it is closed. A
//! connection accepted past the limit is still accepted by the kernel and
//! actix; each request on it is refused and the connection closed, so it
//! cannot hold a worker for longer than the head timeout.

use crate::api::error::{ApiError, ErrorCode};
use crate::config::Config;
use actix_web::dev::{Extensions, ServiceRequest};
use actix_web::http::ConnectionType;
use actix_web::{HttpResponse, ResponseError};
use dashmap::DashMap;
use std::any::Any;
use std::net::IpAddr;
use std::sync::Arc;

/// Open connections per client IP address.
#[derive(Debug)]
pub struct Clients {
    open: DashMap<IpAddr, usize>,
    max: usize,
}

/// One connection's place in the count; uncounted when dropped.
#[derive(Debug)]
pub struct ClientSlot {
    clients: Arc<Clients>,
    ip: IpAddr,
    over: bool,
}

impl Clients {
    pub fn new(config: &Config) -> Arc<Self> {
        Arc::new(Self {
            open: DashMap::new(),
            max: config.http_connections_per_client_max,
        })
    }

    /// Counts a connection from `ip`.
    pub fn open(self: &Arc<Self>, ip: IpAddr) -> ClientSlot {
        let n = {
            let mut e = self.open.entry(ip).or_insert(0);
            *e += 1;
            *e
        };
        ClientSlot {
            clients: self.clone(),
            ip,
            over: n > self.max,
        }
    }

    /// For `HttpServer::on_connect`: counts a TCP connection by its peer.
    pub fn on_connect(self: &Arc<Self>, conn: &dyn Any, ext: &mut Extensions) {
        let peer = conn
            .downcast_ref::<actix_web::rt::net::TcpStream>()
            .and_then(|s| s.peer_addr().ok());
        if let Some(peer) = peer {
            ext.insert(self.open(peer.ip()));
        }
    }

    /// Connections open from `ip` now.
    pub fn count(&self, ip: IpAddr) -> usize {
        self.open.get(&ip).map_or(0, |n| *n)
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.clients.open.remove_if_mut(&self.ip, |_, n| {
            *n = n.saturating_sub(1);
            *n == 0
        });
    }
}

/// The head limits of one server.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    pub headers_max: usize,
    pub header_bytes_max: usize,
}

impl HeadLimits {
    pub fn new(config: &Config) -> Self {
        Self {
            headers_max: config.http_headers_max,
            header_bytes_max: config.http_header_bytes_max,
        }
    }
}

/// Bytes of a request's header fields, each counted as `name: value\r\n`.
pub fn header_bytes(req: &ServiceRequest) -> usize {
    req.headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.as_bytes().len() + 4)
        .sum()
}

/// Checks the connection's client and the request's headers: the refusal,
/// which closes the connection, if any.
pub fn refusal(req: &ServiceRequest, head: HeadLimits) -> Option<HttpResponse> {
    let refused = if req.conn_data::<ClientSlot>().is_some_and(|s| s.over) {
        Some(ApiError::new(
            ErrorCode::TooManyConnections,
            "too many open connections from this address (http_connections_per_client_max)",
        ))
    } else if req.headers().len() > head.headers_max {
        Some(
            ApiError::new(
                ErrorCode::HeadersTooLarge,
                format!("more than {} header fields", head.headers_max),
            )
            .with("limit", head.headers_max),
        )
    } else if header_bytes(req) > head.header_bytes_max {
        Some(
            ApiError::new(
                ErrorCode::HeadersTooLarge,
                format!("header fields exceed {} bytes", head.header_bytes_max),
            )
            .with("limit", head.header_bytes_max),
        )
    } else {
        None
    };
    refused.map(|e| {
        tracing::debug!(code = e.code.as_str(), "request refused before routing");
        let mut res = e.error_response();
        res.head_mut().set_connection_type(ConnectionType::Close);
        res
    })
}
