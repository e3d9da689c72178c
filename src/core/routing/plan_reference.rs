//! The search as it was before it was made incremental, kept unchanged
//! (less the public wrapper and the constants it shares with the engine)
//! as the reference the engine is checked against (tests only): one fill
//! per warehouse set, each with its own vectors, every complete plan kept
//! and sorted.

use super::super::geo::distance_km;
use super::super::local_time::Clocks;
use super::super::types::*;
use super::{EXCLUDED_TRACED_MAX, PAIR_POOL, UNKNOWN_COST_SCORE};
use crate::core::ids::{SkuId, WarehouseId};
use crate::core::model::Location;
use std::cell::{OnceCell, RefCell};
use std::cmp::Ordering;

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
    /// (distance km, shipment cost): computed on first use, since most
    /// warehouses of a large list never enter a ranked plan.
    geo: OnceCell<(Option<f64>, Option<u64>)>,
    /// `None` without a cut-off, or when no rule needs it.
    same_day: Option<bool>,
    /// Before its cut-off at `now`; `None` without a cut-off (what the
    /// trace shows).
    leaves_today: Option<bool>,
    /// Remaining daily capacity; `u64::MAX` = unlimited.
    capacity_left: u64,
    /// Rank of its id among all candidates (final tie-break).
    id_rank: u32,
    /// Position in the chain's preference order.
    chain_pos: u32,
}

/// A filled warehouse set.
#[derive(Clone)]
struct Fill {
    /// Warehouse indices, in shipment order.
    whs: Vec<u16>,
    /// (line, warehouse index, quantity).
    alloc: Vec<(u16, u16, u64)>,
    unplaced_lines: usize,
    unplaced_units: u64,
    /// Per line: quantity not placed.
    need: Vec<u64>,
}

struct Ranked {
    fill: Fill,
    keys: Vec<Key>,
    /// Sorted id ranks of its warehouses: tie-break and identity.
    ids: Vec<u32>,
}

struct Ctx<'r, 'a> {
    whs: Vec<Wh<'a>>,
    lines: &'r [PlanLine],
    /// SKU index per line (lines of one SKU share availability).
    sku_of: Vec<usize>,
    skus: Vec<&'r SkuId>,
    /// `avail[s * n + w]`: available of SKU `s` in warehouse `w` (0 where
    /// not eligible).
    avail: Vec<u64>,
    /// Pinned warehouses, in chain order.
    pinned: Vec<u16>,
    max_shipments: usize,
    /// The destination, and its country (for the shipping cost).
    dest: Option<Location>,
    country: Option<&'r str>,
    /// `fill`'s scratch: per SKU, what the current warehouse has left.
    left: RefCell<Vec<u64>>,
}

impl Ctx<'_, '_> {
    fn n(&self) -> usize {
        self.whs.len()
    }

    /// Warehouse `w`'s distance to the destination (km) and shipment cost.
    fn geo(&self, w: usize) -> (Option<f64>, Option<u64>) {
        let wh = &self.whs[w];
        *wh.geo.get_or_init(|| {
            let km = self.dest.map(|d| distance_km(wh.c.warehouse.location, d));
            let cost = wh.c.warehouse.routing.shipping_cost.as_ref();
            (km, cost.map(|sc| shipment_cost(sc, self.country, km)))
        })
    }

    /// Fills the unpinned lines from `order` (eligible warehouses), on top
    /// of the pinned ones. Warehouses that take nothing are left out.
    fn fill(&self, order: impl IntoIterator<Item = usize>) -> Fill {
        let n = self.n();
        let mut need: Vec<u64> = self
            .lines
            .iter()
            .map(|l| if l.pinned.is_some() { 0 } else { l.qty })
            .collect();
        let mut whs: Vec<u16> = self.pinned.clone();
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
        // What each SKU has left in the warehouse being filled (a buffer
        // reused by every fill).
        let mut left = self.left.borrow_mut();
        left.clear();
        left.resize(self.skus.len(), 0);
        let pinned_first = self.pinned.iter().map(|&w| w as usize);
        for w in pinned_first.chain(order.into_iter().filter(|&w| !self.whs[w].pinned)) {
            if !self.whs[w].eligible {
                continue;
            }
            let is_new = !self.whs[w].pinned;
            if is_new && whs.len() >= self.max_shipments {
                break;
            }
            for (s, l) in left.iter_mut().enumerate() {
                *l = self.avail[s * n + w];
            }
            let before = alloc.len();
            for (i, q) in need.iter_mut().enumerate() {
                if self.lines[i].pinned.is_some() {
                    continue;
                }
                let s = self.sku_of[i];
                let take = (*q).min(left[s]);
                if take > 0 {
                    *q -= take;
                    left[s] -= take;
                    alloc.push((i as u16, w as u16, take));
                }
            }
            if is_new && alloc.len() > before {
                whs.push(w as u16);
            }
            if need.iter().all(|&q| q == 0) {
                break;
            }
        }
        let unplaced_lines = need.iter().filter(|&&q| q > 0).count();
        let unplaced_units = need.iter().fold(0u64, |a, &q| a.saturating_add(q));
        Fill {
            whs,
            alloc,
            unplaced_lines,
            unplaced_units,
            need,
        }
    }

    /// Refills a fill's set in the chain's order, so one set always gives
    /// one allocation.
    fn canonical(&self, f: Fill) -> Fill {
        let mut set: Vec<usize> = f.whs.iter().map(|&w| w as usize).collect();
        set.sort_by_key(|&w| self.whs[w].chain_pos);
        self.fill(set)
    }

    /// Greedy by coverage: the warehouse that can place the most units
    /// still needed first, ties to the chain's order.
    fn coverage_set(&self, by_chain: &[usize]) -> Fill {
        let n = self.n();
        let mut picked: Vec<usize> = Vec::new();
        loop {
            let f = self.fill(picked.iter().copied());
            if f.unplaced_lines == 0 || f.whs.len() >= self.max_shipments {
                return f;
            }
            // Units still wanted of each SKU (its unpinned lines share
            // its stock), the same for every warehouse.
            let mut wanted = vec![0u64; self.skus.len()];
            for (i, l) in self.lines.iter().enumerate() {
                if l.pinned.is_none() {
                    let s = self.sku_of[i];
                    wanted[s] = wanted[s].saturating_add(f.need[i]);
                }
            }
            let mut best: Option<(u64, usize)> = None;
            for &w in by_chain {
                if self.whs[w].pinned || picked.contains(&w) {
                    continue;
                }
                // Units it would place.
                let mut units = 0u64;
                for (s, &want) in wanted.iter().enumerate() {
                    units = units.saturating_add(want.min(self.avail[s * n + w]));
                }
                if units > 0 && best.is_none_or(|(u, _)| units > u) {
                    best = Some((units, w));
                }
            }
            match best {
                Some((_, w)) => picked.push(w),
                None => return f,
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
                    .map(|&w| self.geo(w as usize).0.unwrap_or(0.0))
                    .sum(),
            ),
            Rule::LowestCost => {
                let (mut unknown, mut sum) = (0u64, 0u64);
                for &w in &f.whs {
                    match self.geo(w as usize).1 {
                        Some(c) => sum = sum.saturating_add(c),
                        None => unknown += 1,
                    }
                }
                Key(unknown, sum as f64)
            }
            Rule::SameDay => Key(ws.filter(|w| w.same_day == Some(false)).count() as u64, 0.0),
            Rule::BalanceStock => {
                let n = self.n();
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
                    let left = self.avail[s * n + w as usize].saturating_sub(taken);
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
        let n = self.n();
        match rule {
            Rule::FewestShipments => {
                let units = demand.iter().enumerate().fold(0u64, |a, (s, &d)| {
                    a.saturating_add(d.min(self.avail[s * n + w]))
                });
                Key(u64::MAX - units, 0.0)
            }
            Rule::Nearest => Key(0, self.geo(w).0.unwrap_or(0.0)),
            Rule::LowestCost => {
                let cost = self.geo(w).1;
                Key(u64::from(cost.is_none()), cost.unwrap_or(0) as f64)
            }
            Rule::SameDay => Key(u64::from(wh.same_day == Some(false)), 0.0),
            Rule::BalanceStock => {
                let stock = (0..demand.len())
                    .filter(|&s| demand[s] > 0)
                    .fold(0u64, |a, s| a.saturating_add(self.avail[s * n + w]));
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

/// [`plan`], with or without the single-warehouse fast path (the tests
/// check both give the same answer).
pub(super) fn plan_with<'a>(
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
    let dest = req.ship_to.map(|s| s.location);

    // Ids in order, for the tie-break.
    let mut by_id: Vec<usize> = (0..n).collect();
    by_id.sort_by(|&a, &b| candidates[a].warehouse.id.cmp(&candidates[b].warehouse.id));
    let mut id_rank = vec![0u32; n];
    for (r, &w) in by_id.iter().enumerate() {
        id_rank[w] = r as u32;
    }

    let mut clocks = Clocks::new(req.now);
    let mut whs: Vec<Wh<'_>> = Vec::with_capacity(n);
    for (i, c) in candidates.iter().enumerate() {
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
        let leaves_today = r.cutoff.as_ref().map(|cut| clocks.before_cutoff(cut));
        let same_day = if needs_same_day && needed {
            leaves_today
        } else {
            None
        };
        whs.push(Wh {
            c,
            eligible: excluded.is_none(),
            pinned,
            geo: OnceCell::new(),
            same_day,
            leaves_today,
            capacity_left: if needs_capacity && needed {
                capacity_left(c, &mut clocks)
            } else {
                u64::MAX
            },
            id_rank: id_rank[i],
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
                avail[s * n + w] = available(sku, &wh.c.warehouse.id);
            }
        }
    }

    let mut ctx = Ctx {
        whs,
        lines,
        sku_of,
        skus,
        avail,
        pinned: Vec::new(),
        max_shipments: chain.split.max_shipments(),
        dest,
        country: req.ship_to.and_then(|s| s.country.as_deref()),
        left: RefCell::new(Vec::new()),
    };

    if fast {
        if let Some(ranked) = singles_suffice(&ctx, &ranking, &demand, max_traced) {
            return Ok(finish(&ctx, &ranking, ranked, trace, max_traced));
        }
    }

    // The chain's preference order over warehouses.
    // `wh_keys[w * k + i]`: warehouse `w`'s key under ranking rule `i`.
    let k = ranking.len();
    let wh_keys: Vec<Key> = (0..n)
        .flat_map(|w| ranking.iter().map(move |&r| (w, r)))
        .map(|(w, r)| ctx.wh_key(r, w, &demand))
        .collect();
    let mut by_chain: Vec<usize> = (0..n).collect();
    by_chain.sort_by(|&a, &b| {
        wh_keys[a * k..(a + 1) * k]
            .iter()
            .zip(&wh_keys[b * k..(b + 1) * k])
            .map(|(x, y)| x.cmp(y))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
            .then(ctx.whs[a].id_rank.cmp(&ctx.whs[b].id_rank))
    });
    for (p, &w) in by_chain.iter().enumerate() {
        ctx.whs[w].chain_pos = p as u32;
    }
    ctx.pinned = by_chain
        .iter()
        .filter(|&&w| ctx.whs[w].pinned)
        .map(|&w| w as u16)
        .collect();
    // Eligible warehouses holding something the unpinned lines need.
    let useful: Vec<usize> = by_chain
        .iter()
        .copied()
        .filter(|&w| {
            let wh = &ctx.whs[w];
            wh.eligible
                && !wh.pinned
                && (0..ctx.skus.len()).any(|s| demand[s] > 0 && ctx.avail[s * n + w] > 0)
        })
        .collect();

    let mut ranked: Vec<Ranked> = Vec::new();
    let mut best_partial: Option<Fill> = None;
    let mut consider = |ctx: &Ctx<'_, '_>, f: Fill| {
        if f.unplaced_lines > 0 || f.whs.len() > ctx.max_shipments {
            let better = match &best_partial {
                None => true,
                Some(b) => {
                    (f.unplaced_lines, f.unplaced_units) < (b.unplaced_lines, b.unplaced_units)
                }
            };
            if better {
                best_partial = Some(f);
            }
            return;
        }
        let mut ids: Vec<u32> = f.whs.iter().map(|&w| ctx.whs[w as usize].id_rank).collect();
        ids.sort_unstable();
        if ranked.iter().any(|r| r.ids == ids) {
            return;
        }
        let keys = ranking.iter().map(|&r| ctx.plan_key(r, &f)).collect();
        ranked.push(Ranked { fill: f, keys, ids });
    };

    let extra = ctx.max_shipments.saturating_sub(ctx.pinned.len());
    if demand.iter().all(|&d| d == 0) || useful.is_empty() {
        // Pinned lines only (or nothing to fill from).
        consider(&ctx, ctx.fill(std::iter::empty()));
    } else {
        // 1. Each warehouse alone.
        for &w in &useful {
            consider(&ctx, ctx.fill([w]));
        }
        // 2. Greedy fills.
        if extra >= 2 {
            consider(&ctx, ctx.fill(useful.iter().copied()));
            for (i, _) in ranking.iter().enumerate() {
                let mut order = useful.clone();
                order.sort_by(|&a, &b| {
                    wh_keys[a * k + i]
                        .cmp(&wh_keys[b * k + i])
                        .then(ctx.whs[a].chain_pos.cmp(&ctx.whs[b].chain_pos))
                });
                if order != useful {
                    let f = ctx.fill(order);
                    consider(&ctx, ctx.canonical(f));
                }
            }
            let f = ctx.coverage_set(&useful);
            consider(&ctx, ctx.canonical(f));
            // 3. Pairs among the best few.
            let pool = &useful[..useful.len().min(PAIR_POOL)];
            for (i, &a) in pool.iter().enumerate() {
                for &b in &pool[i + 1..] {
                    consider(&ctx, ctx.fill([a, b]));
                }
            }
        }
    }

    if ranked.is_empty() {
        let lines = match best_partial {
            // Every line placed, but in more warehouses than the policy
            // allows: the pinned lines are what cannot go together.
            Some(f) if f.unplaced_lines == 0 => (0..lines.len())
                .filter(|&i| lines[i].pinned.is_some())
                .collect(),
            Some(f) => (0..lines.len()).filter(|&i| f.need[i] > 0).collect(),
            None => (0..lines.len()).collect(),
        };
        return Err(Unroutable { lines, trace });
    }

    Ok(finish(&ctx, &ranking, ranked, trace, max_traced))
}

/// Ranks the complete plans (at least one), and builds the best plan and
/// the trace.
fn finish(
    ctx: &Ctx<'_, '_>,
    ranking: &[Rule],
    mut ranked: Vec<Ranked>,
    mut trace: RoutingTrace,
    max_traced: usize,
) -> (Plan, RoutingTrace) {
    let cmp = |a: &Ranked, b: &Ranked| {
        a.keys
            .iter()
            .zip(&b.keys)
            .map(|(x, y)| x.cmp(y))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
            .then_with(|| a.ids.cmp(&b.ids))
    };
    ranked.sort_by(cmp);
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
/// single-warehouse plans, so the splits need not be searched. `None`
/// when the conditions do not hold.
fn singles_suffice(
    ctx: &Ctx<'_, '_>,
    ranking: &[Rule],
    demand: &[u64],
    max_traced: usize,
) -> Option<Vec<Ranked>> {
    if ranking.first() != Some(&Rule::FewestShipments)
        || ctx.lines.iter().any(|l| l.pinned.is_some())
        || demand.iter().all(|&d| d == 0)
    {
        return None;
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
                    .all(|(s, &d)| d <= ctx.avail[s * n + w])
        })
        .collect();
    if whole.len() < max_traced.max(2) {
        return None;
    }
    Some(
        whole
            .into_iter()
            .map(|w| {
                let fill = ctx.fill([w]);
                let keys = ranking.iter().map(|&r| ctx.plan_key(r, &fill)).collect();
                Ranked {
                    fill,
                    keys,
                    ids: vec![ctx.whs[w].id_rank],
                }
            })
            .collect(),
    )
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
            let (distance_km, cost) = ctx.geo(w as usize);
            ShipmentTrace {
                warehouse: wh.c.warehouse.id.clone(),
                lines: lines
                    .into_iter()
                    .map(|(l, q)| (ctx.lines[l].sku.clone(), q))
                    .collect(),
                distance_km,
                cost,
                same_day: wh.same_day.or(wh.leaves_today),
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
