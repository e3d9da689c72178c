//! Channel pools of one SKU: units of its sellable stock ring-fenced for a
//! channel, by count.
//!
//! A pooled channel sells only from its pool; no other channel takes from
//! it; channels without a pool share the common remainder, which is the
//! SKU's available units less every pool's units left. Pools count units,
//! not rows: a pooled unit may be taken in any warehouse the SKU has stock
//! in, so routing is unchanged.
//!
//! What moves a pool:
//! - **set**: pools are (re)set from the units available now. A fixed pool
//!   sets aside its units; a share pool a share of the available units
//!   (rounded down). Units a channel already holds stay with their holder.
//! - **take**: a pooled channel's hold or order takes from its pool and
//!   counts the units as out of it.
//! - **give back**: units of a pooled channel coming back (a release, an
//!   expiry, a cancellation) return to its pool up to what it has out;
//!   the rest, taken before the pool existed, go to the common remainder.
//!   A shipment of a pooled channel's units ends them: out of the pool for
//!   good.
//! - **stock added** (an adjustment up, a restocked return, a receipt):
//!   each share pool gets its share, with the fraction carried to the
//!   next addition so that many small additions add up exactly; the rest
//!   is common.
//! - **stock removed** below what the pools hold (an adjustment down):
//!   the common remainder goes first, then the pools with the most units
//!   left, one unit at a time, ties by channel id.
//! - **move**: units from a pool (or the common remainder) to another
//!   pool (or the common remainder), all or nothing.
//!
//! The invariant, after every step: the units left in all pools together
//! are at most the SKU's available units, so the common remainder is never
//! negative and no unit is sellable twice.

use super::super::ids::ChannelId;
use std::collections::BTreeMap;

/// Parts per million: a share of 0.3 is 300,000.
pub const PPM: u64 = 1_000_000;

/// How a channel's pool is sized when pools are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolSpec {
    /// This share of the available units, in parts per million.
    Share { ppm: u32 },
    /// This many units.
    Fixed { units: u64 },
}

/// One channel's pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub spec: PoolSpec,
    /// Units ring-fenced for the channel and not taken.
    pub left: u64,
    /// Units taken from the pool and not yet given back or shipped.
    pub out: u64,
    /// A share pool's fraction of added stock not yet a whole unit, in
    /// parts per million of a unit.
    pub carry: u64,
}

/// Why pools could not be set or units moved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("the pools ask for {asked} units; {available} are available")]
    ExceedStock { asked: u64, available: u64 },
    #[error("the shares add up to more than the whole ({ppm} parts per million)")]
    SharesOverWhole { ppm: u64 },
    #[error("a share must be more than 0 and at most 1")]
    ShareOutOfRange,
    #[error("{channel} has no pool")]
    NoPool { channel: ChannelId },
    #[error("only {left} units to move")]
    NotEnough { left: u64 },
    #[error("units must move from one place to another")]
    SamePlace,
}

/// The pools of one SKU. Empty: every channel shares everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pools {
    pools: BTreeMap<ChannelId, Pool>,
}

impl Pools {
    /// Pools sized from `available` units, replacing these. A channel that
    /// keeps a pool keeps the count of units it has out.
    pub fn set(
        &self,
        specs: &BTreeMap<ChannelId, PoolSpec>,
        available: u64,
    ) -> Result<Pools, PoolError> {
        let mut ppm_total: u64 = 0;
        let mut asked: u64 = 0;
        let mut pools = BTreeMap::new();
        for (channel, &spec) in specs {
            let left = match spec {
                PoolSpec::Share { ppm } => {
                    if ppm == 0 || u64::from(ppm) > PPM {
                        return Err(PoolError::ShareOutOfRange);
                    }
                    ppm_total += u64::from(ppm);
                    share_of(available, ppm)
                }
                PoolSpec::Fixed { units } => units,
            };
            asked = asked.saturating_add(left);
            let out = self.pools.get(channel).map_or(0, |p| p.out);
            pools.insert(
                channel.clone(),
                Pool {
                    spec,
                    left,
                    out,
                    carry: 0,
                },
            );
        }
        if ppm_total > PPM {
            return Err(PoolError::SharesOverWhole { ppm: ppm_total });
        }
        if asked > available {
            return Err(PoolError::ExceedStock { asked, available });
        }
        Ok(Pools { pools })
    }

    pub fn is_empty(&self) -> bool {
        self.pools.is_empty()
    }

    pub fn get(&self, channel: &ChannelId) -> Option<&Pool> {
        self.pools.get(channel)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&ChannelId, &Pool)> + '_ {
        self.pools.iter()
    }

    /// Units left in all pools together.
    pub fn ring_fenced(&self) -> u64 {
        self.pools.values().map(|p| p.left).sum()
    }

    /// What `channel` (none: a sale without a channel) may take of
    /// `available` units: its pool's units left, or the common remainder.
    pub fn sellable(&self, channel: Option<&ChannelId>, available: u64) -> u64 {
        match channel.and_then(|c| self.pools.get(c)) {
            Some(pool) => pool.left,
            None => available.saturating_sub(self.ring_fenced()),
        }
    }

    /// `qty` units taken by `channel` out of `available`; refused with
    /// what it may take when that is less.
    pub fn take(
        &mut self,
        channel: Option<&ChannelId>,
        qty: u64,
        available: u64,
    ) -> Result<(), u64> {
        let sellable = self.sellable(channel, available);
        if qty > sellable {
            return Err(sellable);
        }
        if let Some(pool) = channel.and_then(|c| self.pools.get_mut(c)) {
            pool.left -= qty;
            pool.out += qty;
        }
        Ok(())
    }

    /// `qty` units of `channel` coming back to the available stock.
    pub fn give_back(&mut self, channel: Option<&ChannelId>, qty: u64) {
        if let Some(pool) = channel.and_then(|c| self.pools.get_mut(c)) {
            let back = qty.min(pool.out);
            pool.out -= back;
            pool.left += back;
        }
    }

    /// `qty` units of `channel` shipped: gone, from its pool's units out.
    pub fn shipped(&mut self, channel: Option<&ChannelId>, qty: u64) {
        if let Some(pool) = channel.and_then(|c| self.pools.get_mut(c)) {
            pool.out -= qty.min(pool.out);
        }
    }

    /// `qty` units added to the available stock, which is now
    /// `available`: each share pool gets its share, the rest is common.
    pub fn stock_added(&mut self, qty: u64, available: u64) {
        for pool in self.pools.values_mut() {
            if let PoolSpec::Share { ppm } = pool.spec {
                let parts = u128::from(qty) * u128::from(ppm) + u128::from(pool.carry);
                let whole = parts / u128::from(PPM);
                // `whole` ≤ qty + 1 and carry < PPM: both fit.
                pool.left += whole as u64;
                pool.carry = (parts % u128::from(PPM)) as u64;
            }
        }
        // Carried fractions of several pools can round up to one unit
        // more than was added.
        self.fit(available);
    }

    /// The available stock is now `available`: pools shrink until they fit
    /// in it, the one with the most units left first (a unit at a time:
    /// pools at the same level shrink together, the remainder from the
    /// first channels).
    pub fn fit(&mut self, available: u64) {
        let mut excess = self.ring_fenced().saturating_sub(available);
        while excess > 0 {
            let top = self.pools.values().map(|p| p.left).max().unwrap_or(0);
            if top == 0 {
                return;
            }
            let next = self
                .pools
                .values()
                .map(|p| p.left)
                .filter(|&l| l < top)
                .max()
                .unwrap_or(0);
            let at_top = self.pools.values().filter(|p| p.left == top).count() as u64;
            // Down to the next level, or as far as the excess goes.
            let each = (top - next).min(excess / at_top);
            let mut extra = if each == top - next {
                0
            } else {
                excess - each * at_top
            };
            for pool in self.pools.values_mut().filter(|p| p.left == top) {
                let cut = each + u64::from(extra > 0);
                extra = extra.saturating_sub(1);
                pool.left -= cut;
                excess -= cut;
            }
        }
    }

    /// `qty` units from `from`'s pool (none: the common remainder of
    /// `available`) to `to`'s pool (none: the common remainder).
    pub fn move_units(
        &mut self,
        from: Option<&ChannelId>,
        to: Option<&ChannelId>,
        qty: u64,
        available: u64,
    ) -> Result<(), PoolError> {
        if from == to {
            return Err(PoolError::SamePlace);
        }
        for c in [from, to].into_iter().flatten() {
            if !self.pools.contains_key(c) {
                return Err(PoolError::NoPool { channel: c.clone() });
            }
        }
        let left = self.sellable(from, available);
        if qty > left {
            return Err(PoolError::NotEnough { left });
        }
        if let Some(p) = from.and_then(|c| self.pools.get_mut(c)) {
            p.left -= qty;
        }
        if let Some(p) = to.and_then(|c| self.pools.get_mut(c)) {
            p.left += qty;
        }
        Ok(())
    }
}

/// `ppm` parts per million of `units`, rounded down.
fn share_of(units: u64, ppm: u32) -> u64 {
    (u128::from(units) * u128::from(ppm) / u128::from(PPM)) as u64
}
