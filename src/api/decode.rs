//! Every decoder of untrusted input the API runs, as plain functions over
//! bytes: the JSON request bodies (deserialized as actix's `Json` does,
//! then checked by the handlers' own validation), the feed's query string
//! and its inbound text frames. The fuzz targets (`fuzz/`) call these; a
//! decoder answers an error for bad input and never panics.

use super::dto::{
    AdjustmentBody, CancelBody, ExtendBody, OrderBody, ReserveBatchBody, ReserveBody, SkuBody,
    WarehouseBody,
};
use super::error::{ApiError, ErrorCode};
use crate::config::Config;
use crate::core::{Location, SkuId, WarehouseId};
use serde::de::DeserializeOwned;

/// The request bodies the API parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    Warehouse,
    Sku,
    Adjustment,
    Reserve,
    ReserveBatch,
    Extend,
    Order,
    Cancel,
}

impl Body {
    pub const ALL: [Body; 8] = [
        Body::Warehouse,
        Body::Sku,
        Body::Adjustment,
        Body::Reserve,
        Body::ReserveBatch,
        Body::Extend,
        Body::Order,
        Body::Cancel,
    ];
}

fn json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let code = if e.is_data() {
            ErrorCode::InvalidField
        } else {
            ErrorCode::MalformedJson
        };
        ApiError::new(code, e.to_string())
    })
}

/// Parses and checks `bytes` as the body `which`, as its handler would
/// before calling the application.
pub fn body(config: &Config, which: Body, bytes: &[u8]) -> Result<(), ApiError> {
    match which {
        Body::Warehouse => {
            let b: WarehouseBody = json(bytes)?;
            super::text(config, "name", &b.name)?;
            let location = Location {
                lat: b.location.lat,
                lon: b.location.lon,
            };
            if !location.is_valid() {
                return Err(ApiError::invalid("location", "out of range"));
            }
        }
        Body::Sku => {
            let b: SkuBody = json(bytes)?;
            if let Some(name) = &b.name {
                super::text(config, "name", name)?;
            }
        }
        Body::Adjustment => {
            let b: AdjustmentBody = json(bytes)?;
            super::skus::adjustment(config, &b)?;
        }
        Body::Reserve => {
            let b: ReserveBody = json(bytes)?;
            let idem = super::idempotency_key(Some("k"), "reservations", &b)?;
            super::reservations::reserve_request(config, &b, Some(idem))?;
        }
        Body::ReserveBatch => {
            let b: ReserveBatchBody = json(bytes)?;
            for item in b.reservations {
                let (b, key) = item.split();
                let idem = key
                    .map(|k| super::idempotency_key(Some(&k), "reservations", &b))
                    .transpose()?;
                super::reservations::reserve_request(config, &b, idem)?;
            }
        }
        Body::Extend => {
            let b: ExtendBody = json(bytes)?;
            super::ttl(config, Some(b.ttl_ms))?;
        }
        Body::Order => {
            let b: OrderBody = json(bytes)?;
            let idem = super::idempotency_key(Some("k"), "orders", &b)?;
            super::orders::order_request(config, &b, Some(idem))?;
        }
        Body::Cancel => {
            let b: CancelBody = json(bytes)?;
            if let Some(reason) = &b.reason {
                super::text(config, "reason", reason)?;
            }
        }
    }
    Ok(())
}

/// Parses a path segment as each kind of id the routes take.
pub fn path_ids(segment: &str) {
    let _ = SkuId::parse(segment);
    let _ = WarehouseId::parse(segment);
    let _ = crate::core::HoldId::parse(segment);
    let _ = crate::core::OrderId::parse(segment);
}

/// `GET /v1/feed?<query>`: the checks made before the upgrade.
pub fn feed_query(config: &Config, query: &str) -> Result<(), ApiError> {
    super::feed::check_query(query, config.feed_topics_max, config.feed_conflate_ms_max)
}

/// A text frame a feed client sends: parsed and checked as the connection
/// does before it subscribes or unsubscribes.
pub fn feed_message(config: &Config, text: &str) -> Result<(), String> {
    super::feed::check_inbound(text, config.feed_topics_max, config.feed_conflate_ms_max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::default_config()
    }

    #[test]
    fn good_bodies_pass_and_bad_ones_are_refused() {
        let c = config();
        let ok: &[(Body, &str)] = &[
            (
                Body::Warehouse,
                r#"{"name":"Berlin","location":{"lat":52.5,"lon":13.4}}"#,
            ),
            (Body::Sku, r#"{"name":"tee","per_customer_limit":2}"#),
            (
                Body::Adjustment,
                r#"{"sku":"s","warehouse":"w","delta":5,"reason":"count"}"#,
            ),
            (Body::Reserve, r#"{"sku":"s","qty":1,"customer_id":"c1"}"#),
            (
                Body::ReserveBatch,
                r#"{"reservations":[{"sku":"s","qty":2,"idempotency_key":"a"}]}"#,
            ),
            (Body::Extend, r#"{"ttl_ms":1000}"#),
            (
                Body::Order,
                r#"{"channel":"web","customer_id":"c","ship_to":{"lat":1,"lon":2,"country":"DE"},"lines":[{"sku":"s","qty":1,"reservation_id":"res_1"}]}"#,
            ),
            (Body::Cancel, r#"{"reason":"changed my mind"}"#),
        ];
        for (which, text) in ok {
            assert!(
                body(&c, *which, text.as_bytes()).is_ok(),
                "{which:?} {text}"
            );
        }
        let bad: &[(Body, &str)] = &[
            (
                Body::Warehouse,
                r#"{"name":"B","location":{"lat":91,"lon":0}}"#,
            ),
            (
                Body::Adjustment,
                r#"{"sku":"s","warehouse":"w","delta":0,"reason":"r"}"#,
            ),
            (Body::Reserve, r#"{"sku":"s","qty":0}"#),
            (Body::Reserve, r#"{"sku":"s","qty":1.5}"#),
            (Body::Reserve, r#"{"sku":"s","qty":-1}"#),
            (Body::Reserve, r#"{"sku":"s","qty":1,"extra":1}"#),
            (
                Body::ReserveBatch,
                r#"{"reservations":[{"sku":"s","qty":1,"idempotency_key":""}]}"#,
            ),
            (Body::Extend, r#"{"ttl_ms":0}"#),
            (
                Body::Order,
                r#"{"channel":"web","customer_id":"c","ship_to":{"lat":1,"lon":2},"lines":[]}"#,
            ),
            (Body::Cancel, r#"{"reason":"#),
        ];
        for (which, text) in bad {
            assert!(
                body(&c, *which, text.as_bytes()).is_err(),
                "{which:?} {text}"
            );
        }
    }

    /// A body is an object: serde would also read a struct from an array of
    /// its fields (found by schemathesis: `PUT /v1/skus/{sku}` took
    /// `[null, null]`).
    #[test]
    fn arrays_are_not_objects() {
        let c = config();
        for (which, text) in [
            (Body::Sku, "[null, null]"),
            (Body::Reserve, r#"["s", 1, null, null, null]"#),
            (Body::Extend, "[1000]"),
            (Body::Cancel, "[]"),
            (
                Body::ReserveBatch,
                r#"[[["s", 1, null, null, null, null]]]"#,
            ),
            (
                Body::ReserveBatch,
                r#"{"reservations":[["s", 1, null, null, null, null]]}"#,
            ),
            (Body::Warehouse, r#"{"name":"B","location":[1, 2]}"#),
            (
                Body::Order,
                r#"{"channel":"web","customer_id":"c","ship_to":[1, 2, null],"lines":[{"sku":"s","qty":1}]}"#,
            ),
            (
                Body::Order,
                r#"{"channel":"web","customer_id":"c","ship_to":{"lat":1,"lon":2},"lines":[["s", 1, null]]}"#,
            ),
        ] {
            let e = body(&c, which, text.as_bytes()).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidField, "{which:?} {text}: {e}");
        }
    }

    #[test]
    fn feed_frames_and_queries() {
        let c = config();
        assert!(feed_message(
            &c,
            r#"{"op":"subscribe","topics":["sku:a","all"],"since":3}"#
        )
        .is_ok());
        assert!(feed_message(&c, r#"{"op":"unsubscribe","topics":["stock"]}"#).is_ok());
        assert!(feed_message(&c, r#"{"op":"subscribe","topics":["nope"]}"#).is_err());
        assert!(feed_message(&c, r#"{"op":"dance"}"#).is_err());
        assert!(feed_query(&c, "topics=sku:a,orders&conflate_ms=10").is_ok());
        assert!(feed_query(&c, "topics=x").is_err());
        assert!(feed_query(&c, "since=-1").is_err());
        assert!(feed_query(&c, "bogus=1").is_err());
    }
}
