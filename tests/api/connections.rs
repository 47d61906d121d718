//! Connections as a client sees them at the TCP level: a request head sent
//! too slowly and a keep-alive connection left idle are closed, one address
//! over its cap is turned away while others are served, and a stop on SIGTERM
//! drains so that a client in the middle of requests never sees one cut.
//! "Closed" means a read returns end of file (or a reset) within a bound
//! generous enough for a loaded machine; nothing here measures time.

use crate::common;

use std::{net::SocketAddr, time::Duration};

use common::{spawn_app_with, spawn_process};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

/// Long enough that a connection the server keeps is told apart from one it
/// closed, on any machine.
const GENEROUS: Duration = Duration::from_secs(10);

/// Whether the server closes `stream` within `wait` (anything it sends
/// first is read and dropped).
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(wait, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await
    .is_ok()
}

/// A connection to `addr` from the local address `from` (any loopback
/// address reaches the server: each is a client of its own).
async fn connect_from(from: &str, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(format!("{from}:0").parse().unwrap())
        .expect("bind a loopback address");
    socket.connect(addr).await.expect("connects")
}

/// One HTTP/1.1 response as read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    close: bool,
}

/// Reads one response; on failure, how many bytes of it had arrived.
async fn read_answer(stream: &mut TcpStream) -> Result<Answer, usize> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return Err(buf.len()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status code");
    let header = |name: &str| {
        head.lines()
            .find_map(|line| line.strip_prefix(name))
            .map(|value| value.trim().to_owned())
    };
    let length: usize = header("content-length:")
        .and_then(|value| value.parse().ok())
        .expect("responses here have a length");
    let close = header("connection:").is_some_and(|value| value == "close");
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return Err(buf.len()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Ok(Answer { status, close })
}

async fn get(stream: &mut TcpStream, path: &str) -> Result<Answer, usize> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: kith\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|_| 0usize)?;
    read_answer(stream).await
}

#[tokio::test]
async fn a_request_head_sent_too_slowly_is_closed() {
    let app = spawn_app_with(|settings| {
        settings.header_read_timeout_millis = 300;
        settings.idle_timeout_millis = 600_000;
    })
    .await;
    let mut half_sent = TcpStream::connect(app.addr).await.unwrap();
    half_sent.write_all(b"GET /healthz HT").await.unwrap();
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    assert!(
        closed_within(&mut half_sent, GENEROUS).await,
        "half a request line"
    );
    assert!(closed_within(&mut silent, GENEROUS).await, "nothing at all");

    // A whole request in time is answered, on a connection kept alive.
    let mut prompt = TcpStream::connect(app.addr).await.unwrap();
    assert_eq!(get(&mut prompt, "/healthz").await.unwrap().status, 200);
    assert_eq!(get(&mut prompt, "/healthz").await.unwrap().status, 200);
}

#[tokio::test]
async fn a_body_trickled_too_slowly_is_answered_408() {
    let app = spawn_app_with(|settings| {
        settings.body_read_timeout_millis = 300;
    })
    .await;
    let mut trickling = TcpStream::connect(app.addr).await.unwrap();
    trickling
        .write_all(
            b"POST /graphql HTTP/1.1\r\nHost: kith\r\nContent-Type: application/json\r\n\
              Content-Length: 1000\r\n\r\n{\"query\"",
        )
        .await
        .unwrap();
    let answer = tokio::time::timeout(GENEROUS, read_answer(&mut trickling))
        .await
        .expect("answered, not held")
        .expect("a whole answer");
    assert_eq!(answer.status, 408);

    // A body that arrives in time is served as ever.
    let mut prompt = TcpStream::connect(app.addr).await.unwrap();
    let body = r#"{"query":"{ __typename }"}"#;
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: kith\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    prompt.write_all(request.as_bytes()).await.unwrap();
    assert_eq!(read_answer(&mut prompt).await.unwrap().status, 200);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_but_an_idle_websocket_is_not() {
    let app = spawn_app_with(|settings| {
        settings.header_read_timeout_millis = 600_000;
        settings.idle_timeout_millis = 300;
    })
    .await;
    let mut socket = app.websocket("/graphql", "graphql-transport-ws").await;
    let mut kept_alive = TcpStream::connect(app.addr).await.unwrap();
    // Connected a moment before the request, so the server first waits on
    // the (long) header timeout, and must notice the idle one comes sooner.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let answer = get(&mut kept_alive, "/healthz").await.unwrap();
    assert_eq!(answer.status, 200);
    assert!(!answer.close, "kept alive after the answer");
    assert!(
        closed_within(&mut kept_alive, GENEROUS).await,
        "idle after its request"
    );
    // Upgraded, the connection is the socket's: its own keep-alives and
    // the init timeout look after it. Idle longer than the connection just
    // closed, it still answers.
    socket
        .send(serde_json::json!({ "type": "connection_init", "payload": {} }))
        .await;
    let ack = socket.nothing_before(|_| true).await;
    assert_eq!(
        ack["type"], "connection_ack",
        "a WebSocket outlives the HTTP idle timeout: {ack}"
    );
}

#[tokio::test]
async fn one_address_over_its_cap_is_turned_away_while_others_are_served() {
    let app = spawn_app_with(|settings| {
        settings.max_connections_per_ip = 50;
        settings.header_read_timeout_millis = 600_000;
    })
    .await;
    // 300 half-sent requests from 127.0.0.1: the first 50 are held, the
    // rest closed as they come.
    let mut flood = Vec::new();
    for _ in 0..300 {
        let mut stream = connect_from("127.0.0.1", app.addr).await;
        // The server may have closed it already.
        let _ = stream.write_all(b"POST /graphql HTT").await;
        flood.push(stream);
    }
    // Another client is served throughout.
    let mut other = connect_from("127.0.0.2", app.addr).await;
    assert_eq!(get(&mut other, "/healthz").await.unwrap().status, 200);
    let closed = futures_util::future::join_all(
        flood
            .iter_mut()
            .map(|stream| closed_within(stream, Duration::from_secs(5))),
    )
    .await;
    assert_eq!(
        closed.iter().filter(|closed| **closed).count(),
        250,
        "all but the 50 allowed are closed"
    );
    // A 51st from the flooding address is turned away at once...
    let mut over = connect_from("127.0.0.1", app.addr).await;
    assert!(get(&mut over, "/healthz").await.is_err());
    // ...until its connections are released.
    drop(flood);
    let served = tokio::time::timeout(GENEROUS, async {
        loop {
            let mut stream = connect_from("127.0.0.1", app.addr).await;
            if let Ok(answer) = get(&mut stream, "/healthz").await {
                return answer.status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(served, Ok(200));
}

#[tokio::test]
async fn upgraded_websockets_count_against_the_cap_until_they_close() {
    let app = spawn_app_with(|settings| settings.max_connections_per_ip = 2).await;
    let first = app.websocket("/graphql", "graphql-transport-ws").await;
    let _second = app.websocket("/graphql", "graphql-transport-ws").await;
    let mut third = TcpStream::connect(app.addr).await.unwrap();
    assert!(
        get(&mut third, "/healthz").await.is_err(),
        "two sockets are the cap"
    );
    drop(first);
    let served = tokio::time::timeout(GENEROUS, async {
        loop {
            let mut stream = TcpStream::connect(app.addr).await.unwrap();
            if let Ok(answer) = get(&mut stream, "/healthz").await {
                return answer.status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(served, Ok(200), "a closed socket frees its place");
}

/// What the looping client saw while the server stopped.
#[derive(Default, Debug)]
struct Seen {
    answered: usize,
    /// Answers with `Connection: close`, sent while draining.
    told_to_close: usize,
    /// Fresh connections closed before a byte of an answer: the client
    /// retries these (a proxy retries them on another replica).
    fresh_closed: usize,
    /// Anything a proxy would turn into a 502: a reused connection closed
    /// without an answer, an answer cut short, a status other than 200.
    broken: Vec<String>,
}

/// Posts a query in a loop over keep-alive connections until the server
/// refuses connections (it has stopped accepting).
async fn keep_asking(addr: SocketAddr) -> Seen {
    let body = r#"{"query":"{ __typename }"}"#;
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: kith\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut seen = Seen::default();
    let mut connection: Option<(TcpStream, usize)> = None;
    loop {
        let (stream, used) = match connection.as_mut() {
            Some(open) => open,
            None => match TcpStream::connect(addr).await {
                Ok(stream) => connection.insert((stream, 0)),
                Err(_) => return seen,
            },
        };
        let sent = stream.write_all(request.as_bytes()).await;
        let answer = match sent {
            Ok(()) => read_answer(stream).await,
            Err(_) => Err(0),
        };
        match answer {
            Ok(answer) => {
                *used += 1;
                seen.answered += 1;
                if answer.status != 200 {
                    seen.broken.push(format!("status {}", answer.status));
                }
                if answer.close {
                    seen.told_to_close += 1;
                    connection = None;
                }
            }
            Err(0) if *used == 0 => {
                seen.fresh_closed += 1;
                connection = None;
            }
            Err(0) => {
                seen.broken.push(format!(
                    "a connection that had answered {used} closed without an answer"
                ));
                connection = None;
            }
            Err(bytes) => {
                seen.broken
                    .push(format!("an answer cut after {bytes} bytes"));
                connection = None;
            }
        }
    }
}

/// `/readyz` on fresh connections until it answers 503 (true) or the
/// server stops accepting first (false).
async fn readiness_turns_503(addr: SocketAddr) -> bool {
    loop {
        let Ok(mut stream) = TcpStream::connect(addr).await else {
            return false;
        };
        if let Ok(answer) = get(&mut stream, "/readyz").await
            && answer.status == 503
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_stop_on_sigterm_drains_without_cutting_a_request() {
    let mut app = spawn_process(|command| {
        command.env("KITH_SHUTDOWN_DRAIN_MILLIS", "1500");
    })
    .await;
    let addr = app.addr;
    let client = tokio::spawn(keep_asking(addr));
    // Under way, on a kept-alive connection, before the signal.
    let mut probe = TcpStream::connect(addr).await.unwrap();
    assert_eq!(get(&mut probe, "/readyz").await.unwrap().status, 200);
    drop(probe);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, not_ready) = tokio::join!(app.terminate(), readiness_turns_503(addr));
    let seen = tokio::time::timeout(GENEROUS, client)
        .await
        .expect("the client's loop ends once the server stops accepting")
        .unwrap();
    assert!(status.success(), "exits 0: {status:?}");
    assert!(not_ready, "/readyz answers 503 during the drain");
    assert!(seen.broken.is_empty(), "{seen:?}");
    assert!(seen.answered > 0, "{seen:?}");
    assert!(
        seen.told_to_close > 0,
        "answers during the drain ask keep-alive clients to go: {seen:?}"
    );
}
