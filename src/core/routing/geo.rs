//! Great-circle distance between two points on the Earth.

use crate::core::model::Location;

/// Mean Earth radius (IUGG), km.
const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Great-circle (haversine) distance between `a` and `b`, km. Finite and
/// non-negative for valid locations.
pub fn distance_km(a: Location, b: Location) -> f64 {
    To::new(b).from(a)
}

/// [`distance_km`] from many points to one: the destination's part is
/// computed once, the results are the same.
#[derive(Debug, Clone, Copy)]
pub(crate) struct To {
    lon: f64,
    lat_rad: f64,
    cos_lat: f64,
}

impl To {
    pub(crate) fn new(b: Location) -> Self {
        let lat_rad = b.lat.to_radians();
        Self {
            lon: b.lon,
            lat_rad,
            cos_lat: lat_rad.cos(),
        }
    }

    /// `distance_km(a, b)`.
    pub(crate) fn from(&self, a: Location) -> f64 {
        let lat1 = a.lat.to_radians();
        let dlat = self.lat_rad - lat1;
        let dlon = (self.lon - a.lon).to_radians();
        let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * self.cos_lat * (dlon / 2.0).sin().powi(2);
        // Rounding can push h a hair past 1 for antipodes.
        2.0 * EARTH_RADIUS_KM * h.clamp(0.0, 1.0).sqrt().asin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(lat: f64, lon: f64) -> Location {
        Location { lat, lon }
    }

    #[test]
    fn known_distances() {
        let paris = at(48.8566, 2.3522);
        let berlin = at(52.52, 13.405);
        let d = distance_km(paris, berlin);
        assert!((d - 878.0).abs() < 5.0, "{d}");
        assert_eq!(distance_km(paris, paris), 0.0);
        assert!((distance_km(berlin, paris) - d).abs() < 1e-9);
        // Antipodes: half the circumference.
        let half = distance_km(at(0.0, 0.0), at(0.0, 180.0));
        assert!((half - std::f64::consts::PI * EARTH_RADIUS_KM).abs() < 1e-6);
        assert!(distance_km(at(90.0, 0.0), at(-90.0, 0.0)).is_finite());
    }
}
