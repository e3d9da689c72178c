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
    at_offset(now, offset_s(tz, now))
}

/// `tz`'s offset from UTC at `now`, seconds (0 for UTC, an unknown zone or
/// a `now` beyond jiff's range).
fn offset_s(tz: Option<&str>, now: Millis) -> i64 {
    let ms = i64::try_from(now).unwrap_or(i64::MAX);
    match (tz, Timestamp::from_millisecond(ms)) {
        (Some(name), Ok(ts)) => TimeZone::get(name)
            .map(|z| i64::from(z.to_offset(ts).seconds()))
            .unwrap_or(0),
        _ => 0,
    }
}

/// Local (day, seconds since midnight) at `now` shifted by `offset` s.
fn at_offset(now: Millis, offset: i64) -> (i32, i64) {
    let ms = i64::try_from(now).unwrap_or(i64::MAX);
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
    is_before(cutoff, secs)
}

fn is_before(cutoff: &Cutoff, secs: i64) -> bool {
    secs < i64::from(cutoff.hour) * 3600 + i64::from(cutoff.minute) * 60
}

/// [`local_day`] and [`before_cutoff`] for many warehouses at one `now`:
/// each zone is looked up once (a zone lookup costs far more than the
/// rest), with the same answers.
pub(crate) struct Clocks<'a> {
    now: Millis,
    /// Offsets (s) of the zones seen so far.
    zones: Vec<(&'a str, i64)>,
}

impl<'a> Clocks<'a> {
    pub(crate) fn new(now: Millis) -> Self {
        Self {
            now,
            zones: Vec::new(),
        }
    }

    fn local(&mut self, tz: Option<&'a str>) -> (i32, i64) {
        let Some(name) = tz else {
            return at_offset(self.now, 0);
        };
        let offset = match self.zones.iter().find(|(z, _)| *z == name) {
            Some(&(_, o)) => o,
            None => {
                let o = offset_s(Some(name), self.now);
                self.zones.push((name, o));
                o
            }
        };
        at_offset(self.now, offset)
    }

    /// [`local_day`] at this `now`.
    pub(crate) fn day(&mut self, routing: &'a WarehouseRouting) -> i32 {
        self.local(routing.cutoff.as_ref().map(|c| c.tz.as_str())).0
    }

    /// [`before_cutoff`] at this `now`.
    pub(crate) fn before_cutoff(&mut self, cutoff: &'a Cutoff) -> bool {
        is_before(cutoff, self.local(Some(&cutoff.tz)).1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cutoff(tz: &str, hour: u8) -> Cutoff {
        Cutoff {
            hour,
            minute: 30,
            tz: tz.into(),
        }
    }

    /// One `Clocks` over many warehouses answers as the one-warehouse
    /// functions do, each zone looked up once, across a DST change.
    #[test]
    fn clocks_agree_with_one_warehouse_at_a_time() {
        let zones = [
            "Europe/Berlin",
            "America/New_York",
            "Europe/Berlin",
            "Asia/Kolkata",
            "Not/AZone",
            "America/New_York",
        ];
        let routings: Vec<WarehouseRouting> = zones
            .iter()
            .enumerate()
            .map(|(i, tz)| WarehouseRouting {
                cutoff: Some(cutoff(tz, (i * 5 % 24) as u8)),
                ..Default::default()
            })
            .chain(std::iter::once(WarehouseRouting::default()))
            .collect();
        // Around the 2026 spring change in Europe (29 March, 01:00 UTC),
        // every 20 minutes for two days, and a `now` past jiff's range.
        let start: Millis = 1_774_656_000_000;
        let nows = (0..144u64)
            .map(|k| start + k * 20 * 60 * 1000)
            .chain([u64::MAX]);
        for now in nows {
            let mut clocks = Clocks::new(now);
            for r in &routings {
                assert_eq!(clocks.day(r), local_day(r, now), "{r:?} at {now}");
                if let Some(c) = &r.cutoff {
                    assert_eq!(
                        clocks.before_cutoff(c),
                        before_cutoff(c, now),
                        "{c:?} at {now}"
                    );
                }
            }
            assert!(
                clocks.zones.len() <= 4,
                "each zone once: {:?}",
                clocks.zones
            );
        }
    }
}
