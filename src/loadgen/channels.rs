//! `--channels`: a sale spread over several sales channels, some of them
//! with a stock pool on every SKU, and the check that no pool was oversold.
//!
//! The option lists the channels, comma-separated, each `name` (no pool:
//! it sells from the common remainder), `name:share:F` (a pool of the
//! share F of each SKU's stock, 0 < F ≤ 1) or `name:fixed:N` (a pool of N
//! units of each SKU). Each request picks one channel at random; an order
//! consuming a hold names the hold's channel.
//!
//! After the run, per SKU and pooled channel: the units the channel was
//! acknowledged (net of cancels, shipped units included) never exceed its
//! pool; the pool's units left plus those taken equal its size; and the
//! channels without a pool together never took more than the common
//! remainder the pools left.

use crate::core::ids::ChannelId;
use serde::{Deserialize, Serialize};

/// How one channel of the mix sells.
#[derive(Debug, Clone, PartialEq)]
pub enum PoolArg {
    /// A share of each SKU's stock, in (0, 1].
    Share(f64),
    /// This many units of each SKU.
    Fixed(u64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChannelArg {
    pub name: String,
    pub pool: Option<PoolArg>,
}

/// Parses `--channels`.
pub fn parse(spec: &str) -> Result<Vec<ChannelArg>, String> {
    let mut out: Vec<ChannelArg> = Vec::new();
    let mut shares = 0.0;
    for item in spec.split(',') {
        let parts: Vec<&str> = item.split(':').collect();
        let name = parts[0];
        ChannelId::parse(name).map_err(|e| format!("--channels: {name:?}: {e}"))?;
        if out.iter().any(|c| c.name == name) {
            return Err(format!("--channels: {name} is listed twice"));
        }
        let pool = match parts[1..] {
            [] => None,
            ["share", f] => {
                let f: f64 = f
                    .parse()
                    .map_err(|_| format!("--channels: {name}: share {f:?} is not a number"))?;
                if !(f > 0.0 && f <= 1.0) {
                    return Err(format!(
                        "--channels: {name}: a share is more than 0, at most 1"
                    ));
                }
                shares += f;
                Some(PoolArg::Share(f))
            }
            ["fixed", n] => {
                let n: u64 = n
                    .parse()
                    .map_err(|_| format!("--channels: {name}: fixed {n:?} is not a count"))?;
                if n == 0 {
                    return Err(format!(
                        "--channels: {name}: a fixed pool is at least 1 unit"
                    ));
                }
                Some(PoolArg::Fixed(n))
            }
            _ => {
                return Err(format!(
                    "--channels: {item:?}: expected name, name:share:F or name:fixed:N"
                ))
            }
        };
        out.push(ChannelArg {
            name: name.to_owned(),
            pool,
        });
    }
    if shares > 1.0 + 1e-9 {
        return Err("--channels: the shares add up to more than 1".into());
    }
    Ok(out)
}

/// The body of `PUT /v1/skus/{sku}/channels` for the pooled channels.
pub fn pools_body(channels: &[ChannelArg]) -> String {
    let pools: serde_json::Map<String, serde_json::Value> = channels
        .iter()
        .filter_map(|c| {
            let spec = match c.pool.as_ref()? {
                PoolArg::Share(f) => serde_json::json!({ "share": f }),
                PoolArg::Fixed(n) => serde_json::json!({ "fixed": n }),
            };
            Some((c.name.clone(), spec))
        })
        .collect();
    serde_json::json!({ "pools": pools }).to_string()
}

/// One pool of one SKU as the server shows it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct PoolView {
    pub left: u64,
    pub out: u64,
}

/// Each pool's numbers in the server's answer to
/// `GET /v1/skus/{sku}/channels`, by channel.
pub fn pools_of(body: &[u8]) -> Result<Vec<(String, PoolView)>, String> {
    #[derive(Deserialize)]
    struct Listed {
        channel: String,
        #[serde(flatten)]
        view: PoolView,
    }
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("channels answer: {e}"))?;
    let pools = v
        .get("pools")
        .ok_or_else(|| "channels answer without pools".to_owned())?;
    match pools {
        serde_json::Value::Object(m) => m
            .iter()
            .map(|(k, v)| {
                PoolView::deserialize(v)
                    .map(|p| (k.clone(), p))
                    .map_err(|e| format!("pool {k}: {e}"))
            })
            .collect(),
        serde_json::Value::Array(a) => a
            .iter()
            .map(|v| {
                Listed::deserialize(v)
                    .map(|l| (l.channel, l.view))
                    .map_err(|e| format!("pool: {e}"))
            })
            .collect(),
        _ => Err("channels answer: pools is neither a map nor a list".into()),
    }
}

/// The accounting of one channel on one SKU after the run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PoolCheck {
    pub sku: String,
    pub channel: String,
    /// The pool's size at setup; `None`: the channel has no pool.
    pub pool: Option<u64>,
    /// Units acknowledged to the channel, net of cancels (shipped units
    /// included: they were sold).
    pub acknowledged: i64,
    /// The server's units left in the pool and out of it now.
    pub left: Option<u64>,
    pub out: Option<u64>,
}

impl PoolCheck {
    /// What is wrong with this channel's numbers. `exact`: every request
    /// was answered, so the acknowledged units are exactly what the server
    /// did; `grown`: units came back into the SKU's stock (restocked
    /// returns), of which a share pool gets its share, so the pool may be
    /// larger than at setup; `shipped`: units left the SKU, ending their
    /// count out of the pool.
    pub fn problems(&self, exact: bool, grown: bool, shipped: bool) -> Vec<String> {
        let mut p = Vec::new();
        let Some(pool) = self.pool else {
            return p;
        };
        let at = format!("{} on {}", self.channel, self.sku);
        if grown {
            return p;
        }
        if self.acknowledged > pool as i64 {
            p.push(format!(
                "{at}: POOL OVERSOLD: {} units acknowledged from a pool of {pool}",
                self.acknowledged
            ));
        }
        let (Some(left), Some(out)) = (self.left, self.out) else {
            p.push(format!("{at}: the server shows no pool"));
            return p;
        };
        if left.saturating_add(out) > pool {
            p.push(format!(
                "{at}: pool left {left} + out {out} > its size {pool}"
            ));
        }
        if exact && left as i64 != pool as i64 - self.acknowledged {
            p.push(format!(
                "{at}: pool left {left} != its size {pool} - {} units acknowledged",
                self.acknowledged
            ));
        }
        if exact && !shipped && out as i64 != self.acknowledged {
            p.push(format!(
                "{at}: pool out {out} != {} units acknowledged",
                self.acknowledged
            ));
        }
        p
    }
}

/// The channels without a pool together took `taken` units of a SKU whose
/// common remainder was `common` at setup.
pub fn common_problem(sku: &str, taken: i64, common: u64, grown: bool) -> Option<String> {
    (!grown && taken > common as i64).then(|| {
        format!("{sku}: COMMON OVERSOLD: channels without a pool took {taken} of {common} units")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mix_parses_and_becomes_the_pools_body() {
        let c = parse("live:share:0.3,market:fixed:100,web").unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].pool, Some(PoolArg::Share(0.3)));
        assert_eq!(c[1].pool, Some(PoolArg::Fixed(100)));
        assert_eq!(c[2].pool, None);
        let body: serde_json::Value = serde_json::from_str(&pools_body(&c)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"pools": {"live": {"share": 0.3}, "market": {"fixed": 100}}})
        );
    }

    #[test]
    fn a_bad_mix_is_refused() {
        for bad in [
            "",
            "web,web",
            "a:share:0",
            "a:share:1.5",
            "a:share:x",
            "a:fixed:0",
            "a:fixed:-1",
            "a:pool:3",
            "a:share:0.6,b:share:0.5",
            "bad id!",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
        assert!(parse("a:share:1").is_ok());
        assert!(parse("a:share:0.5,b:share:0.5").is_ok());
    }

    #[test]
    fn pools_are_read_from_a_map_or_a_list() {
        let m = br#"{"pools":{"web":{"left":3,"out":2,"spec":{"fixed":5}}}}"#;
        let l = br#"{"pools":[{"channel":"web","left":3,"out":2}],"common":7}"#;
        for b in [&m[..], &l[..]] {
            assert_eq!(
                pools_of(b).unwrap(),
                vec![("web".to_owned(), PoolView { left: 3, out: 2 })]
            );
        }
        assert!(pools_of(b"{}").is_err());
    }

    fn check() -> PoolCheck {
        PoolCheck {
            sku: "s0".into(),
            channel: "web".into(),
            pool: Some(10),
            acknowledged: 4,
            left: Some(6),
            out: Some(4),
        }
    }

    #[test]
    fn a_pool_that_adds_up_has_no_problem() {
        assert!(check().problems(true, false, false).is_empty());
        // Shipped units leave `out` but stay taken from the pool.
        let shipped = PoolCheck {
            out: Some(1),
            ..check()
        };
        assert!(shipped.problems(true, false, true).is_empty());
        let unpooled = PoolCheck {
            pool: None,
            left: None,
            out: None,
            acknowledged: 99,
            ..check()
        };
        assert!(unpooled.problems(true, false, false).is_empty());
    }

    #[test]
    fn an_oversold_or_inconsistent_pool_is_a_problem() {
        let over = PoolCheck {
            acknowledged: 11,
            left: Some(0),
            out: Some(11),
            ..check()
        };
        let p = over.problems(false, false, false);
        assert!(p.iter().any(|p| p.contains("POOL OVERSOLD: 11")), "{p:?}");
        assert!(p
            .iter()
            .any(|p| p.contains("left 0 + out 11 > its size 10")));
        // Restocks may grow a share pool: no bound then.
        assert!(over.problems(false, true, false).is_empty());
        let drift = PoolCheck {
            out: Some(5),
            left: Some(5),
            ..check()
        };
        let p = drift.problems(true, false, false);
        assert!(
            p.iter().any(|p| p.contains("left 5 != its size 10 - 4")),
            "{p:?}"
        );
        assert!(p.iter().any(|p| p.contains("out 5 != 4")), "{p:?}");
        assert!(drift.problems(false, false, false).is_empty());
        let gone = PoolCheck {
            left: None,
            out: None,
            ..check()
        };
        assert!(gone.problems(false, false, false)[0].contains("no pool"));
        assert!(common_problem("s0", 8, 7, false)
            .unwrap()
            .contains("took 8 of 7"));
        assert!(common_problem("s0", 7, 7, false).is_none());
        assert!(common_problem("s0", 8, 7, true).is_none());
    }
}
