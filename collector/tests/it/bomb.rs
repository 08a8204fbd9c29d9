//! A gzip bomb posted to a real `whakapapa-collector serve` process is refused with 413, and the
//! process's peak memory stays near the decompressed-size cap, not the bomb's size.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;

/// Kills the server when the test ends, whatever happens.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Peak resident memory of a process, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

/// One HTTP/1.1 request on a fresh connection; returns the status code and the body.
fn request(port: u16, head: &str, body: &[u8]) -> (u16, String) {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    tcp.write_all(head.as_bytes()).unwrap();
    // The server may answer 413 and close before it has read the whole body.
    let _ = tcp.write_all(body);
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let code = answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {answer:?}"));
    (code, answer)
}

fn get(port: u16, path: &str) -> u16 {
    let head = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    request(port, &head, b"").0
}

#[test]
#[cfg(target_os = "linux")]
fn a_gzip_bomb_is_refused_without_memory_growth_past_the_cap() {
    const CAP: u64 = 8 << 20; // --max-decompressed
    const INFLATED: usize = 1 << 30; // what the bomb inflates to: 1 GiB

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_whakapapa-collector"))
            .args([
                "serve",
                "--db",
                db.to_str().unwrap(),
                "--openapi",
                "embedded",
            ])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--max-decompressed", &CAP.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = server.0.id();
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() || get(port, "/readyz") != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "serve never got ready"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // 1 GiB of one byte gzips to about 1 MiB: well under --max-body (16 MiB as sent).
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..INFLATED / chunk.len() {
        gz.write_all(&chunk).unwrap();
    }
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 4 << 20, "bomb is {} bytes", bomb.len());

    let before = peak_rss_kib(pid);
    let head = format!(
        "POST /audit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Encoding: gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        bomb.len()
    );
    let (code, answer) = request(port, &head, &bomb);
    assert_eq!(code, 413, "{answer}");
    assert!(answer.contains("once decompressed"), "{answer}");

    let after = peak_rss_kib(pid);
    let growth = after.saturating_sub(before) * 1024;
    eprintln!(
        "gzip bomb: {} bytes inflating to {INFLATED}; peak RSS {before} KiB -> {after} KiB",
        bomb.len()
    );
    // The cap, the compressed body, and slack for buffers: nowhere near the bomb's 1 GiB.
    assert!(
        growth < CAP + (32 << 20),
        "peak RSS grew by {growth} bytes for a cap of {CAP}"
    );
    // The server is still serving, and stored nothing of it.
    assert_eq!(get(port, "/healthz"), 200);
    drop(server);
    let reader = whakapapa_collector::store::open_reader(&db).unwrap();
    let counts = whakapapa_collector::store::read::counts(&reader).unwrap();
    assert_eq!(counts.requests, 0);
}
