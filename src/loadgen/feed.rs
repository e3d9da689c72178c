//! Feed subscribers during a load run: each holds a WebSocket on one topic
//! and measures delivery lag, from the moment the server made the change
//! durable (the message's `t_us`) to the moment it arrived here (same
//! machine, same clock).

use super::{histogram, Latency};
use crate::feed::now_us;
use crate::feedclient;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long subscribers may take to catch up once the load stops.
const DRAIN_MAX: Duration = Duration::from_secs(10);
/// A subscriber that hears nothing for this long has caught up.
const DRAIN_IDLE: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FeedStats {
    pub subscribers: usize,
    pub topic: String,
    /// Event messages received over all subscribers.
    pub events: u64,
    /// From durable on the server to received here, in ms.
    pub lag: Latency,
    /// Messages whose seq was not above the previous one (must be 0).
    pub out_of_order: u64,
    /// Seqs skipped (counted for topic `all` only, where there must be none).
    pub gaps: u64,
    /// Subscribers whose connection ended before the run did.
    pub dropped: usize,
}

/// The fields a subscriber looks at; the rest is skipped unparsed.
#[derive(Deserialize)]
struct Brief {
    #[serde(rename = "type")]
    kind: String,
    seq: Option<u64>,
    t_us: Option<u64>,
}

struct Tally {
    lag: Histogram<u64>,
    events: u64,
    out_of_order: u64,
    gaps: u64,
    dropped: bool,
}

pub struct Subscribers {
    topic: String,
    tasks: Vec<JoinHandle<Tally>>,
    stop: watch::Sender<u64>,
}

impl Subscribers {
    /// Connects `n` subscribers, the i-th to `topic(i)`; returns once all
    /// are subscribed.
    pub async fn start(
        key: Option<&str>,
        target: &str,
        n: usize,
        topic: impl Fn(usize) -> String,
        conflate_ms: u64,
    ) -> Result<Subscribers, String> {
        let (stop, _) = watch::channel(0u64);
        let mut tasks = Vec::with_capacity(n);
        let name = topic(0);
        for i in 0..n {
            let topic = topic(i);
            let mut query = format!("topics={topic}");
            if conflate_ms > 0 {
                query.push_str(&format!("&conflate_ms={conflate_ms}"));
            }
            let mut ws = feedclient::connect_with_key(target, &query, key)
                .await
                .map_err(|e| e.to_string())?;
            loop {
                let m = feedclient::next_json(&mut ws)
                    .await?
                    .ok_or("feed closed while subscribing")?;
                match m["type"].as_str() {
                    Some("subscribed") => break,
                    Some("error") => return Err(m.to_string()),
                    _ => {}
                }
            }
            let all = topic == "all";
            let mut stop_rx = stop.subscribe();
            tasks.push(tokio::spawn(async move {
                let mut t = Tally {
                    lag: histogram(),
                    events: 0,
                    out_of_order: 0,
                    gaps: 0,
                    dropped: false,
                };
                let mut last = 0u64;
                let mut until: Option<u64> = None;
                let mut deadline = None;
                loop {
                    let wait = if until.is_some() {
                        DRAIN_IDLE
                    } else {
                        Duration::from_secs(3600)
                    };
                    tokio::select! {
                        changed = stop_rx.changed(), if until.is_none() => {
                            if changed.is_err() {
                                return t;
                            }
                            let head = *stop_rx.borrow();
                            if last >= head {
                                return t;
                            }
                            until = Some(head);
                            deadline = Some(tokio::time::Instant::now() + DRAIN_MAX);
                        }
                        m = tokio::time::timeout(wait, feedclient::next_text(&mut ws)) => {
                            let m = match m {
                                Err(_) => return t, // idle while draining: caught up
                                Ok(Ok(Some(m))) => m,
                                Ok(_) => {
                                    t.dropped = true;
                                    return t;
                                }
                            };
                            let Ok(Brief { kind, seq, t_us }) = serde_json::from_str::<Brief>(&m) else {
                                t.dropped = true;
                                return t;
                            };
                            if kind != "event" {
                                continue;
                            }
                            let (seq, sent) = (seq.unwrap_or(0), t_us.unwrap_or(0));
                            let _ = t.lag.record(now_us().saturating_sub(sent).max(1));
                            t.events += 1;
                            if seq <= last {
                                t.out_of_order += 1;
                            } else if all && last > 0 && seq > last + 1 {
                                t.gaps += seq - last - 1;
                            }
                            last = last.max(seq);
                            if until.is_some_and(|h| last >= h)
                                || deadline.is_some_and(|d| tokio::time::Instant::now() > d)
                            {
                                return t;
                            }
                        }
                    }
                }
            }));
        }
        Ok(Subscribers {
            topic: name,
            tasks,
            stop,
        })
    }

    /// Lets every subscriber catch up to `head` (bounded), then reports.
    pub async fn finish(self, head: u64) -> FeedStats {
        self.stop.send_replace(head);
        let n = self.tasks.len();
        let mut lag = histogram();
        let mut stats = FeedStats {
            subscribers: n,
            topic: self.topic,
            events: 0,
            lag: Latency::of(&lag),
            out_of_order: 0,
            gaps: 0,
            dropped: 0,
        };
        for task in self.tasks {
            if let Ok(t) = task.await {
                let _ = lag.add(&t.lag);
                stats.events += t.events;
                stats.out_of_order += t.out_of_order;
                stats.gaps += t.gaps;
                stats.dropped += usize::from(t.dropped);
            } else {
                stats.dropped += 1;
            }
        }
        stats.lag = Latency::of(&lag);
        stats
    }
}
