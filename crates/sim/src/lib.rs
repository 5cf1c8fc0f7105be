//! Strict in-memory simulators of the providers' webhook-management APIs.
//!
//! Each simulator is an axum [`Router`](axum::Router) written from the
//! provider's documentation alone: it shares no types with the adapters, so a
//! misunderstanding in an adapter shows up as a failing request instead of
//! being mirrored. This root module owns [`serve`], which runs any simulator
//! router on a local socket for tests and for the server's built-in
//! simulators, and the [`Simulator`] trait every simulator implements.
//! Fault injection and the request log, shared by every simulator, live in
//! [`faults`]; deliveries to registered webhooks (`POST /_sim/deliveries`)
//! in [`deliveries`]; how a server or a test starts one kind's simulator
//! from provider config lives in [`factory`].

/// Implements [`Simulator`] for a simulator handle with an inherent
/// `router()` and a `harness` field.
macro_rules! simulator {
    ($sim:ty) => {
        impl std::ops::Deref for $sim {
            type Target = $crate::faults::Harness;

            fn deref(&self) -> &Self::Target {
                &self.harness
            }
        }

        impl $crate::Simulator for $sim {
            fn router(&self) -> axum::Router {
                <$sim>::router(self)
            }
        }
    };
}

pub mod bird;
pub mod deliveries;
pub mod factory;
pub mod faults;
pub mod sendblue;
pub mod talkover;
pub mod telegent;
mod wire;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Deref;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// One provider simulator: an axum router with the shared fault queue and
/// request log in front of it.
///
/// A simulator derefs to its [`faults::Harness`], so `sim.inject(fault)`,
/// `sim.requests()` and the other harness methods are written once, there.
pub trait Simulator: Deref<Target = faults::Harness> + Send + Sync + 'static {
    /// The simulator's router: its API under its prefix, its own control
    /// routes and the harness's, every non-control request logged and
    /// possibly faulted.
    fn router(&self) -> axum::Router;

    /// The faults and request log in front of this simulator.
    fn harness(&self) -> &faults::Harness {
        self
    }
}

/// A simulator being served on a local socket, as returned by [`serve`].
///
/// Dropping it without calling [`Running::shutdown`] also stops the server:
/// the shutdown signal fires when its sender is dropped.
#[derive(Debug)]
pub struct Running {
    /// The address the listener is bound to (with the real port when 0 was asked for).
    pub addr: SocketAddr,
    /// `http://IP:PORT` with no trailing slash; an unspecified bind address
    /// (`0.0.0.0` / `::`) is replaced by the loopback address so the URL is
    /// usable by a client.
    pub base_url: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<io::Result<()>>,
}

impl Running {
    /// Stops accepting connections, lets in-flight requests finish and waits
    /// for the server task to end.
    pub async fn shutdown(self) -> io::Result<()> {
        // An Err only means the server already stopped on its own.
        let _ = self.stop.send(());
        match self.task.await {
            Ok(result) => result,
            Err(join) => Err(io::Error::other(join)),
        }
    }
}

/// Binds `addr` (port 0 picks a free port) and serves `router` on it in a
/// background task with graceful shutdown.
///
/// The router is served with connection info so handlers may extract
/// [`axum::extract::ConnectInfo<SocketAddr>`].
pub async fn serve(router: axum::Router, addr: SocketAddr) -> io::Result<Running> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        axum::serve(listener, service)
            .with_graceful_shutdown(async move {
                // Either an explicit shutdown or the handle being dropped.
                let _ = stopped.await;
            })
            .await
    });
    Ok(Running {
        addr,
        base_url: base_url_for(addr),
        stop,
        task,
    })
}

/// `http://IP:PORT` of a listener bound to `addr`; an unspecified address
/// (`0.0.0.0`, `::`) is reached on loopback.
pub fn base_url_for(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_uses_loopback_for_unspecified_addresses() {
        let v4: SocketAddr = "0.0.0.0:8080".parse().expect("literal address");
        assert_eq!(base_url_for(v4), "http://127.0.0.1:8080");
        let v6: SocketAddr = "[::]:8080".parse().expect("literal address");
        assert_eq!(base_url_for(v6), "http://[::1]:8080");
        let fixed: SocketAddr = "127.0.0.1:9".parse().expect("literal address");
        assert_eq!(base_url_for(fixed), "http://127.0.0.1:9");
    }
}
