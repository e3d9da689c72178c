//! Stock: the numbers of a row, a SKU's stock in every warehouse, a
//! warehouse's stock of every SKU. The numbers of a row are written once
//! ([`RowNumbers`]) and flattened into each shape that carries them.

use crate::core::{SkuId, SkuState, StockRow, WarehouseId};
use serde::Serialize;
use utoipa::ToSchema;

/// The numbers of one stock row (or of a SKU's total), as every stock
/// shape carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct RowNumbers {
    pub on_hand: u64,
    pub reserved: u64,
    pub allocated: u64,
    pub safety_stock: u64,
    pub available: u64,
    /// Units of open incoming receipts, not yet received: never part of
    /// `on_hand` or `available`.
    pub incoming: u64,
}

impl From<&StockRow> for RowNumbers {
    fn from(r: &StockRow) -> Self {
        Self {
            on_hand: r.on_hand,
            reserved: r.reserved,
            allocated: r.allocated,
            safety_stock: r.safety_stock,
            available: r.available(),
            incoming: 0,
        }
    }
}

impl RowNumbers {
    /// Row `warehouse` of `s`, with its incoming units.
    pub fn of(s: &SkuState, warehouse: &WarehouseId, r: &StockRow) -> Self {
        Self {
            incoming: s.incoming.incoming(warehouse),
            ..Self::from(r)
        }
    }
}

/// One warehouse's row of a SKU (in [`StockView`]).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StockRowView {
    pub warehouse: String,
    #[serde(flatten)]
    pub row: RowNumbers,
    /// `low_stock` when this row's available falls to or below it.
    pub low_stock_threshold: Option<u64>,
}

/// One SKU's row in a warehouse (the `warehouse:<id>` snapshot).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SkuRowView {
    pub sku: String,
    #[serde(flatten)]
    pub row: RowNumbers,
}

impl SkuRowView {
    /// The row of `s` in `warehouse`, if it has one.
    pub fn from_state(s: &SkuState, warehouse: &WarehouseId) -> Option<Self> {
        s.rows.get(warehouse).map(|r| Self {
            sku: s.sku.to_string(),
            row: RowNumbers::of(s, warehouse, r),
        })
    }
}

/// A SKU's stock: totals, and one row per warehouse.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StockView {
    pub sku: String,
    pub name: Option<String>,
    pub per_customer_limit: Option<u64>,
    /// `low_stock` when the total available falls to or below it.
    pub low_stock_threshold: Option<u64>,
    /// `available` is the sum of the rows' (a row never lends to another).
    #[serde(flatten)]
    pub totals: RowNumbers,
    pub warehouses: Vec<StockRowView>,
}

impl From<&SkuState> for StockView {
    fn from(s: &SkuState) -> Self {
        Self {
            sku: s.sku.to_string(),
            name: s.name.clone(),
            per_customer_limit: s.per_customer_limit,
            low_stock_threshold: s.incoming.low_stock_threshold,
            totals: RowNumbers {
                available: s.available_total(),
                incoming: s.incoming.incoming_total(),
                ..RowNumbers::from(&s.totals())
            },
            warehouses: s
                .rows
                .iter()
                .map(|(wh, r)| StockRowView {
                    warehouse: wh.to_string(),
                    row: RowNumbers::of(s, wh, r),
                    low_stock_threshold: s.incoming.row_thresholds.get(wh).copied(),
                })
                .collect(),
        }
    }
}

impl StockView {
    /// The rows of `warehouses` only, and totals over those rows: what a
    /// `warehouse:<id>` key sees of a SKU (nothing of other warehouses).
    pub fn only(mut self, warehouses: &[String]) -> Self {
        self.warehouses
            .retain(|r| warehouses.contains(&r.warehouse));
        let mut t = RowNumbers {
            on_hand: 0,
            reserved: 0,
            allocated: 0,
            safety_stock: 0,
            available: 0,
            incoming: 0,
        };
        for r in &self.warehouses {
            let r = &r.row;
            t.on_hand = t.on_hand.saturating_add(r.on_hand);
            t.reserved = t.reserved.saturating_add(r.reserved);
            t.allocated = t.allocated.saturating_add(r.allocated);
            t.safety_stock = t.safety_stock.saturating_add(r.safety_stock);
            t.available = t.available.saturating_add(r.available);
            t.incoming = t.incoming.saturating_add(r.incoming);
        }
        self.totals = t;
        self
    }
}

/// A stock row changed (feed `stock_changed`): the row's numbers and the
/// SKU's total available.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StockChanged {
    pub sku: String,
    pub warehouse: String,
    #[serde(flatten)]
    pub row: RowNumbers,
    pub sku_available: u64,
}

impl StockChanged {
    /// Row `warehouse` of `s` (zero if it has none yet).
    pub fn from_state(s: &SkuState, warehouse: &WarehouseId) -> Self {
        Self {
            sku: s.sku.to_string(),
            warehouse: warehouse.to_string(),
            row: RowNumbers::of(s, warehouse, &s.row(warehouse)),
            sku_available: s.available_total(),
        }
    }
}

/// A SKU sold out or came back in stock (feed `sold_out`,
/// `back_in_stock`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SkuAvailability {
    pub sku: String,
    pub sku_available: u64,
}

impl SkuAvailability {
    pub fn new(sku: &SkuId, sku_available: u64) -> Self {
        Self {
            sku: sku.to_string(),
            sku_available,
        }
    }
}
