//! Serves the router on the listener's connections, with what `axum::serve`
//! cannot do: a deadline for a request's headers, an idle timeout between
//! requests, a cap on open connections per client address and in all, and a
//! drain on shutdown that a proxy in front does not notice.
//!
//! Per connection the accept path sets `TCP_NODELAY`, takes a permit (an
//! atomic add and, with a per-address cap, one short lock on the map of open
//! connections per address), allocates one `Arc<Connection>` and spawns one
//! task. Per request it adds and clears the in-flight count, reads the
//! stopping flag, and inserts `ConnectInfo`, as axum did. Timeouts need no
//! timer per request: the connection's task sleeps until the deadline its
//! last activity allows (at most the shorter timeout), and looks again when
//! it wakes; each read or write only stores a timestamp.

use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    io,
    net::{IpAddr, SocketAddr},
    pin::{Pin, pin},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    Router,
    body::Body,
    extract::ConnectInfo,
    http::{HeaderValue, Request, StatusCode, header},
    serve::Listener,
};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::watch,
    time::Instant,
};
use tower::Service as _;

use crate::config::Settings;

/// What the server is doing; every connection's task watches it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Serving,
    /// Accepting has stopped: finish the request in flight, then close.
    Finishing,
    /// The time to finish is up: close now.
    Cut,
}

/// Whether the server is stopping: `/readyz` answers 503 from the first
/// moment, and every response asks its client to close the connection.
#[derive(Clone, Default)]
pub struct Stopping(Arc<AtomicBool>);

impl Stopping {
    pub fn is_stopping(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn begin(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The limits and timings of serving, from the settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// `None` waits forever.
    pub header_read_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    /// 0: no limit.
    pub max_connections_per_ip: usize,
    pub max_connections: usize,
    pub drain: Duration,
    pub finish_within: Duration,
}

impl Options {
    pub fn from_settings(settings: &Settings) -> Self {
        let millis = |ms: u64| (ms > 0).then(|| Duration::from_millis(ms));
        Self {
            header_read_timeout: millis(settings.header_read_timeout_millis),
            idle_timeout: millis(settings.idle_timeout_millis),
            max_connections_per_ip: settings.max_connections_per_ip,
            max_connections: match settings.max_connections {
                0 => default_max_connections(),
                n => n,
            },
            drain: Duration::from_millis(settings.shutdown_drain_millis),
            finish_within: Duration::from_millis(settings.shutdown_timeout_millis),
        }
    }
}

/// Nine tenths of the open-file limit: running out of descriptors fails far
/// more than new connections (database connections, temporary files, the
/// accept loop itself), so the last tenth is kept for those.
fn default_max_connections() -> usize {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit only writes the struct it is handed.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0
            && limit.rlim_cur != libc::RLIM_INFINITY
        {
            let files = usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX);
            return (files / 10 * 9).max(1);
        }
    }
    usize::MAX
}

/// Serves until `shutdown` completes, then drains: `/readyz` answers 503 and
/// responses carry `Connection: close` for `options.drain` while connections
/// are still accepted (a load balancer takes time to notice, and until then
/// sends new requests here); then accepting stops, `stopped_accepting` runs,
/// and the requests in flight have `options.finish_within` to complete.
pub async fn serve(
    mut listener: TcpListener,
    router: Router,
    options: Options,
    stopping: Stopping,
    shutdown: impl Future<Output = ()> + Send,
    stopped_accepting: impl FnOnce(),
) {
    let admission = Arc::new(Admission::new(&options));
    tracing::info!(
        per_address = options.max_connections_per_ip,
        total = options.max_connections,
        "connection limits"
    );
    let timeouts = Timeouts {
        header: options.header_read_timeout,
        idle: options.idle_timeout,
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Answers go out in one write where possible, as axum's serve did.
    builder.writev(true);
    let (phase, _) = watch::channel(Phase::Serving);
    let drained = async {
        shutdown.await;
        tracing::info!(
            drain_ms = options.drain.as_millis() as u64,
            "stopping: not ready, still serving while the load balancer notices"
        );
        stopping.begin();
        tokio::time::sleep(options.drain).await;
    };
    let mut drained = pin!(drained);
    loop {
        let (stream, peer) = tokio::select! {
            // axum's accept: it rides out accept errors (running out of
            // descriptors among them) by pausing, rather than spinning.
            accepted = Listener::accept(&mut listener) => accepted,
            () = &mut drained => break,
        };
        let Some(permit) = admission.admit(peer.ip()) else {
            // Dropped unread: the client sees its connection closed at once.
            continue;
        };
        // Chat frames are small and must go out at once: with Nagle's
        // algorithm on, a frame written while the previous one is
        // unacknowledged waits for the client's delayed ACK (up to 40 ms).
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(error = %err, "could not set TCP_NODELAY on a connection");
        }
        let connection = Arc::new(Connection::new(permit));
        tokio::spawn(serve_connection(
            stream,
            peer,
            connection,
            router.clone(),
            builder.clone(),
            stopping.clone(),
            timeouts,
            phase.subscribe(),
        ));
    }
    drop(listener);
    tracing::info!("stopped accepting; finishing requests in flight");
    stopped_accepting();
    phase.send_replace(Phase::Finishing);
    if tokio::time::timeout(options.finish_within, phase.closed())
        .await
        .is_err()
    {
        tracing::warn!(
            within_ms = options.finish_within.as_millis() as u64,
            "requests still in flight at the shutdown timeout: cutting their connections"
        );
        phase.send_replace(Phase::Cut);
        // Each task only has to notice; a second is plenty.
        let _ = tokio::time::timeout(Duration::from_secs(1), phase.closed()).await;
    }
}

#[derive(Clone, Copy)]
struct Timeouts {
    header: Option<Duration>,
    idle: Option<Duration>,
}

#[allow(clippy::too_many_arguments)]
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    connection: Arc<Connection>,
    router: Router,
    builder: hyper::server::conn::http1::Builder,
    stopping: Stopping,
    timeouts: Timeouts,
    mut phase: watch::Receiver<Phase>,
) {
    let service = {
        let connection = connection.clone();
        hyper::service::service_fn(move |mut request: Request<Incoming>| {
            connection.request_started();
            request.extensions_mut().insert(ConnectInfo(peer));
            let answer = router.clone().call(request.map(Body::new));
            let (connection, stopping) = (connection.clone(), stopping.clone());
            async move {
                let mut response = answer.await.unwrap_or_else(|never| match never {});
                connection.request_finished();
                // Tells keep-alive clients (a proxy's pool among them) to take
                // their next request elsewhere; hyper closes after this one.
                if stopping.is_stopping() && response.status() != StatusCode::SWITCHING_PROTOCOLS {
                    response
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                Ok::<_, Infallible>(response)
            }
        })
    };
    // The IO carries the connection, permit included, into an upgraded
    // WebSocket: it counts against the caps until the socket closes.
    let io = TokioIo::new(Watched {
        stream,
        connection: connection.clone(),
    });
    let mut served = pin!(builder.serve_connection(io, service).with_upgrades());
    // Accepted during the drain's last moment: finish at once.
    if *phase.borrow_and_update() != Phase::Serving {
        served.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            result = served.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(error = %err, %peer, "connection ended with an error");
                }
                return;
            }
            timeout = connection.expired(timeouts) => {
                metrics::counter!("kith_http_connections_timed_out_total", "waiting" => timeout)
                    .increment(1);
                tracing::debug!(%peer, waiting = timeout, "closing a connection that timed out");
                return;
            }
            changed = phase.changed() => {
                if changed.is_err() {
                    return;
                }
                match *phase.borrow_and_update() {
                    Phase::Serving => {}
                    Phase::Finishing => served.as_mut().graceful_shutdown(),
                    Phase::Cut => return,
                }
            }
        }
    }
}

/// Milliseconds since the connection was accepted; `NONE` for "not now".
const NONE: u64 = u64::MAX;

/// One open connection: what its deadlines are measured from, and its
/// place under the caps.
struct Connection {
    accepted: Instant,
    /// Requests handed to the router and not yet answered.
    in_flight: AtomicU32,
    /// When a byte was last read or written, or a response was ready.
    last_activity: AtomicU64,
    /// When the first byte of the request head being read arrived (at
    /// accept for the first request); `NONE` between requests.
    head_since: AtomicU64,
    _permit: Permit,
}

impl Connection {
    fn new(permit: Permit) -> Self {
        Self {
            accepted: Instant::now(),
            in_flight: AtomicU32::new(0),
            last_activity: AtomicU64::new(0),
            head_since: AtomicU64::new(0),
            _permit: permit,
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.accepted.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn read_some(&self) {
        let now = self.now();
        self.last_activity.store(now, Ordering::Relaxed);
        // Bytes between requests start the next request's head (or are the
        // rest of a body nobody read, which must not dawdle either).
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.head_since.load(Ordering::Relaxed) == NONE
        {
            self.head_since.store(now, Ordering::Relaxed);
        }
    }

    fn wrote_some(&self) {
        self.last_activity.store(self.now(), Ordering::Relaxed);
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_since.store(NONE, Ordering::Relaxed);
    }

    fn request_finished(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.last_activity.store(self.now(), Ordering::Relaxed);
    }

    /// The deadline now, in milliseconds since accept, and what it waits
    /// for; `None` while a request is being handled (the execution timeout
    /// bounds that).
    fn deadline(&self, timeouts: Timeouts) -> Option<(u64, &'static str)> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let millis = |timeout: Duration| u64::try_from(timeout.as_millis()).unwrap_or(NONE);
        match self.head_since.load(Ordering::Relaxed) {
            NONE => timeouts.idle.map(|idle| {
                let since = self.last_activity.load(Ordering::Relaxed);
                (since.saturating_add(millis(idle)), "idle")
            }),
            since => timeouts
                .header
                .map(|header| (since.saturating_add(millis(header)), "headers")),
        }
    }

    /// Completes when the connection has waited too long for headers or sat
    /// idle too long; says which.
    async fn expired(&self, timeouts: Timeouts) -> &'static str {
        let recheck = match (timeouts.header, timeouts.idle) {
            (None, None) => return std::future::pending().await,
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
        };
        loop {
            let now = self.now();
            // Never past `recheck`: a deadline can move earlier while this
            // sleeps (the headers came, were answered, and the connection is
            // now idle, with a shorter timeout than the headers had).
            let soon = Instant::now() + recheck;
            let wake = match self.deadline(timeouts) {
                Some((at, waiting)) if at <= now => return waiting,
                Some((at, _)) => soon.min(self.accepted + Duration::from_millis(at)),
                None => soon,
            };
            tokio::time::sleep_until(wake).await;
        }
    }
}

/// The TCP stream, noting when bytes move.
struct Watched {
    stream: TcpStream,
    connection: Arc<Connection>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.connection.read_some();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.connection.wrote_some();
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.connection.wrote_some();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// Counts open connections, per TCP peer address and in all. Behind a proxy
/// every connection comes from the proxy's address: raise the per-address
/// cap there (or set it to 0 and let the proxy limit clients).
struct Admission {
    per_address: usize,
    total: usize,
    open: AtomicUsize,
    by_address: Mutex<HashMap<IpAddr, usize>>,
}

impl Admission {
    fn new(options: &Options) -> Self {
        Self {
            per_address: options.max_connections_per_ip,
            total: options.max_connections,
            open: AtomicUsize::new(0),
            by_address: Mutex::new(HashMap::new()),
        }
    }

    fn admit(self: &Arc<Self>, address: IpAddr) -> Option<Permit> {
        // An IPv4 client on a dual-stack socket is the same client.
        let address = address.to_canonical();
        if self.open.fetch_add(1, Ordering::Relaxed) >= self.total {
            self.open.fetch_sub(1, Ordering::Relaxed);
            refused("total");
            return None;
        }
        if self.per_address > 0 {
            let mut by_address = self
                .by_address
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let open = by_address.entry(address).or_insert(0);
            if *open >= self.per_address {
                drop(by_address);
                self.open.fetch_sub(1, Ordering::Relaxed);
                refused("per_address");
                return None;
            }
            *open += 1;
        }
        Some(Permit {
            admission: self.clone(),
            address,
        })
    }
}

fn refused(reason: &'static str) {
    metrics::counter!("kith_http_connections_refused_total", "reason" => reason).increment(1);
    tracing::debug!(reason, "connection refused: too many open");
}

/// One admitted connection; gives its place back when dropped.
struct Permit {
    admission: Arc<Admission>,
    address: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let admission = &self.admission;
        if admission.per_address > 0 {
            let mut by_address = admission
                .by_address
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(open) = by_address.get_mut(&self.address) {
                *open -= 1;
                if *open == 0 {
                    by_address.remove(&self.address);
                }
            }
        }
        admission.open.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(per_address: usize, total: usize) -> Arc<Admission> {
        Arc::new(Admission {
            per_address,
            total,
            open: AtomicUsize::new(0),
            by_address: Mutex::new(HashMap::new()),
        })
    }

    #[test]
    fn caps_hold_per_address_and_in_all_and_free_on_drop() {
        let caps = admission(2, 3);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = caps.admit(a).expect("first from a");
        let _second = caps.admit(a).expect("second from a");
        assert!(caps.admit(a).is_none(), "a third from a is over its cap");
        let _third = caps.admit(b).expect("b has its own count");
        assert!(caps.admit(b).is_none(), "three open in all");
        drop(first);
        assert!(
            caps.admit(b).is_some(),
            "a closed connection frees its place"
        );
        // The failed attempts gave back what they took.
        assert_eq!(caps.open.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn an_ipv4_client_on_a_dual_stack_socket_counts_as_itself() {
        let caps = admission(1, 10);
        let _v4 = caps.admit("10.0.0.1".parse().unwrap()).unwrap();
        assert!(caps.admit("::ffff:10.0.0.1".parse().unwrap()).is_none());
    }
}
