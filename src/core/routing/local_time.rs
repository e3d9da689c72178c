//! A warehouse's local time: its day (for capacity) and whether a shipment
//! still leaves today (its cut-off). Counted in the cut-off's IANA zone,
//! UTC without a cut-off; `jiff` knows the zones' rules, DST included.

use super::types::{Cutoff, WarehouseRouting};
use crate::core::model::Millis;
use jiff::{tz::TimeZone, Timestamp};

const SECONDS_PER_DAY: i64 = 86_400;

/// Local (days since 1970-01-01, seconds since local midnight) at `now` in
/// `tz`. A zone name jiff does not know (names are checked when a cut-off
/// is set) counts as UTC; so does a `now` beyond jiff's range (year 9999).
fn local(tz: Option<&str>, now: Millis) -> (i32, i64) {
    let ms = i64::try_from(now).unwrap_or(i64::MAX);
    let offset = match (tz, Timestamp::from_millisecond(ms)) {
        (Some(name), Ok(ts)) => TimeZone::get(name)
            .map(|z| i64::from(z.to_offset(ts).seconds()))
            .unwrap_or(0),
        _ => 0,
    };
    let secs = ms.div_euclid(1000).saturating_add(offset);
    let day = secs.div_euclid(SECONDS_PER_DAY);
    (
        i32::try_from(day).unwrap_or(i32::MAX),
        secs.rem_euclid(SECONDS_PER_DAY),
    )
}

/// The warehouse's local date at `now`, as days since 1970-01-01: in its
/// cut-off's zone, UTC without one. Its daily capacity resets when this
/// changes.
pub fn local_day(routing: &WarehouseRouting, now: Millis) -> i32 {
    local(routing.cutoff.as_ref().map(|c| c.tz.as_str()), now).0
}

/// Whether a shipment planned at `now` leaves today: local time strictly
/// before the cut-off. At the cut-off minute or later it ships tomorrow.
pub fn before_cutoff(cutoff: &Cutoff, now: Millis) -> bool {
    let (_, secs) = local(Some(&cutoff.tz), now);
    secs < i64::from(cutoff.hour) * 3600 + i64::from(cutoff.minute) * 60
}
