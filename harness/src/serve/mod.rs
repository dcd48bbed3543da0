//! `faultline serve`: the stored runs over HTTP. `/` is an index of every run, newest
//! first; `/files/...` lists and serves the store's files (reports, histories, logs).
//! It listens on loopback unless told otherwise, since the store holds everything a run saw.

mod files;
mod html;
mod index;

use crate::console::outln;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use clap::Args;
use tokio::signal::unix::{SignalKind, signal};

use crate::store::scan;

/// Browse the stored runs over HTTP.
#[derive(Args, Clone, Debug)]
pub struct ServeArgs {
    /// Where runs are stored.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Allow an address other than loopback: whoever reaches it can read every stored file.
    #[arg(long)]
    pub allow_remote: bool,
}

/// Serves until Ctrl-C or SIGTERM.
pub async fn run(args: &ServeArgs) -> Result<()> {
    if !args.addr.ip().is_loopback() && !args.allow_remote {
        bail!(
            "{} is not a loopback address; anyone who can reach it could read the store. \
             Pass --allow-remote to serve it anyway",
            args.addr
        );
    }
    let store = args.store.canonicalize().with_context(|| {
        format!(
            "no store at {} (runs are stored there by `faultline test`)",
            args.store.display()
        )
    })?;
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("listening on {}", args.addr))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    outln!(
        "serving the runs in {} at http://{addr}/ (Ctrl-C to stop)",
        store.display()
    );
    axum::serve(listener, router(store))
        .with_graceful_shutdown(stop_requested())
        .await
        .context("serving")
}

/// The routes, over the store at `store` (canonical).
fn router(store: PathBuf) -> Router {
    Router::new()
        .route("/", get(index_page))
        .route("/files", get(store_root))
        .route("/files/", get(store_root))
        .route("/files/{*path}", get(store_file))
        .with_state(Arc::new(store))
}

async fn index_page(State(store): State<Arc<PathBuf>>) -> Response {
    let scanned = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || scan(&store)).await
    };
    match scanned {
        Ok(Ok(runs)) => Html(index::render(&store, &runs)).into_response(),
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading the store {}: {e}\n", store.display()),
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

async fn store_root(State(store): State<Arc<PathBuf>>, request: Request) -> Response {
    files::serve(&store, "", request).await
}

async fn store_file(
    State(store): State<Arc<PathBuf>>,
    Path(path): Path<String>,
    request: Request,
) -> Response {
    files::serve(&store, &path, request).await
}

/// Completes on Ctrl-C or SIGTERM.
async fn stop_requested() {
    let Ok(mut terminate) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
