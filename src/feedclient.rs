//! A client of the live feed (tokio-tungstenite), for `surge watch` and the
//! load generator's subscribers.

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
pub use tokio_tungstenite::tungstenite::Error as WsError;

/// Largest message or frame accepted from the server (a big snapshot).
pub const MESSAGE_BYTES_MAX: usize = 64 << 20;
/// Most unsent bytes buffered towards the server.
pub const WRITE_BUFFER_BYTES_MAX: usize = 1 << 20;

pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MESSAGE_BYTES_MAX))
        .max_frame_size(Some(MESSAGE_BYTES_MAX))
        .max_write_buffer_size(WRITE_BUFFER_BYTES_MAX)
}

/// `http://host:port` (or `ws://…`) and a query → the feed's URL.
pub fn feed_url(target: &str, query: &str) -> String {
    let base = target
        .trim_end_matches('/')
        .replacen("http://", "ws://", 1)
        .replacen("https://", "wss://", 1);
    let base = if base.starts_with("ws://") || base.starts_with("wss://") {
        base
    } else {
        format!("ws://{base}")
    };
    if query.is_empty() {
        format!("{base}/v1/feed")
    } else {
        format!("{base}/v1/feed?{query}")
    }
}

pub async fn connect(target: &str, query: &str) -> Result<Ws, WsError> {
    connect_with_key(target, query, None).await
}

/// `connect`, sending `key` as `Authorization: Bearer` if given.
pub async fn connect_with_key(target: &str, query: &str, key: Option<&str>) -> Result<Ws, WsError> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = feed_url(target, query).into_client_request()?;
    if let Some(key) = key {
        let value =
            tokio_tungstenite::tungstenite::http::HeaderValue::from_str(&format!("Bearer {key}"))
                .map_err(|e| WsError::HttpFormat(e.into()))?;
        request.headers_mut().insert("authorization", value);
    }
    let (ws, _) =
        tokio_tungstenite::connect_async_with_config(request, Some(ws_config()), true).await?;
    Ok(ws)
}

/// The next text message, unparsed (for clients that only skim).
pub async fn next_text(ws: &mut Ws) -> Result<Option<String>, String> {
    while let Some(msg) = ws.next().await {
        match msg.map_err(|e| e.to_string())? {
            Message::Text(t) => return Ok(Some(t.as_str().to_owned())),
            Message::Close(frame) => {
                return Err(match frame {
                    Some(f) => format!("closed: {} {}", u16::from(f.code), f.reason),
                    None => "closed".into(),
                })
            }
            _ => continue,
        }
    }
    Ok(None)
}

/// The next JSON text message; pings are answered by the library. `None`
/// when the connection ends; the close reason, if any, as the error.
pub async fn next_json(ws: &mut Ws) -> Result<Option<Value>, String> {
    match next_text(ws).await? {
        Some(t) => serde_json::from_str(&t)
            .map(Some)
            .map_err(|e| format!("not JSON: {e}")),
        None => Ok(None),
    }
}

pub async fn send_json(ws: &mut Ws, v: &Value) -> Result<(), WsError> {
    ws.send(Message::text(v.to_string())).await
}

/// `surge watch`: prints a feed's messages, one JSON per line.
#[derive(Debug, Clone, clap::Args)]
pub struct WatchOptions {
    /// Server to watch.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// Topics: sku:<id>, warehouse:<id>, order:<id>, orders, stock, holds, all.
    #[arg(required = true)]
    pub topics: Vec<String>,
    /// Resume after this seq (with --epoch) instead of starting from snapshots.
    #[arg(long)]
    pub since: Option<u64>,
    #[arg(long)]
    pub epoch: Option<u64>,
    /// Latest stock values at most every this many ms.
    #[arg(long)]
    pub conflate_ms: Option<u64>,
    /// Exit after this many event messages (0 = run until stopped).
    #[arg(long, default_value_t = 0)]
    pub count: u64,
    /// Reconnect (and resume) this many times after a disconnect.
    #[arg(long, default_value_t = 10)]
    pub reconnects: u32,
    /// API key (a `feed` scope), sent as `Authorization: Bearer`.
    #[arg(long)]
    pub key: Option<String>,
}

pub async fn watch(o: WatchOptions, mut out: impl std::io::Write) -> anyhow::Result<()> {
    let mut since = o.since;
    let mut epoch = o.epoch;
    let mut events = 0u64;
    let mut attempts = 0u32;
    loop {
        let mut q = vec![format!("topics={}", o.topics.join(","))];
        if let Some(s) = since {
            q.push(format!("since={s}"));
        }
        if let Some(e) = epoch {
            q.push(format!("epoch={e}"));
        }
        if let Some(c) = o.conflate_ms {
            q.push(format!("conflate_ms={c}"));
        }
        let ended = match connect_with_key(&o.target, &q.join("&"), o.key.as_deref()).await {
            Ok(mut ws) => loop {
                match next_json(&mut ws).await {
                    Ok(Some(v)) => {
                        attempts = 0;
                        writeln!(out, "{v}")?;
                        match v["type"].as_str() {
                            Some("hello") | Some("subscribed") => {
                                epoch = v["epoch"].as_u64().or(epoch)
                            }
                            Some("event") => {
                                since = v["seq"].as_u64();
                                events += 1;
                                if o.count > 0 && events >= o.count {
                                    let _ = ws.close(None).await;
                                    return Ok(());
                                }
                            }
                            Some("snapshot") => since = since.max(v["seq"].as_u64()),
                            _ => {}
                        }
                    }
                    Ok(None) => break "connection ended".to_string(),
                    Err(e) => break e,
                }
            },
            Err(e) => format!("cannot connect: {e}"),
        };
        attempts += 1;
        if attempts > o.reconnects {
            anyhow::bail!("{ended}");
        }
        eprintln!("surge watch: {ended}; reconnecting");
        tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(attempts))).await;
    }
}
