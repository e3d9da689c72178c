//! The routing engine: filters warehouses, enumerates candidate plans,
//! ranks them under a chain and explains the choice.
//!
//! # What is enumerated
//! Warehouses the filters keep are *eligible*. Lines pinned to a warehouse
//! (they consume a hold there) always ship from it, even if a filter left
//! it out (the stock is already theirs), and its shipment is part of every
//! plan. The unpinned lines are then filled, warehouse by warehouse, into
//! these warehouse sets (each on top of the pinned warehouses):
//! 1. every eligible warehouse alone (`n` sets);
//! 2. if the split policy allows another shipment, greedy fills: walking
//!    the eligible warehouses in the chain's preference order, in each
//!    ranking rule's own order, and by most units still needed first
//!    (re-evaluated after each pick) — at most 2 + one per ranking rule;
//! 3. if it allows two more, every pair among the first [`PAIR_POOL`]
//!    warehouses (in the chain's order) that hold something needed.
//!
//! So at most `n + 11 + PAIR_POOL·(PAIR_POOL−1)/2` fills per call, each
//! `O(n · lines)`. Every set is allocated the same way (pinned warehouses
//! first, then the chain's order; a warehouse that ends up with nothing is
//! dropped), so one set always gives one allocation; sets are deduplicated.
//! The allocation never takes more of a SKU from a warehouse than
//! `available` says, lines of one SKU sharing it, and never exceeds the
//! split policy's shipments.
//!
//! # What it costs
//! A fill walks its warehouses one at a time, each giving what it can of
//! what is still needed, and stops once every line is placed or the policy's
//! shipments are reached (later warehouses would change nothing). So fills
//! share work: every fill starts from one copy of the pinned part, a pair
//! continues the fill of its first warehouse alone, a greedy fill by a
//! rule's order picks its next warehouse only when it needs one (sorting
//! the rest only if it goes beyond a few), and the coverage fill continues
//! after each pick. All fills use the same few buffers. Of the complete
//! plans only the best `max(max_traced, 2)` so far are kept (ranked plans
//! are totally ordered, so these are the first ones a full sort would
//! give). The chain's order is sorted only over the pinned warehouses and
//! those that hold something needed. A test checks all of this against the
//! straightforward search it replaced (`plan_reference.rs`).
//!
//! # Ranking
//! Plans that place every line are ordered lexicographically by the chain's
//! ranking rules (each rule scores a whole plan, lower first), then by the
//! sorted ids of their warehouses: the result depends only on the input,
//! not on the order of `candidates`.
//!
//! Per plan: `fewest_shipments` counts shipments; `nearest` sums the
//! shipments' great-circle distances (km); `lowest_cost` sums their costs,
//! shipments without a cost ranking after any plan with fewer of them;
//! `same_day` counts shipments after their cut-off; `balance_stock` takes
//! the least stock any (SKU, warehouse) the plan draws from keeps, most
//! first; `capacity:rank` the least remaining daily capacity among its
//! warehouses, most first; `priority` sums its warehouses' priorities.

use super::geo::To;
use super::local_time::Clocks;
// The tests check the engine against these, one warehouse at a time.
#[cfg(test)]
use super::local_time::{before_cutoff, local_day};
use super::types::*;
use crate::core::ids::{SkuId, WarehouseId};
use std::cell::{OnceCell, RefCell};
use std::cmp::Ordering;

/// Warehouses (best first under the chain) whose pairs are all tried.
pub const PAIR_POOL: usize = 8;

/// Warehouses a trace lists as left out by a filter, at most (the first by
/// id): a trace is logged and fed with its order.
pub const EXCLUDED_TRACED_MAX: usize = 32;

/// The `lowest_cost` verdict's score for each shipment without a cost, on
/// top of the known costs (minor units): only for display; ranking counts
/// such shipments first, then the known costs.
pub const UNKNOWN_COST_SCORE: f64 = 1e12;

/// A rule's score of one plan, lower first: the integer part, then the
/// fractional one.
#[derive(Debug, Clone, Copy)]
struct Key(u64, f64);

impl Key {
    fn cmp(&self, o: &Key) -> Ordering {
        self.0.cmp(&o.0).then(self.1.total_cmp(&o.1))
    }
}

/// One candidate warehouse, precomputed once per call.
struct Wh<'a> {
    c: &'a Candidate<'a>,
    eligible: bool,
    pinned: bool,
    /// Distance (km) and shipment cost: each computed on first use, since
    /// most warehouses of a large list never enter a ranked plan, and
    /// costs are read only by `lowest_cost` and the trace.
    km: OnceCell<Option<f64>>,
    cost: OnceCell<Option<u64>>,
    /// `None` without a cut-off, or when no rule needs it.
    same_day: Option<bool>,
    /// Before its cut-off at `now`; `None` without a cut-off (what the
    /// trace shows): computed when first traced.
    leaves_today: OnceCell<Option<bool>>,
    /// Remaining daily capacity; `u64::MAX` = unlimited.
    capacity_left: u64,
    /// Position in the chain's preference order.
    chain_pos: u32,
}

/// A filled warehouse set.
#[derive(Default)]
struct Fill {
    /// Warehouse indices, in shipment order.
    whs: Vec<u16>,
    /// (line, warehouse index, quantity).
    alloc: Vec<(u16, u16, u64)>,
    /// Lines with a quantity not placed.
    open: usize,
    /// Per line: quantity not placed.
    need: Vec<u64>,
}

impl Clone for Fill {
    fn clone(&self) -> Self {
        Self {
            whs: self.whs.clone(),
            alloc: self.alloc.clone(),
            open: self.open,
            need: self.need.clone(),
        }
    }

    /// Keeps `self`'s buffers (a derived `clone_from` would allocate new
    /// ones): fills copy into scratch fills all the time.
    fn clone_from(&mut self, o: &Self) {
        self.whs.clone_from(&o.whs);
        self.alloc.clone_from(&o.alloc);
        self.open = o.open;
        self.need.clone_from(&o.need);
    }
}

impl Fill {
    fn unplaced_lines(&self) -> usize {
        self.open
    }

    fn unplaced_units(&self) -> u64 {
        self.need.iter().fold(0u64, |a, &q| a.saturating_add(q))
    }
}

struct Ranked {
    fill: Fill,
    keys: Vec<Key>,
    /// Its warehouses in id order ([`Ctx::id_cmp`]): tie-break and
    /// identity.
    ids: Vec<u16>,
}

struct Ctx<'r, 'a> {
    whs: Vec<Wh<'a>>,
    lines: &'r [PlanLine],
    /// SKU index per line (lines of one SKU share availability).
    sku_of: Vec<usize>,
    skus: Vec<&'r SkuId>,
    /// `avail[w * skus.len() + s]`: available of SKU `s` in warehouse `w`
    /// (0 where not eligible).
    avail: Vec<u64>,
    /// The unpinned lines, in order: the ones fills place.
    unpinned: Vec<u16>,
    /// Every fill's start ([`Ctx::base_fill`]).
    base: Fill,
    /// Pinned warehouses, in chain order.
    pinned: Vec<u16>,
    max_shipments: usize,
    /// The destination, and its country (for the shipping cost).
    dest: Option<To>,
    country: Option<&'r str>,
    /// Whether two unpinned lines are of one SKU.
    shared_skus: bool,
    /// `step`'s scratch: per SKU, what the current warehouse has left.
    left: RefCell<Vec<u64>>,
    /// The warehouses' local clocks at `now` (zones looked up once).
    clocks: RefCell<Clocks<'a>>,
}

impl<'a> Ctx<'_, 'a> {
    fn n(&self) -> usize {
        self.whs.len()
    }

    /// Warehouses in id order, then in the candidates' order (the final
    /// tie-break, so a plan does not depend on that order while ids are
    /// distinct).
    fn id_cmp(&self, a: usize, b: usize) -> Ordering {
        let id = |w: usize| &self.whs[w].c.warehouse.id;
        id(a).cmp(id(b)).then(a.cmp(&b))
    }

    /// Whether a shipment from `w` leaves today; `None` without a cut-off.
    fn leaves_today(&self, w: usize) -> Option<bool> {
        let wh = &self.whs[w];
        let c: &'a Candidate<'a> = wh.c;
        *wh.leaves_today.get_or_init(|| {
            let cut = c.warehouse.routing.cutoff.as_ref()?;
            Some(self.clocks.borrow_mut().before_cutoff(cut))
        })
    }

    /// What warehouse `w` may give of each SKU.
    fn stock(&self, w: usize) -> &[u64] {
        let k = self.skus.len();
        &self.avail[w * k..(w + 1) * k]
    }

    /// Warehouse `w`'s distance to the destination (km).
    fn km(&self, w: usize) -> Option<f64> {
        let wh = &self.whs[w];
        *wh.km
            .get_or_init(|| self.dest.map(|d| d.from(wh.c.warehouse.location)))
    }

    /// Warehouse `w`'s shipment cost.
    fn cost(&self, w: usize) -> Option<u64> {
        let wh = &self.whs[w];
        *wh.cost.get_or_init(|| {
            let cost = wh.c.warehouse.routing.shipping_cost.as_ref()?;
            Some(shipment_cost(cost, self.country, self.km(w)))
        })
    }

    /// Every fill's start: the pinned lines placed in their warehouses (a
    /// pinned warehouse that is not a candidate leaves its line unplaced),
    /// then what the pinned warehouses give of the other lines.
    fn base_fill(&self) -> Fill {
        let mut need: Vec<u64> = self
            .lines
            .iter()
            .map(|l| if l.pinned.is_some() { 0 } else { l.qty })
            .collect();
        let mut alloc: Vec<(u16, u16, u64)> = Vec::with_capacity(self.lines.len() + 2);
        for (i, l) in self.lines.iter().enumerate() {
            if let Some(p) = &l.pinned {
                if let Some(w) = self.whs.iter().position(|w| &w.c.warehouse.id == p) {
                    if l.qty > 0 {
                        alloc.push((i as u16, w as u16, l.qty));
                    }
                } else {
                    need[i] = l.qty;
                }
            }
        }
        let mut base = Fill {
            whs: self.pinned.clone(),
            alloc,
            open: need.iter().filter(|&&q| q > 0).count(),
            need,
        };
        for &w in &self.pinned {
            self.step(&mut base, usize::from(w));
        }
        base
    }

    /// Fills the unpinned lines from `order` (eligible warehouses), on top
    /// of the pinned ones, into `out`. Warehouses that take nothing are
    /// left out.
    fn fill_into(&self, out: &mut Fill, order: impl IntoIterator<Item = usize>) {
        self.start(out);
        for w in order {
            if self.done(out) {
                break;
            }
            if !self.whs[w].pinned {
                self.step(out, w);
            }
        }
    }

    /// Starts fill `out`: the pinned lines, then what the pinned warehouses
    /// give of the others (the same for every fill, so done once).
    fn start(&self, out: &mut Fill) {
        out.clone_from(&self.base);
    }

    /// Fills `out` from `useful` in the order of `(key, chain position)`:
    /// like sorting them and filling from that order, but a fill usually
    /// stops after a few warehouses, so the first few are picked one by
    /// one and the rest sorted only if reached. `false` when that order
    /// starts as `useful` does as far as the fill went (then it is
    /// `useful`'s own fill).
    fn greedy_into(
        &self,
        out: &mut Fill,
        order: &mut [(Key, u32, usize)],
        useful: &[usize],
    ) -> bool {
        const PICKED_ONE_BY_ONE: usize = 8;
        let cmp = |a: &(Key, u32, usize), b: &(Key, u32, usize)| a.0.cmp(&b.0).then(a.1.cmp(&b.1));
        self.start(out);
        let mut used = 0;
        while used < order.len() && !self.done(out) {
            if used < PICKED_ONE_BY_ONE {
                let mut m = used;
                for j in used + 1..order.len() {
                    if cmp(&order[j], &order[m]).is_lt() {
                        m = j;
                    }
                }
                order.swap(used, m);
            } else if used == PICKED_ONE_BY_ONE {
                order[used..].sort_unstable_by(cmp);
            }
            self.step(out, order[used].2);
            used += 1;
        }
        order[..used]
            .iter()
            .map(|o| o.2)
            .ne(useful[..used].iter().copied())
    }

    /// Whether no further (unpinned) warehouse can change fill `f`.
    fn done(&self, f: &Fill) -> bool {
        f.open == 0 || f.whs.len() >= self.max_shipments
    }

    /// One warehouse of a fill: it gives what it can of what is still
    /// needed, lines in order. Once every line is placed, or the policy's
    /// shipments are reached, later warehouses change nothing: so a fill
    /// of `order` is the fill of any prefix continued with the rest.
    fn step(&self, f: &mut Fill, w: usize) {
        let wh = &self.whs[w];
        if f.open == 0 || !wh.eligible {
            return;
        }
        let is_new = !wh.pinned;
        if is_new && f.whs.len() >= self.max_shipments {
            return;
        }
        let before = f.alloc.len();
        let mut give = |i: u16, left: &mut u64| {
            let q = &mut f.need[usize::from(i)];
            let take = (*q).min(*left);
            if take > 0 {
                *q -= take;
                *left -= take;
                f.alloc.push((i, w as u16, take));
                if *q == 0 {
                    f.open -= 1;
                }
            }
        };
        if self.shared_skus {
            // Lines of one SKU share what the warehouse has of it.
            let mut left = self.left.borrow_mut();
            left.clear();
            left.extend_from_slice(self.stock(w));
            for &i in &self.unpinned {
                give(i, &mut left[self.sku_of[usize::from(i)]]);
            }
        } else {
            // Each SKU read once: no need to keep what is left.
            let stock = self.stock(w);
            for &i in &self.unpinned {
                let mut left = stock[self.sku_of[usize::from(i)]];
                give(i, &mut left);
            }
        }
        if is_new && f.alloc.len() > before {
            f.whs.push(w as u16);
        }
    }

    /// Refills `f`'s set in the chain's order into `out`, so one set always
    /// gives one allocation.
    fn canonical_into(&self, f: &Fill, out: &mut Fill, set: &mut Vec<usize>) {
        set.clear();
        set.extend(f.whs.iter().map(|&w| usize::from(w)));
        set.sort_by_key(|&w| self.whs[w].chain_pos);
        self.fill_into(out, set.iter().copied());
    }

    /// Greedy by coverage: the warehouse that can place the most units
    /// still needed first, ties to the chain's order. Each pick continues
    /// the fill of the picks before it.
    fn coverage_into(&self, by_chain: &[usize], f: &mut Fill) {
        self.start(f);
        let mut picked: Vec<usize> = Vec::new();
        let mut wanted = vec![0u64; self.skus.len()];
        loop {
            if self.done(f) {
                return;
            }
            // Units still wanted of each SKU (its unpinned lines share
            // its stock), the same for every warehouse.
            wanted.iter_mut().for_each(|x| *x = 0);
            for &i in &self.unpinned {
                let s = self.sku_of[usize::from(i)];
                wanted[s] = wanted[s].saturating_add(f.need[usize::from(i)]);
            }
            let mut best: Option<(u64, usize)> = None;
            for &w in by_chain {
                if self.whs[w].pinned || picked.contains(&w) {
                    continue;
                }
                // Units it would place.
                let mut units = 0u64;
                for (&want, &have) in wanted.iter().zip(self.stock(w)) {
                    units = units.saturating_add(want.min(have));
                }
                if units > 0 && best.is_none_or(|(u, _)| units > u) {
                    best = Some((units, w));
                }
            }
            match best {
                Some((_, w)) => {
                    picked.push(w);
                    self.step(f, w);
                }
                None => return,
            }
        }
    }

    /// A plan's key under one rule.
    fn plan_key(&self, rule: Rule, f: &Fill) -> Key {
        let ws = f.whs.iter().map(|&w| &self.whs[w as usize]);
        match rule {
            Rule::FewestShipments => Key(f.whs.len() as u64, 0.0),
            Rule::Nearest => Key(
                0,
                f.whs
                    .iter()
                    .map(|&w| self.km(w as usize).unwrap_or(0.0))
                    .sum(),
            ),
            Rule::LowestCost => {
                let (mut unknown, mut sum) = (0u64, 0u64);
                for &w in &f.whs {
                    match self.cost(w as usize) {
                        Some(c) => sum = sum.saturating_add(c),
                        None => unknown += 1,
                    }
                }
                Key(unknown, sum as f64)
            }
            Rule::SameDay => Key(ws.filter(|w| w.same_day == Some(false)).count() as u64, 0.0),
            Rule::BalanceStock => {
                let mut least = u64::MAX;
                for (k, &(line, w, _)) in f.alloc.iter().enumerate() {
                    if self.lines[line as usize].pinned.is_some() {
                        continue;
                    }
                    let s = self.sku_of[line as usize];
                    // Each (SKU, warehouse) once, with everything taken.
                    let first = f.alloc[..k].iter().any(|&(l2, w2, _)| {
                        w2 == w
                            && self.sku_of[l2 as usize] == s
                            && self.lines[l2 as usize].pinned.is_none()
                    });
                    if first {
                        continue;
                    }
                    let taken = f
                        .alloc
                        .iter()
                        .filter(|&&(l2, w2, _)| {
                            w2 == w
                                && self.sku_of[l2 as usize] == s
                                && self.lines[l2 as usize].pinned.is_none()
                        })
                        .fold(0u64, |a, &(_, _, q)| a.saturating_add(q));
                    let left = self.stock(usize::from(w))[s].saturating_sub(taken);
                    least = least.min(left);
                }
                Key(u64::MAX - least, 0.0)
            }
            Rule::Capacity(CapacityMode::Rank) => Key(
                u64::MAX - ws.map(|w| w.capacity_left).min().unwrap_or(u64::MAX),
                0.0,
            ),
            Rule::Priority => Key(0, ws.map(|w| f64::from(w.c.warehouse.priority)).sum()),
            // Filters do not rank.
            Rule::Enabled
            | Rule::ServesDestination
            | Rule::ServesChannel
            | Rule::Capacity(CapacityMode::Skip) => Key(0, 0.0),
        }
    }

    /// A warehouse's own key under one rule: the order greedy fills use.
    fn wh_key(&self, rule: Rule, w: usize, demand: &[u64]) -> Key {
        let wh = &self.whs[w];
        match rule {
            Rule::FewestShipments => {
                let units = demand
                    .iter()
                    .enumerate()
                    .fold(0u64, |a, (s, &d)| a.saturating_add(d.min(self.stock(w)[s])));
                Key(u64::MAX - units, 0.0)
            }
            Rule::Nearest => Key(0, self.km(w).unwrap_or(0.0)),
            Rule::LowestCost => {
                let cost = self.cost(w);
                Key(u64::from(cost.is_none()), cost.unwrap_or(0) as f64)
            }
            Rule::SameDay => Key(u64::from(wh.same_day == Some(false)), 0.0),
            Rule::BalanceStock => {
                let stock = (0..demand.len())
                    .filter(|&s| demand[s] > 0)
                    .fold(0u64, |a, s| a.saturating_add(self.stock(w)[s]));
                Key(u64::MAX - stock, 0.0)
            }
            Rule::Capacity(CapacityMode::Rank) => Key(u64::MAX - wh.capacity_left, 0.0),
            Rule::Priority => Key(0, f64::from(wh.c.warehouse.priority)),
            Rule::Enabled
            | Rule::ServesDestination
            | Rule::ServesChannel
            | Rule::Capacity(CapacityMode::Skip) => Key(0, 0.0),
        }
    }
}

/// The filter that leaves `c` out, if any (the first in chain order).
fn excluded_by<'a>(
    chain: &Chain,
    req: &PlanRequest<'_>,
    c: &Candidate<'a>,
    clocks: &mut Clocks<'a>,
) -> Option<Rule> {
    let r = &c.warehouse.routing;
    chain.rules.iter().copied().find(|&rule| match rule {
        Rule::Enabled => !r.enabled,
        Rule::ServesDestination => {
            let country = req.ship_to.and_then(|s| s.country.as_deref());
            match country {
                Some(cc) if !r.countries.is_empty() => {
                    !r.countries.iter().any(|x| x.eq_ignore_ascii_case(cc))
                }
                _ => false,
            }
        }
        Rule::ServesChannel => match req.channel {
            Some(ch) if !r.channels.is_empty() => !r.channels.contains(ch),
            _ => false,
        },
        Rule::Capacity(_) => capacity_left(c, clocks) == 0,
        _ => false,
    })
}

/// Orders it may still take today: `u64::MAX` without a limit. Routed
/// orders count only when `workload.day` is its local day at `now` (the
/// clocks').
fn capacity_left<'a>(c: &Candidate<'a>, clocks: &mut Clocks<'a>) -> u64 {
    let r = &c.warehouse.routing;
    match r.capacity_per_day {
        None => u64::MAX,
        Some(cap) => {
            let routed = if c.workload.day == clocks.day(r) {
                c.workload.routed
            } else {
                0
            };
            cap.saturating_sub(routed)
        }
    }
}

/// A shipment's cost: `fixed + per_km × km` with the destination country's
/// rate if it has one, rounded to the minor unit, saturating. Without a
/// destination only `fixed` counts.
fn shipment_cost(cost: &ShippingCost, country: Option<&str>, km: Option<f64>) -> u64 {
    let rate = country
        .and_then(|cc| {
            cost.by_country
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(cc))
        })
        .map(|(_, r)| *r)
        .unwrap_or(cost.default);
    // `as` saturates a float to the integer's range.
    let per_km = (rate.per_km as f64 * km.unwrap_or(0.0)).round() as u64;
    rate.fixed.saturating_add(per_km)
}

/// Plans an order or a hold: the best plan under `chain` and why, or the
/// lines no plan places. `available(sku, warehouse)` is what may still be
/// taken; lines pinned to a warehouse are not checked against it. At most
/// `max_traced` candidate plans are kept in the trace.
pub fn plan(
    chain: &Chain,
    req: &PlanRequest<'_>,
    candidates: &[Candidate<'_>],
    available: impl Fn(&SkuId, &WarehouseId) -> u64,
    max_traced: usize,
) -> Result<(Plan, RoutingTrace), Unroutable> {
    plan_with(chain, req, candidates, available, max_traced, true)
}

/// [`plan`], with or without the single-warehouse fast path (the tests
/// check both give the same answer).
fn plan_with<'a>(
    chain: &Chain,
    req: &PlanRequest<'_>,
    candidates: &[Candidate<'a>],
    available: impl Fn(&SkuId, &WarehouseId) -> u64,
    max_traced: usize,
    fast: bool,
) -> Result<(Plan, RoutingTrace), Unroutable> {
    let ranking: Vec<Rule> = chain
        .rules
        .iter()
        .copied()
        .filter(|r| !r.is_filter())
        .collect();
    let mut trace = RoutingTrace {
        rules: chain.rules.clone(),
        split: chain.split,
        excluded: Vec::new(),
        candidates: Vec::new(),
        deciding_rule: None,
        attempts: 1,
    };
    // At most u16::MAX warehouses and lines: far beyond any real order.
    let n = candidates.len().min(usize::from(u16::MAX));
    let candidates = &candidates[..n];
    let lines = &req.lines[..req.lines.len().min(usize::from(u16::MAX))];

    let needs_same_day = ranking.contains(&Rule::SameDay);
    let needs_capacity = chain.rules.iter().any(|r| matches!(r, Rule::Capacity(_)));
    let dest = req.ship_to.map(|s| To::new(s.location));

    let mut clocks = Clocks::new(req.now);
    let mut whs: Vec<Wh<'_>> = Vec::with_capacity(n);
    for c in candidates {
        let r: &'a WarehouseRouting = &c.warehouse.routing;
        let excluded = excluded_by(chain, req, c, &mut clocks);
        if let Some(rule) = excluded {
            trace.excluded.push(Excluded {
                warehouse: c.warehouse.id.clone(),
                rule,
            });
        }
        let pinned = lines
            .iter()
            .any(|l| l.qty > 0 && l.pinned.as_ref() == Some(&c.warehouse.id));
        let needed = excluded.is_none() || pinned;
        let leaves_today = OnceCell::new();
        let same_day = if needs_same_day && needed {
            *leaves_today.get_or_init(|| r.cutoff.as_ref().map(|cut| clocks.before_cutoff(cut)))
        } else {
            None
        };
        whs.push(Wh {
            c,
            eligible: excluded.is_none(),
            pinned,
            km: OnceCell::new(),
            cost: OnceCell::new(),
            same_day,
            leaves_today,
            capacity_left: if needs_capacity && needed {
                capacity_left(c, &mut clocks)
            } else {
                u64::MAX
            },
            chain_pos: 0,
        });
    }

    trace.excluded.sort_by(|a, b| a.warehouse.cmp(&b.warehouse));
    // The trace is logged with the order: bounded, whatever the number of
    // warehouses.
    trace.excluded.truncate(EXCLUDED_TRACED_MAX);

    // SKUs of the unpinned lines, and what each may take where.
    let mut skus: Vec<&SkuId> = Vec::new();
    let mut sku_of = Vec::with_capacity(lines.len());
    for l in lines {
        let s = match skus.iter().position(|s| **s == l.sku) {
            Some(s) => s,
            None => {
                skus.push(&l.sku);
                skus.len() - 1
            }
        };
        sku_of.push(s);
    }
    let mut demand = vec![0u64; skus.len()];
    for (l, &s) in lines.iter().zip(&sku_of) {
        if l.pinned.is_none() {
            demand[s] = demand[s].saturating_add(l.qty);
        }
    }
    let mut avail = vec![0u64; skus.len() * n];
    for (s, sku) in skus.iter().enumerate() {
        if demand[s] == 0 {
            continue;
        }
        for (w, wh) in whs.iter().enumerate() {
            if wh.eligible {
                avail[w * skus.len() + s] = available(sku, &wh.c.warehouse.id);
            }
        }
    }

    let shared_skus = {
        let mut seen = vec![false; skus.len()];
        lines
            .iter()
            .zip(&sku_of)
            .any(|(l, &s)| l.pinned.is_none() && std::mem::replace(&mut seen[s], true))
    };
    let mut ctx = Ctx {
        whs,
        lines,
        sku_of,
        skus,
        avail,
        unpinned: (0..lines.len())
            .filter(|&i| lines[i].pinned.is_none())
            .map(|i| i as u16)
            .collect(),
        base: Fill::default(),
        pinned: Vec::new(),
        max_shipments: chain.split.max_shipments(),
        dest,
        country: req.ship_to.and_then(|s| s.country.as_deref()),
        shared_skus,
        left: RefCell::new(Vec::new()),
        clocks: RefCell::new(clocks),
    };

    ctx.base = ctx.base_fill();
    let mut search = Search::new(ranking.len(), max_traced);

    if fast && singles_suffice(&ctx, &ranking, &demand, &mut search) {
        return Ok(finish(&ctx, &ranking, search.ranked, trace, max_traced));
    }

    // The chain's preference order over the warehouses fills draw from:
    // the pinned ones, and eligible ones holding something the unpinned
    // lines need (`useful`). The others' place in it is never read.
    // `wh_keys[w * k + i]`: warehouse `w`'s key under ranking rule `i`.
    let k = ranking.len();
    let holds_needed = |w: usize| {
        ctx.stock(w)
            .iter()
            .zip(&demand)
            .any(|(&a, &d)| d > 0 && a > 0)
    };
    let mut by_chain: Vec<usize> = Vec::with_capacity(n);
    by_chain.extend((0..n).filter(|&w| {
        let wh = &ctx.whs[w];
        wh.pinned || (wh.eligible && holds_needed(w))
    }));
    let mut wh_keys: Vec<Key> = vec![Key(0, 0.0); n * k];
    for &w in &by_chain {
        for (i, &r) in ranking.iter().enumerate() {
            wh_keys[w * k + i] = ctx.wh_key(r, w, &demand);
        }
    }
    // Warehouses differ by id or index: no two tie.
    by_chain.sort_unstable_by(|&a, &b| {
        wh_keys[a * k..(a + 1) * k]
            .iter()
            .zip(&wh_keys[b * k..(b + 1) * k])
            .map(|(x, y)| x.cmp(y))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
            .then_with(|| ctx.id_cmp(a, b))
    });
    for (p, &w) in by_chain.iter().enumerate() {
        ctx.whs[w].chain_pos = p as u32;
    }
    ctx.pinned = by_chain
        .iter()
        .filter(|&&w| ctx.whs[w].pinned)
        .map(|&w| w as u16)
        .collect();
    let mut useful: Vec<usize> = Vec::with_capacity(by_chain.len());
    useful.extend(by_chain.iter().copied().filter(|&w| !ctx.whs[w].pinned));

    ctx.base = ctx.base_fill();

    let extra = ctx.max_shipments.saturating_sub(ctx.pinned.len());
    let (mut f, mut g) = (Fill::default(), Fill::default());
    let mut set: Vec<usize> = Vec::new();
    if demand.iter().all(|&d| d == 0) || useful.is_empty() {
        // Pinned lines only (or nothing to fill from).
        ctx.fill_into(&mut f, std::iter::empty());
        search.consider(&ctx, &ranking, &f);
    } else {
        // 1. Each warehouse alone.
        for &w in &useful {
            ctx.fill_into(&mut f, [w]);
            search.consider(&ctx, &ranking, &f);
        }
        // 2. Greedy fills.
        if extra >= 2 {
            ctx.fill_into(&mut f, useful.iter().copied());
            search.consider(&ctx, &ranking, &f);
            // The first ranking rule's own order is the chain's order (the
            // chain ranks by it first): that fill is the one above.
            let mut order: Vec<(Key, u32, usize)> = Vec::with_capacity(useful.len());
            for i in 1..k {
                order.clear();
                order.extend(
                    useful
                        .iter()
                        .map(|&w| (wh_keys[w * k + i], ctx.whs[w].chain_pos, w)),
                );
                // Chain positions differ: no two entries tie.
                if ctx.greedy_into(&mut f, &mut order, &useful) {
                    ctx.canonical_into(&f, &mut g, &mut set);
                    search.consider(&ctx, &ranking, &g);
                }
            }
            ctx.coverage_into(&useful, &mut f);
            ctx.canonical_into(&f, &mut g, &mut set);
            search.consider(&ctx, &ranking, &g);
            // 3. Pairs among the best few: each continues the fill of its
            // first warehouse alone.
            let pool = &useful[..useful.len().min(PAIR_POOL)];
            for (i, &a) in pool.iter().enumerate() {
                ctx.fill_into(&mut f, [a]);
                for &b in &pool[i + 1..] {
                    g.clone_from(&f);
                    let before = g.alloc.len();
                    ctx.step(&mut g, b);
                    // A second warehouse that takes nothing leaves the
                    // first one's plan, already considered alone.
                    if g.alloc.len() > before {
                        search.consider(&ctx, &ranking, &g);
                    }
                }
            }
        }
    }

    if search.ranked.is_empty() {
        let lines = match search.best_partial {
            // Every line placed, but in more warehouses than the policy
            // allows: the pinned lines are what cannot go together.
            Some(f) if f.unplaced_lines() == 0 => (0..lines.len())
                .filter(|&i| lines[i].pinned.is_some())
                .collect(),
            Some(f) => (0..lines.len()).filter(|&i| f.need[i] > 0).collect(),
            None => (0..lines.len()).collect(),
        };
        return Err(Unroutable { lines, trace });
    }

    Ok(finish(&ctx, &ranking, search.ranked, trace, max_traced))
}

/// The plans considered so far: the best few complete ones, in rank order,
/// and the partial one that places the most.
struct Search {
    /// The best `kept` complete plans, best first. Plans are totally
    /// ordered (their keys, then their sorted warehouse ids, which differ
    /// between sets), so keeping the best few as they come gives the same
    /// first plans as ranking them all: the best plan, the traced ones and
    /// the first two that decide.
    ranked: Vec<Ranked>,
    kept: usize,
    best_partial: Option<Fill>,
    /// Scratch: the plan being considered.
    keys: Vec<Key>,
    ids: Vec<u16>,
}

impl Search {
    fn new(rules: usize, max_traced: usize) -> Self {
        let kept = max_traced.max(2);
        Self {
            ranked: Vec::with_capacity(kept + 1),
            kept,
            best_partial: None,
            keys: Vec::with_capacity(rules),
            ids: Vec::new(),
        }
    }

    /// Keeps `f` if it places every line and is among the best few so far
    /// (a set seen before is not added again; one set always gives one
    /// allocation), or places more than any partial plan so far.
    fn consider(&mut self, ctx: &Ctx<'_, '_>, ranking: &[Rule], f: &Fill) {
        if f.unplaced_lines() > 0 || f.whs.len() > ctx.max_shipments {
            // Fewer lines unplaced, then fewer units.
            let better = match &self.best_partial {
                None => true,
                Some(b) => f
                    .unplaced_lines()
                    .cmp(&b.unplaced_lines())
                    .then_with(|| f.unplaced_units().cmp(&b.unplaced_units()))
                    .is_lt(),
            };
            if better {
                match &mut self.best_partial {
                    Some(b) => b.clone_from(f),
                    None => self.best_partial = Some(f.clone()),
                }
            }
            return;
        }
        self.ids.clear();
        self.ids.extend_from_slice(&f.whs);
        self.ids
            .sort_unstable_by(|&a, &b| ctx.id_cmp(usize::from(a), usize::from(b)));
        if self.ranked.iter().any(|r| r.ids == self.ids) {
            return;
        }
        self.keys.clear();
        self.keys
            .extend(ranking.iter().map(|&r| ctx.plan_key(r, f)));
        let at = self
            .ranked
            .partition_point(|r| rank_cmp(ctx, (&r.keys, &r.ids), (&self.keys, &self.ids)).is_lt());
        if at >= self.kept {
            return;
        }
        let entry = if self.ranked.len() >= self.kept {
            // Reuse the last one's vectors.
            let mut e = self.ranked.pop().unwrap_or_else(|| Ranked {
                fill: Fill::default(),
                keys: Vec::new(),
                ids: Vec::new(),
            });
            e.fill.clone_from(f);
            e.keys.clone_from(&self.keys);
            e.ids.clone_from(&self.ids);
            e
        } else {
            Ranked {
                fill: f.clone(),
                keys: self.keys.clone(),
                ids: self.ids.clone(),
            }
        };
        self.ranked.insert(at, entry);
    }
}

/// The ranking order of two plans: their keys, rule by rule, then their
/// warehouses in id order, lexicographically.
fn rank_cmp(ctx: &Ctx<'_, '_>, (ka, ia): (&[Key], &[u16]), (kb, ib): (&[Key], &[u16])) -> Ordering {
    ka.iter()
        .zip(kb)
        .map(|(x, y)| x.cmp(y))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
        .then_with(|| {
            ia.iter()
                .zip(ib)
                .map(|(&x, &y)| ctx.id_cmp(usize::from(x), usize::from(y)))
                .find(|o| o.is_ne())
                .unwrap_or_else(|| ia.len().cmp(&ib.len()))
        })
}

/// Builds the best plan and the trace from the best complete plans (at
/// least one), best first.
fn finish(
    ctx: &Ctx<'_, '_>,
    ranking: &[Rule],
    ranked: Vec<Ranked>,
    mut trace: RoutingTrace,
    max_traced: usize,
) -> (Plan, RoutingTrace) {
    if let [first, second, ..] = ranked.as_slice() {
        trace.deciding_rule = first
            .keys
            .iter()
            .zip(&second.keys)
            .position(|(x, y)| x.cmp(y).is_ne())
            .map(|i| ranking[i]);
    }
    for r in ranked.iter().take(max_traced) {
        trace.candidates.push(plan_trace(ctx, ranking, r));
    }
    let best = &ranked[0].fill;
    let shipments = best
        .whs
        .iter()
        .map(|&w| PlannedShipment {
            warehouse: ctx.whs[w as usize].c.warehouse.id.clone(),
            lines: {
                let mut ls: Vec<(usize, u64)> = best
                    .alloc
                    .iter()
                    .filter(|a| a.1 == w)
                    .map(|&(l, _, q)| (usize::from(l), q))
                    .collect();
                ls.sort_unstable();
                ls
            },
        })
        .collect();
    (Plan { shipments }, trace)
}

/// The fast path, exact under its conditions: when `fewest_shipments` is
/// the first ranking rule, no line is pinned and at least
/// `max(max_traced, 2)` eligible warehouses can each ship the whole order
/// alone, every plan with two or more shipments ranks after all those
/// one-shipment plans. The best plan, the traced candidates and the
/// deciding rule (which compares the first two) are then all among the
/// single-warehouse plans, so the splits need not be searched: they are
/// given to `search`. `false` when the conditions do not hold.
fn singles_suffice(
    ctx: &Ctx<'_, '_>,
    ranking: &[Rule],
    demand: &[u64],
    search: &mut Search,
) -> bool {
    if ranking.first() != Some(&Rule::FewestShipments)
        || ctx.lines.iter().any(|l| l.pinned.is_some())
        || demand.iter().all(|&d| d == 0)
    {
        return false;
    }
    let n = ctx.n();
    // Without pinned lines a warehouse ships the order alone exactly when
    // it has each SKU's whole (shared) demand.
    let whole: Vec<usize> = (0..n)
        .filter(|&w| {
            ctx.whs[w].eligible
                && demand
                    .iter()
                    .enumerate()
                    .all(|(s, &d)| d <= ctx.stock(w)[s])
        })
        .collect();
    if whole.len() < search.kept {
        return false;
    }
    let mut f = Fill::default();
    for w in whole {
        ctx.fill_into(&mut f, [w]);
        search.consider(ctx, ranking, &f);
    }
    true
}

fn plan_trace(ctx: &Ctx<'_, '_>, ranking: &[Rule], r: &Ranked) -> PlanTrace {
    let shipments = r
        .fill
        .whs
        .iter()
        .map(|&w| {
            let wh = &ctx.whs[w as usize];
            let mut lines: Vec<(usize, u64)> = r
                .fill
                .alloc
                .iter()
                .filter(|a| a.1 == w)
                .map(|&(l, _, q)| (usize::from(l), q))
                .collect();
            lines.sort_unstable();
            let (distance_km, cost) = (ctx.km(w as usize), ctx.cost(w as usize));
            ShipmentTrace {
                warehouse: wh.c.warehouse.id.clone(),
                lines: lines
                    .into_iter()
                    .map(|(l, q)| (ctx.lines[l].sku.clone(), q))
                    .collect(),
                distance_km,
                cost,
                same_day: wh.same_day.or_else(|| ctx.leaves_today(w as usize)),
            }
        })
        .collect();
    let verdicts = ranking
        .iter()
        .zip(&r.keys)
        .map(|(&rule, k)| Verdict {
            rule,
            score: verdict_score(rule, *k),
        })
        .collect();
    PlanTrace {
        shipments,
        verdicts,
    }
}

/// A key as the trace shows it: in the rule's unit, lower first.
fn verdict_score(rule: Rule, k: Key) -> f64 {
    match rule {
        Rule::LowestCost => k.0 as f64 * UNKNOWN_COST_SCORE + k.1,
        // Stored as `u64::MAX - least`: show `-least`.
        Rule::BalanceStock | Rule::Capacity(CapacityMode::Rank) => -((u64::MAX - k.0) as f64),
        _ => k.0 as f64 + k.1,
    }
}

#[cfg(test)]
#[path = "plan_reference.rs"]
mod reference;

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
