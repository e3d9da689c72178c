//! The JSON request bodies: the first byte picks the body type, the rest
//! is the body. Each is deserialized as the server does and then checked
//! by the handler's own validation; the answer may be an error, never a
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use surge::api::decode::{self, Body};
use surge::config::Config;

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(Config::default_config)
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let which = Body::ALL[usize::from(pick) % Body::ALL.len()];
    let _ = decode::body(config(), which, body);
    if let Ok(segment) = std::str::from_utf8(body) {
        decode::path_ids(segment);
    }
});
