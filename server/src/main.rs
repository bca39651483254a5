//! `modelcrate-server`: loads every generated model and serves it over HTTP.
//!
//! Models load before the server listens; it then warms every model up and only then
//! answers `GET /health/ready` with 200. SIGTERM or SIGINT drains it (see `lifecycle`).
//! While it serves, a model whose folder changes is reloaded behind a canary (see `reload`);
//! with `--wait-for-models`, a model whose pipeline has not finished is loaded that way too.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use modelcrate_server::config::LogFormat;
use modelcrate_server::lifecycle::{self, Lifecycle};
use modelcrate_server::served::{Fingerprint, Served};
use modelcrate_server::{AppState, CATALOG, Config, app, integrity, listen, reload, routes};
use tracing_subscriber::EnvFilter;

/// After the drain, how long closing the remaining connections may take.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() {
    let config = match Config::from_env_and_args() {
        Ok(config) => config,
        Err(error) => match error.downcast::<clap::Error>() {
            // --help, --version and usage errors print and exit as clap does.
            Ok(clap_error) => clap_error.exit(),
            Err(error) => {
                eprintln!("error: {error:#}");
                std::process::exit(2);
            }
        },
    };
    init_logs(config.log_format);
    if let Err(error) = run(config).await {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

/// Log lines to stdout, at `RUST_LOG`'s levels (`info` by default), as text or JSON.
fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().with_current_span(true).with_span_list(false).init(),
    }
}

async fn run(config: Config) -> Result<()> {
    let reloader = Arc::new(config.reloader());
    let (names, loader, wait) = (config.models.clone(), Arc::clone(&reloader), config.wait_for_models);
    let (engines, coming, seen) = tokio::task::spawn_blocking(move || -> Result<_> {
        let names = CATALOG.names(&names)?;
        // Each folder as it is before its files are read: the watcher reloads what changes.
        let seen = names
            .iter()
            .map(|name| (name.clone(), Fingerprint::of(&loader.folder(name)).unwrap_or_default()))
            .collect();
        let (ready, coming): (Vec<String>, Vec<String>) =
            names.into_iter().partition(|name| !wait || loader.is_selected(name));
        if !coming.is_empty() {
            tracing::info!(models = ?coming, "coming: no serving.json yet; loaded behind their canary once it appears");
        }
        // A file cut short, corrupted or replaced since `select` recorded it is not loaded.
        for name in &ready {
            integrity::check(name, &loader.folder(name))?;
        }
        let engines = CATALOG.start_each(&ready, &loader.artifacts, &loader.load, &loader.engines)?;
        Ok((engines, coming, seen))
    })
    .await??;
    let lifecycle = Arc::new(Lifecycle::default());
    let state = AppState {
        models: Arc::new(Served::new(engines, &coming, seen)),
        reloader: Arc::clone(&reloader),
        limits: config.limits(),
        lifecycle: Arc::clone(&lifecycle),
        metrics: Arc::default(),
    };
    let address = format!("{}:{}", config.host, config.port);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    let bound = listener.local_addr()?;
    let names = state.models.names();
    tracing::info!(%bound, models = ?names, "serving; warming up");
    if coming.is_empty() {
        println!("serving {names:?} on http://{bound}");
    } else {
        println!("serving {names:?} (still coming: {coming:?}) on http://{bound}");
    }

    let (served, timeout) = (Arc::clone(&state.models), config.warm_up_timeout());
    let warming = tokio::task::spawn_blocking(move || lifecycle::warm_up(&served, timeout));
    if config.watch_interval_ms > 0 {
        let interval = Duration::from_millis(config.watch_interval_ms);
        tokio::spawn(reload::watch(
            Arc::clone(&state.models),
            reloader,
            Arc::clone(&state.metrics),
            Arc::clone(&lifecycle),
            interval,
        ));
    }
    let drain_timeout = Duration::from_millis(config.drain_timeout_ms);
    let shutdown_delay = Duration::from_millis(config.shutdown_delay_ms);
    let drained = Arc::new(tokio::sync::Notify::new());
    let shutdown = {
        let (lifecycle, drained) = (Arc::clone(&lifecycle), Arc::clone(&drained));
        async move {
            shutdown_signal().await;
            if !shutdown_delay.is_zero() {
                lifecycle.begin_leaving();
                tracing::info!(
                    ?shutdown_delay,
                    "leaving: /health/ready answers 503, requests are still answered"
                );
                tokio::time::sleep(shutdown_delay).await;
            }
            lifecycle.begin_draining();
            tracing::info!(in_flight = lifecycle.in_flight(), "draining: new requests get 503");
            let left = lifecycle.drained(drain_timeout).await;
            if left > 0 {
                tracing::warn!(
                    in_flight = left,
                    ?drain_timeout,
                    "drain timeout: closing with requests in flight"
                );
            } else {
                tracing::info!("drained: every request in flight was answered");
            }
            drained.notify_one();
        }
    };
    let router = routes::with_cors(app(state), &config.cors_allow_origins)?;
    let serving = tokio::spawn(listen::serve(listener, router, config.connection_limits(), shutdown));

    match warming.await? {
        Ok(()) => {
            lifecycle.set_ready();
            tracing::info!("ready");
        }
        Err(error) => {
            // A model that cannot answer a warm-up would fail its users: refuse to start.
            serving.abort();
            return Err(error);
        }
    }
    tokio::select! {
        result = serving => result.context("the server stopped")?,
        () = async { drained.notified().await; tokio::time::sleep(CLOSE_GRACE).await } => {
            tracing::warn!(?CLOSE_GRACE, "connections still open after the drain: exiting");
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut signal) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received");
}
