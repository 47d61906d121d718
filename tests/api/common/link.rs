//! A TCP link the test can cut: it forwards to a real server (PostgreSQL,
//! Redis) until told to refuse connections or to swallow them, so a test sees
//! what kith does when a dependency goes away, without stopping the shared one.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Bytes flow both ways.
    Pass,
    /// Open connections are cut, new ones closed at once: a server that is down.
    Refuse,
    /// Open connections are cut, new ones accepted and never answered: a
    /// server (or network) that hangs.
    Swallow,
}

pub struct Link {
    pub addr: SocketAddr,
    mode: watch::Sender<Mode>,
    accepting: JoinHandle<()>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Link {
    /// Forwards `127.0.0.1:<free port>` to `upstream`.
    pub async fn to(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mode, watching) = watch::channel(Mode::Pass);
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let held = connections.clone();
        let accepting = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mode = *watching.borrow();
                let task = match mode {
                    Mode::Refuse => continue, // dropped: closed at once
                    Mode::Swallow => tokio::spawn(async move {
                        let _held = client;
                        std::future::pending::<()>().await;
                    }),
                    Mode::Pass => tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    }),
                };
                held.lock().unwrap().push(task);
            }
        });
        Self {
            addr,
            mode,
            accepting,
            connections,
        }
    }

    /// Switches mode; leaving `Pass` cuts every open connection.
    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
        if mode != Mode::Pass {
            for task in self.connections.lock().unwrap().drain(..) {
                task.abort();
            }
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.accepting.abort();
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}
