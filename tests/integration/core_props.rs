//! Property tests on the core: random sequences of adjust / reserve / extend
//! / release / expire / order / cancel against one SKU in three warehouses.
//! After every step the invariants hold and the outcome and stock match a
//! naive reference model; at the end, replaying the events rebuilds the
//! state exactly.

use proptest::prelude::*;
use std::collections::BTreeMap;
use surge::core::sku::{Adjustment, LineRequest, ReserveCmd};
use surge::core::{
    ChannelId, CustomerId, Event, HoldId, Location, Order, OrderId, OrderStatus, Rejection, ShipTo,
    SkuId, SkuState, WarehouseId,
};

const WH: usize = 3;
const ON_HAND_MAX: u64 = 1_000;

#[derive(Debug, Clone)]
enum Cmd {
    Adjust(usize, i64),
    Safety(usize, u64),
    Limit(Option<u64>),
    Reserve {
        qty: u64,
        cust: Option<u8>,
        ttl: u64,
        /// `require_customer_on_limited_skus`.
        strict: bool,
    },
    Release(usize),
    Extend(usize, u64),
    Advance(u64),
    Order {
        cust: u8,
        lines: Vec<(u64, Option<usize>)>,
        commit: bool,
    },
    Cancel(usize),
}

fn cmd() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        3 => (0..WH, -8i64..20).prop_map(|(w, d)| Cmd::Adjust(w, d)),
        1 => (0..WH, 0u64..4).prop_map(|(w, s)| Cmd::Safety(w, s)),
        1 => prop::option::of(1u64..8).prop_map(Cmd::Limit),
        5 => (1u64..7, prop::option::of(0u8..3), 1u64..60, any::<bool>())
            .prop_map(|(qty, cust, ttl, strict)| Cmd::Reserve { qty, cust, ttl, strict }),
        2 => (0usize..16).prop_map(Cmd::Release),
        1 => (0usize..16, 1u64..60).prop_map(|(i, t)| Cmd::Extend(i, t)),
        2 => (0u64..40).prop_map(Cmd::Advance),
        4 => (0u8..3, prop::collection::vec((1u64..6, prop::option::of(0usize..16)), 1..4), any::<bool>())
            .prop_map(|(cust, lines, commit)| Cmd::Order { cust, lines, commit }),
        2 => (0usize..16).prop_map(Cmd::Cancel),
    ]
}

#[derive(Debug, Clone)]
struct MHold {
    wh: usize,
    qty: u64,
    cust: Option<u8>,
    expires: u64,
}

#[derive(Debug, Default)]
struct Model {
    on_hand: [u64; WH],
    safety: [u64; WH],
    limit: Option<u64>,
    holds: BTreeMap<u64, MHold>,
    orders: BTreeMap<u64, (u8, Vec<(usize, u64)>)>,
}

impl Model {
    fn reserved(&self, w: usize) -> u64 {
        self.holds
            .values()
            .filter(|h| h.wh == w)
            .map(|h| h.qty)
            .sum()
    }
    fn allocated(&self, w: usize) -> u64 {
        self.orders
            .values()
            .flat_map(|(_, l)| l)
            .filter(|(x, _)| *x == w)
            .map(|(_, q)| q)
            .sum()
    }
    fn available(&self, w: usize) -> u64 {
        self.on_hand[w].saturating_sub(self.reserved(w) + self.allocated(w) + self.safety[w])
    }
    fn used(&self, c: u8) -> u64 {
        let h: u64 = self
            .holds
            .values()
            .filter(|h| h.cust == Some(c))
            .map(|h| h.qty)
            .sum();
        let o: u64 = self
            .orders
            .values()
            .filter(|(oc, _)| *oc == c)
            .flat_map(|(_, l)| l)
            .map(|(_, q)| q)
            .sum();
        h + o
    }
    fn over_limit(&self, c: u8, more: u64) -> bool {
        self.limit.is_some_and(|l| self.used(c) + more > l)
    }
    /// The allocation rule, naively: one warehouse if one covers it, else
    /// greedy in preference order.
    fn pick(&self, qty: u64) -> Option<Vec<(usize, u64)>> {
        if qty == 0 {
            return Some(vec![]);
        }
        if let Some(w) = (0..WH).find(|w| self.available(*w) >= qty) {
            return Some(vec![(w, qty)]);
        }
        let mut left = qty;
        let mut out = vec![];
        for w in 0..WH {
            let t = self.available(w).min(left);
            if t > 0 {
                out.push((w, t));
                left -= t;
            }
        }
        (left == 0).then_some(out)
    }
}

fn wid(i: usize) -> WarehouseId {
    WarehouseId::parse(&format!("w{i}")).unwrap()
}
fn cid(c: u8) -> CustomerId {
    CustomerId::parse(&format!("c{c}")).unwrap()
}

fn dummy_order(id: u64, cust: u8) -> Order {
    Order {
        id: OrderId(id),
        channel: ChannelId::parse("web").unwrap(),
        customer: cid(cust),
        ship_to: ShipTo {
            location: Location { lat: 0.0, lon: 0.0 },
            country: None,
        },
        lines: vec![],
        shipments: vec![],
        status: OrderStatus::Placed,
        created_at: 0,
        updated_at: 0,
        created_by: None,
        routing: None,
        life: Default::default(),
    }
}

fn run(cmds: Vec<Cmd>) -> Result<(), TestCaseError> {
    let sku = SkuId::parse("sku").unwrap();
    let pref: Vec<WarehouseId> = (0..WH).map(wid).collect();
    let mut s = SkuState::new(sku.clone());
    let mut m = Model::default();
    let mut log: Vec<Event> = vec![];
    let mut now = 1_000u64;
    let mut next_id = 1u64;
    let mut hold_ids: Vec<u64> = vec![];
    let mut order_ids: Vec<u64> = vec![];
    let pick = |ids: &[u64], i: usize| ids.get(i % ids.len().max(1)).copied();

    macro_rules! commit {
        ($events:expr) => {
            for e in $events {
                s.apply(&e);
                log.push(e);
            }
        };
    }

    for c in cmds {
        match c {
            Cmd::Adjust(w, d) => {
                let r = s.decide_adjust(&wid(w), &Adjustment::Delta(d), "t", ON_HAND_MAX);
                let target = m.on_hand[w] as i64 + d;
                let ok = target >= (m.reserved(w) + m.allocated(w)) as i64
                    && target <= ON_HAND_MAX as i64;
                prop_assert_eq!(r.is_ok(), ok, "adjust {} {}", w, d);
                if let Ok(e) = r {
                    m.on_hand[w] = target as u64;
                    commit!([e]);
                }
            }
            Cmd::Safety(w, v) => {
                let e = s
                    .decide_adjust(&wid(w), &Adjustment::SetSafetyStock(v), "t", ON_HAND_MAX)
                    .unwrap();
                m.safety[w] = v;
                commit!([e]);
            }
            Cmd::Limit(l) => {
                m.limit = l;
                commit!([s.upsert(None, l)]);
            }
            Cmd::Reserve {
                qty,
                cust,
                ttl,
                strict,
            } => {
                let id = next_id;
                next_id += 1;
                let r = s.decide_reserve(
                    ReserveCmd {
                        id: HoldId(id),
                        qty,
                        customer: cust.map(cid),
                        channel: None,
                        now,
                        expires_at: now + ttl,
                        idempotency: None,
                        created_by: None,
                        require_customer: strict,
                    },
                    &pref,
                );
                let limited = cust.is_some_and(|c| m.over_limit(c, qty));
                let anonymous_refused = strict && cust.is_none() && m.limit.is_some();
                let wh = (0..WH).find(|w| m.available(*w) >= qty);
                prop_assert_eq!(
                    r.is_ok(),
                    !anonymous_refused && !limited && wh.is_some(),
                    "reserve {}",
                    qty
                );
                if anonymous_refused {
                    prop_assert_eq!(
                        &r,
                        &Err(Rejection::CustomerRequired {
                            limit: m.limit.unwrap()
                        })
                    );
                }
                if let Ok(e) = r {
                    let Event::HoldCreated { hold, .. } = &e else {
                        panic!("wrong event")
                    };
                    prop_assert_eq!(&hold.warehouse, &wid(wh.unwrap()));
                    m.holds.insert(
                        id,
                        MHold {
                            wh: wh.unwrap(),
                            qty,
                            cust,
                            expires: now + ttl,
                        },
                    );
                    hold_ids.push(id);
                    commit!([e]);
                }
            }
            Cmd::Release(i) => {
                let Some(id) = pick(&hold_ids, i) else {
                    continue;
                };
                let r = s.decide_release(HoldId(id), now);
                prop_assert_eq!(r.is_ok(), m.holds.contains_key(&id));
                if let Ok(e) = r {
                    m.holds.remove(&id);
                    commit!([e]);
                }
            }
            Cmd::Extend(i, ttl) => {
                let Some(id) = pick(&hold_ids, i) else {
                    continue;
                };
                let r = s.decide_extend(HoldId(id), now + ttl);
                prop_assert_eq!(r.is_ok(), m.holds.contains_key(&id));
                if let Ok(e) = r {
                    m.holds.get_mut(&id).unwrap().expires = now + ttl;
                    commit!([e]);
                }
            }
            Cmd::Advance(ms) => {
                now += ms;
                let events = s.expire_due(now, usize::MAX);
                // Oldest first, ties by id; `max` takes a prefix.
                let mut due: Vec<(u64, u64)> = m
                    .holds
                    .iter()
                    .filter(|(_, h)| h.expires <= now)
                    .map(|(id, h)| (h.expires, *id))
                    .collect();
                due.sort();
                let expired: Vec<u64> = events
                    .iter()
                    .map(|e| match e {
                        Event::HoldReleased { hold, .. } => hold.0,
                        other => panic!("expiry gave {other:?}"),
                    })
                    .collect();
                prop_assert_eq!(&expired, &due.iter().map(|(_, id)| *id).collect::<Vec<_>>());
                prop_assert_eq!(s.expire_due(now, 2).len(), due.len().min(2));
                m.holds.retain(|_, h| h.expires > now);
                commit!(events);
            }
            Cmd::Order {
                cust,
                lines,
                commit,
            } => {
                let reqs: Vec<LineRequest> = lines
                    .iter()
                    .map(|(q, h)| LineRequest {
                        qty: *q,
                        hold: h.and_then(|i| pick(&hold_ids, i)).map(HoldId),
                    })
                    .collect();
                let r = s.prepare_order(&cid(cust), &reqs, &pref, now);
                // The model's verdict.
                let mut seen = vec![];
                let mut credited = 0;
                let mut from_holds = vec![];
                let mut free = 0;
                let mut ok = true;
                for l in &reqs {
                    match l.hold {
                        None => free += l.qty,
                        Some(HoldId(h)) => match m.holds.get(&h) {
                            Some(mh)
                                if mh.expires > now
                                    && !seen.contains(&h)
                                    && mh.cust.is_none_or(|c| c == cust)
                                    && l.qty <= mh.qty =>
                            {
                                seen.push(h);
                                if mh.cust.is_some() {
                                    credited += mh.qty;
                                }
                                from_holds.push((mh.wh, l.qty));
                            }
                            _ => ok = false,
                        },
                    }
                }
                let total: u64 = reqs.iter().map(|l| l.qty).sum();
                ok = ok && !m.over_limit(cust, total.saturating_sub(credited));
                let free_pick = if ok { m.pick(free) } else { None };
                ok = ok && free_pick.is_some();
                prop_assert_eq!(r.is_ok(), ok, "order {:?}", reqs);
                let Ok(prepared) = r else { continue };
                let alloc = prepared.allocation.clone();
                let id = next_id;
                next_id += 1;
                s.add_pending(OrderId(id), prepared);
                s.check_invariants().map_err(TestCaseError::fail)?;
                s.abort_pending(OrderId(id));
                if commit {
                    for h in &seen {
                        m.holds.remove(h);
                    }
                    let mut lines: Vec<(usize, u64)> = from_holds;
                    lines.extend(free_pick.unwrap());
                    m.orders.insert(id, (cust, lines));
                    order_ids.push(id);
                    commit!([Event::OrderPlaced {
                        order: dummy_order(id, cust),
                        allocations: vec![alloc],
                        idempotency: None,
                    }]);
                }
            }
            Cmd::Cancel(i) => {
                let Some(id) = pick(&order_ids, i) else {
                    continue;
                };
                if m.orders.remove(&id).is_some() {
                    commit!([Event::OrderCancelled {
                        order: OrderId(id),
                        skus: vec![sku.clone()],
                        reason: "t".into(),
                        at: now,
                    }]);
                }
            }
        }
        s.check_invariants().map_err(TestCaseError::fail)?;
        let open: Vec<(u64, u64, u64)> = s.holds().map(|h| (h.id.0, h.qty, h.expires_at)).collect();
        let model: Vec<(u64, u64, u64)> = m
            .holds
            .iter()
            .map(|(id, h)| (*id, h.qty, h.expires))
            .collect();
        prop_assert_eq!(open, model, "open holds in id order");
        for w in 0..WH {
            let row = s.row(&wid(w));
            prop_assert_eq!(
                (row.on_hand, row.reserved, row.allocated, row.available()),
                (m.on_hand[w], m.reserved(w), m.allocated(w), m.available(w)),
                "warehouse w{}",
                w
            );
            prop_assert!(row.reserved + row.allocated <= row.on_hand);
        }
    }
    let mut replayed = SkuState::new(sku);
    for e in &log {
        replayed.apply(e);
    }
    prop_assert_eq!(
        replayed,
        s.without_pending(),
        "replay must rebuild the live state"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
    #[test]
    fn random_commands_keep_invariants_and_match_the_model(cmds in prop::collection::vec(cmd(), 1..80)) {
        run(cmds)?;
    }
}

fn batch_case(
    stock: Vec<u64>,
    limit: Option<u64>,
    batch: Vec<(u64, Option<u8>)>,
) -> Result<(), TestCaseError> {
    let pref: Vec<WarehouseId> = (0..WH).map(wid).collect();
    let mut s = SkuState::new(SkuId::parse("sku").unwrap());
    for (w, q) in stock.iter().enumerate() {
        let e = s
            .decide_adjust(&wid(w), &Adjustment::Delta(*q as i64), "t", ON_HAND_MAX)
            .unwrap();
        s.apply(&e);
    }
    s.apply(&s.upsert(None, limit));
    let before = s.clone();
    let cmds: Vec<ReserveCmd> = batch
        .iter()
        .enumerate()
        .map(|(i, (qty, cust))| ReserveCmd {
            id: HoldId(i as u64 + 1),
            qty: *qty,
            customer: cust.map(cid),
            channel: None,
            now: 1_000,
            expires_at: 2_000,
            idempotency: None,
            created_by: None,
            require_customer: false,
        })
        .collect();
    let mut one_by_one = s.clone();
    let expected: Vec<_> = cmds
        .iter()
        .map(|c| {
            let r = one_by_one.decide_reserve(c.clone(), &pref);
            if let Ok(e) = &r {
                one_by_one.apply(e);
            }
            r
        })
        .collect();
    let got = s.reserve_many(cmds, &pref);
    prop_assert_eq!(&got, &expected);
    prop_assert_eq!(&s, &one_by_one);
    s.check_invariants().map_err(TestCaseError::fail)?;
    let ids: Vec<HoldId> = got
        .iter()
        .filter_map(|r| match r {
            Ok(Event::HoldCreated { hold, .. }) => Some(hold.id),
            _ => None,
        })
        .collect();
    s.undo_holds(&ids);
    prop_assert_eq!(s, before, "undo must restore the state exactly");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    /// A batch decides exactly as the same reservations one by one, and an
    /// unlogged batch can be taken back without a trace.
    #[test]
    fn a_batch_of_reservations_equals_one_by_one_and_undoes_exactly(
        stock in prop::collection::vec(0u64..10, WH),
        limit in prop::option::of(1u64..8),
        batch in prop::collection::vec((1u64..5, prop::option::of(0u8..3)), 1..20),
    ) {
        batch_case(stock, limit, batch)?;
    }
}

/// What one order book is told: place (and finish placing or forget),
/// cancel, sweep.
#[derive(Debug, Clone)]
enum BookCmd {
    /// `then`: 0 placed at once, 1 forgotten (the log refused it), 2 left
    /// being placed.
    Place {
        id: u8,
        then: u8,
    },
    Placed {
        id: u8,
    },
    Cancel {
        id: u8,
    },
    Sweep {
        closed_before: u8,
    },
}

fn book_cmd() -> impl Strategy<Value = BookCmd> {
    prop_oneof![
        (0u8..12, 0u8..3).prop_map(|(id, then)| BookCmd::Place { id, then }),
        (0u8..12).prop_map(|id| BookCmd::Placed { id }),
        (0u8..12).prop_map(|id| BookCmd::Cancel { id }),
        (0u8..40).prop_map(|closed_before| BookCmd::Sweep { closed_before }),
    ]
}

/// An order for one unit of `a`, allocated in `w1` (an order with no
/// lines has nothing live, so its lifecycle status is already
/// `cancelled`).
fn book_order(id: u64, now: u64) -> surge::core::Order {
    let sku = SkuId::parse("a").unwrap();
    let allocation = surge::core::SkuAllocation {
        sku: sku.clone(),
        customer: CustomerId::parse("c").unwrap(),
        lines: vec![(WarehouseId::parse("w1").unwrap(), 1)],
        consumed_holds: vec![],
        shipped: 0,
        step: 0,
    };
    surge::core::order::build(
        surge::core::order::NewOrder {
            id: surge::core::OrderId(id),
            channel: surge::core::ChannelId::parse("web").unwrap(),
            customer: CustomerId::parse("c").unwrap(),
            ship_to: surge::core::ShipTo {
                location: surge::core::Location { lat: 0.0, lon: 0.0 },
                country: None,
            },
            lines: vec![surge::core::OrderLine {
                sku,
                qty: 1,
                reservation: None,
                unit_price: None,
            }],
            now,
            created_by: None,
            currency: None,
            pay_by: None,
            payment_required: false,
        },
        &[allocation],
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    /// An order book against a naive model: an order being placed cannot
    /// be cancelled, a placed one once, a forgotten placement never
    /// existed, and the retention sweep forgets exactly the orders closed
    /// before its horizon, never an open one.
    #[test]
    fn an_order_book_matches_a_naive_model(cmds in prop::collection::vec(book_cmd(), 1..60)) {
        use std::collections::HashMap;
        use surge::core::lifecycle::{Command, LifeRefusal, OrderStatus as LifeStatus};
        use surge::core::order::{BookError, OrderBook};
        use surge::core::{Horizon, OrderId};
        // id -> (placing, cancelled at)
        let mut model: HashMap<u64, (bool, Option<u64>)> = HashMap::new();
        let mut book = OrderBook::new();
        for (now, cmd) in cmds.into_iter().enumerate() {
            let now = now as u64;
            match cmd {
                BookCmd::Place { id, then } => {
                    let id = u64::from(id);
                    if model.contains_key(&id) {
                        continue;
                    }
                    book.begin_placing(book_order(id, now));
                    match then {
                        0 => {
                            book.placed(OrderId(id));
                            model.insert(id, (false, None));
                        }
                        1 => book.forget(OrderId(id)),
                        _ => {
                            model.insert(id, (true, None));
                        }
                    }
                }
                BookCmd::Placed { id } => {
                    let id = u64::from(id);
                    if let Some((placing, _)) = model.get_mut(&id) {
                        book.placed(OrderId(id));
                        *placing = false;
                    }
                }
                BookCmd::Cancel { id } => {
                    let id = u64::from(id);
                    let got = book.decide_cancel(OrderId(id), "r", now);
                    match model.get_mut(&id) {
                        None => prop_assert_eq!(got, Err(BookError::Unknown(OrderId(id)))),
                        Some((true, _)) => prop_assert!(
                            matches!(
                                got,
                                Err(BookError::Rejected(Rejection::NotCancellable { status: "placing" }))
                            ),
                            "{got:?}"
                        ),
                        // The lifecycle table refuses a second cancel.
                        Some((_, Some(_))) => prop_assert!(
                            matches!(
                                &got,
                                Err(BookError::Life(LifeRefusal::Transition(t)))
                                    if t.status == "cancelled" && t.command == Command::Cancel
                            ),
                            "{got:?}"
                        ),
                        Some((_, at)) => {
                            prop_assert_eq!(
                                book.get(OrderId(id)).map(|o| o.lifecycle_status()),
                                Some(LifeStatus::Ready)
                            );
                            let event = got.map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
                            let o = book.apply(&event).cloned();
                            prop_assert_eq!(
                                o.as_ref().map(|o| o.status),
                                Some(surge::core::OrderStatus::Cancelled)
                            );
                            prop_assert_eq!(
                                o.map(|o| o.lifecycle_status()),
                                Some(LifeStatus::Cancelled)
                            );
                            *at = Some(now);
                        }
                    }
                }
                BookCmd::Sweep { closed_before } => {
                    let before = u64::from(closed_before);
                    let h = Horizon { orders_closed_before: before, ..Horizon::NONE };
                    let n = book.retain(&h);
                    let gone: Vec<u64> = model
                        .iter()
                        .filter(|(_, (_, at))| at.is_some_and(|t| t < before))
                        .map(|(id, _)| *id)
                        .collect();
                    prop_assert_eq!(n, gone.len());
                    for id in gone {
                        model.remove(&id);
                    }
                }
            }
            prop_assert_eq!(book.len(), model.len());
            for id in model.keys() {
                prop_assert!(book.get(OrderId(*id)).is_some());
            }
        }
    }
}
