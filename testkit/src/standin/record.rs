//! What clients sent the stand-in: every request's method, URI and headers, and (when asked
//! for) every connection's bytes as they came off the socket.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use http::{HeaderMap, Method, Uri};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A request as the stand-in received it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Its method.
    pub method: Method,
    /// Its path and query.
    pub uri: Uri,
    /// Its headers, as sent.
    pub headers: HeaderMap,
}

impl Seen {
    /// The `User-Agent` header's text, or "" (a header that is not visible ASCII included).
    pub fn user_agent(&self) -> String {
        self.headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
}

/// The bytes a client sent on one connection.
type Bytes = Arc<Mutex<Vec<u8>>>;

/// The requests and, with raw recording on, the connections seen so far.
#[derive(Default)]
pub(crate) struct Recorder {
    seen: Mutex<Vec<Seen>>,
    raw: Option<Mutex<Vec<Bytes>>>,
}

impl Recorder {
    pub(crate) fn new(raw: bool) -> Self {
        Self {
            seen: Mutex::default(),
            raw: raw.then(Mutex::default),
        }
    }

    pub(crate) fn request(&self, method: &Method, uri: &Uri, headers: &HeaderMap) {
        lock(&self.seen).push(Seen {
            method: method.clone(),
            uri: uri.clone(),
            headers: headers.clone(),
        });
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        lock(&self.seen).clone()
    }

    /// Each connection's bytes, oldest first; empty unless raw recording is on.
    pub(crate) fn raw(&self) -> Vec<Vec<u8>> {
        self.raw.as_ref().map_or_else(Vec::new, |raw| {
            lock(raw).iter().map(|c| lock(c).clone()).collect()
        })
    }

    /// Where a new connection's bytes go, if they are kept.
    fn connection(&self) -> Option<Bytes> {
        let raw = self.raw.as_ref()?;
        let bytes = Bytes::default();
        lock(raw).push(bytes.clone());
        Some(bytes)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The stand-in's listener: TCP on loopback, each accepted connection recorded if asked.
pub(crate) struct RecordingListener {
    pub(crate) inner: TcpListener,
    pub(crate) recorder: Arc<Recorder>,
}

impl Listener for RecordingListener {
    type Io = Recorded;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Recorded, SocketAddr) {
        let (stream, addr) = Listener::accept(&mut self.inner).await;
        let keep = self.recorder.connection();
        (Recorded { stream, keep }, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// The client's address, as the handler sees it (for the audit event's `sourceIPs`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peer(pub(crate) SocketAddr);

impl Connected<IncomingStream<'_, RecordingListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, RecordingListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

/// A connection that keeps a copy of what the client sends.
pub(crate) struct Recorded {
    stream: TcpStream,
    keep: Option<Bytes>,
}

impl AsyncRead for Recorded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if let (Poll::Ready(Ok(())), Some(keep)) = (&polled, &self.keep) {
            lock(keep).extend_from_slice(&buf.filled()[before..]);
        }
        polled
    }
}

impl AsyncWrite for Recorded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
