//! Feed topics, as clients name them.

use crate::core::{OrderId, SkuId, WarehouseId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topic {
    /// One SKU: its stock rows, holds, sold out / back in stock.
    Sku(SkuId),
    /// One warehouse: its stock rows, the orders routed to it and their
    /// fulfilments' events there.
    Warehouse(WarehouseId),
    /// One order: created, routed, its lifecycle (payments, hold,
    /// cancelled lines, fulfilments, returns), status changes.
    Order(OrderId),
    /// Every order event.
    Orders,
    /// Every stock change, sold out and back in stock, and warehouse
    /// changes (its snapshot lists the warehouses).
    Stock,
    /// Every hold event.
    Holds,
    /// Routing rules set at run time.
    Routing,
    /// Everything (the only subscription that sees every seq).
    All,
}

impl Topic {
    pub fn parse(s: &str) -> Result<Topic, String> {
        let bad = |e: crate::core::IdError| format!("topic {s}: {e}");
        Ok(match s.split_once(':') {
            Some(("sku", id)) => Topic::Sku(SkuId::parse(id).map_err(bad)?),
            Some(("warehouse", id)) => Topic::Warehouse(WarehouseId::parse(id).map_err(bad)?),
            Some(("order", id)) => Topic::Order(
                OrderId::parse(id).map_err(|_| format!("topic {s}: not an order id"))?,
            ),
            None if s == "orders" => Topic::Orders,
            None if s == "stock" => Topic::Stock,
            None if s == "holds" => Topic::Holds,
            None if s == "routing" => Topic::Routing,
            None if s == "all" => Topic::All,
            _ => {
                return Err(format!(
                    "unknown topic {s:?}: use sku:<id>, warehouse:<id>, order:<id>, orders, stock, holds or all"
                ))
            }
        })
    }

    /// Whether a topic name (as messages carry it) is narrow: one SKU,
    /// warehouse or order, with few messages and few followers each.
    pub fn is_narrow_name(name: &str) -> bool {
        name.contains(':')
    }

    /// The name messages carry (canonical form of what was parsed).
    pub fn name(&self) -> String {
        match self {
            Topic::Sku(id) => format!("sku:{id}"),
            Topic::Warehouse(id) => format!("warehouse:{id}"),
            Topic::Order(id) => format!("order:{id}"),
            Topic::Orders => "orders".into(),
            Topic::Stock => "stock".into(),
            Topic::Holds => "holds".into(),
            Topic::Routing => "routing".into(),
            Topic::All => "all".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip_and_bad_ones_are_named() {
        for t in [
            "sku:tee-1",
            "warehouse:berlin",
            "order:ord_7",
            "orders",
            "stock",
            "holds",
            "routing",
            "all",
        ] {
            assert_eq!(Topic::parse(t).map(|t| t.name()), Ok(t.to_owned()));
        }
        for t in ["sku:", "sku:a b", "order:7", "nope", "stock:x", ""] {
            assert!(Topic::parse(t).is_err(), "{t}");
        }
    }
}
