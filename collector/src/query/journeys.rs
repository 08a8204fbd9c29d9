//! Journeys: frequent ordered endpoint sequences that programs take.
//!
//! A client's requests, in time order, are cut into *episodes* where the client is idle for
//! longer than the gap. An episode's *purpose* is the innermost function every one of its call
//! stacks passes through (e.g. `shop_controller::reconcile`), compared by function name because
//! one function calls from several lines and a user agent's stack may be cut where the
//! side channel's is whole. Every contiguous endpoint sequence of 2..=max_len requests of an
//! episode is counted once per episode (its *support*). A sequence inside a longer one with the
//! same support says nothing more and is left out.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde::Serialize;

use super::Table;

/// One request, as journeys see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The client (identity, user, source IPs, test), as one key.
    pub client: i64,
    /// App name.
    pub app: String,
    /// The application's functions of its call stack, innermost first (empty without one).
    pub stack: Arc<Vec<String>>,
    /// operationId.
    pub endpoint: String,
    /// Received, unix µs.
    pub at_us: i64,
}

/// A run of one client's requests without a long pause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Episode {
    /// App.
    pub app: String,
    /// The innermost function all its stacks pass through.
    pub purpose: String,
    /// Endpoints in order.
    pub sequence: Vec<String>,
}

/// A frequent sequence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Journey {
    /// App.
    pub app: String,
    /// The innermost function all its stacks pass through (`""`: none).
    pub purpose: String,
    /// operationIds in order.
    pub sequence: Vec<String>,
    /// Episodes it appears in.
    pub support: u64,
}

/// The innermost function all stacks share (`""` if none; stacks without frames are skipped).
pub fn common_purpose(stacks: &[&Arc<Vec<String>>]) -> String {
    let mut with = stacks.iter().filter(|s| !s.is_empty());
    let Some(first) = with.next() else {
        return String::new();
    };
    let rest: Vec<BTreeSet<&str>> = with
        .map(|s| s.iter().map(String::as_str).collect())
        .collect();
    first
        .iter()
        .find(|f| rest.iter().all(|r| r.contains(f.as_str())))
        .cloned()
        .unwrap_or_default()
}

/// Cuts steps (sorted by client, then time) into episodes.
pub fn episodes(steps: &[Step], gap_us: i64) -> Vec<Episode> {
    let mut out: Vec<Episode> = Vec::new();
    let mut start = 0;
    for i in 1..=steps.len() {
        let cut = i == steps.len()
            || steps[i].client != steps[i - 1].client
            || steps[i].at_us - steps[i - 1].at_us > gap_us;
        if cut {
            let run = &steps[start..i];
            let stacks: Vec<&Arc<Vec<String>>> = run.iter().map(|s| &s.stack).collect();
            out.push(Episode {
                app: run[0].app.clone(),
                purpose: common_purpose(&stacks),
                sequence: run.iter().map(|s| s.endpoint.clone()).collect(),
            });
            start = i;
        }
    }
    out
}

/// (app, purpose, endpoints) of a counted sequence, as interned ids.
type Sequence = (u32, u32, Box<[u32]>);

/// Counts episodes' sequences one episode at a time, so a caller can stream requests without
/// holding them (memory grows with the distinct sequences, kept as interned ids).
#[derive(Debug, Default)]
pub struct Miner {
    max_len: usize,
    names: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u32>,
    support: HashMap<Sequence, u64>,
}

impl Miner {
    /// Mines sequences of 2..=`max_len` endpoints.
    pub fn new(max_len: usize) -> Miner {
        Miner {
            max_len,
            ..Miner::default()
        }
    }

    fn id(&mut self, name: &Arc<str>) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.clone());
        self.ids.insert(name.clone(), id);
        id
    }

    /// Counts one episode: each distinct contiguous sequence once.
    pub fn add(&mut self, app: &Arc<str>, purpose: &Arc<str>, sequence: &[Arc<str>]) {
        if sequence.len() < 2 {
            return;
        }
        let (app, purpose) = (self.id(app), self.id(purpose));
        let seq: Vec<u32> = sequence.iter().map(|e| self.id(e)).collect();
        let mut seen: BTreeSet<&[u32]> = BTreeSet::new();
        for len in 2..=self.max_len.min(seq.len()) {
            for w in seq.windows(len) {
                if seen.insert(w) {
                    *self.support.entry((app, purpose, w.into())).or_default() += 1;
                }
            }
        }
    }

    /// The frequent sequences (support ≥ `min_support`), closed: by support, then length
    /// (longest first), app, purpose, sequence.
    pub fn finish(self, min_support: u64) -> Vec<Journey> {
        let frequent: HashMap<&Sequence, u64> = self
            .support
            .iter()
            .filter(|(_, s)| **s >= min_support)
            .map(|(k, s)| (k, *s))
            .collect();
        let mut covered: BTreeSet<(u32, u32, &[u32])> = BTreeSet::new();
        for ((app, purpose, seq), &s) in &frequent {
            if seq.len() > 2 {
                for sub in [&seq[1..], &seq[..seq.len() - 1]] {
                    if frequent.get(&(*app, *purpose, Box::from(sub))) == Some(&s) {
                        covered.insert((*app, *purpose, sub));
                    }
                }
            }
        }
        let name = |id: u32| self.names[id as usize].to_string();
        let mut out: Vec<Journey> = frequent
            .iter()
            .filter(|((a, p, seq), _)| !covered.contains(&(*a, *p, &seq[..])))
            .map(|((app, purpose, seq), support)| Journey {
                app: name(*app),
                purpose: name(*purpose),
                sequence: seq.iter().map(|e| name(*e)).collect(),
                support: *support,
            })
            .collect();
        out.sort_by(|a, b| {
            b.support
                .cmp(&a.support)
                .then(b.sequence.len().cmp(&a.sequence.len()))
                .then_with(|| {
                    (&a.app, &a.purpose, &a.sequence).cmp(&(&b.app, &b.purpose, &b.sequence))
                })
        });
        out
    }
}

/// Mines frequent sequences: support ≥ `min_support`, length 2..=`max_len`; by support, then
/// length (longest first), app, purpose, sequence.
pub fn mine(episodes: &[Episode], min_support: u64, max_len: usize) -> Vec<Journey> {
    let mut m = Miner::new(max_len);
    for e in episodes {
        let seq: Vec<Arc<str>> = e.sequence.iter().map(|s| Arc::from(s.as_str())).collect();
        m.add(
            &Arc::from(e.app.as_str()),
            &Arc::from(e.purpose.as_str()),
            &seq,
        );
    }
    m.finish(min_support)
}

/// As a table.
pub fn table(js: &[Journey]) -> Table {
    let mut t = Table::new("journeys", &["app", "purpose", "support", "sequence"]);
    for j in js {
        t.row(vec![
            j.app.clone(),
            j.purpose.clone(),
            j.support.to_string(),
            j.sequence.join(" > "),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(client: i64, stack: &[&str], ep: &str, at_s: i64) -> Step {
        Step {
            client,
            app: format!("app{client}"),
            stack: Arc::new(stack.iter().map(|s| s.to_string()).collect()),
            endpoint: ep.into(),
            at_us: at_s * 1_000_000,
        }
    }

    #[test]
    fn episodes_cut_on_client_and_gap_and_name_the_shared_caller() {
        let full = ["count_pods", "reconcile", "main"];
        let cut = ["record", "reconcile"];
        let steps = vec![
            step(1, &full, "a", 0),
            step(1, &cut, "b", 1),
            step(1, &[], "c", 2),     // no stack: does not change the purpose
            step(1, &full, "d", 100), // gap
            step(1, &["other"], "e", 101),
            step(2, &cut, "f", 101), // client changes
        ];
        let e = episodes(&steps, 60_000_000);
        let got: Vec<(&str, Vec<&str>)> = e
            .iter()
            .map(|e| {
                (
                    e.purpose.as_str(),
                    e.sequence.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("reconcile", vec!["a", "b", "c"]),
                ("", vec!["d", "e"]),
                ("record", vec!["f"])
            ]
        );
    }

    #[test]
    fn mines_closed_frequent_sequences_counted_once_per_episode() {
        let ep = |seq: &[&str]| Episode {
            app: "shop".into(),
            purpose: "reconcile".into(),
            sequence: seq.iter().map(|s| s.to_string()).collect(),
        };
        let eps = vec![
            ep(&["get", "list", "patch", "get", "list"]), // get>list twice, counted once
            ep(&["get", "list", "patch"]),
            ep(&["get", "list"]),
            ep(&["create"]),
        ];
        let js = mine(&eps, 2, 3);
        let got: Vec<(Vec<&str>, u64)> = js
            .iter()
            .map(|j| (j.sequence.iter().map(String::as_str).collect(), j.support))
            .collect();
        // list>patch (2) is inside get>list>patch (2): left out. get>list has 3.
        assert_eq!(
            got,
            vec![(vec!["get", "list"], 3), (vec!["get", "list", "patch"], 2)]
        );
        let t = table(&js);
        assert_eq!(t.rows[1], ["shop", "reconcile", "2", "get > list > patch"]);
        assert!(mine(&eps, 4, 3).is_empty());
    }
}
