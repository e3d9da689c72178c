//! Table-driven tests over five warehouses, and property tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::core::ids::ChannelId;
use crate::core::model::{Location, Millis, ShipTo, Warehouse};
use std::collections::BTreeMap;

fn wid(s: &str) -> WarehouseId {
    WarehouseId::parse(s).unwrap()
}
fn sku(s: &str) -> SkuId {
    SkuId::parse(s).unwrap()
}
fn ch(s: &str) -> ChannelId {
    ChannelId::parse(s).unwrap()
}
fn at(lat: f64, lon: f64) -> Location {
    Location { lat, lon }
}
fn ms(rfc3339: &str) -> Millis {
    rfc3339
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond()
        .try_into()
        .unwrap()
}
fn cutoff(hour: u8, tz: &str) -> Option<Cutoff> {
    Some(Cutoff {
        hour,
        minute: 0,
        tz: tz.into(),
    })
}
fn cost(fixed: u64, per_km: u64) -> Option<ShippingCost> {
    Some(ShippingCost {
        default: Rate { fixed, per_km },
        by_country: BTreeMap::new(),
    })
}

const PARIS: (f64, f64) = (48.8566, 2.3522);
const BERLIN: (f64, f64) = (52.52, 13.405);
const MADRID: (f64, f64) = (40.4168, -3.7038);
const WARSAW: (f64, f64) = (52.2297, 21.0122);
const LYON: (f64, f64) = (45.764, 4.8357);

/// Paris, Berlin, Madrid (serves ES and PT), Warsaw (2 orders a day), and
/// a 3PL near Lyon (channel b2b only, New York cut-off, no cost).
fn fixture() -> Vec<Warehouse> {
    let w =
        |id: &str, (lat, lon): (f64, f64), priority: i32, routing: WarehouseRouting| Warehouse {
            id: wid(id),
            name: id.into(),
            location: at(lat, lon),
            priority,
            routing,
        };
    vec![
        w(
            "par",
            PARIS,
            2,
            WarehouseRouting {
                cutoff: cutoff(15, "Europe/Paris"),
                shipping_cost: cost(500, 1),
                ..Default::default()
            },
        ),
        w(
            "ber",
            BERLIN,
            1,
            WarehouseRouting {
                cutoff: cutoff(16, "Europe/Berlin"),
                shipping_cost: cost(300, 2),
                ..Default::default()
            },
        ),
        w(
            "mad",
            MADRID,
            3,
            WarehouseRouting {
                countries: vec!["ES".into(), "PT".into()],
                shipping_cost: cost(400, 1),
                ..Default::default()
            },
        ),
        w(
            "waw",
            WARSAW,
            4,
            WarehouseRouting {
                capacity_per_day: Some(2),
                cutoff: cutoff(17, "Europe/Warsaw"),
                shipping_cost: cost(100, 0),
                ..Default::default()
            },
        ),
        w(
            "tpl",
            LYON,
            5,
            WarehouseRouting {
                channels: vec![ch("b2b")],
                cutoff: cutoff(12, "America/New_York"),
                ..Default::default()
            },
        ),
    ]
}

/// Stock: (sku, warehouse, units); anything else is 0.
type Stock = &'static [(&'static str, &'static str, u64)];
const PLENTY: Stock = &[
    ("a", "par", 10),
    ("a", "ber", 10),
    ("a", "mad", 10),
    ("a", "waw", 10),
    ("a", "tpl", 10),
    ("b", "par", 10),
    ("b", "ber", 10),
    ("b", "mad", 10),
    ("b", "waw", 10),
    ("b", "tpl", 10),
];

fn avail(stock: Stock) -> impl Fn(&SkuId, &WarehouseId) -> u64 {
    move |s, w| {
        stock
            .iter()
            .find(|(k, x, _)| *k == s.as_str() && *x == w.as_str())
            .map_or(0, |e| e.2)
    }
}

fn line(s: &str, qty: u64) -> PlanLine {
    PlanLine {
        sku: sku(s),
        qty,
        pinned: None,
    }
}

fn chain(rules: &[&str], split: SplitPolicy) -> Chain {
    Chain {
        rules: rules.iter().map(|r| r.parse().unwrap()).collect(),
        split,
    }
}

/// 2026-01-14 (a Wednesday in winter), 10:00 UTC: before every cut-off.
const WINTER_MORNING: &str = "2026-01-14T10:00:00Z";

struct Case {
    name: &'static str,
    rules: &'static [&'static str],
    split: SplitPolicy,
    lines: Vec<PlanLine>,
    to: (f64, f64),
    country: Option<&'static str>,
    channel: Option<&'static str>,
    now: &'static str,
    stock: Stock,
    /// Expected warehouses per shipment (in plan order), or `Err(lines)`.
    want: Result<Vec<&'static str>, Vec<usize>>,
}

fn run(
    c: &Case,
    whs: &[Warehouse],
    workload: impl Fn(&Warehouse) -> Workload,
) -> Result<(Plan, RoutingTrace), Unroutable> {
    let ship_to = ShipTo {
        location: at(c.to.0, c.to.1),
        country: c.country.map(String::from),
    };
    let channel = c.channel.map(ch);
    let req = PlanRequest {
        lines: &c.lines,
        ship_to: Some(&ship_to),
        channel: channel.as_ref(),
        now: ms(c.now),
    };
    let cands: Vec<Candidate<'_>> = whs
        .iter()
        .map(|w| Candidate {
            warehouse: w,
            workload: workload(w),
        })
        .collect();
    plan(&chain(c.rules, c.split), &req, &cands, avail(c.stock), 8)
}

fn names(p: &Plan) -> Vec<String> {
    p.shipments
        .iter()
        .map(|s| s.warehouse.as_str().to_owned())
        .collect()
}

fn check(cases: &[Case]) {
    let whs = fixture();
    for c in cases {
        let got = run(c, &whs, |_| Workload::default());
        match (&c.want, got) {
            (Ok(want), Ok((p, t))) => {
                assert_eq!(names(&p), *want, "{}: {t:#?}", c.name);
                assert_plan_ok(&c.lines, &p);
            }
            (Err(want), Err(u)) => assert_eq!(&u.lines, want, "{}", c.name),
            (want, got) => panic!(
                "{}: want {want:?}, got {:?}",
                c.name,
                got.map(|(p, _)| names(&p)).map_err(|u| u.lines)
            ),
        }
    }
}

/// Every line shipped exactly once in total.
fn assert_plan_ok(lines: &[PlanLine], p: &Plan) {
    for (i, l) in lines.iter().enumerate() {
        let shipped: u64 = p
            .shipments
            .iter()
            .flat_map(|s| &s.lines)
            .filter(|(j, _)| *j == i)
            .map(|(_, q)| q)
            .sum();
        assert_eq!(shipped, l.qty, "line {i}");
    }
}

fn case(name: &'static str, rules: &'static [&'static str]) -> Case {
    Case {
        name,
        rules,
        split: SplitPolicy::Allow,
        lines: vec![line("a", 1)],
        to: PARIS,
        country: Some("FR"),
        channel: None,
        now: WINTER_MORNING,
        stock: PLENTY,
        want: Ok(vec![]),
    }
}

const DEFAULT: &[&str] = &[
    "enabled",
    "serves_destination",
    "serves_channel",
    "fewest_shipments",
    "nearest",
    "priority",
];

#[test]
fn each_rule_alone_and_in_chains() {
    let madrid_only_b: Stock = &[("a", "par", 5), ("a", "mad", 5), ("b", "mad", 5)];
    let split_ab: Stock = &[
        ("a", "par", 5),
        ("b", "ber", 5),
        ("a", "waw", 5),
        ("b", "waw", 5),
    ];
    check(&[
        Case {
            want: Ok(vec!["par"]),
            ..case("nearest: Paris for Paris", &["nearest"])
        },
        Case {
            to: WARSAW,
            country: Some("PL"),
            want: Ok(vec!["waw"]),
            ..case("nearest: Warsaw for Warsaw", &["nearest"])
        },
        Case {
            want: Ok(vec!["ber"]),
            ..case("priority: Berlin first", &["priority"])
        },
        Case {
            // Warsaw: 100 + 0/km; Paris 500 + ~0 km.
            want: Ok(vec!["waw"]),
            ..case("lowest_cost: the cheapest rate", &["lowest_cost"])
        },
        Case {
            stock: &[("a", "tpl", 5), ("a", "ber", 5)],
            // tpl (near Lyon) has no cost: ranks after Berlin.
            want: Ok(vec!["ber"]),
            ..case(
                "lowest_cost: unknown cost ranks last",
                &["lowest_cost", "nearest"],
            )
        },
        Case {
            stock: &[("a", "par", 3), ("a", "ber", 9)],
            want: Ok(vec!["ber"]),
            ..case("balance_stock: most left after", &["balance_stock"])
        },
        Case {
            lines: vec![line("a", 2), line("b", 2)],
            stock: madrid_only_b,
            country: None,
            // Paris has no b: one shipment from Madrid beats two.
            want: Ok(vec!["mad"]),
            ..case("fewest_shipments before nearest", DEFAULT)
        },
        Case {
            rules: &["nearest"],
            lines: vec![line("a", 2), line("b", 2)],
            stock: madrid_only_b,
            country: None,
            // nearest alone sums km: Paris (0 km) + Madrid ties Madrid
            // alone; the tie goes to the smaller set of ids.
            want: Ok(vec!["mad"]),
            ..case("nearest alone, sum of legs", &[])
        },
        Case {
            lines: vec![line("a", 2), line("b", 2)],
            stock: split_ab,
            want: Ok(vec!["waw"]),
            ..case("fewest_shipments: far single beats near split", DEFAULT)
        },
        Case {
            lines: vec![line("a", 2), line("b", 2)],
            stock: split_ab,
            // Paris (0) + Berlin (878) < Warsaw (1367).
            want: Ok(vec!["par", "ber"]),
            ..case("nearest alone: near split beats far single", &["nearest"])
        },
        Case {
            lines: vec![line("a", 2), line("b", 2)],
            stock: &[("a", "par", 5), ("b", "ber", 5)],
            want: Ok(vec!["par", "ber"]),
            ..case("split when no warehouse has it all", DEFAULT)
        },
        Case {
            lines: vec![line("a", 3), line("a", 3)],
            stock: &[("a", "par", 4), ("a", "ber", 10)],
            // Two lines of one SKU share Paris's 4: Berlin ships both.
            want: Ok(vec!["ber"]),
            ..case("lines of a SKU share its stock", DEFAULT)
        },
        Case {
            lines: vec![line("a", 3), line("a", 3)],
            stock: &[("a", "par", 4), ("a", "ber", 4)],
            want: Ok(vec!["par", "ber"]),
            ..case("shared stock split across two", DEFAULT)
        },
        Case {
            lines: vec![line("a", 3), line("b", 1)],
            stock: &[("a", "par", 2)],
            want: Err(vec![0, 1]),
            ..case("not enough anywhere", DEFAULT)
        },
    ]);
}

#[test]
fn split_policies() {
    let three: Stock = &[("a", "par", 5), ("b", "ber", 5), ("c", "waw", 5)];
    let two = vec![line("a", 1), line("b", 1)];
    let all = vec![line("a", 1), line("b", 1), line("c", 1)];
    check(&[
        Case {
            lines: all.clone(),
            stock: three,
            want: Ok(vec!["par", "ber", "waw"]),
            ..case("allow: three shipments", DEFAULT)
        },
        Case {
            lines: two.clone(),
            stock: three,
            split: SplitPolicy::Forbid,
            // The best single-warehouse attempt (Paris) places line 0.
            want: Err(vec![1]),
            ..case("forbid: refused", DEFAULT)
        },
        Case {
            lines: two.clone(),
            stock: &[
                ("a", "par", 5),
                ("b", "ber", 5),
                ("a", "mad", 5),
                ("b", "mad", 5),
            ],
            split: SplitPolicy::Forbid,
            want: Ok(vec!["mad"]),
            ..case("forbid: one warehouse", &["nearest"])
        },
        Case {
            lines: two,
            stock: three,
            split: SplitPolicy::MaxShipments(2),
            want: Ok(vec!["par", "ber"]),
            ..case("max 2: two shipments fit", DEFAULT)
        },
        Case {
            lines: all,
            stock: three,
            split: SplitPolicy::MaxShipments(2),
            want: Err(vec![2]),
            ..case("max 2: three needed", DEFAULT)
        },
    ]);
}

#[test]
fn destination_channel_and_enabled_filters() {
    let whs = fixture();
    // Valencia: Madrid is nearest, and serves Spain only (and Portugal).
    let valencia = |country| Case {
        to: (39.4699, -0.3763),
        country,
        stock: &[("a", "par", 5), ("a", "ber", 5), ("a", "mad", 5)],
        ..case("destination", &["serves_destination", "nearest"])
    };
    check(&[
        Case {
            want: Ok(vec!["mad"]),
            ..valencia(Some("ES"))
        },
        Case {
            want: Ok(vec!["par"]),
            ..valencia(Some("FR"))
        },
        // No country: every warehouse passes.
        Case {
            want: Ok(vec!["mad"]),
            ..valencia(None)
        },
    ]);
    let (_, t) = run(&valencia(Some("FR")), &whs, |_| Workload::default()).unwrap();
    assert_eq!(
        t.excluded,
        vec![Excluded {
            warehouse: wid("mad"),
            rule: Rule::ServesDestination
        }]
    );

    // Channel: the 3PL serves b2b only; it is nearest to Lyon.
    let lyon = |channel, want| Case {
        to: LYON,
        channel,
        want: Ok(vec![want]),
        ..case("channel", &["serves_channel", "nearest"])
    };
    check(&[
        lyon(Some("b2b"), "tpl"),
        lyon(Some("web"), "par"),
        lyon(None, "tpl"),
    ]);
    let (_, t) = run(&lyon(Some("web"), "par"), &whs, |_| Workload::default()).unwrap();
    assert_eq!(t.excluded[0].rule, Rule::ServesChannel);

    // Disabled Paris: not chosen, and the trace says which filter.
    let mut off = fixture();
    off[0].routing.enabled = false;
    let c = case("disabled", DEFAULT);
    let (p, t) = run(&c, &off, |_| Workload::default()).unwrap();
    assert_ne!(names(&p), vec!["par"]);
    assert!(t.excluded.contains(&Excluded {
        warehouse: wid("par"),
        rule: Rule::Enabled
    }));
    // Without `enabled` in the chain a disabled warehouse is not filtered.
    let c = case("no enabled rule", &["nearest"]);
    let (p, _) = run(&c, &off, |_| Workload::default()).unwrap();
    assert_eq!(names(&p), vec!["par"]);
    // Every warehouse disabled: nothing places the line.
    let mut all_off = fixture();
    for w in &mut all_off {
        w.routing.enabled = false;
    }
    let u = run(&case("all off", DEFAULT), &all_off, |_| Workload::default()).unwrap_err();
    assert_eq!(u.lines, vec![0]);
    assert_eq!(u.trace.excluded.len(), 5);
}

#[test]
fn cutoffs_across_zones_and_dst() {
    let berlin = Cutoff {
        hour: 16,
        minute: 0,
        tz: "Europe/Berlin".into(),
    };
    let new_york = Cutoff {
        hour: 12,
        minute: 0,
        tz: "America/New_York".into(),
    };
    // (cut-off, now, before it?)
    let table: &[(&Cutoff, &str, bool)] = &[
        // Winter (CET, UTC+1): 14:59 UTC = 15:59 local.
        (&berlin, "2026-01-14T14:59:00Z", true),
        (&berlin, "2026-01-14T15:00:00Z", false),
        // Saturday before the spring change: 14:30 UTC = 15:30 CET.
        (&berlin, "2026-03-28T14:30:00Z", true),
        // Last Sunday of March, after 02:00: CEST, 14:30 UTC = 16:30.
        (&berlin, "2026-03-29T14:30:00Z", false),
        (&berlin, "2026-03-29T13:59:00Z", true),
        // Last Sunday of October: CEST until 01:00 UTC, then CET.
        (&berlin, "2026-10-24T14:30:00Z", false),
        (&berlin, "2026-10-25T14:30:00Z", true),
        // New York: EST (UTC-5) until 2026-03-08, then EDT (UTC-4).
        (&new_york, "2026-03-07T16:30:00Z", true),
        (&new_york, "2026-03-08T16:30:00Z", false),
        (&new_york, "2026-03-08T15:59:00Z", true),
        (&new_york, "2026-11-01T16:30:00Z", true),
    ];
    for (cut, now, want) in table {
        assert_eq!(before_cutoff(cut, ms(now)), *want, "{} at {now}", cut.tz);
    }

    // Local days: Berlin's midnight is 23:00 UTC in winter, 22:00 in summer.
    let r = |tz: Option<&str>| WarehouseRouting {
        cutoff: tz.map(|tz| Cutoff {
            hour: 12,
            minute: 0,
            tz: tz.into(),
        }),
        ..Default::default()
    };
    let day = |s: &str| (ms(s) / 86_400_000) as i32;
    let utc_day = day("2026-03-28T12:00:00Z");
    assert_eq!(local_day(&r(None), ms("2026-03-28T23:30:00Z")), utc_day);
    assert_eq!(
        local_day(&r(Some("Europe/Berlin")), ms("2026-03-28T22:59:00Z")),
        utc_day
    );
    assert_eq!(
        local_day(&r(Some("Europe/Berlin")), ms("2026-03-28T23:00:00Z")),
        utc_day + 1
    );
    assert_eq!(
        local_day(&r(Some("Europe/Berlin")), ms("2026-07-01T22:00:00Z")),
        day("2026-07-02T12:00:00Z")
    );
    assert_eq!(
        local_day(&r(Some("America/New_York")), ms("2026-03-09T03:30:00Z")),
        day("2026-03-08T12:00:00Z")
    );

    // In a plan: same_day first, then nearest, for a Paris order at
    // 14:30 UTC. In winter Paris (15:30 local, cut-off 15:00) is late and
    // Berlin (15:30, cut-off 16:00) is not; the Sunday after the spring
    // change Berlin is late too (16:30) and Paris is nearest again.
    let same_day = |now| Case {
        stock: &[("a", "par", 5), ("a", "ber", 5)],
        now,
        ..case("same_day", &["same_day", "nearest"])
    };
    check(&[
        Case {
            want: Ok(vec!["ber"]),
            ..same_day("2026-03-28T14:30:00Z")
        },
        Case {
            want: Ok(vec!["par"]),
            ..same_day("2026-03-29T14:30:00Z")
        },
        Case {
            want: Ok(vec!["par"]),
            ..same_day("2026-03-28T13:30:00Z")
        },
    ]);
    let (_, t) = run(&same_day("2026-03-28T14:30:00Z"), &fixture(), |_| {
        Workload::default()
    })
    .unwrap();
    assert_eq!(t.candidates[0].shipments[0].same_day, Some(true));
    assert_eq!(t.candidates[1].shipments[0].same_day, Some(false));
    assert_eq!(t.deciding_rule, Some(Rule::SameDay));
}

#[test]
fn capacity_exhaustion_moves_the_order_and_resets_at_local_midnight() {
    let whs = fixture();
    // Warsaw takes 2 a day; its day is Warsaw's (cut-off zone).
    let c = |now| Case {
        to: WARSAW,
        country: Some("PL"),
        now,
        ..case("capacity", &["capacity", "nearest"])
    };
    let now = "2026-01-14T20:00:00Z";
    let today = local_day(&whs[3].routing, ms(now));
    let routed = |n: u64, day: i32| {
        move |w: &Warehouse| {
            if w.id.as_str() == "waw" {
                Workload { day, routed: n }
            } else {
                Workload::default()
            }
        }
    };
    for (n, day, want) in [
        (0, today, "waw"),
        (1, today, "waw"),
        (2, today, "ber"),
        (7, today, "ber"),
        // Yesterday's count does not count today.
        (2, today - 1, "waw"),
    ] {
        let (p, t) = run(&c(now), &whs, routed(n, day)).unwrap();
        assert_eq!(names(&p), vec![want], "routed {n} on day {day}");
        if want == "ber" {
            assert_eq!(
                t.excluded,
                vec![Excluded {
                    warehouse: wid("waw"),
                    rule: Rule::Capacity(CapacityMode::Skip)
                }]
            );
        }
    }
    // 22:59 UTC is 23:59 in Warsaw: still full. 23:00 UTC is past Warsaw's
    // midnight: a new day, the same workload no longer counts.
    let (p, _) = run(&c("2026-01-14T22:59:00Z"), &whs, routed(2, today)).unwrap();
    assert_eq!(names(&p), vec!["ber"]);
    let (p, _) = run(&c("2026-01-14T23:00:00Z"), &whs, routed(2, today)).unwrap();
    assert_eq!(names(&p), vec!["waw"]);

    // capacity:rank: most remaining capacity first. Paris 10 left of 10,
    // Berlin 1 of 5.
    let mut ranked = fixture();
    ranked[0].routing.capacity_per_day = Some(10);
    ranked[1].routing.capacity_per_day = Some(5);
    let c = Case {
        stock: &[("a", "par", 5), ("a", "ber", 5)],
        ..case("capacity:rank", &["capacity:rank", "priority"])
    };
    let today_ber = local_day(&ranked[1].routing, ms(c.now));
    let (p, t) = run(&c, &ranked, |w| Workload {
        day: today_ber,
        routed: if w.id.as_str() == "ber" { 4 } else { 0 },
    })
    .unwrap();
    assert_eq!(names(&p), vec!["par"]);
    assert_eq!(t.deciding_rule, Some(Rule::Capacity(CapacityMode::Rank)));
    assert_eq!(t.candidates[0].verdicts[0].score, -10.0);
}

#[test]
fn pinned_lines_ship_from_their_warehouse() {
    let mut lines = vec![line("a", 2), line("b", 1)];
    lines[0].pinned = Some(wid("ber"));
    // Nothing available for a anywhere: the pinned line does not need it.
    let stock: Stock = &[("b", "par", 5), ("b", "ber", 5)];
    let c = Case {
        lines: lines.clone(),
        stock,
        ..case("pinned", DEFAULT)
    };
    // Berlin already ships: b goes with it rather than a second shipment.
    let (p, _) = run(&c, &fixture(), |_| Workload::default()).unwrap();
    assert_eq!(names(&p), vec!["ber"]);
    assert_eq!(p.shipments[0].lines, vec![(0, 2), (1, 1)]);
    // Berlin has no b: Paris ships it in a second shipment.
    let c2 = Case {
        lines: lines.clone(),
        stock: &[("b", "par", 5)],
        ..case("pinned + split", DEFAULT)
    };
    let (p, _) = run(&c2, &fixture(), |_| Workload::default()).unwrap();
    assert_eq!(names(&p), vec!["ber", "par"]);
    assert_eq!(p.shipments[0].lines, vec![(0, 2)]);
    assert_eq!(p.shipments[1].lines, vec![(1, 1)]);
    // A disabled pinned warehouse still ships its pinned line.
    let mut off = fixture();
    off[1].routing.enabled = false;
    let (p, _) = run(&c, &off, |_| Workload::default()).unwrap();
    assert_eq!(names(&p), vec!["ber", "par"]);
    // Forbid: the pinned warehouse must ship everything.
    let c3 = Case {
        split: SplitPolicy::Forbid,
        ..c2
    };
    let u = run(&c3, &fixture(), |_| Workload::default()).unwrap_err();
    assert_eq!(u.lines, vec![1]);
    // A pinned warehouse that is not a candidate: that line is unplaced.
    let mut gone = lines;
    gone[0].pinned = Some(wid("nowhere"));
    let c4 = Case {
        lines: gone,
        stock,
        ..case("pinned elsewhere", DEFAULT)
    };
    let u = run(&c4, &fixture(), |_| Workload::default()).unwrap_err();
    assert_eq!(u.lines, vec![0]);
}

#[test]
fn trace_explains_the_choice() {
    let whs = fixture();
    let c = Case {
        lines: vec![line("a", 1), line("b", 2)],
        ..case("trace", DEFAULT)
    };
    let (p, t) = run(&c, &whs, |_| Workload::default()).unwrap();
    assert_eq!(names(&p), vec!["par"]);
    assert_eq!(t.rules, chain(DEFAULT, SplitPolicy::Allow).rules);
    assert_eq!(t.attempts, 1);
    // Every single-warehouse plan tied on shipments: nearest decided.
    assert_eq!(t.deciding_rule, Some(Rule::Nearest));
    let best = &t.candidates[0];
    assert_eq!(best.shipments[0].warehouse, wid("par"));
    assert_eq!(best.shipments[0].lines, vec![(sku("a"), 1), (sku("b"), 2)]);
    assert_eq!(best.shipments[0].distance_km, Some(0.0));
    assert_eq!(best.shipments[0].cost, Some(500));
    assert_eq!(best.shipments[0].same_day, Some(true));
    let rules: Vec<Rule> = best.verdicts.iter().map(|v| v.rule).collect();
    assert_eq!(
        rules,
        vec![Rule::FewestShipments, Rule::Nearest, Rule::Priority]
    );
    assert_eq!(best.verdicts[0].score, 1.0);
    // Best first.
    let km: Vec<f64> = t.candidates.iter().map(|c| c.verdicts[1].score).collect();
    assert!(km.windows(2).all(|w| w[0] <= w[1]), "{km:?}");
    // Bounded.
    let ship_to = ShipTo {
        location: at(PARIS.0, PARIS.1),
        country: None,
    };
    let req = PlanRequest {
        lines: &c.lines,
        ship_to: Some(&ship_to),
        channel: None,
        now: 0,
    };
    let cands: Vec<Candidate<'_>> = whs
        .iter()
        .map(|w| Candidate {
            warehouse: w,
            workload: Workload::default(),
        })
        .collect();
    for max in [0, 1, 2] {
        let (p2, t) = plan(
            &chain(DEFAULT, SplitPolicy::Allow),
            &req,
            &cands,
            avail(PLENTY),
            max,
        )
        .unwrap();
        assert_eq!(p2, p);
        assert_eq!(t.candidates.len(), max);
    }
    // Without a destination: nothing to measure, priority decides.
    let req = PlanRequest {
        ship_to: None,
        ..req
    };
    let (p, t) = plan(
        &chain(DEFAULT, SplitPolicy::Allow),
        &req,
        &cands,
        avail(PLENTY),
        4,
    )
    .unwrap();
    assert_eq!(names(&p), vec!["ber"]);
    assert_eq!(t.deciding_rule, Some(Rule::Priority));
    assert_eq!(t.candidates[0].shipments[0].distance_km, None);
    // Only one candidate: nothing decided.
    let (_, t) = plan(
        &chain(DEFAULT, SplitPolicy::Allow),
        &req,
        &cands[..1],
        avail(PLENTY),
        4,
    )
    .unwrap();
    assert_eq!(t.deciding_rule, None);
}

#[test]
fn costs_use_the_country_rate_and_saturate() {
    let mut whs = fixture();
    let mut by_country = BTreeMap::new();
    by_country.insert(
        "FR".to_string(),
        Rate {
            fixed: 50,
            per_km: 0,
        },
    );
    whs[1].routing.shipping_cost = Some(ShippingCost {
        default: Rate {
            fixed: 300,
            per_km: 2,
        },
        by_country,
    });
    whs[3].routing.shipping_cost = cost(u64::MAX, u64::MAX);
    let c = Case {
        stock: &[("a", "par", 5), ("a", "ber", 5), ("a", "waw", 5)],
        ..case("country rate", &["lowest_cost"])
    };
    let (p, t) = run(&c, &whs, |_| Workload::default()).unwrap();
    assert_eq!(names(&p), vec!["ber"]);
    assert_eq!(t.candidates[0].shipments[0].cost, Some(50));
    let waw = t
        .candidates
        .iter()
        .find(|c| c.shipments[0].warehouse == wid("waw"))
        .unwrap();
    assert_eq!(waw.shipments[0].cost, Some(u64::MAX));
    // Without the French rate Berlin's default applies: 300 + 2 × ~878.
    let c = Case {
        country: Some("DE"),
        ..c
    };
    let (_, t) = run(&c, &whs, |_| Workload::default()).unwrap();
    let ber = t
        .candidates
        .iter()
        .find(|c| c.shipments[0].warehouse == wid("ber"))
        .unwrap();
    let cost = ber.shipments[0].cost.unwrap();
    assert!((2000..2100).contains(&cost), "{cost}");
}

mod props {
    use super::*;
    use proptest::prelude::*;

    const CITIES: [(f64, f64); 5] = [PARIS, BERLIN, MADRID, WARSAW, LYON];
    const SKUS: [&str; 3] = ["a", "b", "c"];
    const RULES: [Rule; 8] = [
        Rule::FewestShipments,
        Rule::Nearest,
        Rule::LowestCost,
        Rule::SameDay,
        Rule::BalanceStock,
        Rule::Capacity(CapacityMode::Rank),
        Rule::Priority,
        Rule::Capacity(CapacityMode::Skip),
    ];

    #[derive(Debug, Clone)]
    struct Input {
        whs: Vec<Warehouse>,
        workload: Vec<u64>,
        stock: Vec<u64>,
        lines: Vec<PlanLine>,
        rules: Vec<Rule>,
        split: SplitPolicy,
        country: Option<String>,
        channel: Option<ChannelId>,
        to: usize,
        now: Millis,
    }

    fn input() -> impl Strategy<Value = Input> {
        let wh = (
            0..5usize,
            -3..4i32,
            prop::bool::weighted(0.85),
            prop::option::of(prop::sample::subsequence(vec!["DE", "FR", "PL"], 1..3)),
            prop::option::of(Just(vec!["b2b"])),
            prop::option::of(0..3u64),
            prop::option::of((0..24u8, 0..2usize)),
            prop::option::of((0..500u64, 0..3u64)),
        );
        (
            prop::collection::vec(wh, 1..7),
            prop::collection::vec(0..4u64, 7),
            prop::collection::vec(0..6u64, 21),
            prop::collection::vec((0..3usize, 0..7u64, 0..10usize), 1..5),
            Just(RULES.to_vec()).prop_shuffle(),
            1..5usize,
            prop::sample::select(vec![
                SplitPolicy::Allow,
                SplitPolicy::Forbid,
                SplitPolicy::MaxShipments(2),
            ]),
            prop::option::of(prop::sample::select(vec!["DE", "FR", "PL"])),
            prop::option::of(prop::sample::select(vec!["b2b", "web"])),
            (0..5usize, 1_767_225_600_000u64..1_798_761_600_000u64),
        )
            .prop_map(
                |(ws, workload, stock, ls, rules, nrules, split, country, channel, (to, now))| {
                    let whs: Vec<Warehouse> = ws
                        .into_iter()
                        .enumerate()
                        .map(
                            |(
                                i,
                                (city, priority, enabled, countries, channels, cap, cut, cost),
                            )| {
                                Warehouse {
                                    id: wid(&format!("w{i}")),
                                    name: String::new(),
                                    location: at(CITIES[city].0, CITIES[city].1),
                                    priority,
                                    routing: WarehouseRouting {
                                        enabled,
                                        countries: countries
                                            .unwrap_or_default()
                                            .into_iter()
                                            .map(String::from)
                                            .collect(),
                                        channels: channels
                                            .unwrap_or_default()
                                            .into_iter()
                                            .map(ch)
                                            .collect(),
                                        capacity_per_day: cap,
                                        cutoff: cut.map(|(h, z)| Cutoff {
                                            hour: h,
                                            minute: 30,
                                            tz: ["Europe/Berlin", "America/New_York"][z].into(),
                                        }),
                                        shipping_cost: cost.map(|(f, k)| ShippingCost {
                                            default: Rate {
                                                fixed: f,
                                                per_km: k,
                                            },
                                            by_country: BTreeMap::new(),
                                        }),
                                    },
                                }
                            },
                        )
                        .collect();
                    let n = whs.len();
                    let lines = ls
                        .into_iter()
                        .map(|(s, qty, pin)| PlanLine {
                            sku: sku(SKUS[s]),
                            qty,
                            // One line in three or so is pinned.
                            pinned: (pin < n && pin % 3 == 0).then(|| wid(&format!("w{pin}"))),
                        })
                        .collect();
                    let mut chain_rules =
                        vec![Rule::Enabled, Rule::ServesDestination, Rule::ServesChannel];
                    chain_rules.extend(rules.into_iter().take(nrules));
                    // One capacity rule at most.
                    let mut seen_cap = false;
                    chain_rules.retain(|r| {
                        if matches!(r, Rule::Capacity(_)) {
                            let keep = !seen_cap;
                            seen_cap = true;
                            keep
                        } else {
                            true
                        }
                    });
                    Input {
                        whs,
                        workload,
                        stock,
                        lines,
                        rules: chain_rules,
                        split,
                        country: country.map(String::from),
                        channel: channel.map(ch),
                        to,
                        now,
                    }
                },
            )
    }

    fn stock_of(inp: &Input, s: &SkuId, w: &WarehouseId) -> u64 {
        let si = SKUS.iter().position(|x| *x == s.as_str()).unwrap();
        let wi: usize = w.as_str()[1..].parse().unwrap();
        inp.stock[si * 7 + wi]
    }

    /// The filters, written out again.
    fn passes(inp: &Input, w: &Warehouse, wl: Workload) -> bool {
        let r = &w.routing;
        let country_ok = match &inp.country {
            Some(c) if !r.countries.is_empty() => r.countries.contains(c),
            _ => true,
        };
        let channel_ok = match &inp.channel {
            Some(c) if !r.channels.is_empty() => r.channels.contains(c),
            _ => true,
        };
        let cap_ok = match r.capacity_per_day {
            Some(cap) if inp.rules.iter().any(|r| matches!(r, Rule::Capacity(_))) => {
                wl.day != local_day(r, inp.now) || wl.routed < cap
            }
            _ => true,
        };
        r.enabled && country_ok && channel_ok && cap_ok
    }

    fn go(inp: &Input, reverse: bool) -> Result<(Plan, RoutingTrace), Unroutable> {
        let ship_to = ShipTo {
            location: at(CITIES[inp.to].0, CITIES[inp.to].1),
            country: inp.country.clone(),
        };
        let req = PlanRequest {
            lines: &inp.lines,
            ship_to: Some(&ship_to),
            channel: inp.channel.as_ref(),
            now: inp.now,
        };
        let mut cands: Vec<Candidate<'_>> = inp
            .whs
            .iter()
            .enumerate()
            .map(|(i, w)| Candidate {
                warehouse: w,
                workload: Workload {
                    day: local_day(&w.routing, inp.now),
                    routed: inp.workload[i],
                },
            })
            .collect();
        if reverse {
            cands.reverse();
        }
        let chain = Chain {
            rules: inp.rules.clone(),
            split: inp.split,
        };
        plan(&chain, &req, &cands, |s, w| stock_of(inp, s, w), 5)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]
        /// The single-warehouse fast path gives exactly what the full
        /// search gives: plan, trace and unplaced lines.
        #[test]
        fn fast_path_is_exact(mut inp in input(), max_traced in 0..4usize, unpin in any::<bool>(), first in any::<bool>()) {
            if unpin {
                for l in &mut inp.lines {
                    l.pinned = None;
                }
            }
            if first {
                inp.rules.retain(|r| *r != Rule::FewestShipments);
                let at = inp.rules.iter().position(|r| !r.is_filter()).unwrap_or(inp.rules.len());
                inp.rules.insert(at, Rule::FewestShipments);
            }
            let ship_to = ShipTo {
                location: at(CITIES[inp.to].0, CITIES[inp.to].1),
                country: inp.country.clone(),
            };
            let req = PlanRequest {
                lines: &inp.lines,
                ship_to: Some(&ship_to),
                channel: inp.channel.as_ref(),
                now: inp.now,
            };
            let cands: Vec<Candidate<'_>> = inp
                .whs
                .iter()
                .enumerate()
                .map(|(i, w)| Candidate {
                    warehouse: w,
                    workload: Workload { day: local_day(&w.routing, inp.now), routed: inp.workload[i] },
                })
                .collect();
            let chain = Chain { rules: inp.rules.clone(), split: inp.split };
            let stock = |s: &SkuId, w: &WarehouseId| stock_of(&inp, s, w);
            let fast = super::super::plan_with(&chain, &req, &cands, stock, max_traced, true);
            let full = super::super::plan_with(&chain, &req, &cands, stock, max_traced, false);
            prop_assert_eq!(fast, full);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn plans_are_sound_and_deterministic(inp in input()) {
            let got = go(&inp, false);
            // Same input, same plan, whatever the candidates' order.
            let again = go(&inp, true);
            match (&got, &again) {
                (Ok((a, ta)), Ok((b, tb))) => {
                    prop_assert_eq!(a, b);
                    prop_assert_eq!(ta, tb);
                }
                (Err(a), Err(b)) => prop_assert_eq!(a, b),
                _ => prop_assert!(false, "{:?} vs {:?}", got, again),
            }
            let wl = |w: &WarehouseId| {
                let i: usize = w.as_str()[1..].parse().unwrap();
                Workload { day: local_day(&inp.whs[i].routing, inp.now), routed: inp.workload[i] }
            };
            let wh = |w: &WarehouseId| &inp.whs[w.as_str()[1..].parse::<usize>().unwrap()];
            match got {
                Ok((p, t)) => {
                    prop_assert!(p.shipments.len() <= inp.split.max_shipments());
                    prop_assert_eq!(&t.candidates[0].shipments.len(), &p.shipments.len());
                    let mut taken: BTreeMap<(SkuId, WarehouseId), u64> = BTreeMap::new();
                    for (i, l) in inp.lines.iter().enumerate() {
                        let mut shipped = 0;
                        for s in &p.shipments {
                            for &(j, q) in &s.lines {
                                if j != i { continue; }
                                prop_assert!(q > 0);
                                shipped += q;
                                match &l.pinned {
                                    Some(pw) => prop_assert_eq!(pw, &s.warehouse),
                                    None => {
                                        prop_assert!(passes(&inp, wh(&s.warehouse), wl(&s.warehouse)));
                                        *taken.entry((l.sku.clone(), s.warehouse.clone())).or_default() += q;
                                    }
                                }
                            }
                        }
                        prop_assert_eq!(shipped, l.qty, "line {}", i);
                    }
                    for ((s, w), q) in taken {
                        prop_assert!(q <= stock_of(&inp, &s, &w));
                    }
                    // No empty shipment, no warehouse twice.
                    for (k, s) in p.shipments.iter().enumerate() {
                        prop_assert!(!s.lines.is_empty() || inp.lines.iter().all(|l| l.qty == 0));
                        prop_assert!(p.shipments[..k].iter().all(|o| o.warehouse != s.warehouse));
                    }
                }
                Err(u) => {
                    prop_assert!(!u.lines.is_empty());
                    // If one eligible warehouse (with the pinned ones) could
                    // ship everything within the policy, a plan exists.
                    let pinned: std::collections::BTreeSet<&WarehouseId> =
                        inp.lines.iter().filter(|l| l.qty > 0).filter_map(|l| l.pinned.as_ref()).collect();
                    for w in &inp.whs {
                        if !passes(&inp, w, wl(&w.id)) { continue; }
                        let mut need: BTreeMap<&SkuId, u64> = BTreeMap::new();
                        for l in inp.lines.iter().filter(|l| l.pinned.is_none()) {
                            *need.entry(&l.sku).or_default() += l.qty;
                        }
                        let fits = need.iter().all(|(s, q)| stock_of(&inp, s, &w.id) >= *q);
                        let ships = pinned.len() + usize::from(!pinned.contains(&w.id) && need.values().any(|&q| q > 0));
                        prop_assert!(!(fits && ships <= inp.split.max_shipments()), "{} fits alone", w.id);
                    }
                }
            }
        }
    }
}

#[test]
fn the_trace_lists_a_bounded_number_of_left_out_warehouses() {
    let whs: Vec<Warehouse> = (0..EXCLUDED_TRACED_MAX + 8)
        .map(|i| Warehouse {
            id: wid(&format!("w{i:03}")),
            name: format!("W{i}"),
            location: at(48.0, 2.0),
            priority: 0,
            // Every one but w000 is disabled.
            routing: WarehouseRouting {
                enabled: i == 0,
                ..Default::default()
            },
        })
        .collect();
    let stock = |_: &SkuId, _: &WarehouseId| 5;
    let lines = [line("a", 1)];
    let req = PlanRequest {
        lines: &lines,
        ship_to: None,
        channel: None,
        now: 0,
    };
    let cands: Vec<Candidate<'_>> = whs
        .iter()
        .map(|w| Candidate {
            warehouse: w,
            workload: Workload::default(),
        })
        .collect();
    let (p, trace) = plan(&Chain::default_chain(), &req, &cands, stock, 8).unwrap();
    assert_eq!(names(&p), vec!["w000"]);
    assert_eq!(trace.excluded.len(), EXCLUDED_TRACED_MAX);
    assert_eq!(trace.excluded[0].warehouse, wid("w001"));
}

/// The engine against the search it replaced (`plan_reference.rs`, kept
/// as it was: one fill per set with its own vectors, every complete plan
/// kept and sorted, no fast path), on random inputs with enough
/// warehouses to go beyond [`PAIR_POOL`]: the same plan, the same trace
/// (candidates, verdicts, deciding rule) and the same unplaced lines.
mod against_reference {
    use super::*;
    use proptest::prelude::*;

    const CITIES: [(f64, f64); 5] = [PARIS, BERLIN, MADRID, WARSAW, LYON];
    const SKUS: [&str; 4] = ["a", "b", "c", "d"];
    const WHS_MAX: usize = 14;
    const RANKING: [Rule; 8] = [
        Rule::FewestShipments,
        Rule::Nearest,
        Rule::LowestCost,
        Rule::SameDay,
        Rule::BalanceStock,
        Rule::Capacity(CapacityMode::Rank),
        Rule::Priority,
        Rule::Capacity(CapacityMode::Skip),
    ];

    #[derive(Debug, Clone)]
    struct Input {
        whs: Vec<Warehouse>,
        routed: Vec<u64>,
        /// `stock[s * WHS_MAX + w]`.
        stock: Vec<u64>,
        lines: Vec<PlanLine>,
        chain: Chain,
        country: Option<String>,
        channel: Option<ChannelId>,
        to: usize,
        now: Millis,
        max_traced: usize,
    }

    fn input() -> impl Strategy<Value = Input> {
        let wh = (
            0..CITIES.len(),
            -2..3i32,
            prop::bool::weighted(0.9),
            prop::option::weighted(0.2, prop::sample::subsequence(vec!["DE", "FR"], 1..2)),
            prop::option::weighted(0.2, Just(vec!["b2b"])),
            prop::option::of(0..3u64),
            prop::option::of((0..24u8, 0..2usize)),
            prop::option::weighted(0.8, (0..400u64, 0..3u64)),
        );
        (
            prop::collection::vec(wh, 1..=WHS_MAX),
            prop::collection::vec(0..4u64, WHS_MAX),
            // Mostly small stock, often none: many partial fills.
            prop::collection::vec(
                prop::sample::select(vec![0u64, 0, 1, 2, 3, 5, 9]),
                SKUS.len() * WHS_MAX,
            ),
            prop::collection::vec((0..SKUS.len(), 0..6u64, 0..3 * WHS_MAX), 1..7),
            (Just(RANKING.to_vec()).prop_shuffle(), 0..=6usize),
            prop::sample::select(vec![
                SplitPolicy::Allow,
                SplitPolicy::Forbid,
                SplitPolicy::MaxShipments(2),
                SplitPolicy::MaxShipments(3),
            ]),
            (
                prop::option::of(prop::sample::select(vec!["DE", "FR"])),
                prop::option::of(prop::sample::select(vec!["b2b", "web"])),
            ),
            (0..CITIES.len(), 1_767_225_600_000u64..1_798_761_600_000u64),
            0..10usize,
        )
            .prop_map(
                |(
                    ws,
                    routed,
                    stock,
                    ls,
                    (rules, nrules),
                    split,
                    (country, channel),
                    (to, now),
                    max_traced,
                )| {
                    let whs: Vec<Warehouse> = ws
                        .into_iter()
                        .enumerate()
                        .map(
                            |(
                                i,
                                (city, priority, enabled, countries, channels, cap, cut, cost),
                            )| Warehouse {
                                id: wid(&format!("w{i:02}")),
                                name: String::new(),
                                location: at(CITIES[city].0, CITIES[city].1),
                                priority,
                                routing: WarehouseRouting {
                                    enabled,
                                    countries: countries
                                        .unwrap_or_default()
                                        .into_iter()
                                        .map(String::from)
                                        .collect(),
                                    channels: channels
                                        .unwrap_or_default()
                                        .into_iter()
                                        .map(ch)
                                        .collect(),
                                    capacity_per_day: cap,
                                    cutoff: cut.map(|(h, z)| Cutoff {
                                        hour: h,
                                        minute: 30,
                                        tz: ["Europe/Berlin", "America/New_York"][z].into(),
                                    }),
                                    shipping_cost: cost.map(|(f, k)| ShippingCost {
                                        default: Rate {
                                            fixed: f,
                                            per_km: k,
                                        },
                                        by_country: BTreeMap::new(),
                                    }),
                                },
                            },
                        )
                        .collect();
                    let n = whs.len();
                    let lines = ls
                        .into_iter()
                        .map(|(s, qty, pin)| PlanLine {
                            sku: sku(SKUS[s]),
                            qty,
                            // About one line in six pinned, now and then
                            // to a warehouse that is not a candidate.
                            pinned: if pin == 3 * WHS_MAX - 1 {
                                Some(wid("w99"))
                            } else {
                                (pin < n && pin % 3 == 0).then(|| wid(&format!("w{pin:02}")))
                            },
                        })
                        .collect();
                    let mut rules_in =
                        vec![Rule::Enabled, Rule::ServesDestination, Rule::ServesChannel];
                    let mut seen_cap = false;
                    for r in rules.into_iter().take(nrules) {
                        if matches!(r, Rule::Capacity(_)) {
                            if seen_cap {
                                continue;
                            }
                            seen_cap = true;
                        }
                        rules_in.push(r);
                    }
                    Input {
                        whs,
                        routed,
                        stock,
                        lines,
                        chain: Chain {
                            rules: rules_in,
                            split,
                        },
                        country: country.map(String::from),
                        channel: channel.map(ch),
                        to,
                        now,
                        max_traced,
                    }
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]
        #[test]
        fn the_engine_answers_as_the_reference_search(inp in input()) {
            let ship_to = ShipTo {
                location: at(CITIES[inp.to].0, CITIES[inp.to].1),
                country: inp.country.clone(),
            };
            let req = PlanRequest {
                lines: &inp.lines,
                ship_to: Some(&ship_to),
                channel: inp.channel.as_ref(),
                now: inp.now,
            };
            let cands: Vec<Candidate<'_>> = inp
                .whs
                .iter()
                .enumerate()
                .map(|(i, w)| Candidate {
                    warehouse: w,
                    workload: Workload { day: local_day(&w.routing, inp.now), routed: inp.routed[i] },
                })
                .collect();
            let stock = |s: &SkuId, w: &WarehouseId| {
                let si = SKUS.iter().position(|x| *x == s.as_str()).unwrap();
                let wi: usize = w.as_str()[1..].parse().unwrap();
                inp.stock[si * WHS_MAX + wi]
            };
            let want = super::super::reference::plan_with(&inp.chain, &req, &cands, stock, inp.max_traced, false);
            let got = plan(&inp.chain, &req, &cands, stock, inp.max_traced);
            prop_assert_eq!(&got, &want);
            let full = super::super::plan_with(&inp.chain, &req, &cands, stock, inp.max_traced, false);
            prop_assert_eq!(&full, &want);
        }
    }
}
