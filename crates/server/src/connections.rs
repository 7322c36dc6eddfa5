//! The server's accept loop: HTTP/1 and HTTP/2 on one port (hyper-util's auto builder), with
//! the limits a public listener needs against slow clients (slowloris):
//!
//! - a header-read timeout: a request's headers must arrive within `header_read_timeout_secs`
//!   (hyper's own timer for HTTP/1 requests; for the first request also the wait for any bytes
//!   at all, which hyper's protocol detection would otherwise wait out forever);
//! - a cap on open connections per client address: extra connections are closed as soon as
//!   they are accepted.
//!
//! Shutdown stops accepting, lets open connections finish their requests, and gives up after
//! the grace period.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use mcpgate_guard::ConnectionCap;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tower::{Service, ServiceBuilder};

use crate::config::HttpConfig;

/// Serves `app` on `listener` until `stop` resolves, then drains for up to `grace`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    http: &HttpConfig,
    stop: impl Future<Output = ()>,
    grace: Duration,
) {
    let header_timeout = Duration::from_secs(http.header_read_timeout_secs.max(1));
    let cap = ConnectionCap::new(http.max_connections_per_address);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let mut make_service = app.into_make_service_with_connect_info::<SocketAddr>();
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let Some(permit) = cap.try_acquire(peer.ip()) else {
            metrics::counter!("mcpgate_http_connections_refused_total", "reason" => "per_address_cap")
                .increment(1);
            tracing::debug!(client.address = %peer.ip(), "too many connections from one address; closed");
            drop(stream);
            continue;
        };
        // No Nagle: SSE events and small JSON answers go out when written, not after the
        // peer's delayed ACK (up to 40 ms on Linux).
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let service = match make_service.call(peer).await {
            Ok(service) => service,
            Err(never) => match never {},
        };
        let io = FirstRequestDeadline::new(stream, header_timeout);
        let arrived = io.arrived.clone();
        let service = ServiceBuilder::new()
            .map_request(move |request| {
                arrived.store(true, Ordering::Relaxed);
                request
            })
            .service(service);
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let connection = builder.serve_connection_with_upgrades(
                TokioIo::new(io),
                TowerToHyperService::new(service),
            );
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("shutting down: finishing in-flight requests");
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_secs = grace.as_secs(),
            "grace period over; closing remaining connections"
        );
    }
}

/// A connection whose reads fail once `timeout` has passed without a first request: hyper
/// times out the headers of HTTP/1 requests itself, but not the wait before it has seen
/// enough bytes to tell HTTP/1 from HTTP/2.
struct FirstRequestDeadline {
    inner: TcpStream,
    deadline: Pin<Box<tokio::time::Sleep>>,
    arrived: Arc<AtomicBool>,
}

impl FirstRequestDeadline {
    fn new(inner: TcpStream, timeout: Duration) -> Self {
        Self {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            arrived: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl AsyncRead for FirstRequestDeadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.arrived.load(Ordering::Relaxed) && self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no request within the header read timeout",
            )));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for FirstRequestDeadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
