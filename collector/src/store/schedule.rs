//! When the writer folds rollups in, and who waits for it.
//!
//! The writer ([`super::writer`]) runs commands as they come; after each it asks the
//! [`Schedule`], with the time from its [`Clock`], whether a fold of everything is `due`:
//!
//! ```text
//!  command ─► run it (a batch: its deltas join `Pending`, and the oldest's age counts from
//!             its commit)
//!    │
//!    ▼
//!  `due`? ── no ──► wait for the next command (blocking: nothing runs while nothing comes)
//!    │
//!   yes ──► a chunk of the fold of everything per transaction; a command queued meanwhile
//!           runs between two chunks, and the fold goes on after it
//!
//!  Command::Fold ─► `ask`: a fold of everything begins (or, if one is running, the next one);
//!                   its reply waits until that fold's last chunk commits (`swept`)
//! ```
//!
//! A fold of everything is due when the deltas are not exact (after a rollback), while one runs
//! in chunks, or under [`Fold::Deferred`] once `max_keys` keys are pending or the oldest is
//! `interval` old. The rollup invariant the folds keep is [`super::rollup::Pending`]'s.
//!
//! Folds run only when due: chunks folded whenever the writer was idle made a webhook's tails
//! longer (each rewrote rollup pages a durable commit then waited to checkpoint; the A/B is in
//! BENCHMARKS.md, "Write-path machinery").

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{Error, Result};

/// When rollups are folded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fold {
    /// In each batch's own transaction: queries see every committed batch at once.
    EveryBatch,
    /// Deltas of many batches are summed in memory and folded in their own transactions, a
    /// range of endpoints (`chunk_keys` distinct keys) at a time: all of them once `max_keys`
    /// distinct keys are pending or the oldest is `interval` old, at the end of a run and when
    /// the writer stops.
    Deferred {
        /// Age of the oldest pending delta that makes a fold of everything due.
        interval: Duration,
        /// Distinct keys pending (of `usage`, the accesses and `object_uses`) that make a fold of
        /// everything due; no batch is taken in while as many are pending
        /// (`rollup::Pending::full`), which bounds their memory.
        max_keys: usize,
        /// Distinct keys a fold transaction writes at most (the endpoints in a range): a batch
        /// that arrives during a fold waits for one chunk, not for all of them.
        chunk_keys: usize,
    },
}

impl Fold {
    /// Bulk ingest: sums over up to 200k keys (a log repeats its keys), folded every 10 s in
    /// one transaction. Their memory: ~100 bytes a key with the maps' room, ~20 MiB.
    pub fn bulk() -> Fold {
        Fold::Deferred {
            interval: Duration::from_secs(10),
            max_keys: 200_000,
            chunk_keys: 200_000,
        }
    }

    /// A webhook: everything every 5 s (or at 100k keys), in chunks of 200 keys with the
    /// batches that come meanwhile between them, so a batch waits for one chunk. A chunk covers
    /// a range of endpoints, and the rollups are endpoint-first, so it rewrites a slice of
    /// their pages where a fold of one batch rewrote pages all over them.
    pub fn webhook() -> Fold {
        Fold::Deferred {
            interval: Duration::from_secs(5),
            max_keys: 100_000,
            chunk_keys: 200,
        }
    }

    /// Distinct keys a fold transaction writes at most.
    pub(super) fn chunk_keys(self) -> usize {
        match self {
            Fold::Deferred { chunk_keys, .. } => chunk_keys,
            Fold::EveryBatch => usize::MAX,
        }
    }
}

/// The time the schedule reads: the system's monotonic clock, or a test's.
pub(crate) trait Clock: Send {
    fn now(&self) -> Instant;
}

/// [`Instant::now`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// What of [`super::rollup::Pending`] the schedule decides on.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct State {
    /// Distinct keys pending of `usage`, the accesses and `object_uses`: what `max_keys` bounds.
    pub keys: usize,
    /// When the oldest pending delta was committed.
    pub since: Option<Instant>,
    /// `false`: the deltas are not to be trusted, and the next fold reads `requests`.
    pub exact: bool,
    /// A fold of everything is running in chunks.
    pub sweeping: bool,
}

/// A [`super::Command::Fold`]'s reply.
type Reply = oneshot::Sender<Result<()>>;

/// When folds run ([`Fold`], read on a [`Clock`]), and the replies owed when they end.
pub(super) struct Schedule {
    fold: Fold,
    clock: Box<dyn Clock>,
    /// Replies owed when the fold of everything now running in chunks ends.
    on_sweep: Vec<Reply>,
    /// Replies owed when the next one ends: they came once this one was past some endpoints.
    after_sweep: Vec<Reply>,
}

impl Schedule {
    pub(super) fn new(fold: Fold, clock: Box<dyn Clock>) -> Schedule {
        Schedule {
            fold,
            clock,
            on_sweep: Vec::new(),
            after_sweep: Vec::new(),
        }
    }

    pub(super) fn fold(&self) -> Fold {
        self.fold
    }

    pub(super) fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Whether a fold of everything is due (or one is running in chunks).
    pub(super) fn due(&self, s: State) -> bool {
        if !s.exact || s.sweeping {
            return true;
        }
        let Some(since) = s.since else {
            return false;
        };
        match self.fold {
            Fold::EveryBatch => true,
            Fold::Deferred {
                interval, max_keys, ..
            } => s.keys >= max_keys || self.now().saturating_duration_since(since) >= interval,
        }
    }

    /// A [`super::Command::Fold`]: answered once a fold of everything, begun now, has run in
    /// chunks (batches that come meanwhile go between them). One already running may have
    /// passed endpoints this reply needs folded: it waits for the next. Returns whether a
    /// fold of everything begins now.
    pub(super) fn ask(&mut self, s: State, reply: Reply) -> bool {
        if s.sweeping {
            self.after_sweep.push(reply);
            false
        } else {
            self.on_sweep.push(reply);
            true
        }
    }

    /// Whether a [`super::Command::Fold`] waits for the fold of everything now running.
    pub(super) fn asked(&self) -> bool {
        !self.on_sweep.is_empty()
    }

    /// The fold of everything ended: its replies are answered. Returns whether another begins
    /// now, for the replies that came while it ran.
    pub(super) fn swept(&mut self) -> bool {
        for reply in self.on_sweep.drain(..) {
            let _ = reply.send(Ok(()));
        }
        if self.after_sweep.is_empty() {
            return false;
        }
        std::mem::swap(&mut self.on_sweep, &mut self.after_sweep);
        true
    }

    /// Answers every reply still owed (a fold failed, or the writer stops).
    pub(super) fn answer_all(&mut self, r: std::result::Result<(), Arc<Error>>) {
        for reply in self.on_sweep.drain(..).chain(self.after_sweep.drain(..)) {
            let _ = reply.send(r.clone().map_err(Error::Again));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A clock a test moves.
    #[derive(Clone)]
    struct Manual(Arc<Mutex<Instant>>);

    impl Manual {
        fn advance(&self, d: Duration) {
            *self.0.lock().unwrap() += d;
        }
    }

    impl Clock for Manual {
        fn now(&self) -> Instant {
            *self.0.lock().unwrap()
        }
    }

    fn schedule(fold: Fold) -> (Schedule, Manual) {
        let clock = Manual(Arc::new(Mutex::new(Instant::now())));
        (Schedule::new(fold, Box::new(clock.clone())), clock)
    }

    fn pending(keys: usize, since: Instant) -> State {
        State {
            keys,
            since: Some(since),
            exact: true,
            sweeping: false,
        }
    }

    #[test]
    fn a_webhook_folds_everything_on_the_interval_or_at_its_keys_bound() {
        let (s, clock) = schedule(Fold::webhook());
        let nothing = State {
            exact: true,
            ..State::default()
        };
        assert!(!s.due(nothing), "nothing pending");
        let t0 = s.now();
        clock.advance(Duration::from_secs(3));
        assert!(!s.due(pending(4_000, t0)), "a few batches' keys wait");
        clock.advance(Duration::from_secs(2));
        assert!(s.due(pending(100, t0)), "the oldest delta is 5 s old");
        assert!(s.due(pending(100_000, s.now())), "too many keys pending");
        let unsure = State {
            exact: false,
            ..State::default()
        };
        assert!(
            s.due(unsure),
            "after a rollback the next fold re-reads requests"
        );
    }

    #[test]
    fn bulk_ingest_and_every_batch_fold_on_their_own_terms() {
        for fold in [Fold::bulk(), Fold::EveryBatch] {
            let (s, clock) = schedule(fold);
            let t0 = s.now();
            clock.advance(Duration::from_secs(60));
            assert!(s.due(pending(1, t0)), "{fold:?}: the next command folds");
        }
        let (s, _) = schedule(Fold::bulk());
        assert!(
            !s.due(pending(10, s.now())),
            "bulk sums deltas of many batches first"
        );
        let (s, _) = schedule(Fold::EveryBatch);
        assert!(s.due(pending(1, s.now())), "every batch folds its own");
    }

    #[test]
    fn a_fold_asked_during_a_sweep_waits_for_the_next_one() {
        let (mut s, _) = schedule(Fold::webhook());
        let (first, mut first_rx) = oneshot::channel();
        let (second, mut second_rx) = oneshot::channel();
        assert!(s.ask(State::default(), first), "a sweep begins");
        let running = State {
            sweeping: true,
            ..State::default()
        };
        assert!(!s.ask(running, second), "one is running");
        assert!(s.swept(), "the next sweep begins for the second reply");
        assert!(matches!(first_rx.try_recv(), Ok(Ok(()))));
        assert!(second_rx.try_recv().is_err(), "not answered yet");
        assert!(!s.swept());
        assert!(matches!(second_rx.try_recv(), Ok(Ok(()))));
        let (third, mut third_rx) = oneshot::channel();
        s.ask(State::default(), third);
        s.answer_all(Err(Arc::new(Error::WriterGone)));
        assert!(matches!(third_rx.try_recv(), Ok(Err(Error::Again(_)))));
    }
}
