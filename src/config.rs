//! Configuration: the embedded `config/default.toml`, then a file, then
//! `SURGE_<KEY>` environment variables, then command-line flags.
//!
//! Layers merge as TOML tables before one typed decode, so every layer gets
//! the same validation and unknown keys are refused everywhere.

use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// The largest snapshot chunk a setting may ask for: a chunk is built in
/// memory whole before it is written.
pub const SNAPSHOT_CHUNK_BYTES_MAX: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: String,
    pub data_dir: PathBuf,
    pub log: String,
    pub log_format: crate::telemetry::LogFormat,
    pub metrics_http: bool,
    pub http_workers: usize,
    pub http_connections_max: usize,
    pub http_backlog: u32,
    pub http_body_bytes_max: usize,
    pub http_request_timeout_ms: u64,
    pub http_keep_alive_ms: u64,
    pub actor_threads: usize,
    pub sku_mailbox_capacity: usize,
    pub warehouse_mailbox_capacity: usize,
    pub order_mailbox_capacity: usize,
    pub order_shards: usize,
    pub durability: crate::wal::Durability,
    pub wal_group_delay_us_max: u64,
    pub wal_channel_capacity: usize,
    pub wal_batch_entries_max: usize,
    pub wal_apply_queue_groups: usize,
    pub wal_record_bytes_max: usize,
    pub wal_sync_timeout_ms: u64,
    pub shutdown_timeout_ms: u64,
    pub sled_cache_bytes: u64,
    pub data_dir_lock_wait_ms: u64,
    pub snapshot_every_events: u64,
    pub snapshot_every_ms: u64,
    pub snapshot_chunk_entries: usize,
    pub snapshot_retry_ms_min: u64,
    pub snapshot_retry_ms_max: u64,
    pub snapshot_chunk_bytes_max: usize,
    pub hold_ttl_ms_default: u64,
    pub hold_ttl_ms_max: u64,
    pub hold_expiry_batch_max: usize,
    pub qty_max: u64,
    pub on_hand_max: u64,
    pub order_lines_max: usize,
    pub orders_page_max: usize,
    pub orders_page_default: usize,
    pub orders_scan_max: usize,
    pub reservation_batch_max: usize,
    pub text_len_max: usize,
    pub idempotency_ttl_ms: u64,
    pub closed_hold_retention_ms: u64,
    pub closed_order_retention_ms: u64,
    pub retention_sweep_ms: u64,
    pub retention_sweep_batch_max: usize,
    pub feed_window_events: usize,
    pub feed_client_lag_events_max: usize,
    pub feed_send_timeout_ms: u64,
    pub feed_connections_max: usize,
    pub feed_topics_max: usize,
    pub feed_ping_interval_ms: u64,
    pub feed_idle_timeout_ms: u64,
    pub feed_inbound_bytes_max: usize,
    pub feed_snapshot_items_max: usize,
    pub feed_conflate_ms_max: u64,
    /// API keys: `[[keys]]` of the config file, `SURGE_KEYS`, then those of
    /// `keys_file`, appended at load.
    pub keys: Vec<crate::auth::KeyConfig>,
    pub keys_file: String,
    pub protected_mode: bool,
    pub allow_non_loopback_without_keys: bool,
    // --- browsers and the open web
    /// Hosts a request's `Host` may name (`name` or `name:port`); empty = any.
    pub http_allowed_hosts: Vec<String>,
    /// Origins a browser's feed handshake may come from; empty = the
    /// server's own, `"*"` = any.
    pub feed_allowed_origins: Vec<String>,
    /// Log lines clients cause, per kind, per second at most.
    pub log_client_errors_per_s: u32,
    // Slow clients, headers, connections per client, entities.
    pub http_body_timeout_ms: u64,
    pub http_body_rate_min_bytes_per_sec: u64,
    pub http_body_rate_grace_ms: u64,
    pub http_headers_max: usize,
    pub http_header_bytes_max: usize,
    pub http_connections_per_client_max: usize,
    pub skus_max: usize,
    pub warehouses_max: usize,
    // Abuse: rules and rate limits.
    pub require_customer_on_limited_skus: bool,
    pub rate_limit_key_per_sec: u32,
    pub rate_limit_key_burst: u32,
    pub rate_limit_customer_per_sec: u32,
    pub rate_limit_customer_burst: u32,
    pub rate_limit_tracked_max: usize,
    pub rate_limit_sweep_ms: u64,
    /// `[routing]`: the rule chains and routing's bounds.
    pub routing: RoutingConfig,
    /// `[lifecycle]`: payment before fulfilment, unpaid expiry, per channel.
    pub lifecycle: LifecycleConfig,
    /// `[incoming]`: incoming receipts' bounds.
    pub incoming: IncomingConfig,
    /// `[ledger]`: the stock ledger.
    pub ledger: LedgerConfig,
}

/// `[ledger]`: the stock ledger, derived by the checkpointer off the
/// request path (`wal/ledger.rs`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    /// Whether entries are derived at all.
    pub enabled: bool,
    /// Entries older than this many days are pruned.
    pub retention_days: u64,
    /// How long a read waits for the ledger to reach the log's durable
    /// tail before answering 503 `ledger_behind`.
    pub read_wait_ms: u64,
    /// Entries in one page at most.
    pub page_max: usize,
    /// Entries one page read looks at, at most (a warehouse filter skips
    /// the others).
    pub page_scan_max: usize,
    /// Past this many events behind the log, reads answer 503
    /// `ledger_behind` at once instead of waiting.
    pub lag_events_max: u64,
    /// Entries buffered before a batch is written in the middle of a read
    /// of the log.
    pub batch_entries_max: usize,
    /// How often a retention pass runs.
    pub prune_every_ms: u64,
    /// Entries one retention pass looks at, at most.
    pub prune_scan_max: usize,
}

impl LedgerConfig {
    /// What the follower needs.
    pub fn follower(&self) -> crate::wal::ledger::LedgerConfig {
        crate::wal::ledger::LedgerConfig {
            retention_ms: self.retention_days.saturating_mul(86_400_000),
            batch_entries_max: self.batch_entries_max,
            prune_every_ms: self.prune_every_ms,
            prune_scan_max: self.prune_scan_max,
        }
    }
}

/// `[incoming]`: how many incoming receipts a SKU keeps and lists.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncomingConfig {
    /// Open receipts per SKU at most.
    pub open_max: usize,
    /// Closed receipts a SKU remembers (readable); older ones are
    /// forgotten as new ones close.
    pub closed_kept_max: usize,
    /// Receipts in one page of `GET /v1/stock/incoming` at most.
    pub page_max: usize,
}

impl IncomingConfig {
    /// The bounds a SKU's decisions check.
    pub fn limits(&self, on_hand_max: u64) -> crate::core::sku::incoming::IncomingLimits {
        crate::core::sku::incoming::IncomingLimits {
            open_max: self.open_max,
            closed_kept_max: self.closed_kept_max,
            on_hand_max,
        }
    }
}

/// `[lifecycle]`: whether orders wait for payment before fulfilment and how
/// long they may stay unpaid, by default and per channel.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleConfig {
    pub payment_required: bool,
    pub unpaid_expiry_ms: u64,
    pub expiry_sweep_ms: u64,
    pub expiry_batch_max: usize,
    pub payments_per_order_max: usize,
    pub returns_per_order_max: usize,
    pub parcels_per_fulfillment_max: usize,
    pub fulfillments_per_order_max: usize,
    /// Settings of their own, by channel (`[lifecycle.channels.<name>]`).
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelLifecycleConfig>,
}

/// `[lifecycle.channels.<name>]`: one channel's settings; a key left out
/// is the section's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelLifecycleConfig {
    pub payment_required: Option<bool>,
    pub unpaid_expiry_ms: Option<u64>,
}

/// What a channel's orders are placed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelPolicy {
    pub payment_required: bool,
    /// 0: never.
    pub unpaid_expiry_ms: u64,
}

impl LifecycleConfig {
    /// The settings for orders of `channel`.
    pub fn policy(&self, channel: &str) -> ChannelPolicy {
        let own = self.channels.get(channel);
        ChannelPolicy {
            payment_required: own
                .and_then(|c| c.payment_required)
                .unwrap_or(self.payment_required),
            unpaid_expiry_ms: own
                .and_then(|c| c.unpaid_expiry_ms)
                .unwrap_or(self.unpaid_expiry_ms),
        }
    }
}

/// `[routing]`: the chain in force by default and per channel, and
/// routing's bounds. Chains set at run time (`PUT /v1/routing/rules`)
/// override these until deleted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// The default chain's rules, by name, in order.
    pub rules: Vec<String>,
    /// The default chain's split policy: `allow`, `forbid` or
    /// `max_shipments:N`.
    pub split: String,
    /// Chains of their own, by channel (`[routing.channels.<name>]`).
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelChainConfig>,
    pub replan_attempts_max: u32,
    pub reroute_on_disable: bool,
    pub trace_candidates_max: usize,
    pub warehouse_countries_max: usize,
    pub warehouse_channels_max: usize,
    pub shipping_cost_countries_max: usize,
}

/// `[routing.channels.<name>]`: one channel's chain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelChainConfig {
    pub rules: Vec<String>,
    /// `allow` when absent.
    #[serde(default = "split_allow")]
    pub split: String,
}

fn split_allow() -> String {
    "allow".into()
}

impl RoutingConfig {
    /// The configured chains, checked: every rule known and named once,
    /// every split policy valid, every channel name a valid channel id.
    pub fn rules(&self) -> Result<crate::core::routing::RoutingRules, String> {
        use crate::wire::routing::parse_chain;
        let default = parse_chain(&self.rules, &self.split).map_err(|e| format!("rules: {e}"))?;
        let mut channels = BTreeMap::new();
        for (name, c) in &self.channels {
            let id =
                crate::core::ChannelId::parse(name).map_err(|e| format!("channels.{name}: {e}"))?;
            let chain =
                parse_chain(&c.rules, &c.split).map_err(|e| format!("channels.{name}: {e}"))?;
            channels.insert(id, chain);
        }
        Ok(crate::core::routing::RoutingRules { default, channels })
    }
}

/// actix-http's own limits on a request head (`h1/decoder.rs`): it refuses
/// more header fields, or a longer head, at parser level with an empty 431.
pub const ACTIX_HEADERS_MAX: usize = 96;
/// Longest request-body deadline or grace period, in ms (one day).
pub const DEADLINE_MS_MAX: u64 = 86_400_000;

/// Largest `order_lines_max`.
pub const ORDER_LINES_MAX: usize = u16::MAX as usize;
pub const ACTIX_HEAD_BYTES_MAX: usize = 131_072;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {origin}: {message}")]
    Invalid { origin: String, message: String },
}

/// Command-line values; `None` leaves the lower layers' value.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
}

/// The value of environment variable `name` for `key`, whose current value
/// (from the defaults or the file) is `current`: read as that value's type.
fn env_value(
    name: &str,
    key: &str,
    raw: &str,
    current: Option<&toml::Value>,
) -> Result<toml::Value, ConfigError> {
    Ok(match current {
        Some(toml::Value::Integer(_)) => raw
            .trim()
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|e| invalid(name, format!("`{raw}`: {e}")))?,
        Some(toml::Value::Boolean(_)) => raw
            .trim()
            .parse::<bool>()
            .map(toml::Value::Boolean)
            .map_err(|e| invalid(name, format!("`{raw}`: {e}")))?,
        Some(toml::Value::Array(_)) => format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .filter(toml::Value::is_array)
            .ok_or_else(|| {
                invalid(
                    name,
                    "expected a TOML array, e.g. [\"a\", \"b\"] or [{ name = \"web\", sha256 = \"...\", scopes = [\"storefront\"] }]",
                )
            })?,
        Some(_) => toml::Value::String(raw.to_owned()),
        None => return Err(invalid(name, format!("unknown key `{key}`"))),
    })
}

fn invalid(origin: impl Into<String>, message: impl ToString) -> ConfigError {
    ConfigError::Invalid {
        origin: origin.into(),
        message: message.to_string(),
    }
}

fn parse_table(text: &str, origin: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>().map_err(|e| invalid(origin, e))
}

impl Config {
    /// The embedded defaults alone.
    pub fn default_config() -> Self {
        Self::load(None, &HashMap::new(), &Overrides::default())
            .unwrap_or_else(|e| panic!("embedded default config is invalid: {e}"))
    }

    /// Loads every layer. `env` is passed in (not read here) so precedence is
    /// testable; `main` passes `std::env::vars()`.
    pub fn load(
        file: Option<&Path>,
        env: &HashMap<String, String>,
        overrides: &Overrides,
    ) -> Result<Self, ConfigError> {
        let mut table = parse_table(DEFAULT_TOML, "config/default.toml")?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            let origin = path.display().to_string();
            for (k, v) in parse_table(&text, &origin)? {
                match (table.get_mut(&k), v) {
                    (None, _) => return Err(invalid(origin, format!("unknown key `{k}`"))),
                    // A section (`[routing]`) merges key by key: a file
                    // names only what it changes.
                    (Some(toml::Value::Table(section)), toml::Value::Table(v)) => {
                        section.extend(v);
                    }
                    (Some(_), v) => {
                        table.insert(k, v);
                    }
                }
            }
        }
        let mut env_keys: Vec<&String> = env.keys().filter(|k| k.starts_with("SURGE_")).collect();
        env_keys.sort();
        for name in env_keys {
            let key = name["SURGE_".len()..].to_ascii_lowercase();
            let raw = &env[name];
            // `SURGE_<SECTION>__<KEY>` sets one key of a section
            // (`SURGE_ROUTING__TRACE_CANDIDATES_MAX` is `[routing]`'s
            // `trace_candidates_max`).
            let in_section = key.split_once("__").filter(|_| !table.contains_key(&key));
            if let Some((section, key)) = in_section {
                let refused = match table.get_mut(section) {
                    Some(toml::Value::Table(section)) => match section.get(key) {
                        Some(toml::Value::Table(_)) => {
                            Some(format!("`{key}` is a table: set it in a file (--config)"))
                        }
                        current => {
                            let value = env_value(name, key, raw, current)?;
                            section.insert(key.to_owned(), value);
                            None
                        }
                    },
                    Some(_) => Some(format!("`{section}` is not a section")),
                    None => Some(format!("unknown section `{section}`")),
                };
                match refused {
                    Some(why) => return Err(invalid(name.as_str(), why)),
                    None => continue,
                }
            }
            if let Some(toml::Value::Table(_)) = table.get(&key) {
                let hint = format!("`{key}` is a section: set its keys as {name}__<KEY>");
                return Err(invalid(name.as_str(), hint));
            }
            let value = env_value(name, &key, raw, table.get(&key))?;
            table.insert(key, value);
        }
        if let Some(listen) = &overrides.listen {
            table.insert("listen".into(), toml::Value::String(listen.clone()));
        }
        if let Some(dir) = &overrides.data_dir {
            table.insert(
                "data_dir".into(),
                toml::Value::String(dir.display().to_string()),
            );
        }
        let mut config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| invalid("merged", e))?;
        config.load_keys_file()?;
        config.validate()?;
        Ok(config)
    }

    /// Appends the keys of `keys_file` (a TOML file of `[[keys]]` tables
    /// and nothing else), so keys can live apart from the other settings.
    fn load_keys_file(&mut self) -> Result<(), ConfigError> {
        if self.keys_file.is_empty() {
            return Ok(());
        }
        let path = PathBuf::from(&self.keys_file);
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let origin = path.display().to_string();
        let mut table = parse_table(&text, &origin)?;
        if let Some(k) = table.keys().find(|k| *k != "keys") {
            return Err(invalid(
                origin,
                format!("unknown key `{k}` (only [[keys]] here)"),
            ));
        }
        if let Some(keys) = table.remove("keys") {
            let keys: Vec<crate::auth::KeyConfig> = keys
                .try_into()
                .map_err(|e: toml::de::Error| invalid(&origin, e))?;
            self.keys.extend(keys);
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("http_connections_max", self.http_connections_max as u64),
            ("http_body_bytes_max", self.http_body_bytes_max as u64),
            ("sku_mailbox_capacity", self.sku_mailbox_capacity as u64),
            (
                "warehouse_mailbox_capacity",
                self.warehouse_mailbox_capacity as u64,
            ),
            ("order_mailbox_capacity", self.order_mailbox_capacity as u64),
            (
                "retention_sweep_batch_max",
                self.retention_sweep_batch_max as u64,
            ),
            ("wal_channel_capacity", self.wal_channel_capacity as u64),
            ("wal_batch_entries_max", self.wal_batch_entries_max as u64),
            ("wal_apply_queue_groups", self.wal_apply_queue_groups as u64),
            ("wal_record_bytes_max", self.wal_record_bytes_max as u64),
            ("wal_sync_timeout_ms", self.wal_sync_timeout_ms),
            ("shutdown_timeout_ms", self.shutdown_timeout_ms),
            ("snapshot_retry_ms_min", self.snapshot_retry_ms_min),
            ("snapshot_every_events", self.snapshot_every_events),
            ("snapshot_every_ms", self.snapshot_every_ms),
            ("snapshot_chunk_entries", self.snapshot_chunk_entries as u64),
            (
                "snapshot_chunk_bytes_max",
                self.snapshot_chunk_bytes_max as u64,
            ),
            ("hold_ttl_ms_default", self.hold_ttl_ms_default),
            ("hold_ttl_ms_max", self.hold_ttl_ms_max),
            ("hold_expiry_batch_max", self.hold_expiry_batch_max as u64),
            ("qty_max", self.qty_max),
            ("on_hand_max", self.on_hand_max),
            ("order_lines_max", self.order_lines_max as u64),
            ("orders_page_max", self.orders_page_max as u64),
            ("orders_page_default", self.orders_page_default as u64),
            ("orders_scan_max", self.orders_scan_max as u64),
            ("reservation_batch_max", self.reservation_batch_max as u64),
            ("feed_window_events", self.feed_window_events as u64),
            (
                "feed_client_lag_events_max",
                self.feed_client_lag_events_max as u64,
            ),
            ("feed_send_timeout_ms", self.feed_send_timeout_ms),
            ("feed_connections_max", self.feed_connections_max as u64),
            ("feed_topics_max", self.feed_topics_max as u64),
            ("feed_ping_interval_ms", self.feed_ping_interval_ms),
            ("feed_idle_timeout_ms", self.feed_idle_timeout_ms),
            ("feed_inbound_bytes_max", self.feed_inbound_bytes_max as u64),
            (
                "feed_snapshot_items_max",
                self.feed_snapshot_items_max as u64,
            ),
            ("text_len_max", self.text_len_max as u64),
            ("http_body_timeout_ms", self.http_body_timeout_ms),
            ("http_headers_max", self.http_headers_max as u64),
            ("http_header_bytes_max", self.http_header_bytes_max as u64),
            (
                "http_connections_per_client_max",
                self.http_connections_per_client_max as u64,
            ),
            ("skus_max", self.skus_max as u64),
            ("warehouses_max", self.warehouses_max as u64),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(invalid(key, "must be greater than 0"));
            }
        }
        if self.hold_ttl_ms_default > self.hold_ttl_ms_max {
            return Err(invalid(
                "hold_ttl_ms_default",
                "must not exceed hold_ttl_ms_max",
            ));
        }
        if self.closed_order_retention_ms < self.idempotency_ttl_ms {
            return Err(invalid(
                "closed_order_retention_ms",
                "must be at least idempotency_ttl_ms, so a retried key still finds its order",
            ));
        }
        if self.retention_sweep_ms == 0 {
            return Err(invalid("retention_sweep_ms", "must be positive"));
        }
        if self.closed_hold_retention_ms < self.idempotency_ttl_ms {
            return Err(invalid(
                "closed_hold_retention_ms",
                "must be at least idempotency_ttl_ms, so a retried key still finds its hold",
            ));
        }
        if self.snapshot_retry_ms_max < self.snapshot_retry_ms_min {
            return Err(invalid(
                "snapshot_retry_ms_max",
                "must be at least snapshot_retry_ms_min",
            ));
        }
        if self.snapshot_chunk_bytes_max > SNAPSHOT_CHUNK_BYTES_MAX {
            return Err(invalid(
                "snapshot_chunk_bytes_max",
                format!(
                    "must be at most {SNAPSHOT_CHUNK_BYTES_MAX}: a chunk is built in memory whole"
                ),
            ));
        }
        if self.on_hand_max > i64::MAX as u64 {
            return Err(invalid("on_hand_max", "must fit in a signed 64-bit delta"));
        }
        if self.http_headers_max > ACTIX_HEADERS_MAX {
            return Err(invalid(
                "http_headers_max",
                format!("must be at most {ACTIX_HEADERS_MAX}: actix-http refuses more on its own"),
            ));
        }
        if self.http_header_bytes_max > ACTIX_HEAD_BYTES_MAX {
            return Err(invalid(
                "http_header_bytes_max",
                format!("must be at most {ACTIX_HEAD_BYTES_MAX}: actix-http refuses a longer head on its own"),
            ));
        }
        crate::auth::Keyring::from_config(&self.keys).map_err(|e| invalid("keys", e))?;
        crate::api::browser::validate_hosts(&self.http_allowed_hosts)
            .map_err(|e| invalid("http_allowed_hosts", e))?;
        crate::api::browser::validate_origins(&self.feed_allowed_origins)
            .map_err(|e| invalid("feed_allowed_origins", e))?;
        // With keys, a browser resends remembered dashboard credentials
        // (HTTP Basic) on a cross-site WebSocket handshake: only the Origin
        // check keeps another site's page from reading the feed.
        if !self.keys.is_empty() && self.feed_allowed_origins.iter().any(|o| o == "*") {
            return Err(invalid(
                "feed_allowed_origins",
                "\"*\" is refused while API keys are configured: any page the operator \
                 visits could open the feed with the dashboard's remembered credentials; \
                 list the origins instead",
            ));
        }
        // Deadlines are added to the current instant for every request.
        for (key, value) in [
            ("http_body_timeout_ms", self.http_body_timeout_ms),
            ("http_body_rate_grace_ms", self.http_body_rate_grace_ms),
        ] {
            if value > DEADLINE_MS_MAX {
                return Err(invalid(
                    key,
                    format!("must be at most {DEADLINE_MS_MAX} (one day)"),
                ));
            }
        }
        if self.orders_page_default > self.orders_page_max {
            return Err(invalid(
                "orders_page_default",
                "must be at most orders_page_max",
            ));
        }
        // Routing indexes an order's lines with 16 bits.
        if self.order_lines_max > ORDER_LINES_MAX {
            return Err(invalid(
                "order_lines_max",
                format!("must be at most {ORDER_LINES_MAX}"),
            ));
        }
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                "listen",
                format!("`{}` is not an address", self.listen),
            ));
        }
        self.validate_rate_limits()?;
        self.validate_routing()?;
        self.validate_lifecycle()?;
        self.validate_incoming()?;
        self.validate_ledger()?;
        Ok(())
    }

    /// `[ledger]`: a retention of 1 to 36500 days, a read wait of at most a
    /// minute, every count at least 1.
    fn validate_ledger(&self) -> Result<(), ConfigError> {
        let l = &self.ledger;
        if !(1..=36_500).contains(&l.retention_days) {
            return Err(invalid("ledger.retention_days", "must be 1 to 36500"));
        }
        if l.read_wait_ms > 60_000 {
            return Err(invalid("ledger.read_wait_ms", "must be at most 60000"));
        }
        for (name, v) in [
            ("ledger.page_max", l.page_max),
            ("ledger.batch_entries_max", l.batch_entries_max),
            ("ledger.prune_scan_max", l.prune_scan_max),
        ] {
            if v == 0 {
                return Err(invalid(name, "must be at least 1"));
            }
        }
        if l.page_scan_max < l.page_max {
            return Err(invalid(
                "ledger.page_scan_max",
                "must be at least ledger.page_max",
            ));
        }
        if l.lag_events_max == 0 || l.prune_every_ms == 0 {
            return Err(invalid(
                "ledger.lag_events_max",
                "lag_events_max and prune_every_ms must be at least 1",
            ));
        }
        Ok(())
    }

    /// `[incoming]`: at least one open receipt per SKU (at most 100000, so
    /// a SKU's receipts stay a bounded part of its snapshot) and a page of
    /// at least one.
    fn validate_incoming(&self) -> Result<(), ConfigError> {
        let i = &self.incoming;
        if !(1..=100_000).contains(&i.open_max) {
            return Err(invalid("incoming.open_max", "must be 1 to 100000"));
        }
        if i.closed_kept_max > 100_000 {
            return Err(invalid(
                "incoming.closed_kept_max",
                "must be at most 100000",
            ));
        }
        if i.page_max == 0 {
            return Err(invalid("incoming.page_max", "must be at least 1"));
        }
        Ok(())
    }

    /// `[lifecycle]`: channel names valid, the sweep's period and batch at
    /// least 1, expiries within a year.
    fn validate_lifecycle(&self) -> Result<(), ConfigError> {
        let l = &self.lifecycle;
        if l.expiry_sweep_ms == 0 {
            return Err(invalid(
                "lifecycle.expiry_sweep_ms",
                "must be greater than 0",
            ));
        }
        for (key, v) in [
            ("lifecycle.expiry_batch_max", l.expiry_batch_max),
            ("lifecycle.payments_per_order_max", l.payments_per_order_max),
            ("lifecycle.returns_per_order_max", l.returns_per_order_max),
            (
                "lifecycle.parcels_per_fulfillment_max",
                l.parcels_per_fulfillment_max,
            ),
            (
                "lifecycle.fulfillments_per_order_max",
                l.fulfillments_per_order_max,
            ),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be greater than 0"));
            }
        }
        let year = 366 * DEADLINE_MS_MAX;
        let mut expiries = vec![("lifecycle.unpaid_expiry_ms".to_owned(), l.unpaid_expiry_ms)];
        for (name, c) in &l.channels {
            crate::core::ChannelId::parse(name)
                .map_err(|e| invalid(format!("lifecycle.channels.{name}"), e.to_string()))?;
            if let Some(ms) = c.unpaid_expiry_ms {
                expiries.push((format!("lifecycle.channels.{name}.unpaid_expiry_ms"), ms));
            }
        }
        for (key, ms) in expiries {
            if ms > year {
                return Err(invalid(key, format!("at most {year} (a year)")));
            }
        }
        Ok(())
    }

    /// `[routing]`: chains valid (`Chain::check`), bounds at least 1.
    fn validate_routing(&self) -> Result<(), ConfigError> {
        let r = &self.routing;
        r.rules().map_err(|e| invalid("routing", e))?;
        for (key, v) in [
            ("routing.trace_candidates_max", r.trace_candidates_max),
            ("routing.warehouse_countries_max", r.warehouse_countries_max),
            ("routing.warehouse_channels_max", r.warehouse_channels_max),
            (
                "routing.shipping_cost_countries_max",
                r.shipping_cost_countries_max,
            ),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be greater than 0"));
            }
        }
        Ok(())
    }

    /// Rate limits: a bucket of 0 would refuse everything (its rate's 0
    /// means off instead).
    fn validate_rate_limits(&self) -> Result<(), ConfigError> {
        let pairs = [
            (
                "rate_limit_key_burst",
                self.rate_limit_key_per_sec,
                self.rate_limit_key_burst,
            ),
            (
                "rate_limit_customer_burst",
                self.rate_limit_customer_per_sec,
                self.rate_limit_customer_burst,
            ),
        ];
        for (key, rate, burst) in pairs {
            if rate > 0 && burst == 0 {
                return Err(invalid(key, "must be at least 1 while its rate is on"));
            }
        }
        if self.rate_limit_tracked_max == 0 {
            return Err(invalid("rate_limit_tracked_max", "must be greater than 0"));
        }
        if self.rate_limit_sweep_ms == 0 {
            return Err(invalid("rate_limit_sweep_ms", "must be greater than 0"));
        }
        Ok(())
    }

    pub fn http_workers(&self) -> usize {
        if self.http_workers == 0 {
            cores()
        } else {
            self.http_workers
        }
    }

    /// Order actors: `order_shards`, or one per actor thread when 0.
    pub fn order_shards(&self) -> usize {
        if self.order_shards == 0 {
            self.actor_threads()
        } else {
            self.order_shards
        }
    }

    /// The retention periods of closed holds, closed orders and
    /// idempotency keys.
    pub fn retention(&self) -> crate::core::Retention {
        crate::core::Retention {
            closed_hold_ms: self.closed_hold_retention_ms,
            closed_order_ms: self.closed_order_retention_ms,
            idempotency_ms: self.idempotency_ttl_ms,
        }
    }

    /// Actor threads: `actor_threads`, or one per four cores (at least
    /// one) when 0. SKU actors live on the HTTP workers; these threads run
    /// warehouse and order actors, and SKU actors only while their home
    /// worker is not running.
    pub fn actor_threads(&self) -> usize {
        if self.actor_threads == 0 {
            (cores() / 4).max(1)
        } else {
            self.actor_threads
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_match_the_documented_quick_start() {
        let c = Config::default_config();
        assert_eq!(c.listen, "127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
    }

    #[test]
    fn precedence_is_default_file_env_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("surge.toml");
        std::fs::write(
            &file,
            "qty_max = 7\nlisten = \"127.0.0.1:9000\"\norder_lines_max = 3\n",
        )
        .unwrap();
        let env: HashMap<String, String> = [
            ("SURGE_QTY_MAX".to_string(), "9".to_string()),
            ("SURGE_LISTEN".to_string(), "127.0.0.1:9001".to_string()),
            ("OTHER".to_string(), "x".to_string()),
        ]
        .into();
        let flags = Overrides {
            listen: Some("127.0.0.1:9002".into()),
            data_dir: None,
        };
        let c = Config::load(Some(&file), &env, &flags).unwrap();
        assert_eq!(c.order_lines_max, 3, "file beats default");
        assert_eq!(c.qty_max, 9, "env beats file");
        assert_eq!(c.listen, "127.0.0.1:9002", "flag beats env");
    }

    #[test]
    fn body_deadlines_are_bounded_and_any_origin_needs_no_keys() {
        let day = DEADLINE_MS_MAX.to_string();
        let past = (DEADLINE_MS_MAX + 1).to_string();
        for key in [
            "SURGE_HTTP_BODY_TIMEOUT_MS",
            "SURGE_HTTP_BODY_RATE_GRACE_MS",
        ] {
            assert!(load(&[(key, &day)]).is_ok(), "{key} at the edge");
            assert!(load(&[(key, &past)]).is_err(), "{key} past the edge");
        }
        let most = ORDER_LINES_MAX.to_string();
        let over = (ORDER_LINES_MAX + 1).to_string();
        assert!(load(&[("SURGE_ORDER_LINES_MAX", &most)]).is_ok());
        assert!(load(&[("SURGE_ORDER_LINES_MAX", &over)]).is_err());
        let any = ("SURGE_FEED_ALLOWED_ORIGINS", r#"["*"]"#);
        assert!(load(&[any]).is_ok(), "no keys: \"*\" is allowed");
        let key = (
            "SURGE_KEYS",
            r#"[{ name = "a", sha256 = "0000000000000000000000000000000000000000000000000000000000000000", scopes = ["admin"] }]"#,
        );
        assert!(load(&[key]).is_ok());
        assert!(load(&[key, any]).is_err(), "keys and \"*\" are refused");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let env = |k: &str, v: &str| -> HashMap<String, String> {
            [(k.to_string(), v.to_string())].into()
        };
        let none = Overrides::default();
        assert!(Config::load(None, &env("SURGE_NOPE", "1"), &none).is_err());
        assert!(Config::load(None, &env("SURGE_QTY_MAX", "lots"), &none).is_err());
        assert!(Config::load(None, &env("SURGE_QTY_MAX", "0"), &none).is_err());
        assert!(Config::load(
            None,
            &env("SURGE_HOLD_TTL_MS_DEFAULT", "999999999999"),
            &none
        )
        .is_err());
        // Header limits at most actix-http's own.
        assert!(Config::load(None, &env("SURGE_HTTP_HEADERS_MAX", "96"), &none).is_ok());
        assert!(Config::load(None, &env("SURGE_HTTP_HEADERS_MAX", "97"), &none).is_err());
        assert!(Config::load(None, &env("SURGE_HTTP_HEADER_BYTES_MAX", "131072"), &none).is_ok());
        assert!(Config::load(None, &env("SURGE_HTTP_HEADER_BYTES_MAX", "131073"), &none).is_err());
        assert!(Config::load(None, &env("SURGE_SKUS_MAX", "0"), &none).is_err());
        // A page's default size at most its largest.
        assert!(with_file("orders_page_max = 7\norders_page_default = 7\n").is_ok());
        assert!(with_file("orders_page_max = 7\norders_page_default = 8\n").is_err());
        assert!(Config::load(None, &env("SURGE_ORDERS_SCAN_MAX", "0"), &none).is_err());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "qyt_max = 7\n").unwrap();
        assert!(Config::load(Some(&file), &HashMap::new(), &none).is_err());
    }

    #[test]
    fn a_section_key_comes_from_the_environment_with_a_double_underscore() {
        let c = load(&[("SURGE_ROUTING__TRACE_CANDIDATES_MAX", "3")]).unwrap();
        assert_eq!(c.routing.trace_candidates_max, 3);
        // The other keys of the section keep their defaults.
        assert!(c.routing.reroute_on_disable);
        let c = load(&[("SURGE_ROUTING__REROUTE_ON_DISABLE", "false")]).unwrap();
        assert!(!c.routing.reroute_on_disable);
        // Read and checked like any other value.
        assert!(load(&[("SURGE_ROUTING__TRACE_CANDIDATES_MAX", "0")]).is_err());
        assert!(load(&[("SURGE_ROUTING__TRACE_CANDIDATES_MAX", "many")]).is_err());
        assert!(
            load(&[("SURGE_ROUTING__NOPE", "1")]).is_err(),
            "unknown key"
        );
        let err = |pairs: &[(&str, &str)]| load(pairs).unwrap_err().to_string();
        assert!(err(&[("SURGE_NOPE__TRACE_CANDIDATES_MAX", "1")]).contains("unknown section"));
        assert!(err(&[("SURGE_QTY_MAX__X", "1")]).contains("`qty_max` is not a section"));
        let c = load(&[("SURGE_ROUTING__RULES", r#"["enabled", "priority"]"#)]).unwrap();
        assert_eq!(c.routing.rules, vec!["enabled", "priority"]);
        let whole = load(&[("SURGE_ROUTING", "x")]).unwrap_err().to_string();
        assert!(whole.contains("SURGE_ROUTING__<KEY>"), "{whole}");
    }

    /// The defaults with these environment variables.
    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load(None, &env, &Overrides::default())
    }

    fn with_file(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("surge.toml");
        std::fs::write(&file, text).unwrap();
        Config::load(Some(&file), &HashMap::new(), &Overrides::default())
    }

    #[test]
    fn routing_defaults_to_the_documented_chain() {
        use crate::core::routing::{Chain, RoutingRules};
        let c = Config::default_config();
        assert_eq!(
            c.routing.rules(),
            Ok(RoutingRules {
                default: Chain::default_chain(),
                channels: BTreeMap::new(),
            })
        );
        assert_eq!(c.routing.replan_attempts_max, 3);
        assert!(c.routing.reroute_on_disable);
        assert_eq!(c.routing.trace_candidates_max, 5);
    }

    #[test]
    fn routing_chains_merge_from_a_file_and_are_checked() {
        use crate::core::routing::{Rule, SplitPolicy};
        let c = with_file(
            "[routing]\nsplit = \"max_shipments:2\"\n\
             [routing.channels.wholesale]\nrules = [\"enabled\", \"lowest_cost\"]\nsplit = \"forbid\"\n",
        )
        .unwrap();
        let rules = c.routing.rules().unwrap();
        // Only `split` changed: the rest of the section is the default's.
        assert_eq!(rules.default.rules.len(), 6);
        assert_eq!(rules.default.split, SplitPolicy::MaxShipments(2));
        let w = &rules.channels[&crate::core::ChannelId::parse("wholesale").unwrap()];
        assert_eq!(w.rules, vec![Rule::Enabled, Rule::LowestCost]);
        assert_eq!(w.split, SplitPolicy::Forbid);
        for bad in [
            "[routing]\nrules = [\"nearest\", \"closest\"]\n",
            "[routing]\nrules = [\"nearest\", \"nearest\"]\n",
            "[routing]\nsplit = \"max_shipments:0\"\n",
            "[routing]\nsplit = \"sometimes\"\n",
            "[routing]\nspilt = \"allow\"\n",
            "[routing]\ntrace_candidates_max = 0\n",
            "[routing]\nwarehouse_countries_max = 0\n",
            "[routing.channels.\"bad channel\"]\nrules = []\n",
            "[routing.channels.web]\nrules = [\"capacity\", \"capacity:rank\"]\n",
        ] {
            assert!(with_file(bad).is_err(), "{bad}");
        }
        assert!(with_file("[routing]\ntrace_candidates_max = 1\n").is_ok());
    }

    #[test]
    fn lifecycle_settings_per_channel_fall_back_to_the_section_and_are_bounded() {
        let c = with_file(
            "[lifecycle]\nunpaid_expiry_ms = 600000\n\
             [lifecycle.channels.marketplace]\npayment_required = true\n",
        )
        .unwrap();
        let m = c.lifecycle.policy("marketplace");
        assert_eq!((m.payment_required, m.unpaid_expiry_ms), (true, 600_000));
        let web = c.lifecycle.policy("web");
        assert_eq!(
            (web.payment_required, web.unpaid_expiry_ms),
            (false, 600_000)
        );
        let year = 366 * DEADLINE_MS_MAX;
        for bad in [
            "[lifecycle]\nexpiry_sweep_ms = 0\n".to_owned(),
            "[lifecycle]\nexpiry_batch_max = 0\n".to_owned(),
            "[lifecycle]\npayments_per_order_max = 0\n".to_owned(),
            "[lifecycle]\nreturns_per_order_max = 0\n".to_owned(),
            "[lifecycle]\nparcels_per_fulfillment_max = 0\n".to_owned(),
            "[lifecycle]\nfulfillments_per_order_max = 0\n".to_owned(),
            format!("[lifecycle]\nunpaid_expiry_ms = {}\n", year + 1),
            format!(
                "[lifecycle.channels.web]\nunpaid_expiry_ms = {}\n",
                year + 1
            ),
            "[lifecycle.channels.\"bad channel\"]\npayment_required = true\n".to_owned(),
            "[lifecycle.channels.web]\npayment_requried = true\n".to_owned(),
        ] {
            assert!(with_file(&bad).is_err(), "{bad}");
        }
        for edge in [
            format!("[lifecycle]\nunpaid_expiry_ms = {year}\n"),
            "[lifecycle]\nexpiry_sweep_ms = 1\npayments_per_order_max = 1\n".to_owned(),
        ] {
            assert!(with_file(&edge).is_ok(), "{edge}");
        }
    }

    #[test]
    fn incoming_bounds_are_checked_at_their_edges() {
        let c = Config::default_config();
        assert_eq!(
            (
                c.incoming.open_max,
                c.incoming.closed_kept_max,
                c.incoming.page_max
            ),
            (1000, 100, 200)
        );
        for bad in [
            "[incoming]\nopen_max = 0\n",
            "[incoming]\nopen_max = 100001\n",
            "[incoming]\nclosed_kept_max = 100001\n",
            "[incoming]\npage_max = 0\n",
            "[incoming]\nopen_maxx = 1\n",
        ] {
            assert!(with_file(bad).is_err(), "{bad}");
        }
        for edge in [
            "[incoming]\nopen_max = 1\nclosed_kept_max = 0\npage_max = 1\n",
            "[incoming]\nopen_max = 100000\nclosed_kept_max = 100000\n",
        ] {
            assert!(with_file(edge).is_ok(), "{edge}");
        }
    }

    #[test]
    fn ledger_bounds_are_checked_at_their_edges() {
        let c = Config::default_config();
        assert!(c.ledger.enabled);
        assert_eq!(c.ledger.retention_days, 400);
        assert_eq!(c.ledger.follower().retention_ms, 400 * 86_400_000);
        for bad in [
            "[ledger]\nretention_days = 0\n",
            "[ledger]\nretention_days = 36501\n",
            "[ledger]\nread_wait_ms = 60001\n",
            "[ledger]\npage_max = 0\n",
            "[ledger]\npage_max = 10\npage_scan_max = 9\n",
            "[ledger]\nlag_events_max = 0\n",
            "[ledger]\nbatch_entries_max = 0\n",
            "[ledger]\nprune_every_ms = 0\n",
            "[ledger]\nprune_scan_max = 0\n",
            "[ledger]\nenabledd = true\n",
        ] {
            assert!(with_file(bad).is_err(), "{bad}");
        }
        for edge in [
            "[ledger]\nretention_days = 1\nread_wait_ms = 0\npage_max = 1\npage_scan_max = 1\n",
            "[ledger]\nretention_days = 36500\nread_wait_ms = 60000\nlag_events_max = 1\n",
            "[ledger]\nenabled = false\nbatch_entries_max = 1\nprune_every_ms = 1\nprune_scan_max = 1\n",
        ] {
            assert!(with_file(edge).is_ok(), "{edge}");
        }
    }
}
