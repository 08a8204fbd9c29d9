//! WAL checkpoints on their own thread and connection.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its threshold: the writer
//! (and, in `serve`, the webhook batch waiting for that commit) would copy megabytes of WAL into
//! the database file and fsync it. Instead the writer's WAL hook wakes this thread, whose
//! PASSIVE checkpoints run beside the writer's next transactions. Only if the WAL still grows
//! past ten times the threshold does the writer checkpoint itself, so the file stays bounded.

use std::path::Path;
use std::sync::mpsc;

use rusqlite::Connection;
use rusqlite::wal::CheckpointMode;

/// Starts the checkpoint thread for `path` and installs the WAL hook on the writer's `conn`.
/// The thread ends when `conn` is closed.
pub(super) fn start(
    conn: &mut Connection,
    path: &Path,
    synchronous: &'static str,
    pages: i32,
) -> rusqlite::Result<()> {
    let own = Connection::open(path)?;
    own.pragma_update(None, "synchronous", synchronous)?;
    // This connection checkpoints only when asked.
    own.pragma_update(None, "wal_autocheckpoint", 0)?;
    let (wake, woken) = mpsc::sync_channel::<()>(1);
    let spawned = std::thread::Builder::new()
        .name("store-checkpoint".into())
        .spawn(move || {
            // Ends once the hook (owned by the writer's connection) is dropped.
            while woken.recv().is_ok() {
                if let Err(e) = own.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "background checkpoint failed; the writer's hook will retry");
                }
            }
            own.close().ok();
        });
    if let Err(e) = spawned {
        // No thread: SQLite's own checkpoints in the commit, as without this module.
        tracing::warn!(error = %e, "cannot start the checkpoint thread");
        return conn.pragma_update(None, "wal_autocheckpoint", pages);
    }
    let hard = pages.saturating_mul(10);
    conn.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, frames: i32| {
        if frames >= hard {
            // The thread is behind: this commit pays for it (as SQLite's own checkpoint would).
            let _ = wal.checkpoint_v2(CheckpointMode::PASSIVE);
        } else if frames >= pages {
            let _ = wake.try_send(()); // one wake-up pending is enough
        }
        Ok(())
    }))
}
