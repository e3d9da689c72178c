//! API keys and their scopes, without HTTP: what a key may do, how keys are
//! configured (as SHA-256 hashes, never in clear), how a presented key is
//! found (in constant time over the configured hashes) and how a new key is
//! made. `api::auth` maps routes to scopes and answers 401/403.
//!
//! A key is 256 random bits, so an unsalted SHA-256 of it is enough: there
//! is nothing to guess from the hash that is cheaper than guessing the key.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::fmt;

/// Prefix of every key `surge keys new` makes, so a leaked one is
/// recognisable (secret scanners, logs).
pub const KEY_PREFIX: &str = "surge_";

/// Random bytes in a new key.
const KEY_RANDOM_BYTES: usize = 32;

/// One configured key: `[[keys]]` in a config file.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Who holds the key (shown in logs instead of the key).
    pub name: String,
    /// Lower-case hex SHA-256 of the key.
    pub sha256: String,
    /// `admin`, `storefront`, `warehouse:<id>`, `feed`, `feed:<topic
    /// prefix>`, `read`.
    pub scopes: Vec<String>,
}

impl KeyConfig {
    /// The lines to paste into a config file.
    pub fn to_toml(&self) -> String {
        let scopes: Vec<String> = self.scopes.iter().map(|s| quote(s)).collect();
        format!(
            "[[keys]]\nname = {}\nsha256 = {}\nscopes = [{}]\n",
            quote(&self.name),
            quote(&self.sha256),
            scopes.join(", ")
        )
    }

    /// The same key as a TOML inline table (for `SURGE_KEYS`).
    pub fn to_inline_toml(&self) -> String {
        let scopes: Vec<String> = self.scopes.iter().map(|s| quote(s)).collect();
        format!(
            "{{ name = {}, sha256 = {}, scopes = [{}] }}",
            quote(&self.name),
            quote(&self.sha256),
            scopes.join(", ")
        )
    }
}

/// A TOML string literal.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// What a key may do. `admin` may do everything; the others are listed in
/// `api::auth::ROUTES` per route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Admin,
    /// Reservations, placing and cancelling orders, reading stock, and the
    /// holds and orders it created (`app::Caller`).
    Storefront,
    /// One warehouse's stock adjustments and its own record.
    Warehouse(String),
    /// The live feed; `Some(prefix)` only topics whose name starts with it.
    Feed(Option<String>),
    /// Every GET but the feed's WebSocket.
    Read,
}

impl Scope {
    pub fn parse(s: &str) -> Result<Scope, String> {
        match s {
            "admin" => Ok(Scope::Admin),
            "storefront" => Ok(Scope::Storefront),
            "feed" => Ok(Scope::Feed(None)),
            "read" => Ok(Scope::Read),
            _ => {
                if let Some(id) = s.strip_prefix("warehouse:") {
                    crate::core::WarehouseId::parse(id).map_err(|e| format!("scope `{s}`: {e}"))?;
                    Ok(Scope::Warehouse(id.to_owned()))
                } else if let Some(prefix) = s.strip_prefix("feed:") {
                    if prefix.is_empty() {
                        return Err(format!("scope `{s}`: give a topic prefix, or use `feed`"));
                    }
                    Ok(Scope::Feed(Some(prefix.to_owned())))
                } else {
                    Err(format!(
                        "unknown scope `{s}` (admin, storefront, warehouse:<id>, feed, feed:<topic prefix>, read)"
                    ))
                }
            }
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Admin => f.write_str("admin"),
            Scope::Storefront => f.write_str("storefront"),
            Scope::Warehouse(id) => write!(f, "warehouse:{id}"),
            Scope::Feed(None) => f.write_str("feed"),
            Scope::Feed(Some(p)) => write!(f, "feed:{p}"),
            Scope::Read => f.write_str("read"),
        }
    }
}

/// A configured key, parsed.
#[derive(Debug, Clone)]
pub struct Key {
    pub name: String,
    hash: [u8; 32],
    pub scopes: Vec<Scope>,
}

impl Key {
    pub fn has(&self, scope: &Scope) -> bool {
        self.scopes.contains(scope)
    }

    pub fn is_admin(&self) -> bool {
        self.has(&Scope::Admin)
    }

    /// The warehouses of its `warehouse:<id>` scopes.
    pub fn warehouses(&self) -> impl Iterator<Item = &str> {
        self.scopes.iter().filter_map(|s| match s {
            Scope::Warehouse(id) => Some(id.as_str()),
            _ => None,
        })
    }

    pub fn has_warehouse(&self) -> bool {
        self.warehouses().next().is_some()
    }

    pub fn has_feed(&self) -> bool {
        self.scopes.iter().any(|s| matches!(s, Scope::Feed(_)))
    }

    /// The topic prefixes it may subscribe to; `None` when any topic.
    pub fn feed_prefixes(&self) -> Option<Vec<String>> {
        let mut prefixes = Vec::new();
        for s in &self.scopes {
            match s {
                Scope::Admin | Scope::Feed(None) => return None,
                Scope::Feed(Some(p)) => prefixes.push(p.clone()),
                _ => {}
            }
        }
        Some(prefixes)
    }
}

/// Every configured key.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: Vec<Key>,
}

impl Keyring {
    /// Parses and checks the configured keys: names and hashes unique,
    /// hashes 64 hex digits, at least one known scope each.
    pub fn from_config(configs: &[KeyConfig]) -> Result<Keyring, String> {
        let mut keys: Vec<Key> = Vec::with_capacity(configs.len());
        for (i, c) in configs.iter().enumerate() {
            let at = format!("keys[{i}]");
            if c.name.trim().is_empty() || c.name.len() > 64 {
                return Err(format!("{at}: name must be 1 to 64 characters"));
            }
            let hash = parse_hash(&c.sha256).ok_or_else(|| {
                format!(
                    "{at} ({}): sha256 must be 64 hex digits (the key's SHA-256, as `surge keys new` prints it)",
                    c.name
                )
            })?;
            if c.scopes.is_empty() {
                return Err(format!("{at} ({}): give at least one scope", c.name));
            }
            let scopes = c
                .scopes
                .iter()
                .map(|s| Scope::parse(s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{at} ({}): {e}", c.name))?;
            if keys.iter().any(|k| k.name == c.name) {
                return Err(format!("{at}: the name `{}` is used twice", c.name));
            }
            if keys.iter().any(|k| k.hash == hash) {
                return Err(format!(
                    "{at} ({}): the same key is configured twice",
                    c.name
                ));
            }
            keys.push(Key {
                name: c.name.clone(),
                hash,
                scopes,
            });
        }
        Ok(Keyring { keys })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The key `presented` is, if configured. Compares its hash with every
    /// configured hash in constant time and never stops early, so the time
    /// taken says nothing about which key matched or how closely.
    pub fn find(&self, presented: &str) -> Option<&Key> {
        self.find_index(presented).map(|i| &self.keys[i])
    }

    /// `find`, as an index for [`Keyring::get`].
    pub fn find_index(&self, presented: &str) -> Option<usize> {
        let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (i, key) in self.keys.iter().enumerate() {
            if constant_time_eq(&key.hash, &hash) {
                found = Some(i);
            }
        }
        found
    }

    pub fn get(&self, index: usize) -> Option<&Key> {
        self.keys.get(index)
    }
}

/// Equal, in a time that depends only on the length.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u8;
    for i in 0..32 {
        diff |= a[i] ^ b[i];
    }
    std::hint::black_box(diff) == 0
}

fn parse_hash(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

fn to_hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The lower-case hex SHA-256 of a key, as configured.
pub fn hash_hex(key: &str) -> String {
    to_hex(&Sha256::digest(key.as_bytes()))
}

/// A new key (`surge_` and 256 random bits in hex) and its config entry.
pub fn new_key(name: &str, scopes: &[String]) -> Result<(String, KeyConfig), String> {
    let mut random = [0u8; KEY_RANDOM_BYTES];
    getrandom::fill(&mut random).map_err(|e| format!("no randomness from the OS: {e}"))?;
    let key = format!("{KEY_PREFIX}{}", to_hex(&random));
    let config = KeyConfig {
        name: name.to_owned(),
        sha256: hash_hex(&key),
        scopes: scopes.to_vec(),
    };
    // Checks the name and scopes the same way the server will.
    Keyring::from_config(std::slice::from_ref(&config))?;
    Ok((key, config))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cfg(name: &str, key: &str, scopes: &[&str]) -> KeyConfig {
        KeyConfig {
            name: name.into(),
            sha256: hash_hex(key),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn hash_is_sha256_hex() {
        // echo -n abc | sha256sum
        assert_eq!(
            hash_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn finds_a_key_by_its_hash_only() {
        let ring = Keyring::from_config(&[
            cfg("web", "k-web", &["storefront"]),
            cfg("ops", "k-ops", &["admin"]),
        ])
        .unwrap();
        assert_eq!(ring.find("k-web").unwrap().name, "web");
        assert_eq!(ring.find("k-ops").unwrap().name, "ops");
        assert!(ring.find("k-we").is_none());
        assert!(ring.find("").is_none());
        // The hash itself is not a key.
        assert!(ring.find(&hash_hex("k-web")).is_none());
    }

    #[test]
    fn upper_case_hex_is_accepted() {
        let mut c = cfg("web", "k", &["read"]);
        c.sha256 = c.sha256.to_uppercase();
        assert!(Keyring::from_config(&[c]).unwrap().find("k").is_some());
    }

    #[test]
    fn bad_configs_are_refused() {
        let bad = |c: Vec<KeyConfig>| Keyring::from_config(&c).unwrap_err();
        let mut short = cfg("a", "k", &["read"]);
        short.sha256.pop();
        assert!(bad(vec![short]).contains("64 hex"));
        let mut not_hex = cfg("a", "k", &["read"]);
        not_hex.sha256.replace_range(0..1, "g");
        assert!(bad(vec![not_hex]).contains("64 hex"));
        assert!(bad(vec![cfg("a", "k", &[])]).contains("at least one scope"));
        assert!(bad(vec![cfg("a", "k", &["root"])]).contains("unknown scope"));
        assert!(bad(vec![cfg("a", "k", &["warehouse:"])]).contains("warehouse:"));
        assert!(bad(vec![cfg("a", "k", &["feed:"])]).contains("prefix"));
        assert!(bad(vec![cfg("", "k", &["read"])]).contains("name"));
        assert!(bad(vec![cfg("a", "k", &["read"]), cfg("a", "j", &["read"])]).contains("twice"));
        assert!(bad(vec![cfg("a", "k", &["read"]), cfg("b", "k", &["read"])]).contains("twice"));
    }

    #[test]
    fn scopes_round_trip() {
        for s in [
            "admin",
            "storefront",
            "warehouse:berlin",
            "feed",
            "feed:sku:",
            "read",
        ] {
            assert_eq!(Scope::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn feed_prefixes() {
        let ring = Keyring::from_config(&[
            cfg("a", "a", &["feed:sku:x", "feed:orders"]),
            cfg("b", "b", &["feed"]),
            cfg("c", "c", &["admin"]),
            cfg("d", "d", &["read"]),
        ])
        .unwrap();
        assert_eq!(
            ring.find("a").unwrap().feed_prefixes(),
            Some(vec!["sku:x".to_string(), "orders".to_string()])
        );
        assert_eq!(ring.find("b").unwrap().feed_prefixes(), None);
        assert_eq!(ring.find("c").unwrap().feed_prefixes(), None);
        assert_eq!(ring.find("d").unwrap().feed_prefixes(), Some(vec![]));
    }

    #[test]
    fn new_keys_are_random_and_configured_by_hash() {
        let (k1, c1) = new_key("web", &["storefront".into()]).unwrap();
        let (k2, _) = new_key("web", &["storefront".into()]).unwrap();
        assert_ne!(k1, k2);
        assert!(k1.starts_with(KEY_PREFIX));
        assert_eq!(k1.len(), KEY_PREFIX.len() + 64);
        assert_eq!(c1.sha256, hash_hex(&k1));
        assert!(
            !c1.to_toml().contains(&k1),
            "the key is never in the config"
        );
        let parsed: toml::Table = c1.to_toml().parse().unwrap();
        let keys: Vec<KeyConfig> = parsed["keys"].clone().try_into().unwrap();
        assert_eq!(keys, vec![c1.clone()]);
        let inline: toml::Table = format!("keys = [{}]", c1.to_inline_toml()).parse().unwrap();
        let keys: Vec<KeyConfig> = inline["keys"].clone().try_into().unwrap();
        assert_eq!(keys, vec![c1]);
        assert!(new_key("web", &["nope".into()]).is_err());
    }
}
