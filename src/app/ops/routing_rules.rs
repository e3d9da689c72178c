//! `PUT` and `DELETE /v1/routing/rules`: a chain set at run time, for a
//! channel or the default, and back to the configured one.
//!
//! The rules in force are the configured chains with the runtime ones
//! over them. Runtime chains are logged (`RoutingRulesSet`) and replayed,
//! so they survive a restart; changes are serialised, each applied here
//! once durable, in log order, so what is in force is what replay makes.

use crate::actors::CmdError;
use crate::app::Surge;
use crate::core::routing::{Chain, RoutingRules};
use crate::core::{ChannelId, Event};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// The chains set at run time, and the rules they make with config.
pub struct RoutingState {
    configured: RoutingRules,
    /// Runtime chains by channel (`None`: the default chain).
    overrides: RwLock<BTreeMap<Option<ChannelId>, Chain>>,
    in_force: RwLock<Arc<RoutingRules>>,
    /// One change at a time, from its submission until it is in force.
    writer: tokio::sync::Mutex<()>,
}

impl RoutingState {
    pub fn new(configured: RoutingRules, overrides: BTreeMap<Option<ChannelId>, Chain>) -> Self {
        let in_force = Arc::new(merge(&configured, &overrides));
        Self {
            configured,
            overrides: RwLock::new(overrides),
            in_force: RwLock::new(in_force),
            writer: tokio::sync::Mutex::new(()),
        }
    }

    fn set(&self, channel: Option<ChannelId>, chain: Option<Chain>) {
        let mut overrides = self.overrides.write().unwrap_or_else(|p| p.into_inner());
        match chain {
            Some(c) => overrides.insert(channel, c),
            None => overrides.remove(&channel),
        };
        let rules = Arc::new(merge(&self.configured, &overrides));
        *self.in_force.write().unwrap_or_else(|p| p.into_inner()) = rules;
    }
}

fn merge(
    configured: &RoutingRules,
    overrides: &BTreeMap<Option<ChannelId>, Chain>,
) -> RoutingRules {
    let mut rules = configured.clone();
    for (channel, chain) in overrides {
        match channel {
            None => rules.default = chain.clone(),
            Some(c) => {
                rules.channels.insert(c.clone(), chain.clone());
            }
        }
    }
    rules
}

/// A chain in force and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainInForce {
    pub chain: Chain,
    /// Set at run time (else configured).
    pub runtime: bool,
}

/// The rules in force, each chain with its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesInForce {
    pub default: ChainInForce,
    pub channels: BTreeMap<ChannelId, ChainInForce>,
}

impl Surge {
    /// The rules in force now: the configured chains with the runtime ones
    /// over them.
    pub fn routing_rules(&self) -> RoutingRules {
        self.routing_rules_shared().as_ref().clone()
    }

    /// [`Surge::routing_rules`] without a copy.
    pub fn routing_rules_shared(&self) -> Arc<RoutingRules> {
        self.routing
            .in_force
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The rules in force, with where each chain comes from.
    pub fn routing_rules_in_force(&self) -> RulesInForce {
        let overrides = self
            .routing
            .overrides
            .read()
            .unwrap_or_else(|p| p.into_inner());
        let rules = merge(&self.routing.configured, &overrides);
        let runtime = |c: Option<&ChannelId>| overrides.contains_key(&c.cloned());
        RulesInForce {
            default: ChainInForce {
                chain: rules.default.clone(),
                runtime: runtime(None),
            },
            channels: rules
                .channels
                .iter()
                .map(|(id, chain)| {
                    let c = ChainInForce {
                        chain: chain.clone(),
                        runtime: runtime(Some(id)),
                    };
                    (id.clone(), c)
                })
                .collect(),
        }
    }

    /// Sets the chain of `channel` (`None`: the default chain) at run
    /// time, or with `chain: None` goes back to the configured one. Logged;
    /// answers the rules in force once durable. `chain` must be checked
    /// (`Chain::check`) by the caller.
    pub async fn set_routing_rules(
        self: &Arc<Self>,
        channel: Option<ChannelId>,
        chain: Option<Chain>,
    ) -> Result<RulesInForce, CmdError> {
        self.detached(move |this| async move {
            let _one_at_a_time = this.routing.writer.lock().await;
            let event = Event::RoutingRulesSet {
                channel: channel.clone(),
                chain: chain.clone(),
                at: this.now(),
            };
            this.wal.submit(vec![event])?.wait().await?;
            this.routing.set(channel, chain);
            Ok(this.routing_rules_in_force())
        })
        .await
    }
}
