//! A scripted HTTP/1.1 server on 127.0.0.1 for tests: it answers each request as a function
//! says, including the misbehaviours a client must classify (no answer, a dropped connection,
//! a truncated body).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// A request as the fake node received it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Request {
    pub method: String,
    pub path: String,
    pub body: String,
}

/// How the fake node answers one request.
pub(crate) enum Reply {
    /// This status, extra headers and a JSON body.
    Json {
        code: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Never answer, keeping the connection open.
    Hang,
    /// Close the connection without answering.
    Close,
    /// A 200 whose body is cut short by closing the connection.
    TruncatedBody,
}

/// A JSON answer without extra headers.
pub(crate) fn json(code: u16, body: &str) -> Reply {
    Reply::Json {
        code,
        headers: Vec::new(),
        body: body.to_string(),
    }
}

/// A 307 to `location`, as a follower sends it.
pub(crate) fn redirect(location: &str) -> Reply {
    Reply::Json {
        code: 307,
        headers: vec![("Location".into(), location.into())],
        body: r#"{"error":"not the leader"}"#.into(),
    }
}

type Script = dyn Fn(&Request) -> Reply + Send + Sync;

/// A running fake node; it stops when dropped.
pub(crate) struct FakeNode {
    pub url: String,
    requests: Arc<Mutex<Vec<Request>>>,
    server: JoinHandle<()>,
}

impl FakeNode {
    /// Starts a fake node that answers with `script`.
    pub(crate) async fn start(
        script: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> FakeNode {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let log = requests.clone();
        let server = tokio::spawn(async move {
            // Connections live in the set, so stopping the server closes them.
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                connections.spawn(serve(stream, script.clone(), log.clone()));
            }
        });
        FakeNode {
            url: format!("http://{addr}"),
            requests,
            server,
        }
    }

    /// Every request received so far.
    pub(crate) fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A URL where nothing listens: connecting to it is refused.
pub(crate) async fn refusing_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

async fn serve(mut stream: TcpStream, script: Arc<Script>, log: Arc<Mutex<Vec<Request>>>) {
    let mut buffer = Vec::new();
    while let Some(request) = read_request(&mut stream, &mut buffer).await {
        log.lock().unwrap().push(request.clone());
        // What to send, and whether to close the connection afterwards.
        let (head, body, close) = match script(&request) {
            Reply::Json {
                code,
                headers,
                body,
            } => {
                let extra: String = headers
                    .iter()
                    .map(|(name, value)| format!("{name}: {value}\r\n"))
                    .collect();
                let head = format!(
                    "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra}\r\n",
                    body.len()
                );
                (head, body, false)
            }
            Reply::Hang => std::future::pending().await,
            Reply::Close => return,
            Reply::TruncatedBody => {
                let head = "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n".to_string();
                (head, r#"{"key":"#.to_string(), true)
            }
        };
        let sent = stream.write_all(head.as_bytes()).await.is_ok()
            && stream.write_all(body.as_bytes()).await.is_ok();
        if !sent || close {
            return;
        }
    }
}

/// Reads one request (head and `content-length` body); `None` once the client closes.
async fn read_request(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<Request> {
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        read_more(stream, buffer).await?;
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
    let mut lines = head.lines();
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_string();
    let path = request_line.next()?.to_string();
    let length: usize = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        read_more(stream, buffer).await?;
    }
    let body = String::from_utf8_lossy(&buffer[head_end..head_end + length]).to_string();
    buffer.drain(..head_end + length);
    Some(Request { method, path, body })
}

async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0; 4096];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buffer.extend_from_slice(&chunk[..n]);
            Some(())
        }
    }
}
