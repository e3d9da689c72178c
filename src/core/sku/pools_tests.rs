use super::pools::{PoolError, PoolSpec, Pools, PPM};
use crate::core::ChannelId;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn ch(s: &str) -> ChannelId {
    ChannelId::parse(s).unwrap()
}

fn specs(list: &[(&str, PoolSpec)]) -> BTreeMap<ChannelId, PoolSpec> {
    list.iter().map(|(c, s)| (ch(c), *s)).collect()
}

fn share(x: f64) -> PoolSpec {
    PoolSpec::Share {
        ppm: (x * PPM as f64).round() as u32,
    }
}

#[test]
fn a_pool_is_ring_fenced_and_the_rest_is_shared() {
    let (live, market, web) = (ch("live"), ch("market"), ch("web"));
    let mut pools = Pools::default()
        .set(
            &specs(&[
                ("live", share(0.3)),
                ("market", PoolSpec::Fixed { units: 100 }),
            ]),
            1000,
        )
        .unwrap();
    assert_eq!(pools.sellable(Some(&live), 1000), 300);
    assert_eq!(pools.sellable(Some(&market), 1000), 100);
    assert_eq!(pools.sellable(Some(&web), 1000), 600);
    assert_eq!(pools.sellable(None, 1000), 600);

    // The web store sells its 600 and no more: the pools are untouched.
    pools.take(Some(&web), 600, 1000).unwrap();
    assert_eq!(pools.take(Some(&web), 1, 400), Err(0));
    assert_eq!(pools.sellable(Some(&live), 400), 300);
    // The marketplace cannot exceed its 100.
    assert_eq!(pools.take(Some(&market), 101, 400), Err(100));
    pools.take(Some(&market), 100, 400).unwrap();
    assert_eq!(pools.take(Some(&market), 1, 300), Err(0));
    assert_eq!(pools.sellable(Some(&live), 300), 300);
}

#[test]
fn setting_pools_is_checked_against_the_available_units() {
    let none = Pools::default();
    assert_eq!(
        none.set(&specs(&[("m", PoolSpec::Fixed { units: 11 })]), 10),
        Err(PoolError::ExceedStock {
            asked: 11,
            available: 10
        })
    );
    assert_eq!(
        none.set(&specs(&[("a", share(0.6)), ("b", share(0.5))]), 10),
        Err(PoolError::SharesOverWhole { ppm: 1_100_000 })
    );
    assert_eq!(
        none.set(&specs(&[("a", PoolSpec::Share { ppm: 0 })]), 10),
        Err(PoolError::ShareOutOfRange)
    );
    assert_eq!(
        none.set(&specs(&[("a", PoolSpec::Share { ppm: 1_000_001 })]), 10),
        Err(PoolError::ShareOutOfRange)
    );
    // A share and a fixed pool that together ask for more than there is.
    assert_eq!(
        none.set(
            &specs(&[("a", share(0.5)), ("b", PoolSpec::Fixed { units: 6 })]),
            10
        ),
        Err(PoolError::ExceedStock {
            asked: 11,
            available: 10
        })
    );
    // At the edge: everything pooled, nothing common.
    let all = none
        .set(
            &specs(&[("a", share(0.5)), ("b", PoolSpec::Fixed { units: 5 })]),
            10,
        )
        .unwrap();
    assert_eq!(all.sellable(None, 10), 0);
}

#[test]
fn units_come_back_to_the_pool_they_left_and_no_further() {
    let m = ch("m");
    let mut pools = Pools::default()
        .set(&specs(&[("m", PoolSpec::Fixed { units: 10 })]), 50)
        .unwrap();
    pools.take(Some(&m), 4, 50).unwrap();
    // 4 out; 6 more come back than went out (held before the pool was
    // set): 4 to the pool, the rest is common.
    pools.give_back(Some(&m), 10);
    assert_eq!(pools.get(&m).unwrap().left, 10);
    assert_eq!(pools.get(&m).unwrap().out, 0);
    // Shipped units are gone for good.
    pools.take(Some(&m), 3, 56).unwrap();
    pools.shipped(Some(&m), 3);
    pools.give_back(Some(&m), 3);
    assert_eq!(pools.get(&m).unwrap().left, 7);
}

#[test]
fn small_additions_add_up_to_a_share_exactly() {
    let live = ch("live");
    let mut pools = Pools::default()
        .set(&specs(&[("live", share(0.3))]), 0)
        .unwrap();
    let mut available = 0;
    for _ in 0..10 {
        available += 1;
        pools.stock_added(1, available);
    }
    assert_eq!(pools.get(&live).unwrap().left, 3);
    for _ in 0..90 {
        available += 1;
        pools.stock_added(1, available);
    }
    assert_eq!(pools.get(&live).unwrap().left, 30);
}

#[test]
fn removed_stock_comes_from_the_common_remainder_then_the_largest_pools() {
    let (a, b, c) = (ch("a"), ch("b"), ch("c"));
    let mut pools = Pools::default()
        .set(
            &specs(&[
                ("a", PoolSpec::Fixed { units: 50 }),
                ("b", PoolSpec::Fixed { units: 20 }),
                ("c", PoolSpec::Fixed { units: 20 }),
            ]),
            100,
        )
        .unwrap();
    // 10 common units absorb a loss of 10.
    pools.fit(90);
    assert_eq!(pools.ring_fenced(), 90);
    // 40 more: `a` down to 20, then 10 more over a, b, c (a and b get the
    // odd unit, being first).
    pools.fit(50);
    let left: Vec<u64> = [&a, &b, &c]
        .iter()
        .map(|x| pools.get(x).unwrap().left)
        .collect();
    assert_eq!(left, vec![16, 17, 17]);
    assert_eq!(pools.ring_fenced(), 50);
    pools.fit(0);
    assert_eq!(pools.ring_fenced(), 0);
}

#[test]
fn moves_are_all_or_nothing_between_pools_and_the_common_remainder() {
    let (a, b, web) = (ch("a"), ch("b"), ch("web"));
    let mut pools = Pools::default()
        .set(
            &specs(&[
                ("a", PoolSpec::Fixed { units: 10 }),
                ("b", PoolSpec::Fixed { units: 5 }),
            ]),
            30,
        )
        .unwrap();
    assert_eq!(
        pools.move_units(Some(&a), Some(&b), 11, 30),
        Err(PoolError::NotEnough { left: 10 })
    );
    assert_eq!(
        pools.move_units(Some(&a), Some(&web), 1, 30),
        Err(PoolError::NoPool {
            channel: web.clone()
        })
    );
    assert_eq!(
        pools.move_units(Some(&a), Some(&a), 1, 30),
        Err(PoolError::SamePlace)
    );
    assert_eq!(pools.get(&a).unwrap().left, 10);
    pools.move_units(Some(&a), Some(&b), 4, 30).unwrap();
    pools.move_units(None, Some(&a), 15, 30).unwrap();
    assert_eq!(
        pools.move_units(None, Some(&a), 1, 30),
        Err(PoolError::NotEnough { left: 0 })
    );
    pools.move_units(Some(&b), None, 9, 30).unwrap();
    assert_eq!(
        (pools.get(&a).unwrap().left, pools.get(&b).unwrap().left),
        (21, 0)
    );
    assert_eq!(pools.sellable(Some(&web), 30), 9);
}

#[derive(Debug, Clone)]
enum Op {
    Set(Vec<(usize, bool, u64)>),
    Take(Option<usize>, u64),
    GiveBack(usize),
    Ship(usize),
    Add(u64),
    Remove(u64),
    Move(Option<usize>, Option<usize>, u64),
}

const CHANNELS: [&str; 3] = ["a", "b", "c"];

fn op() -> impl Strategy<Value = Op> {
    let channel = prop::option::of(0..CHANNELS.len());
    prop_oneof![
        prop::collection::vec((0..CHANNELS.len(), any::<bool>(), 0u64..600), 0..3)
            .prop_map(Op::Set),
        (channel.clone(), 1u64..40).prop_map(|(c, q)| Op::Take(c, q)),
        (0usize..64).prop_map(Op::GiveBack),
        (0usize..64).prop_map(Op::Ship),
        (0u64..50).prop_map(Op::Add),
        (0u64..80).prop_map(Op::Remove),
        (channel.clone(), channel, 0u64..40).prop_map(|(f, t, q)| Op::Move(f, t, q)),
    ]
}

proptest! {
    /// Through any sequence of changes: the pools never hold more than is
    /// available (the common remainder and the pools add up to the
    /// available units), a take succeeds exactly when its channel may
    /// sell that much, and a pool never counts more units out than its
    /// channel has out.
    #[test]
    fn pools_never_sell_a_unit_twice(start in 0u64..500, ops in prop::collection::vec(op(), 0..60)) {
        let chans: Vec<ChannelId> = CHANNELS.iter().map(|c| ch(c)).collect();
        let mut pools = Pools::default();
        let mut available = start;
        // Units out, by who took them.
        let mut outstanding: Vec<(Option<usize>, u64)> = Vec::new();
        for op in ops {
            match op {
                Op::Set(list) => {
                    let specs: BTreeMap<ChannelId, PoolSpec> = list
                        .iter()
                        .map(|&(c, is_share, n)| {
                            let spec = if is_share {
                                PoolSpec::Share { ppm: (n as u32 % 500 + 1) * 1000 }
                            } else {
                                PoolSpec::Fixed { units: n }
                            };
                            (chans[c].clone(), spec)
                        })
                        .collect();
                    if let Ok(p) = pools.set(&specs, available) {
                        pools = p;
                    }
                }
                Op::Take(c, q) => {
                    let channel = c.map(|i| &chans[i]);
                    let sellable = pools.sellable(channel, available);
                    match pools.take(channel, q, available) {
                        Ok(()) => {
                            prop_assert!(q <= sellable);
                            available -= q;
                            outstanding.push((c, q));
                        }
                        Err(s) => {
                            prop_assert!(q > sellable);
                            prop_assert_eq!(s, sellable);
                        }
                    }
                }
                Op::GiveBack(i) if i < outstanding.len() => {
                    let (c, q) = outstanding.remove(i);
                    available += q;
                    pools.give_back(c.map(|i| &chans[i]), q);
                }
                Op::Ship(i) if i < outstanding.len() => {
                    let (c, q) = outstanding.remove(i);
                    pools.shipped(c.map(|i| &chans[i]), q);
                }
                Op::GiveBack(_) | Op::Ship(_) => {}
                Op::Add(n) => {
                    available += n;
                    pools.stock_added(n, available);
                }
                Op::Remove(n) => {
                    available -= n.min(available);
                    pools.fit(available);
                }
                Op::Move(f, t, q) => {
                    let before = pools.clone();
                    let r = pools.move_units(f.map(|i| &chans[i]), t.map(|i| &chans[i]), q, available);
                    if r.is_err() {
                        prop_assert_eq!(&pools, &before);
                    }
                }
            }
            prop_assert!(pools.ring_fenced() <= available);
            prop_assert_eq!(pools.sellable(None, available) + pools.ring_fenced(), available);
            for (i, c) in chans.iter().enumerate() {
                if let Some(pool) = pools.get(c) {
                    let held: u64 = outstanding.iter().filter(|(o, _)| *o == Some(i)).map(|(_, q)| q).sum();
                    prop_assert!(pool.out <= held, "{c}: {} out, {held} held", pool.out);
                    prop_assert!(pool.carry < PPM);
                }
            }
        }
    }
}
