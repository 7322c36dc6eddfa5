//! A TCP fault proxy for the fault tests: put it between mcpgate and a dependency
//! (PostgreSQL, an identity provider, an upstream) and change what the network does while
//! the test runs.
//!
//! - [`Fault::None`]: bytes pass both ways (after `latency`, if set).
//! - [`Fault::Reset`]: every open connection is closed at once and new ones are closed on
//!   arrival (the dependency crashed, or a firewall sends RSTs).
//! - [`Fault::Blackhole`]: open connections stop carrying bytes and new ones are accepted but
//!   never answered (a dropped route: the worst case, only timeouts notice).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    Reset,
    Blackhole,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mode {
    fault: Fault,
    latency: Duration,
}

pub struct FaultProxy {
    /// `127.0.0.1:PORT` to connect to instead of the target.
    pub addr: std::net::SocketAddr,
    mode: watch::Sender<Mode>,
    accepted: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `target` (`host:port`).
    pub async fn start(target: &str) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (mode, watching) = watch::channel(Mode {
            fault: Fault::None,
            latency: Duration::ZERO,
        });
        let accepted = Arc::new(AtomicU64::new(0));
        let counted = accepted.clone();
        let target = target.to_owned();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::Relaxed);
                let watching = watching.clone();
                let target = target.clone();
                tokio::spawn(async move {
                    let _ = relay(client, &target, watching).await;
                });
            }
        });
        Ok(Self {
            addr,
            mode,
            accepted,
            task,
        })
    }

    pub fn set(&self, fault: Fault) {
        self.mode.send_modify(|m| m.fault = fault);
    }

    /// Delay added to every chunk, each way.
    pub fn set_latency(&self, latency: Duration) {
        self.mode.send_modify(|m| m.latency = latency);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(
    mut client: TcpStream,
    target: &str,
    mut mode: watch::Receiver<Mode>,
) -> std::io::Result<()> {
    let now = *mode.borrow();
    match now.fault {
        Fault::Reset => return reset(client),
        Fault::Blackhole => {
            // Hold the connection, say nothing, until the fault changes.
            let _ = mode.wait_for(|m| m.fault != Fault::Blackhole).await;
            return reset(client);
        }
        Fault::None => {}
    }
    let upstream = TcpStream::connect(target).await?;
    let (mut client_read, mut client_write) = client.split();
    let (mut up_read, mut up_write) = upstream.into_split();
    let (mut forward_modes, mut back_modes) = (mode.clone(), mode.clone());
    tokio::select! {
        _ = pump(&mut client_read, &mut up_write, &mut forward_modes) => {}
        _ = pump(&mut up_read, &mut client_write, &mut back_modes) => {}
        _ = mode.wait_for(|m| m.fault == Fault::Reset) => {}
    }
    reset(client)
}

async fn pump<R, W>(
    from: &mut R,
    to: &mut W,
    mode: &mut watch::Receiver<Mode>,
) -> std::io::Result<()>
where
    R: AsyncReadExt + Unpin,
    W: AsyncWriteExt + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        let now = *mode.borrow();
        if now.fault == Fault::Blackhole {
            // Swallow: nothing moves until the fault changes (then the connection is dead).
            let _ = mode.wait_for(|m| m.fault != Fault::Blackhole).await;
            return Ok(());
        }
        if !now.latency.is_zero() {
            tokio::time::sleep(now.latency).await;
        }
        to.write_all(&buf[..n]).await?;
    }
}

/// Closes with RST (linger 0), as a crashed peer or a firewall does.
fn reset(stream: TcpStream) -> std::io::Result<()> {
    #[allow(deprecated)] // a blocking close is what a test wants here: an RST at once
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
    Ok(())
}
