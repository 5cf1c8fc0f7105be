//! The load tool's HTTP client: one HTTP/1.1 keep-alive connection per
//! virtual user, straight on hyper, with no pool, no redirects and no
//! decompression, so the client spends as little of the shared CPU as it
//! can. A connection that fails is dropped and opened again on the next
//! request.

use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Where requests go and as whom.
#[derive(Debug, Clone)]
pub struct Target {
    /// The server's socket address.
    pub addr: SocketAddr,
    host: HeaderValue,
    bearer: HeaderValue,
}

impl Target {
    /// `url` is the server's root (`http://127.0.0.1:8080`); `token` the
    /// API token sent as `Authorization: Bearer`.
    pub async fn new(url: &str, token: &str) -> Result<Self, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("--url {url}: {e}"))?;
        if parsed.scheme() != "http" {
            return Err(format!("--url {url}: only http:// is supported"));
        }
        let host = parsed.host_str().ok_or(format!("--url {url}: no host"))?;
        let port = parsed.port_or_known_default().unwrap_or(80);
        let addr = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("--url {url}: {e}"))?
            .next()
            .ok_or(format!("--url {url}: the host has no address"))?;
        Ok(Self {
            addr,
            host: HeaderValue::from_str(&format!("{host}:{port}")).map_err(|e| e.to_string())?,
            bearer: HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| "--token: not a valid header value".to_owned())?,
        })
    }
}

/// An answer: its status and whole body.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Bytes,
}

/// One keep-alive connection.
pub struct Conn {
    target: Target,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    /// A connection to `target`, opened on first use.
    pub fn new(target: Target) -> Self {
        Self {
            target,
            sender: None,
        }
    }

    /// Sends one request (`body` as JSON of `content_type`) and reads the
    /// whole answer. A transport error closes the connection.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<(Bytes, &'static str)>,
    ) -> Result<Reply, String> {
        let result = self.exchange(method, path, body).await;
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    /// Sends `request` exactly as built (no token and no `Host` added: the
    /// relay load sends a provider's own headers) and reads the whole
    /// answer. A transport error closes the connection.
    pub async fn send_request(&mut self, request: Request<Full<Bytes>>) -> Result<Reply, String> {
        let result = self.round_trip(request).await;
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    async fn exchange(
        &mut self,
        method: Method,
        path: &str,
        body: Option<(Bytes, &'static str)>,
    ) -> Result<Reply, String> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.target.host.clone())
            .header(AUTHORIZATION, self.target.bearer.clone());
        let payload = match body {
            Some((bytes, content_type)) => {
                request = request.header(CONTENT_TYPE, content_type);
                bytes
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(payload))
            .map_err(|e| e.to_string())?;
        self.round_trip(request).await
    }

    async fn round_trip(&mut self, request: Request<Full<Bytes>>) -> Result<Reply, String> {
        let sender = match &mut self.sender {
            Some(s) if !s.is_closed() => s,
            _ => self.sender.insert(connect(self.target.addr).await?),
        };
        sender.ready().await.map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok(Reply { status, body })
    }
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        // The error surfaces through the sender; nothing to add here.
        let _ = connection.await;
    });
    Ok(sender)
}
