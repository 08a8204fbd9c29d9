//! CPU time per event of an ingest worker (parse, map, user agent, record), one thread, on the
//! generated events of `benches/ingest.rs`, in 5,000-line chunks as the worker gets them.
//!
//! - `parse`: bare `audit::parse_event` (baseline: what serde derive does with an owned event);
//! - `owned`: `audit::parse_event` then `Converter::record`, the webhook's path (baseline);
//! - `line`: `Converter::line`, the ingest worker's path;
//! - `drop`: freeing one chunk's records, which the pipeline does on its acknowledging thread.
//!
//! Run: `cargo bench -p whakapapa-collector --bench convert`
//! (`WHAKAPAPA_BENCH_EVENTS=200000` for more lines, `WHAKAPAPA_BENCH_RUNS=9` for more runs,
//! `WHAKAPAPA_BENCH_ONLY=line` to run only `line`, e.g. under a profiler.)

use whakapapa_testkit::events;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use whakapapa_collector::audit;
use whakapapa_collector::ingest::Converter;
use whakapapa_collector::mapping::Mapper;
use whakapapa_collector::store::RequestRecord;

use events::{Config, Events};
use whakapapa_testkit::figures::{env_u64, median};

const CHUNK: usize = 5_000;

/// Time this thread has been on a CPU (Linux), else wall time: the machine is shared, and
/// another process's turn on our core is not our cost.
struct Clock(Instant);

impl Clock {
    fn now(&self) -> Duration {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .map_or_else(|| self.0.elapsed(), Duration::from_nanos)
    }
}

/// Nanoseconds per line of `make` over every chunk, and of dropping what it made.
fn per_line(lines: &[&[u8]], mut make: impl FnMut(&[u8], &mut Vec<RequestRecord>)) -> (f64, f64) {
    let clock = Clock(Instant::now());
    let (mut work, mut free) = (Duration::ZERO, Duration::ZERO);
    for chunk in lines.chunks(CHUNK) {
        let start = clock.now();
        let mut records = Vec::with_capacity(chunk.len());
        for line in chunk {
            make(line, &mut records);
        }
        let made = clock.now();
        work += made - start;
        drop(black_box(records));
        free += clock.now() - made;
    }
    let n = lines.len() as f64;
    (work.as_nanos() as f64 / n, free.as_nanos() as f64 / n)
}

fn main() {
    let n = env_u64("WHAKAPAPA_BENCH_EVENTS", 100_000);
    let runs = env_u64("WHAKAPAPA_BENCH_RUNS", 5).max(1) as usize;
    let catalog = events::catalog();
    let g = Events::new(&catalog, Config::busy_log());
    let mut data = Vec::new();
    g.write_lines(0..n, &mut data).expect("generate");
    let lines: Vec<&[u8]> = data
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let mapper = Arc::new(Mapper::new(&catalog));

    let (mut parse, mut owned, mut line, mut free) = (vec![], vec![], vec![], vec![]);
    if std::env::var("WHAKAPAPA_BENCH_ONLY").is_ok_and(|v| v == "line") {
        for _ in 0..runs {
            let mut c = Converter::new(Some(mapper.clone()));
            let (t, f) = per_line(&lines, |l, out| out.push(c.line(l).expect("parses")));
            println!("line {t:.0} ns/event, drop {f:.0} ns/event");
        }
        return;
    }
    for _ in 0..runs {
        parse.push(
            per_line(&lines, |l, _| {
                black_box(audit::parse_event(l).expect("a generated event parses"));
            })
            .0,
        );
        // A fresh converter per run, as an ingest starts with an empty user-agent cache.
        let mut c = Converter::new(Some(mapper.clone()));
        owned.push(
            per_line(&lines, |l, out| {
                out.push(c.record(audit::parse_event(l).expect("parses")));
            })
            .0,
        );
        let mut c = Converter::new(Some(mapper.clone()));
        let (t, f) = per_line(&lines, |l, out| {
            out.push(c.line(l).expect("parses"));
        });
        line.push(t);
        free.push(f);
    }
    let (parse, owned, line, free) = (median(parse), median(owned), median(line), median(free));
    println!(
        "{} lines, {:.0} bytes/line, {CHUNK}-line chunks, median of {runs} runs",
        lines.len(),
        data.len() as f64 / lines.len() as f64
    );
    println!(
        "{:<48}{:>9.0} ns/event (baseline)",
        "parse: audit::parse_event", parse
    );
    println!(
        "{:<48}{:>9.0} ns/event (baseline)",
        "owned: parse_event + Converter::record", owned
    );
    println!(
        "{:<48}{:>9.0} ns/event  = {:.2}x owned, {:.2}x parse",
        "line: Converter::line (ingest worker)",
        line,
        line / owned,
        line / parse
    );
    println!(
        "{:<48}{:>9.0} ns/event  (ack thread in the pipeline)",
        "drop: records of Converter::line", free
    );
}
