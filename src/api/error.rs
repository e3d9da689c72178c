//! The one table from errors to HTTP: every error leaves as JSON
//! `{code, message, ...details}` with a stable snake_case `code`.

use crate::actors::CmdError;
use crate::core::Rejection;
use crate::wal::WalError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Map, Value};
use std::fmt;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Map<String, Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
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
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            format!("{field}: {message}"),
        )
        .with("field", field)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// `{code, message, ...details}`.
    pub fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("code".into(), json!(self.code));
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
        HttpResponse::build(self.status).json(self.body())
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        use StatusCode as S;
        let msg = r.to_string();
        match r {
            Rejection::InsufficientStock { available } => {
                ApiError::new(S::CONFLICT, "insufficient_stock", msg).with("available", available)
            }
            Rejection::PurchaseLimitExceeded { limit, used } => {
                ApiError::new(S::UNPROCESSABLE_ENTITY, "purchase_limit_exceeded", msg)
                    .with("limit", limit)
                    .with("used", used)
            }
            Rejection::StockChanged { on_hand } => {
                ApiError::new(S::CONFLICT, "stock_changed", msg).with("on_hand", on_hand)
            }
            Rejection::BelowCommitted { on_hand, committed } => {
                ApiError::new(S::CONFLICT, "stock_below_committed", msg)
                    .with("on_hand", on_hand)
                    .with("committed", committed)
            }
            Rejection::QuantityTooLarge { max } => {
                ApiError::new(S::UNPROCESSABLE_ENTITY, "quantity_too_large", msg).with("max", max)
            }
            Rejection::HoldNotActive(_) => {
                ApiError::new(S::CONFLICT, "reservation_not_active", msg)
            }
            Rejection::HoldInUse(_) => ApiError::new(S::CONFLICT, "reservation_in_use", msg),
            Rejection::ReservationMismatch(_) => {
                ApiError::new(S::UNPROCESSABLE_ENTITY, "reservation_mismatch", msg)
            }
            Rejection::NotCancellable { status } => {
                ApiError::new(S::CONFLICT, "order_not_cancellable", msg).with("status", status)
            }
        }
    }
}

impl From<CmdError> for ApiError {
    fn from(e: CmdError) -> Self {
        use StatusCode as S;
        let msg = e.to_string();
        match e {
            CmdError::Rejected(r) => r.into(),
            CmdError::Wal(WalError::Overloaded) => {
                ApiError::new(S::SERVICE_UNAVAILABLE, "overloaded", msg)
            }
            CmdError::Wal(WalError::Failed | WalError::Closed) => {
                ApiError::new(S::SERVICE_UNAVAILABLE, "storage_unavailable", msg)
            }
            CmdError::UnknownSku(_) => ApiError::not_found("sku_not_found", msg),
            CmdError::UnknownWarehouse(_) => ApiError::not_found("warehouse_not_found", msg),
            CmdError::UnknownHold(_) => ApiError::not_found("reservation_not_found", msg),
            CmdError::UnknownHoldInOrder(_) => {
                ApiError::new(S::UNPROCESSABLE_ENTITY, "reservation_not_found", msg)
            }
            CmdError::UnknownOrder(_) => ApiError::not_found("order_not_found", msg),
            CmdError::IdempotencyKeyReused => {
                ApiError::new(S::UNPROCESSABLE_ENTITY, "idempotency_key_reused", msg)
            }
            CmdError::IdempotencyInFlight => {
                ApiError::new(S::CONFLICT, "idempotency_key_in_flight", msg)
            }
            CmdError::Unavailable => ApiError::new(S::SERVICE_UNAVAILABLE, "unavailable", msg),
        }
    }
}

/// Maps body-parsing failures: 413 too large, 415 not JSON, 400 otherwise.
pub fn json_error(err: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as J;
    match err {
        J::OverflowKnownLength { length, limit } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("body of {length} bytes exceeds the limit of {limit}"),
        )
        .with("limit", limit),
        J::Overflow { limit } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("body exceeds the limit of {limit} bytes"),
        )
        .with("limit", limit),
        J::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected Content-Type: application/json",
        ),
        J::Deserialize(e) if e.is_data() => {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", e.to_string())
        }
        J::Deserialize(e) => {
            ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", e.to_string())
        }
        other => ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", other.to_string()),
    }
}
