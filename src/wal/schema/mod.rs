//! The on-disk schema: the only place that decides how events and snapshot
//! entries become bytes. The core's types are never written directly; each
//! format version has its own types in its own module, converted to and from
//! the core explicitly, so a field added to `Order` never makes an old data
//! directory unreadable.
//!
//! - `v1.rs`: FROZEN. The first release wrote the core's structs as
//!   positional postcard; these are copies of them, as encoded.
//! - `v2.rs`: FROZEN. Each event and snapshot entry is a stable numeric
//!   kind and its own body.
//! - `v3.rs`: FROZEN. v2 with the creator (`created_by`, an API key's
//!   name) of holds and orders; every other body is v2's.
//! - `v4.rs`: FROZEN. v3 with routing (a warehouse's attributes, an
//!   order's trace, the `ROUTING_RULES_SET` and `ORDER_REROUTED` events,
//!   the `ROUTING_RULES` snapshot entry).
//! - `v5.rs`: FROZEN. v4 with the order lifecycle (an order's line
//!   prices and life, the units of an allocation shipped, nine new events:
//!   payments, holds, cancelled lines, fulfilments and returns).
//! - `v6.rs`: what this build writes: v5 with an order's routing trace
//!   written compactly (each warehouse and SKU once, in tables the rest
//!   refers to by index; rules as one-byte codes), and a tenth lifecycle
//!   event, `LIFE_KEY_USED` (a lifecycle command's idempotency key), with
//!   the `LIFE_IDEMPOTENCY` snapshot entry. Later builds added kinds to it,
//!   as the rules below allow (new kinds, no changed body): incoming stock
//!   and low-stock thresholds (`incoming.rs`: kinds 24–26, entries 12–13;
//!   golden data `v6-incoming-*`), a receipt closed short (kind 27,
//!   golden data `v6-incoming-close-*`). Kinds 22–23 and entry 11 are
//!   reserved for channel pools.
//!
//! Reading always upcasts step by step, oldest to newest, then converts to
//! the core: v1 → v2 → v3 → v4 → v5 → v6 → core. A newer server reads every older version; an
//! older one refuses a newer version with [`Newer`], never taking it for
//! damage or a torn write.
//!
//! # Rules for changing the format
//! - **A new event or snapshot entry type:** give it the next unused kind
//!   number in the current version module (`v2::kind`, `v2::entry`), a
//!   body struct, and its arms in `read`/`write`/the conversions. No new
//!   version: an older build meets the unknown kind and refuses with
//!   [`Newer::Kind`]. Never reuse or renumber a kind.
//! - **A field added to, removed from or changed in any written type**
//!   (say `Order` gains `payment`): a new module `v3.rs` with the new
//!   types (copy the ones that change; reuse unchanged ones from `v2`),
//!   `CURRENT = v3::VERSION`, `From<v2::X> for v3::X` upcasters that say
//!   what the new field is for old data, and a `v2` arm in the decoders
//!   that upcasts through them. `v2.rs` becomes frozen, like `v1.rs`.
//! - Never edit a frozen module; never change how a released version's
//!   bytes decode. `tests/golden/` holds data directories of every
//!   released version (`scripts/make-golden.sh`), loaded by CI forever:
//!   add one for each new version.
//! - The framing is fixed for every version: `[version u8][crc32 LE]`
//!   then the payload; from v2 on the checksum covers the version byte and
//!   the payload (v1's covered the payload only), which is how an
//!   unknown version byte is told apart from a damaged one.

pub mod v1;
pub mod v2;
pub mod v3;
pub mod v4;
pub mod v5;
pub mod v6;
// v6's kinds for incoming stock and low-stock thresholds.
pub mod incoming;

#[cfg(test)]
pub(crate) mod tests;

use crate::core::{self, SkuState};
use crate::projection::SnapEntry;

/// The format this build writes, and the newest it reads.
pub const CURRENT: u8 = v6::VERSION;

/// Data this build cannot read because a newer one wrote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Newer {
    #[error("written by a newer Surge: format v{found}, this build reads up to v{max}")]
    Version { found: u8, max: u8 },
    #[error(
        "written by a newer Surge: {what} kind {kind} is unknown to this build (format v{version})"
    )]
    Kind {
        what: &'static str,
        kind: u16,
        version: u8,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error(transparent)]
    Newer(#[from] Newer),
    /// Only raised by the per-version readers; turned into `Newer::Kind`.
    #[error("unknown {what} kind {kind}")]
    UnknownKind { what: &'static str, kind: u16 },
    #[error("undecodable payload: {0}")]
    Payload(String),
    #[error("invalid value: {0}")]
    Invalid(String),
}

impl SchemaError {
    fn at_version(self, version: u8) -> Self {
        match self {
            SchemaError::UnknownKind { what, kind } => SchemaError::Newer(Newer::Kind {
                what,
                kind,
                version,
            }),
            other => other,
        }
    }
}

fn payload_err(e: postcard::Error) -> SchemaError {
    SchemaError::Payload(e.to_string())
}

/// Appends a v2 list of tagged bodies: the count, then each kind and body.
/// `bodies` holds the bodies back to back; `index` their kinds and ends.
fn put_tagged(
    head: u64,
    index: &[(u16, usize)],
    bodies: &[u8],
    out: &mut Vec<u8>,
    with_head: bool,
) -> Result<(), SchemaError> {
    let mut tagged = Vec::with_capacity(index.len());
    let mut start = 0;
    for &(kind, end) in index {
        tagged.push(v2::Tagged {
            kind,
            body: &bodies[start..end],
        });
        start = end;
    }
    let result = if with_head {
        postcard::to_io(
            &v2::Record {
                first_seq: head,
                events: tagged,
            },
            out,
        )
    } else {
        postcard::to_io(&v2::Chunk { entries: tagged }, out)
    };
    result.map(|_| ()).map_err(payload_err)
}

/// Appends the payload of a log record in the current format.
pub fn write_record(
    first_seq: u64,
    events: &[&core::Event],
    out: &mut Vec<u8>,
) -> Result<(), SchemaError> {
    let mut bodies = Vec::with_capacity(events.len() * 64);
    let mut index = Vec::with_capacity(events.len());
    for e in events {
        let e = v6::Event::from(*e);
        e.write(&mut bodies)?;
        index.push((e.kind(), bodies.len()));
    }
    put_tagged(first_seq, &index, &bodies, out, true)
}

/// Appends one event's body in the current format to `bodies`; returns
/// its kind. With [`write_encoded_record`], a group's events are encoded
/// once however its records are cut.
pub fn write_event(e: &core::Event, bodies: &mut Vec<u8>) -> Result<u16, SchemaError> {
    let e = v6::Event::from(e);
    e.write(bodies)?;
    Ok(e.kind())
}

/// Upper bound of what a record's payload adds to its events' bodies: the
/// first seq (varint u64, ≤ 10 bytes) and the event count (≤ 10).
pub const RECORD_OVERHEAD_BYTES: usize = 20;
/// Upper bound of what a record adds per event besides its body.
pub const EVENT_OVERHEAD_BYTES: usize = ENTRY_OVERHEAD_BYTES;

/// Appends the payload of a log record of events already encoded by
/// [`write_event`], as `(kind, body)`: the same bytes as [`write_record`].
pub fn write_encoded_record(
    first_seq: u64,
    events: &[(u16, &[u8])],
    out: &mut Vec<u8>,
) -> Result<(), SchemaError> {
    let record = v2::Record {
        first_seq,
        events: events
            .iter()
            .map(|&(kind, body)| v2::Tagged { kind, body })
            .collect(),
    };
    postcard::to_io(&record, out)
        .map(|_| ())
        .map_err(payload_err)
}

/// Reads a log record's payload of format `version` (already checked to
/// be one this build knows): its first seq and its events.
pub fn read_record(version: u8, payload: &[u8]) -> Result<(u64, Vec<core::Event>), SchemaError> {
    match version {
        v1::VERSION => {
            let rec: v1::Record = postcard::from_bytes(payload).map_err(payload_err)?;
            let events = rec
                .events
                .into_iter()
                .map(|e| {
                    v5::upcast(v4::Event::from(v3::Event::from(v2::Event::from(e))))
                        .and_then(v6::upcast)
                        .and_then(core::Event::try_from)
                })
                .collect::<Result<_, _>>()?;
            Ok((rec.first_seq, events))
        }
        v2::VERSION => {
            let rec: v2::Record<'_> = whole(payload)?;
            let events = rec
                .events
                .into_iter()
                .map(|t| {
                    v2::Event::read(t.kind, t.body)
                        .map(v3::Event::from)
                        .map(v4::Event::from)
                        .and_then(v5::upcast)
                        .and_then(v6::upcast)
                        .and_then(core::Event::try_from)
                        .map_err(|e| e.at_version(version))
                })
                .collect::<Result<_, _>>()?;
            Ok((rec.first_seq, events))
        }
        v3::VERSION => {
            let rec: v2::Record<'_> = whole(payload)?;
            let events = rec
                .events
                .into_iter()
                .map(|t| {
                    v3::Event::read(t.kind, t.body)
                        .map(v4::Event::from)
                        .and_then(v5::upcast)
                        .and_then(v6::upcast)
                        .and_then(core::Event::try_from)
                        .map_err(|e| e.at_version(version))
                })
                .collect::<Result<_, _>>()?;
            Ok((rec.first_seq, events))
        }
        v4::VERSION => {
            let rec: v2::Record<'_> = whole(payload)?;
            let events = rec
                .events
                .into_iter()
                .map(|t| {
                    v4::Event::read(t.kind, t.body)
                        .and_then(v5::upcast)
                        .and_then(v6::upcast)
                        .and_then(core::Event::try_from)
                        .map_err(|e| e.at_version(version))
                })
                .collect::<Result<_, _>>()?;
            Ok((rec.first_seq, events))
        }
        v5::VERSION => {
            let rec: v2::Record<'_> = whole(payload)?;
            let events = rec
                .events
                .into_iter()
                .map(|t| {
                    v5::Event::read(t.kind, t.body)
                        .and_then(v6::upcast)
                        .and_then(core::Event::try_from)
                        .map_err(|e| e.at_version(version))
                })
                .collect::<Result<_, _>>()?;
            Ok((rec.first_seq, events))
        }
        v6::VERSION => {
            let rec: v2::Record<'_> = whole(payload)?;
            let events = rec
                .events
                .into_iter()
                .map(|t| {
                    v6::Event::read(t.kind, t.body)
                        .and_then(core::Event::try_from)
                        .map_err(|e| e.at_version(version))
                })
                .collect::<Result<_, _>>()?;
            Ok((rec.first_seq, events))
        }
        found => Err(Newer::Version {
            found,
            max: CURRENT,
        }
        .into()),
    }
}

fn whole<'a, T: serde::Deserialize<'a>>(payload: &'a [u8]) -> Result<T, SchemaError> {
    match postcard::take_from_bytes(payload) {
        Ok((v, [])) => Ok(v),
        Ok((_, rest)) => Err(SchemaError::Payload(format!(
            "{} bytes after the payload",
            rest.len()
        ))),
        Err(e) => Err(payload_err(e)),
    }
}

// --- snapshots -------------------------------------------------------------------

/// The facts of one in-memory snapshot entry, as current-format entries
/// (a SKU becomes several: its header, its open holds, its allocations).
pub fn entries_of<'a>(e: &'a SnapEntry, out: &mut impl FnMut(v6::SnapEntry<'a>)) {
    let wrap = |e| v6::SnapEntry::Same(v5::SnapEntry::Same(e));
    let same = |e| {
        v6::SnapEntry::Same(v5::SnapEntry::Same(v4::SnapEntry::Same(
            v3::SnapEntry::Same(e),
        )))
    };
    match e {
        SnapEntry::Warehouse(w) => out(wrap(v4::SnapEntry::Warehouse(w.into()))),
        SnapEntry::Sku(state) => {
            v5::sku_entries(state, &mut |e| out(v6::SnapEntry::Same(e)));
            incoming::sku_entries(&state.incoming, out);
        }
        SnapEntry::SkuHold(h) => out(same(v2::SnapEntry::SkuHold(h.into()))),
        SnapEntry::Hold(h) => out(wrap(v4::SnapEntry::Same(v3::SnapEntry::Hold(h.into())))),
        SnapEntry::Order(o) => out(v6::SnapEntry::Order(o.into())),
        SnapEntry::RoutingRules { channel, chain } => {
            out(wrap(v4::SnapEntry::RoutingRules(v4::RoutingRules {
                channel: channel.as_ref().map(|c| v2::s(c.as_str())),
                chain: chain.into(),
            })))
        }
        SnapEntry::Idempotency(key, entry) => match entry.target {
            crate::projection::IdemTarget::Life(order, target) => {
                out(v6::SnapEntry::LifeIdempotency(
                    v6::LifeIdempotency::from_core(key, entry, order, target),
                ))
            }
            _ => out(same(v2::SnapEntry::Idempotency(
                v2::Idempotency::from_core(key, entry),
            ))),
        },
        SnapEntry::IdCounters {
            max_hold,
            max_order,
        } => out(same(v2::SnapEntry::IdCounters(v2::IdCounters {
            max_hold: *max_hold,
            max_order: *max_order,
        }))),
    }
}

/// Collects encoded snapshot entries into one chunk's payload.
#[derive(Default)]
pub struct ChunkBuilder {
    bodies: Vec<u8>,
    index: Vec<(u16, usize)>,
}

/// Upper bound of what a chunk adds per entry besides its body: a kind
/// (varint u16, ≤ 3 bytes) and a body length (varint, ≤ 5 bytes here).
const ENTRY_OVERHEAD_BYTES: usize = 8;
/// Upper bound of the entry count's varint.
const CHUNK_OVERHEAD_BYTES: usize = 10;

impl ChunkBuilder {
    /// Encodes `e` on its own: `(kind, body)`.
    pub fn encode(e: &v6::SnapEntry<'_>, body: &mut Vec<u8>) -> Result<u16, SchemaError> {
        body.clear();
        e.write(body)?;
        Ok(e.kind())
    }

    /// The payload size if an entry with a body of `body_len` bytes were
    /// added: an upper bound.
    pub fn bytes_with(&self, body_len: usize) -> usize {
        CHUNK_OVERHEAD_BYTES
            + self.bodies.len()
            + body_len
            + (self.index.len() + 1) * ENTRY_OVERHEAD_BYTES
    }

    pub fn push(&mut self, kind: u16, body: &[u8]) {
        self.bodies.extend_from_slice(body);
        self.index.push((kind, self.bodies.len()));
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Appends the chunk's payload to `out` and empties the builder.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), SchemaError> {
        put_tagged(0, &self.index, &self.bodies, out, false)?;
        self.bodies.clear();
        self.index.clear();
        Ok(())
    }
}

/// Reads a chunk's payload of format `version`, handing each entry (upcast
/// to the current format) to `out`; returns how many entries the chunk
/// held as written.
pub fn read_chunk(
    version: u8,
    payload: &[u8],
    out: &mut dyn FnMut(v6::SnapEntry<'_>) -> Result<(), SchemaError>,
) -> Result<u64, SchemaError> {
    match version {
        v1::VERSION => {
            let list: Vec<v1::SnapEntry> = postcard::from_bytes(payload).map_err(payload_err)?;
            let n = list.len() as u64;
            let mut failed = Ok(());
            for e in list {
                v2::upcast_entry(e, &mut |e| {
                    if failed.is_ok() {
                        failed = v5::upcast_entry(v3::SnapEntry::from(e).into())
                            .and_then(v6::upcast_entry)
                            .and_then(&mut *out);
                    }
                });
            }
            failed.map(|()| n)
        }
        v2::VERSION => {
            let chunk: v2::Chunk<'_> = whole(payload)?;
            let n = chunk.entries.len() as u64;
            for t in chunk.entries {
                let e = v2::SnapEntry::read(t.kind, t.body).map_err(|e| e.at_version(version))?;
                out(v6::upcast_entry(v5::upcast_entry(
                    v3::SnapEntry::from(e).into(),
                )?)?)?;
            }
            Ok(n)
        }
        v3::VERSION => {
            let chunk: v2::Chunk<'_> = whole(payload)?;
            let n = chunk.entries.len() as u64;
            for t in chunk.entries {
                let e = v3::SnapEntry::read(t.kind, t.body).map_err(|e| e.at_version(version))?;
                out(v6::upcast_entry(v5::upcast_entry(e.into())?)?)?;
            }
            Ok(n)
        }
        v4::VERSION => {
            let chunk: v2::Chunk<'_> = whole(payload)?;
            let n = chunk.entries.len() as u64;
            for t in chunk.entries {
                let e = v4::SnapEntry::read(t.kind, t.body).map_err(|e| e.at_version(version))?;
                out(v6::upcast_entry(v5::upcast_entry(e)?)?)?;
            }
            Ok(n)
        }
        v5::VERSION => {
            let chunk: v2::Chunk<'_> = whole(payload)?;
            let n = chunk.entries.len() as u64;
            for t in chunk.entries {
                let e = v5::SnapEntry::read(t.kind, t.body).map_err(|e| e.at_version(version))?;
                out(v6::upcast_entry(e)?)?;
            }
            Ok(n)
        }
        v6::VERSION => {
            let chunk: v2::Chunk<'_> = whole(payload)?;
            let n = chunk.entries.len() as u64;
            for t in chunk.entries {
                let e = v6::SnapEntry::read(t.kind, t.body).map_err(|e| e.at_version(version))?;
                out(e)?;
            }
            Ok(n)
        }
        found => Err(Newer::Version {
            found,
            max: CURRENT,
        }
        .into()),
    }
}

/// Turns current-format snapshot entries back into in-memory ones. A SKU's
/// holds and allocations follow its header; the SKU is rebuilt from its
/// facts when the next entry that is not one of its parts arrives.
#[derive(Default)]
pub struct Assembler {
    sku: Option<core::sku::SkuFacts>,
}

impl Assembler {
    pub fn push(
        &mut self,
        e: v6::SnapEntry<'_>,
        out: &mut impl FnMut(SnapEntry),
    ) -> Result<(), SchemaError> {
        let e = match e {
            v6::SnapEntry::Order(o) => {
                self.finish(out)?;
                out(SnapEntry::Order(o.try_into()?));
                return Ok(());
            }
            v6::SnapEntry::LifeIdempotency(i) => {
                self.finish(out)?;
                let order = core::OrderId(i.order);
                out(SnapEntry::Idempotency(
                    i.key.into_owned(),
                    crate::projection::IdemEntry {
                        request_hash: i.request_hash,
                        target: crate::projection::IdemTarget::Life(
                            order,
                            v6::life_target(order, i.target)?,
                        ),
                        at: i.at,
                    },
                ));
                return Ok(());
            }
            v6::SnapEntry::Incoming(i) => {
                return match &mut self.sku {
                    Some(f) => incoming::add_incoming(f, i),
                    None => Err(SchemaError::Invalid(
                        "an incoming receipt is not after its sku".into(),
                    )),
                };
            }
            v6::SnapEntry::LowStock(l) => {
                return match &mut self.sku {
                    Some(f) => incoming::add_low_stock(f, l),
                    None => Err(SchemaError::Invalid(
                        "a low-stock threshold is not after its sku".into(),
                    )),
                };
            }
            v6::SnapEntry::Same(e) => e,
        };
        let e = match e {
            v5::SnapEntry::Order(o) => {
                self.finish(out)?;
                out(SnapEntry::Order(o.try_into()?));
                return Ok(());
            }
            v5::SnapEntry::SkuAllocation(a) => {
                let (order, allocation) = v5::live_allocation(a)?;
                return self.allocation(order, allocation);
            }
            v5::SnapEntry::Same(e) => e,
        };
        let e = match e {
            v4::SnapEntry::Warehouse(w) => {
                self.finish(out)?;
                out(SnapEntry::Warehouse(w.try_into()?));
                return Ok(());
            }
            v4::SnapEntry::Order(o) => {
                self.finish(out)?;
                out(SnapEntry::Order(o.try_into()?));
                return Ok(());
            }
            v4::SnapEntry::RoutingRules(r) => {
                self.finish(out)?;
                out(v4::routing_rules_entry(r)?);
                return Ok(());
            }
            v4::SnapEntry::Same(e) => e,
        };
        let e = match e {
            v3::SnapEntry::Hold(h) => {
                self.finish(out)?;
                out(SnapEntry::Hold(h.try_into()?));
                return Ok(());
            }
            v3::SnapEntry::Order(o) => {
                self.finish(out)?;
                out(SnapEntry::Order(o.try_into()?));
                return Ok(());
            }
            v3::SnapEntry::Same(e) => e,
        };
        match e {
            v2::SnapEntry::SkuHold(h) => {
                let hold = core::Hold::try_from(h)?;
                match &mut self.sku {
                    Some(f) if f.sku == hold.sku => f.holds.push(hold),
                    _ => {
                        return Err(SchemaError::Invalid(format!(
                            "hold {} of sku {} is not after its sku",
                            hold.id, hold.sku
                        )))
                    }
                }
                return Ok(());
            }
            v2::SnapEntry::SkuAllocation(a) => {
                let order = core::OrderId(a.order);
                return self.allocation(order, core::SkuAllocation::try_from(a.allocation)?);
            }
            _ => {}
        }
        self.finish(out)?;
        match e {
            v2::SnapEntry::Warehouse(w) => out(SnapEntry::Warehouse(w.try_into()?)),
            v2::SnapEntry::Sku(s) => {
                self.sku = Some(core::sku::SkuFacts {
                    sku: core::SkuId::parse(&s.sku)
                        .map_err(|e| SchemaError::Invalid(format!("{e}: `{}`", s.sku)))?,
                    name: s.name.map(std::borrow::Cow::into_owned),
                    per_customer_limit: s.per_customer_limit,
                    rows: s
                        .rows
                        .into_iter()
                        .map(TryInto::try_into)
                        .collect::<Result<_, _>>()?,
                    holds: Vec::new(),
                    allocations: Vec::new(),
                    incoming: Default::default(),
                })
            }
            v2::SnapEntry::Hold(h) => out(SnapEntry::Hold(h.try_into()?)),
            v2::SnapEntry::Order(o) => out(SnapEntry::Order(o.try_into()?)),
            v2::SnapEntry::Idempotency(i) => {
                let (key, entry) = i.into();
                out(SnapEntry::Idempotency(key, entry))
            }
            v2::SnapEntry::IdCounters(c) => out(SnapEntry::IdCounters {
                max_hold: c.max_hold,
                max_order: c.max_order,
            }),
            v2::SnapEntry::SkuHold(_) | v2::SnapEntry::SkuAllocation(_) => {}
        }
        Ok(())
    }

    /// Adds a live allocation to the SKU being assembled: its own.
    fn allocation(
        &mut self,
        order: core::OrderId,
        allocation: core::SkuAllocation,
    ) -> Result<(), SchemaError> {
        match &mut self.sku {
            Some(f) if f.sku == allocation.sku => {
                f.allocations.push((order, allocation));
                Ok(())
            }
            _ => Err(SchemaError::Invalid(format!(
                "allocation of {order} to sku {} is not after its sku",
                allocation.sku
            ))),
        }
    }

    /// Hands out the SKU being assembled, if any; call after the last entry.
    pub fn finish(&mut self, out: &mut impl FnMut(SnapEntry)) -> Result<(), SchemaError> {
        if let Some(facts) = self.sku.take() {
            let state =
                SkuState::from_facts(facts).map_err(|e| SchemaError::Invalid(e.to_string()))?;
            out(SnapEntry::Sku(Box::new(state)));
        }
        Ok(())
    }
}
