//! The one table from errors to HTTP: every error leaves as JSON
//! `{code, message, ...details}` with a stable snake_case `code`. Every code
//! is a variant of [`ErrorCode`], which carries its status and meaning; the
//! README's error table is checked against [`ErrorCode::ALL`] by a test.

use crate::actors::CmdError;
use crate::core::lifecycle::LifeRefusal;
use crate::core::Rejection;
use crate::wal::WalError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Map, Value};
use std::fmt;

/// Every error code the HTTP API answers with: its wire name, its status and
/// what it means. A code is a promise to clients: never renamed or reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    MalformedJson,
    InvalidField,
    InvalidIdempotencyKey,
    InvalidPath,
    WebsocketRequired,
    /// No API key, an unknown one, or (in protected mode) a client that is
    /// not on this machine.
    Unauthenticated,
    /// The API key's scopes do not allow this request.
    Forbidden,
    NotFound,
    WarehouseNotFound,
    SkuNotFound,
    ReservationNotFound,
    OrderNotFound,
    InsufficientStock,
    StockChanged,
    StockBelowCommitted,
    ReservationNotActive,
    ReservationInUse,
    OrderNotCancellable,
    IdempotencyKeyInFlight,
    PayloadTooLarge,
    UnsupportedMediaType,
    PurchaseLimitExceeded,
    QuantityTooLarge,
    ReservationMismatch,
    /// An order line names a reservation that does not exist (422, where a
    /// GET of it is a 404 `reservation_not_found`).
    ReservationNotFoundInOrder,
    IdempotencyKeyReused,
    Overloaded,
    StorageUnavailable,
    TooManyConnections,
    Unavailable,
    Starting,
    /// The HTTP layer could not read the request (a malformed query string
    /// or body it refused before any handler ran).
    BadRequest,
    /// An error raised by the HTTP framework itself, not by Surge.
    InternalError,
    /// A feed handshake from a browser page whose `Origin` is not allowed.
    OriginNotAllowed,
    /// The request's `Host` is not in `http_allowed_hosts`.
    HostNotAllowed,
    /// The request body did not arrive within `http_body_timeout_ms`, or
    /// came slower than `http_body_rate_min_bytes_per_sec`.
    BodyTimeout,
    /// More headers than `http_headers_max`, or more bytes of them than
    /// `http_header_bytes_max`.
    HeadersTooLarge,
    /// Creating one more SKU or warehouse would pass `skus_max` or
    /// `warehouses_max`.
    EntityLimitReached,
    /// A reservation without a customer on a SKU with a per-customer limit.
    CustomerRequired,
    /// A rate limit (per key, address or customer): retry after
    /// `Retry-After` seconds.
    RateLimited,
    /// The path is served, but not with this method (`Allow` lists those
    /// that are).
    MethodNotAllowed,
    /// The order is not placed (or still being placed, or being re-routed
    /// already): it cannot be re-routed now.
    OrderNotReroutable,
    /// The order's (fulfilment's, return's) status does not allow the
    /// command (the lifecycle's transition table).
    InvalidTransition,
    /// A payment operation beyond what the order's payments allow.
    PaymentRefused,
    /// More units than a line has left to cancel, ship or return.
    QuantityUnavailable,
    FulfillmentNotFound,
    ReturnNotFound,
    /// Fulfilment of an order on hold.
    OrderOnHold,
    /// Fulfilment of an order whose channel waits for payment first.
    AwaitingPayment,
    /// The order is being placed or re-routed: retry.
    OrderBusy,
    /// An amount or total that overflows.
    AmountOverflow,
    /// An amount in another currency than the order's.
    CurrencyMismatch,
    /// No such incoming receipt (or a closed one no longer remembered).
    IncomingNotFound,
    /// Receiving on a receipt already received in full.
    IncomingClosed,
    /// Receiving more units than the receipt still expects.
    OverReceipt,
    /// The SKU has `incoming_open_max` open receipts already.
    IncomingLimitReached,
    /// The stock ledger has not reached the log's durable tail: retry.
    LedgerBehind,
    /// The stock ledger is off (`[ledger] enabled = false`) or its storage
    /// failed.
    LedgerDisabled,
}

impl ErrorCode {
    pub const ALL: &'static [ErrorCode] = &[
        Self::MalformedJson,
        Self::InvalidField,
        Self::InvalidIdempotencyKey,
        Self::InvalidPath,
        Self::WebsocketRequired,
        Self::Unauthenticated,
        Self::Forbidden,
        Self::NotFound,
        Self::WarehouseNotFound,
        Self::SkuNotFound,
        Self::ReservationNotFound,
        Self::OrderNotFound,
        Self::InsufficientStock,
        Self::StockChanged,
        Self::StockBelowCommitted,
        Self::ReservationNotActive,
        Self::ReservationInUse,
        Self::OrderNotCancellable,
        Self::IdempotencyKeyInFlight,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::PurchaseLimitExceeded,
        Self::QuantityTooLarge,
        Self::ReservationMismatch,
        Self::ReservationNotFoundInOrder,
        Self::IdempotencyKeyReused,
        Self::Overloaded,
        Self::StorageUnavailable,
        Self::TooManyConnections,
        Self::Unavailable,
        Self::Starting,
        Self::BadRequest,
        Self::InternalError,
        Self::OriginNotAllowed,
        Self::HostNotAllowed,
        Self::BodyTimeout,
        Self::HeadersTooLarge,
        Self::EntityLimitReached,
        Self::CustomerRequired,
        Self::RateLimited,
        Self::MethodNotAllowed,
        Self::OrderNotReroutable,
        Self::InvalidTransition,
        Self::PaymentRefused,
        Self::QuantityUnavailable,
        Self::FulfillmentNotFound,
        Self::ReturnNotFound,
        Self::OrderOnHold,
        Self::AwaitingPayment,
        Self::OrderBusy,
        Self::AmountOverflow,
        Self::CurrencyMismatch,
        Self::IncomingNotFound,
        Self::IncomingClosed,
        Self::OverReceipt,
        Self::IncomingLimitReached,
        Self::LedgerBehind,
        Self::LedgerDisabled,
    ];

    /// The table: wire name, HTTP status, meaning.
    fn row(self) -> (&'static str, StatusCode, &'static str) {
        use StatusCode as S;
        match self {
            Self::MalformedJson => (
                "malformed_json",
                S::BAD_REQUEST,
                "the body is not valid JSON",
            ),
            Self::InvalidField => (
                "invalid_field",
                S::BAD_REQUEST,
                "a field is missing, of the wrong type or out of range",
            ),
            Self::InvalidIdempotencyKey => (
                "invalid_idempotency_key",
                S::BAD_REQUEST,
                "the Idempotency-Key header is malformed or not allowed here",
            ),
            Self::InvalidPath => (
                "invalid_path",
                S::BAD_REQUEST,
                "a path segment is malformed",
            ),
            Self::WebsocketRequired => (
                "websocket_required",
                S::BAD_REQUEST,
                "the feed needs a WebSocket upgrade",
            ),
            Self::Unauthenticated => (
                "unauthenticated",
                S::UNAUTHORIZED,
                "no API key, an unknown one, or a remote client in protected mode",
            ),
            Self::Forbidden => (
                "forbidden",
                S::FORBIDDEN,
                "the API key's scopes do not allow this request",
            ),
            Self::NotFound => ("not_found", S::NOT_FOUND, "no such route"),
            Self::WarehouseNotFound => ("warehouse_not_found", S::NOT_FOUND, "no such warehouse"),
            Self::SkuNotFound => ("sku_not_found", S::NOT_FOUND, "no such SKU"),
            Self::ReservationNotFound => (
                "reservation_not_found",
                S::NOT_FOUND,
                "no such reservation (or it was forgotten after its retention)",
            ),
            Self::OrderNotFound => (
                "order_not_found",
                S::NOT_FOUND,
                "no such order (or it was forgotten after its retention)",
            ),
            Self::InsufficientStock => (
                "insufficient_stock",
                S::CONFLICT,
                "not enough available stock",
            ),
            Self::StockChanged => (
                "stock_changed",
                S::CONFLICT,
                "compare-and-set failed: on_hand is not what was expected",
            ),
            Self::StockBelowCommitted => (
                "stock_below_committed",
                S::CONFLICT,
                "on_hand would fall below what is held and allocated",
            ),
            Self::ReservationNotActive => (
                "reservation_not_active",
                S::CONFLICT,
                "the reservation is released, expired or consumed",
            ),
            Self::ReservationInUse => (
                "reservation_in_use",
                S::CONFLICT,
                "the reservation is being used by an order being placed",
            ),
            Self::OrderNotCancellable => (
                "order_not_cancellable",
                S::CONFLICT,
                "the order's status does not allow cancelling",
            ),
            Self::IdempotencyKeyInFlight => (
                "idempotency_key_in_flight",
                S::CONFLICT,
                "a request with this key is still in progress",
            ),
            Self::PayloadTooLarge => (
                "payload_too_large",
                S::PAYLOAD_TOO_LARGE,
                "the body exceeds http_body_bytes_max",
            ),
            Self::UnsupportedMediaType => (
                "unsupported_media_type",
                S::UNSUPPORTED_MEDIA_TYPE,
                "the body is not application/json",
            ),
            Self::PurchaseLimitExceeded => (
                "purchase_limit_exceeded",
                S::UNPROCESSABLE_ENTITY,
                "the customer's per-SKU limit would be exceeded",
            ),
            Self::QuantityTooLarge => (
                "quantity_too_large",
                S::UNPROCESSABLE_ENTITY,
                "a quantity exceeds qty_max",
            ),
            Self::ReservationMismatch => (
                "reservation_mismatch",
                S::UNPROCESSABLE_ENTITY,
                "an order line's reservation is for another SKU, customer or quantity",
            ),
            Self::ReservationNotFoundInOrder => (
                "reservation_not_found",
                S::UNPROCESSABLE_ENTITY,
                "an order line names a reservation that does not exist",
            ),
            Self::IdempotencyKeyReused => (
                "idempotency_key_reused",
                S::UNPROCESSABLE_ENTITY,
                "the key was used with a different request",
            ),
            Self::Overloaded => (
                "overloaded",
                S::SERVICE_UNAVAILABLE,
                "the log's queue or the SKU's mailbox is full: retry",
            ),
            Self::StorageUnavailable => (
                "storage_unavailable",
                S::SERVICE_UNAVAILABLE,
                "storage failed: writes are stopped",
            ),
            Self::TooManyConnections => (
                "too_many_connections",
                S::SERVICE_UNAVAILABLE,
                "too many open connections: the feed's feed_connections_max, or this client address's http_connections_per_client_max",
            ),
            Self::Unavailable => (
                "unavailable",
                S::SERVICE_UNAVAILABLE,
                "an internal component is not running",
            ),
            Self::Starting => (
                "starting",
                S::SERVICE_UNAVAILABLE,
                "the server is replaying its log at start: retry",
            ),
            Self::BadRequest => (
                "bad_request",
                S::BAD_REQUEST,
                "the HTTP layer could not read the request (query string, body or header)",
            ),
            Self::InternalError => (
                "internal_error",
                S::INTERNAL_SERVER_ERROR,
                "the HTTP layer failed on its own; not caused by the request",
            ),
            Self::OriginNotAllowed => (
                "origin_not_allowed",
                S::FORBIDDEN,
                "the feed's Origin is not in feed_allowed_origins",
            ),
            Self::HostNotAllowed => (
                "host_not_allowed",
                S::MISDIRECTED_REQUEST,
                "the Host header is not in http_allowed_hosts",
            ),
            Self::BodyTimeout => (
                "body_timeout",
                S::REQUEST_TIMEOUT,
                "the body did not arrive within http_body_timeout_ms or came slower than http_body_rate_min_bytes_per_sec",
            ),
            Self::HeadersTooLarge => (
                "headers_too_large",
                S::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "more headers than http_headers_max or more bytes of them than http_header_bytes_max",
            ),
            Self::EntityLimitReached => (
                "entity_limit_reached",
                S::CONFLICT,
                "creating one more SKU or warehouse would pass skus_max or warehouses_max",
            ),
            Self::CustomerRequired => (
                "customer_required",
                S::UNPROCESSABLE_ENTITY,
                "the SKU has a per-customer limit: a customer_id is required",
            ),
            Self::RateLimited => (
                "rate_limited",
                S::TOO_MANY_REQUESTS,
                "a rate limit (per key, address or customer) was hit: retry after Retry-After seconds",
            ),
            Self::MethodNotAllowed => (
                "method_not_allowed",
                S::METHOD_NOT_ALLOWED,
                "the path is served, but not with this method (see the Allow header)",
            ),
            Self::OrderNotReroutable => (
                "order_not_reroutable",
                S::CONFLICT,
                "the order's status does not allow re-routing, or it is being placed or re-routed",
            ),
            Self::InvalidTransition => (
                "invalid_transition",
                S::CONFLICT,
                "the order's, fulfilment's or return's status does not allow this command",
            ),
            Self::PaymentRefused => (
                "payment_refused",
                S::CONFLICT,
                "the payment operation goes beyond what the order's payments allow",
            ),
            Self::QuantityUnavailable => (
                "quantity_unavailable",
                S::CONFLICT,
                "a line has fewer units left to cancel, ship, deliver or return",
            ),
            Self::FulfillmentNotFound => (
                "fulfillment_not_found",
                S::NOT_FOUND,
                "no such fulfilment",
            ),
            Self::ReturnNotFound => ("return_not_found", S::NOT_FOUND, "no such return"),
            Self::OrderOnHold => (
                "order_on_hold",
                S::CONFLICT,
                "the order is on hold: it is not fulfilled until released",
            ),
            Self::AwaitingPayment => (
                "awaiting_payment",
                S::CONFLICT,
                "the order's channel waits for payment before fulfilment",
            ),
            Self::OrderBusy => (
                "order_busy",
                S::CONFLICT,
                "the order is being placed or re-routed: retry",
            ),
            Self::AmountOverflow => (
                "amount_overflow",
                S::UNPROCESSABLE_ENTITY,
                "an amount or an order's total overflows",
            ),
            Self::CurrencyMismatch => (
                "currency_mismatch",
                S::UNPROCESSABLE_ENTITY,
                "the amount's currency is not the order's",
            ),
            Self::IncomingNotFound => (
                "incoming_not_found",
                S::NOT_FOUND,
                "no such incoming receipt (or a closed one past incoming_closed_kept_per_sku)",
            ),
            Self::IncomingClosed => (
                "incoming_closed",
                S::CONFLICT,
                "the incoming receipt was received in full: it takes no more units",
            ),
            Self::OverReceipt => (
                "over_receipt",
                S::CONFLICT,
                "more units than the incoming receipt still expects",
            ),
            Self::IncomingLimitReached => (
                "incoming_limit_reached",
                S::CONFLICT,
                "the SKU has incoming_open_max open incoming receipts",
            ),
            Self::LedgerBehind => (
                "ledger_behind",
                S::SERVICE_UNAVAILABLE,
                "the stock ledger has not caught up with the log within ledger.read_wait_ms: retry",
            ),
            Self::LedgerDisabled => (
                "ledger_disabled",
                S::SERVICE_UNAVAILABLE,
                "the stock ledger is off (ledger.enabled = false) or its storage failed (until a restart)",
            ),
        }
    }

    pub fn as_str(self) -> &'static str {
        self.row().0
    }

    /// Its position in [`ErrorCode::ALL`] (for tables indexed by code).
    pub fn index(self) -> usize {
        Self::ALL.iter().position(|c| *c == self).unwrap_or(0)
    }

    pub fn status(self) -> StatusCode {
        self.row().1
    }

    pub fn meaning(self) -> &'static str {
        self.row().2
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub details: Map<String, Value>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status: code.status(),
            code,
            message: message.into(),
            details: Map::new(),
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    pub fn invalid(field: &str, message: impl fmt::Display) -> Self {
        Self::new(ErrorCode::InvalidField, format!("{field}: {message}")).with("field", field)
    }

    /// `{code, message, ...details}`.
    pub fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("code".into(), json!(self.code.as_str()));
        body.insert("message".into(), json!(self.message));
        body.extend(self.details.clone());
        Value::Object(body)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        if self.code == ErrorCode::Unauthenticated {
            res.insert_header((actix_web::http::header::WWW_AUTHENTICATE, "Bearer"));
        }
        if let Some(s) = self.details.get("retry_after_s").and_then(Value::as_u64) {
            res.insert_header((actix_web::http::header::RETRY_AFTER, s.to_string()));
        }
        res.json(self.body())
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        let msg = r.to_string();
        match r {
            Rejection::InsufficientStock { available } => {
                ApiError::new(ErrorCode::InsufficientStock, msg).with("available", available)
            }
            Rejection::PurchaseLimitExceeded { limit, used } => {
                ApiError::new(ErrorCode::PurchaseLimitExceeded, msg)
                    .with("limit", limit)
                    .with("used", used)
            }
            Rejection::StockChanged { on_hand } => {
                ApiError::new(ErrorCode::StockChanged, msg).with("on_hand", on_hand)
            }
            Rejection::BelowCommitted { on_hand, committed } => {
                ApiError::new(ErrorCode::StockBelowCommitted, msg)
                    .with("on_hand", on_hand)
                    .with("committed", committed)
            }
            Rejection::QuantityTooLarge { max } => {
                ApiError::new(ErrorCode::QuantityTooLarge, msg).with("max", max)
            }
            Rejection::HoldNotActive(_) => ApiError::new(ErrorCode::ReservationNotActive, msg),
            Rejection::HoldInUse(_) => ApiError::new(ErrorCode::ReservationInUse, msg),
            Rejection::ReservationMismatch(_) => ApiError::new(ErrorCode::ReservationMismatch, msg),
            Rejection::NotCancellable { status } => {
                ApiError::new(ErrorCode::OrderNotCancellable, msg).with("status", status)
            }
            Rejection::NotReroutable { status } => {
                ApiError::new(ErrorCode::OrderNotReroutable, msg).with("status", status)
            }
            Rejection::CustomerRequired { limit } => {
                ApiError::new(ErrorCode::CustomerRequired, msg).with("limit", limit)
            }
            // Placement plans again on it; seen only if that is cut short.
            Rejection::PlanStale { .. } => ApiError::new(ErrorCode::InsufficientStock, msg),
            Rejection::IncomingLimit { max } => {
                ApiError::new(ErrorCode::IncomingLimitReached, msg).with("max", max)
            }
            Rejection::ReceiptNotFound { .. } => ApiError::new(ErrorCode::IncomingNotFound, msg),
            Rejection::ReceiptClosed { .. } => ApiError::new(ErrorCode::IncomingClosed, msg),
            Rejection::OverReceipt { outstanding } => {
                ApiError::new(ErrorCode::OverReceipt, msg).with("outstanding", outstanding)
            }
        }
    }
}

impl From<CmdError> for ApiError {
    fn from(e: CmdError) -> Self {
        let msg = e.to_string();
        match e {
            CmdError::Rejected(r) => r.into(),
            CmdError::Wal(WalError::Overloaded) => ApiError::new(ErrorCode::Overloaded, msg),
            CmdError::Wal(WalError::Failed | WalError::Closed) => {
                ApiError::new(ErrorCode::StorageUnavailable, msg)
            }
            CmdError::UnknownSku(_) => ApiError::new(ErrorCode::SkuNotFound, msg),
            CmdError::UnknownWarehouse(_) => ApiError::new(ErrorCode::WarehouseNotFound, msg),
            CmdError::UnknownHold(_) => ApiError::new(ErrorCode::ReservationNotFound, msg),
            CmdError::UnknownHoldInOrder(_) => {
                ApiError::new(ErrorCode::ReservationNotFoundInOrder, msg)
            }
            CmdError::UnknownOrder(_) => ApiError::new(ErrorCode::OrderNotFound, msg),
            CmdError::IdempotencyKeyReused => ApiError::new(ErrorCode::IdempotencyKeyReused, msg),
            CmdError::IdempotencyInFlight => ApiError::new(ErrorCode::IdempotencyKeyInFlight, msg),
            CmdError::Unavailable => ApiError::new(ErrorCode::Unavailable, msg),
            CmdError::EntityLimit { entity, max, .. } => {
                ApiError::new(ErrorCode::EntityLimitReached, msg)
                    .with("entity", entity)
                    .with("limit", max)
            }
            CmdError::MailboxFull => ApiError::new(ErrorCode::Overloaded, msg),
            CmdError::Life(r) => r.into(),
            CmdError::UnknownReceipt(_) => ApiError::new(ErrorCode::IncomingNotFound, msg),
            CmdError::LedgerBehind { lag_events } => ApiError::new(ErrorCode::LedgerBehind, msg)
                .with("lag_events", lag_events)
                .with("retry_after_s", 1),
            CmdError::LedgerDisabled => ApiError::new(ErrorCode::LedgerDisabled, msg),
            CmdError::Ledger(_) => ApiError::new(ErrorCode::Unavailable, msg),
            CmdError::Unplaced(lines) => {
                let lines: Vec<Value> = lines
                    .into_iter()
                    .map(|(index, sku, qty)| json!({"index": index, "sku": sku.as_str(), "qty": qty}))
                    .collect();
                ApiError::new(ErrorCode::InsufficientStock, msg).with("lines", lines)
            }
        }
    }
}

impl From<LifeRefusal> for ApiError {
    fn from(r: LifeRefusal) -> Self {
        use crate::core::lifecycle::{MoneyError, PaymentRefusal, QuantityRefusal};
        let msg = r.to_string();
        match r {
            LifeRefusal::Transition(t) => ApiError::new(ErrorCode::InvalidTransition, msg)
                .with("subject", t.subject.as_str())
                .with("status", t.status)
                .with("command", t.command.as_str()),
            LifeRefusal::Payment(PaymentRefusal::InvalidReference) => {
                ApiError::invalid("reference", msg)
            }
            LifeRefusal::Payment(PaymentRefusal::ZeroAmount) => ApiError::invalid("amount", msg),
            LifeRefusal::Payment(PaymentRefusal::Overflow) => {
                ApiError::new(ErrorCode::AmountOverflow, msg)
            }
            LifeRefusal::Payment(PaymentRefusal::TooManyPayments { max }) => {
                ApiError::new(ErrorCode::EntityLimitReached, msg)
                    .with("entity", "payments")
                    .with("limit", max)
            }
            LifeRefusal::Payment(p) => {
                let e = ApiError::new(ErrorCode::PaymentRefused, msg);
                match p {
                    PaymentRefusal::AboveAuthorizable { max }
                    | PaymentRefusal::AboveCapturable { max }
                    | PaymentRefusal::AboveRefundable { max } => e.with("max", max),
                    PaymentRefusal::VoidNotWhole { open } => e.with("open", open),
                    PaymentRefusal::VoidAfterCapture { captured } => e.with("captured", captured),
                    PaymentRefusal::NotPending { status } => {
                        e.with("payment_status", status.as_str())
                    }
                    _ => e,
                }
            }
            LifeRefusal::Quantity(QuantityRefusal::Above { line, what, max }) => {
                ApiError::new(ErrorCode::QuantityUnavailable, msg)
                    .with("sku", line.as_str())
                    .with("command", what)
                    .with("max", max)
            }
            LifeRefusal::Quantity(_) => ApiError::invalid("lines", msg),
            LifeRefusal::Money(MoneyError::MixedCurrency { .. }) => {
                ApiError::new(ErrorCode::CurrencyMismatch, msg)
            }
            LifeRefusal::Money(MoneyError::InvalidCurrency(_)) => {
                ApiError::invalid("currency", msg)
            }
            LifeRefusal::Money(MoneyError::ZeroAmount) => ApiError::invalid("amount", msg),
            LifeRefusal::Money(MoneyError::Overflow) => {
                ApiError::new(ErrorCode::AmountOverflow, msg)
            }
            LifeRefusal::UnknownFulfillment(_) => {
                ApiError::new(ErrorCode::FulfillmentNotFound, msg)
            }
            LifeRefusal::UnknownReturn(_) => ApiError::new(ErrorCode::ReturnNotFound, msg),
            LifeRefusal::OnHold(reason) => {
                ApiError::new(ErrorCode::OrderOnHold, msg).with("reason", reason.as_str())
            }
            LifeRefusal::AwaitingPayment => ApiError::new(ErrorCode::AwaitingPayment, msg),
            LifeRefusal::TooMany { what, max } => ApiError::new(ErrorCode::EntityLimitReached, msg)
                .with("entity", what)
                .with("limit", max),
            LifeRefusal::LastParcel { max, left } => {
                ApiError::new(ErrorCode::EntityLimitReached, msg)
                    .with("entity", "parcels")
                    .with("limit", max)
                    .with("left", left)
            }
            LifeRefusal::Busy => ApiError::new(ErrorCode::OrderBusy, msg),
        }
    }
}

/// Maps body-parsing failures: 413 too large, 415 not JSON, 400 otherwise.
pub fn json_error(err: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as J;
    match err {
        J::OverflowKnownLength { length, limit } => ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("body of {length} bytes exceeds the limit of {limit}"),
        )
        .with("limit", limit),
        J::Overflow { limit } => ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("body exceeds the limit of {limit} bytes"),
        )
        .with("limit", limit),
        J::ContentType => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "expected Content-Type: application/json",
        ),
        J::Payload(actix_web::error::PayloadError::Overflow) => {
            ApiError::new(ErrorCode::PayloadTooLarge, "body exceeds the limit")
        }
        J::Payload(e) => ApiError::new(
            ErrorCode::BadRequest,
            format!("the body could not be read: {e}"),
        ),
        J::Deserialize(e) if e.is_data() => ApiError::new(ErrorCode::InvalidField, e.to_string()),
        J::Deserialize(e) => ApiError::new(ErrorCode::MalformedJson, e.to_string()),
        other => ApiError::new(ErrorCode::MalformedJson, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    /// `ALL` lists every code once: a new variant does not compile here
    /// until it is added to this match, and then fails until it is in `ALL`.
    #[test]
    fn all_lists_every_code_once() {
        fn listed(c: ErrorCode) -> bool {
            match c {
                ErrorCode::MalformedJson
                | ErrorCode::InvalidField
                | ErrorCode::InvalidIdempotencyKey
                | ErrorCode::InvalidPath
                | ErrorCode::WebsocketRequired
                | ErrorCode::Unauthenticated
                | ErrorCode::Forbidden
                | ErrorCode::NotFound
                | ErrorCode::WarehouseNotFound
                | ErrorCode::SkuNotFound
                | ErrorCode::ReservationNotFound
                | ErrorCode::OrderNotFound
                | ErrorCode::InsufficientStock
                | ErrorCode::StockChanged
                | ErrorCode::StockBelowCommitted
                | ErrorCode::ReservationNotActive
                | ErrorCode::ReservationInUse
                | ErrorCode::OrderNotCancellable
                | ErrorCode::IdempotencyKeyInFlight
                | ErrorCode::PayloadTooLarge
                | ErrorCode::UnsupportedMediaType
                | ErrorCode::PurchaseLimitExceeded
                | ErrorCode::QuantityTooLarge
                | ErrorCode::ReservationMismatch
                | ErrorCode::ReservationNotFoundInOrder
                | ErrorCode::IdempotencyKeyReused
                | ErrorCode::Overloaded
                | ErrorCode::StorageUnavailable
                | ErrorCode::TooManyConnections
                | ErrorCode::Unavailable
                | ErrorCode::Starting
                | ErrorCode::BadRequest
                | ErrorCode::InternalError
                | ErrorCode::OriginNotAllowed
                | ErrorCode::HostNotAllowed
                | ErrorCode::BodyTimeout
                | ErrorCode::HeadersTooLarge
                | ErrorCode::EntityLimitReached
                | ErrorCode::CustomerRequired
                | ErrorCode::RateLimited
                | ErrorCode::MethodNotAllowed
                | ErrorCode::OrderNotReroutable
                | ErrorCode::InvalidTransition
                | ErrorCode::PaymentRefused
                | ErrorCode::QuantityUnavailable
                | ErrorCode::FulfillmentNotFound
                | ErrorCode::ReturnNotFound
                | ErrorCode::OrderOnHold
                | ErrorCode::AwaitingPayment
                | ErrorCode::OrderBusy
                | ErrorCode::AmountOverflow
                | ErrorCode::CurrencyMismatch
                | ErrorCode::IncomingNotFound
                | ErrorCode::IncomingClosed
                | ErrorCode::OverReceipt
                | ErrorCode::IncomingLimitReached
                | ErrorCode::LedgerBehind
                | ErrorCode::LedgerDisabled => {
                    ErrorCode::ALL.iter().filter(|x| **x == c).count() == 1
                }
            }
        }
        for c in ErrorCode::ALL {
            assert!(listed(*c), "{c:?}");
        }
        let names: std::collections::HashSet<(u16, &str)> = ErrorCode::ALL
            .iter()
            .map(|c| (c.status().as_u16(), c.as_str()))
            .collect();
        assert_eq!(names.len(), ErrorCode::ALL.len(), "a code and status twice");
    }
}
