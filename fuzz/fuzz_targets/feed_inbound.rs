//! What a feed client sends: the query string of `GET /v1/feed` and the
//! JSON text frames of a connection (subscribe, unsubscribe). The first
//! byte picks which; an error is an answer, a panic a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use surge::api::decode;
use surge::config::Config;

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(Config::default_config)
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    // Text frames are UTF-8 (the WebSocket layer refuses others); a query
    // string is whatever bytes the request line held.
    let text = String::from_utf8_lossy(rest);
    if pick % 2 == 0 {
        let _ = decode::feed_message(config(), &text);
    } else {
        let _ = decode::feed_query(config(), &text);
    }
});
