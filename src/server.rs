//! Runs the HTTP server on an already-bound listener until `shutdown`
//! resolves; then stops accepting, lets in-flight requests finish, stops the
//! actors and drains the WAL. `main` passes a signal future; tests bind
//! port 0 and pass a channel.
//!
//! Shutdown is bounded by `shutdown_timeout_ms` in every state: in-flight
//! requests get half of it, draining the log the rest. When storage has
//! failed (or the drain does not finish in time) the store is never closed
//! (sled's close waits on a flusher that never returns after an I/O error)
//! and `run` returns an error, so the process exits non-zero at once.

use crate::api;
use crate::app::{OpenError, Surge};
use crate::clock::Clock;
use crate::config::Config;
use crate::wal::store::{LogStore, SledStore, StoreError};
use actix_web::{web, App, HttpServer};
use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot open the log in the data directory: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Auth(#[from] api::auth::GuardError),
    #[error("http server: {0}")]
    Io(#[from] std::io::Error),
    #[error("storage failed; stopped without closing the log (acknowledged writes are synced)")]
    StorageFailed,
    #[error("shutdown did not finish within {0} ms; stopped without closing the log")]
    ShutdownTimedOut(u64),
}

/// Opens the sled log in `config.data_dir`.
pub fn open_store(config: &Config) -> Result<Arc<dyn LogStore>, StoreError> {
    Ok(Arc::new(SledStore::open_waiting(
        &config.data_dir,
        config.sled_cache_bytes,
        Duration::from_millis(config.data_dir_lock_wait_ms),
    )?))
}

/// Serves until `shutdown` resolves. Must run inside an actix System.
pub async fn run(
    listener: TcpListener,
    config: Config,
    clock: Arc<dyn Clock>,
    store: Arc<dyn LogStore>,
    shutdown: impl Future<Output = ()> + 'static,
) -> Result<(), ServerError> {
    serve(listener, config, clock, store, shutdown, None).await
}

/// `run`, handing the opened application to `ready` once it is up.
async fn serve(
    listener: TcpListener,
    config: Config,
    clock: Arc<dyn Clock>,
    store: Arc<dyn LogStore>,
    shutdown: impl Future<Output = ()> + 'static,
    ready: Option<std::sync::mpsc::Sender<Arc<Surge>>>,
) -> Result<(), ServerError> {
    // Who may call what; refuses a non-loopback listener without keys
    // before anything is opened.
    let guard = api::auth::Guard::new(&config, listener.local_addr()?)?;
    tracing::info!(
        mode = guard.mode().as_str(),
        keys = guard.key_count(),
        "auth"
    );
    // Kept so the store can be left open (never dropped) after a failure.
    let store_handle = store.clone();
    let surge = open_while_starting(&listener, &config, clock, store).await?;
    let data = web::Data::new(surge.clone());
    let app_config = config.clone();
    let request_ids = Arc::new(api::observe::RequestIds::default());
    // Connections per client, counted as they are accepted.
    let clients = api::limits::Clients::new(&config);
    let (head_limits, body_limits) = (
        api::limits::HeadLimits::new(&config),
        api::slow::BodyLimits::new(&config),
    );
    let limits = web::Data::new(crate::ratelimit::RateLimits::from_config(&config));
    let methods = api::route_methods(&config);
    let server = HttpServer::new(move || {
        // Runs on each worker's own arbiter, once per listener (we have
        // one) and again if the worker is restarted: SKU actors live there.
        data.register_home();
        let cfg = app_config.clone();
        // Everything before the handler, in one layer (`api/front.rs`).
        let front = api::front::Front {
            ids: request_ids.clone(),
            metrics: data.metrics().clone(),
            count: cfg.metrics_http,
            head: head_limits,
            body: body_limits,
            guard: guard.clone(),
            rates: limits.clone(),
            browser: api::browser::Browser::new(&cfg).with_routes(methods.clone()),
        };
        App::new()
            .app_data(data.clone())
            .app_data(limits.clone())
            .wrap_fn(move |req, srv| front.call(req, srv))
            .configure(|c| api::configure(c, &cfg))
    })
    .on_connect(move |conn, ext| {
        clients.on_connect(conn, ext);
        ext.insert(api::auth::KeyCache::default());
    })
    .workers(config.http_workers())
    .max_connections(config.http_connections_max)
    .backlog(config.http_backlog)
    .client_request_timeout(Duration::from_millis(config.http_request_timeout_ms))
    .keep_alive(Duration::from_millis(config.http_keep_alive_ms))
    // In-flight requests get half the shutdown budget, in whole seconds
    // rounded down (actix counts seconds): none below 2000 ms.
    .shutdown_timeout(config.shutdown_timeout_ms / 2 / 1000)
    .disable_signals()
    .listen(listener)?
    .run();
    if let Some(ready) = ready {
        let _ = ready.send(surge.clone());
    }

    let handle = server.handle();
    let feed = surge.feed().clone();
    let shutdown_timeout = Duration::from_millis(config.shutdown_timeout_ms);
    let (deadline_tx, mut deadline_rx) = tokio::sync::oneshot::channel::<Instant>();
    actix_rt::spawn(async move {
        shutdown.await;
        let _ = deadline_tx.send(Instant::now() + shutdown_timeout);
        tracing::info!("shutting down: finishing in-flight requests");
        feed.close_all();
        handle.stop(true).await;
    });
    // Closed records past their retention leave memory (the sweep itself
    // runs on the log's applier thread and in the order actors).
    let sweeper = {
        let surge = surge.clone();
        let every = Duration::from_millis(config.retention_sweep_ms);
        actix_rt::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = surge.sweep_retention().await {
                    tracing::warn!(error = %e, "retention sweep skipped; memory is not freed until a sweep runs");
                }
            }
        })
    };
    // Orders still unpaid past their channel's time are cancelled and
    // their stock released (`order_expired`). Their times are in the log,
    // so orders that ran out while the server was down expire at the first
    // look after start.
    let expirer = {
        let surge = surge.clone();
        let every = Duration::from_millis(config.lifecycle.expiry_sweep_ms);
        actix_rt::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(e) = surge.expire_unpaid().await {
                    tracing::warn!(error = %e, "unpaid-order expiry skipped; retried at the next look");
                }
            }
        })
    };
    // Orders a disabled warehouse still has move elsewhere (a run a
    // restart cut short), and rejections a crash cut short get their
    // re-route (or hold).
    let resumed = {
        let surge = surge.clone();
        actix_rt::spawn(async move {
            surge.resume_reroutes().await;
            surge.resume_rejections().await;
        })
    };
    let served = server.await;
    sweeper.abort();
    expirer.abort();
    resumed.abort();
    // Sent before the stop began; missing when the server ended otherwise.
    let deadline = deadline_rx
        .try_recv()
        .unwrap_or_else(|_| Instant::now() + shutdown_timeout);
    let drained = close_bounded(&surge, deadline).await;
    let failed = surge.storage_failed();
    if failed || !drained {
        std::mem::forget(store_handle);
    }
    if failed {
        tracing::error!("stopped with storage failed");
        return Err(ServerError::StorageFailed);
    }
    if !drained {
        tracing::error!("shutdown timed out");
        return Err(ServerError::ShutdownTimedOut(config.shutdown_timeout_ms));
    }
    tracing::info!("stopped");
    Ok(served?)
}

/// Opens the application. While the log is replayed (on a blocking
/// thread), a stand-in server on the same listener answers `/readyz`,
/// `/healthz` and every other request with 503; it stops before the real
/// one starts.
async fn open_while_starting(
    listener: &TcpListener,
    config: &Config,
    clock: Arc<dyn Clock>,
    store: Arc<dyn LogStore>,
) -> Result<Arc<Surge>, ServerError> {
    let stand_in = HttpServer::new(|| App::new().configure(api::monitor::starting_routes))
        .workers(1)
        .shutdown_timeout(1)
        .client_request_timeout(Duration::from_millis(config.http_request_timeout_ms))
        .disable_signals()
        .listen(listener.try_clone()?)?
        .run();
    let handle = stand_in.handle();
    let running = actix_rt::spawn(stand_in);
    let (c, k, s) = (config.clone(), clock.clone(), store.clone());
    let replayed =
        actix_rt::task::spawn_blocking(move || Surge::replay(&c, k.as_ref(), s.as_ref())).await;
    // Paused first, so its accept thread lets go of the listener before its
    // worker stops (a connection accepted by a stopped worker is dropped);
    // what is queued meanwhile waits in the backlog for the real server.
    handle.pause().await;
    handle.stop(true).await;
    let _ = running.await;
    let replayed = replayed.map_err(|_| std::io::Error::other("replay panicked"))??;
    Ok(Surge::start(config.clone(), clock, store, replayed)?)
}

/// Stops the actors and drains the log on a thread of its own, waiting for
/// it until `deadline`; false if it did not finish by then (the thread, and
/// whatever store call it is stuck in, is left behind).
async fn close_bounded(surge: &Arc<Surge>, deadline: Instant) -> bool {
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let s = surge.clone();
    let spawned = std::thread::Builder::new()
        .name("surge-shutdown".into())
        .spawn(move || {
            s.shutdown();
            let _ = done_tx.send(());
        });
    if spawned.is_err() {
        return false;
    }
    matches!(
        tokio::time::timeout_at(deadline.into(), done_rx).await,
        Ok(Ok(()))
    )
}

/// A server on its own thread and actix System; for tests, benches and
/// tools that need one in-process.
pub struct Background {
    pub addr: SocketAddr,
    pub surge: Arc<Surge>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), ServerError>>>,
}

impl Background {
    /// Binds `config.listen` (use port 0), opens `store` and serves.
    pub fn start(
        config: Config,
        clock: Arc<dyn Clock>,
        store: Arc<dyn LogStore>,
    ) -> Result<Self, ServerError> {
        let listener = TcpListener::bind(&config.listen)?;
        let addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("surge-server".into())
            .spawn(move || {
                actix_rt::System::new().block_on(async move {
                    let shutdown = async move {
                        let _ = stop_rx.await;
                    };
                    serve(listener, config, clock, store, shutdown, Some(ready_tx)).await
                })
            })?;
        match ready_rx.recv() {
            Ok(surge) => Ok(Self {
                addr,
                surge,
                stop: Some(stop_tx),
                thread: Some(thread),
            }),
            Err(_) => match thread.join() {
                Ok(Err(e)) => Err(e),
                _ => Err(ServerError::Io(std::io::Error::other(
                    "server thread ended before it was ready",
                ))),
            },
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Graceful stop; waits until the log is closed.
    pub fn stop(mut self) -> Result<(), ServerError> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<(), ServerError> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(ServerError::Io(std::io::Error::other(
                "server thread panicked",
            ))),
            None => Ok(()),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}
