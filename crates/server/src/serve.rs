//! Running the server: migrations, binding, and a graceful shutdown that lets in-flight
//! requests finish (up to `http.shutdown_grace_secs`).

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::app::{AppState, router};
use crate::config::Config;

/// Serves until `shutdown` resolves, then drains. Returns once every connection has finished
/// or the grace period is over.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = AppState::new(config).await?;
    serve_app(state, listener, shutdown).await
}

/// Serves a prepared [`AppState`] (the test harness injects its authenticator this way).
pub async fn serve_app(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let grace = Duration::from_secs(state.config.http.shutdown_grace_secs);
    if state.config.database.migrate_on_start {
        let applied = state.store.migrate().await?;
        tracing::info!(applied, "database migrations up to date");
    }
    if let Err(e) = state.policy.ensure_builtin_roles().await {
        tracing::warn!(error = %e, "cannot record the built-in roles; assigning them through the API fails until this works");
    }
    if let Some(admin) = state
        .accounts
        .ensure_bootstrap_admin(&state.config.bootstrap)
        .await
        .map_err(|e| anyhow::anyhow!(e))?
    {
        tracing::info!(user.id = %admin.id, email = %admin.email, "bootstrap admin created");
    }
    // Values sealed under an older key move to the active one, in small batches.
    let reseal = crate::keys::spawn_reseal(state.store.clone(), state.secret_box.clone());
    // Sign-in limiters forget idle clients now and then, so their maps stay small.
    let limits = state.limits.clone();
    let registrations = state.registrations.clone();
    let limiter_upkeep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            limits.shrink();
            registrations.shrink();
        }
    });
    // Registered clients nobody used go after `oauth.registration.unused_ttl_secs`.
    let sweeper = state.clone();
    let client_sweep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(crate::oauth::register::sweep_interval(
            &sweeper.config.oauth.registration,
        ));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            crate::oauth::register::sweep_unused(&sweeper).await;
        }
    });
    // Refresh successors are kept (sealed) for the reuse grace period only.
    let reuse_grace = Duration::from_secs(state.config.oauth.refresh_reuse_grace_secs);
    let successor_sweep = (!reuse_grace.is_zero()).then(|| {
        let store = state.store.clone();
        tokio::spawn(async move {
            // Not at start-up: nothing can be due yet.
            let mut tick =
                tokio::time::interval_at(tokio::time::Instant::now() + reuse_grace, reuse_grace);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = store.forget_refresh_successors(reuse_grace).await {
                    tracing::debug!(error = %e, "refresh successors not swept this time");
                }
            }
        })
    });
    crate::telemetry::prometheus();
    let metrics_server = match state.config.metrics.listen {
        Some(addr) => {
            let listener = TcpListener::bind(addr).await?;
            tracing::info!(%addr, "metrics listening");
            let app = crate::routes::health::admin_router(state.clone());
            Some(tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::warn!(error = %e, "the metrics listener stopped");
                }
            }))
        }
        None => None,
    };
    let sampler = crate::web::dashboard::spawn_sampler();
    let app = router(state.clone());
    tracing::info!(addr = %listener.local_addr()?, public_url = %state.config.public_url, "mcpgate listening");

    crate::connections::serve(listener, app, &state.config.http, shutdown, grace).await;
    limiter_upkeep.abort();
    reseal.abort();
    sampler.abort();
    if let Some(server) = metrics_server {
        server.abort();
    }
    client_sweep.abort();
    if let Some(sweep) = successor_sweep {
        sweep.abort();
    }
    // Every decision made so far reaches the audit log before the pool closes.
    state.audit.flush().await;
    state.policy.stop();
    state.tokens.stop();
    state.store.close();
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
