//! Serving HTTP/1 connections with bounds, for the client and the peer port alike.
//!
//! - At most `max_connections` connections per port: a permit of a semaphore is taken before
//!   each accept and given back when the connection ends (as tokio's mini-redis does), so
//!   that further clients wait in the kernel's accept queue rather than costing memory and
//!   file descriptors.
//! - `idle_timeout` (hyper's header-read timeout): a connection is closed when it has not
//!   sent a whole request head this long after it opened or after its previous answer, so
//!   idle keep-alive connections, connections that never send anything and half-sent
//!   headers all end. Hyper times those three with one timer, so they share one setting.
//! - `body_timeout` (tower-http's request body timeout): a request whose body stalls this
//!   long between two pieces fails, and its connection with it.
//!
//! Every request carries the peer's address as `ConnectInfo<SocketAddr>`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tracing::{debug, error, warn};

/// How long open connections get to finish their requests at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to wait before accepting again after an error such as running out of file
/// descriptors (retrying at once would spin).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The bounds on one port's connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub idle_timeout: Duration,
    pub body_timeout: Duration,
}

/// Serves `router` on `listener` until `stopping` turns true, then lets open connections
/// finish for a moment.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    mut stopping: watch::Receiver<bool>,
) {
    let router = router.layer(RequestBodyTimeoutLayer::new(limits.body_timeout));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout);
    loop {
        let accepted = tokio::select! {
            _ = stopping.wait_for(|stop| *stop) => break,
            accepted = async {
                let permit = permits.clone().acquire_owned().await.expect("never closed");
                (permit, listener.accept().await)
            } => accepted,
        };
        let (permit, (stream, remote)) = match accepted {
            (permit, Ok(accepted)) => (permit, accepted),
            (_, Err(e)) if is_connection_error(&e) => continue,
            (_, Err(e)) => {
                error!("accepting a connection: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // Answers are small and latency is the point: no Nagle delay behind an unacked segment.
        if let Err(e) = stream.set_nodelay(true) {
            warn!("TCP_NODELAY on an accepted connection: {e}");
        }
        let router = router.clone();
        let service = tower::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(remote));
            router.clone().oneshot(request)
        });
        let connection = graceful
            .watch(http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                debug!(%remote, "connection ended: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        warn!("connections did not finish within {DRAIN_TIMEOUT:?} of shutdown");
    }
}

/// Errors of one incoming connection, not of the listener: skip it and go on.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// Raises this process's soft limit on open files to its hard limit when `needed` is more
/// than the soft one (many systems start processes at 1024), and says so when even the hard
/// limit is short of it: then connections beyond it are refused by the kernel.
pub fn raise_open_file_limit(needed: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    if soft >= needed {
        return;
    }
    let target = needed.min(hard);
    if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, target, hard) {
        warn!("raising the open-file limit from {soft} to {target}: {e}");
    } else if target < needed {
        warn!(
            "the open-file limit is {target} (the hard limit), short of the {needed} that \
             --max-connections on both ports needs"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::time::Instant;

    use std::net::SocketAddr;

    use axum::routing::get;

    use super::*;

    async fn start(limits: ConnectionLimits) -> (SocketAddr, watch::Sender<bool>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new().route(
            "/who",
            get(|ConnectInfo(remote): ConnectInfo<SocketAddr>| async move { remote.to_string() }),
        );
        let (stop, stopping) = watch::channel(false);
        tokio::spawn(serve(listener, router, limits, stopping));
        (addr, stop)
    }

    /// Reads until the server closes the connection (or the read times out); returns what
    /// was read and how long it took.
    fn read_to_close(stream: &mut std::net::TcpStream) -> (String, Duration) {
        let started = Instant::now();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut text = Vec::new();
        let _ = stream.read_to_end(&mut text);
        (
            String::from_utf8_lossy(&text).into_owned(),
            started.elapsed(),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_and_half_sent_requests_are_closed_and_the_limit_holds() {
        let limits = ConnectionLimits {
            max_connections: 2,
            idle_timeout: Duration::from_millis(300),
            body_timeout: Duration::from_millis(300),
        };
        let (addr, _stop) = start(limits).await;
        tokio::task::spawn_blocking(move || {
            // Silent, then half a request head: both closed after the idle timeout.
            let mut silent = std::net::TcpStream::connect(addr).unwrap();
            let mut half = std::net::TcpStream::connect(addr).unwrap();
            half.write_all(b"GET /who HTTP/1.1\r\nHost: x\r\n").unwrap();
            // The limit is 2: a third connection waits for one of them to end.
            let mut third = std::net::TcpStream::connect(addr).unwrap();
            third
                .write_all(b"GET /who HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let (answer, waited) = read_to_close(&mut third);
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            assert!(answer.contains("127.0.0.1:"), "{answer}");
            assert!(waited >= Duration::from_millis(200), "{waited:?}");
            for stream in [&mut silent, &mut half] {
                let (_, took) = read_to_close(stream);
                assert!(took < Duration::from_secs(5), "{took:?}");
            }
        })
        .await
        .unwrap();
    }
}
