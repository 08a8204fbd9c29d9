//! The text `ingest` prints when it is done.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::ingest::Summary;

/// Where and how long.
pub(super) struct Context<'a> {
    pub db: &'a Path,
    pub release: &'a str,
    /// Where the release's conformance metadata lists came from.
    pub lists: &'a [String],
    pub run: i64,
    pub elapsed: Duration,
    pub requests_in_db: u64,
    /// Peak resident memory of the process (VmHWM), when the OS tells.
    pub peak_kib: Option<u64>,
}

/// Malformed inputs listed in full; the rest are counted (all are in the `malformed` table).
const LISTED: usize = 20;

/// Peak resident memory of this process in KiB (Linux: `VmHWM` of /proc/self/status).
pub(super) fn peak_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub(super) fn render(s: &Summary, c: &Context<'_>) -> String {
    let t = &s.totals;
    let secs = c.elapsed.as_secs_f64();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "ingested {} input{} into {} (release {}, run {}) in {:.2}s, {:.0} events/s",
        s.inputs,
        if s.inputs == 1 { "" } else { "s" },
        c.db.display(),
        c.release,
        c.run,
        secs,
        if secs > 0.0 {
            t.events as f64 / secs
        } else {
            0.0
        }
    );
    let _ = writeln!(out, "  release {} metadata:", c.release);
    for line in c.lists {
        let _ = writeln!(out, "    {line}");
    }
    let rows = [
        ("events read", t.events),
        ("requests stored", t.new),
        ("stage updates", t.advanced),
        ("earlier stages", t.earlier_stage),
        ("duplicates", t.duplicates),
        ("purposes", s.purposes),
        ("malformed lines", t.malformed),
        ("requests in database", c.requests_in_db),
    ];
    for (label, n) in rows {
        let _ = writeln!(out, "  {label:<22}{n:>12}");
    }
    if let Some(kib) = c.peak_kib {
        let _ = writeln!(out, "  {:<22}{:>12} MiB", "peak memory", kib / 1024);
    }
    if !t.unmapped.is_empty() {
        let _ = writeln!(out, "  not mapped to an endpoint:");
        let mut by_count: Vec<_> = t.unmapped.iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (mapping, n) in by_count {
            let _ = writeln!(out, "    {mapping:<32}{n:>10}");
        }
    }
    if !s.malformed.is_empty() {
        let _ = writeln!(out, "  malformed:");
        let mut listed = s.malformed.clone();
        listed.sort_by(|a, b| a.source.cmp(&b.source).then(a.line.cmp(&b.line)));
        for m in listed.iter().take(LISTED) {
            match m.line {
                Some(line) => {
                    let _ = writeln!(out, "    {}:{}: {}", m.source, line, m.reason);
                }
                None => {
                    let _ = writeln!(out, "    {}: {}", m.source, m.reason);
                }
            }
        }
        if t.malformed as usize > LISTED {
            let _ = writeln!(
                out,
                "    ... and {} more (table `malformed`)",
                t.malformed as usize - LISTED
            );
        }
    }
    out
}
