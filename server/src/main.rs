//! `modelcrate-server`: loads every generated model and serves it over HTTP.

use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use modelcrate_server::{AppState, Config, app, models};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    if let Err(error) = run(Config::parse()).await {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

async fn run(config: Config) -> Result<()> {
    let options = config.load_options();
    let (names, artifacts) = (config.models.clone(), config.artifacts.clone());
    let models = tokio::task::spawn_blocking(move || models::load_all(&names, &artifacts, &options)).await??;
    let state = AppState {
        engines: Arc::new(models::start_engines(models, config.batching())),
        limits: config.limits(),
    };
    let address = format!("{}:{}", config.host, config.port);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    let bound = listener.local_addr()?;
    let names: Vec<&String> = state.engines.keys().collect();
    tracing::info!(%bound, models = ?names, "serving");
    println!("serving {names:?} on http://{bound}");
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the server stopped")?;
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
    tracing::info!("shutting down: finishing requests in flight");
}
