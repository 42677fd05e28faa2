//! The change feed: when a user's events or sync status change, every open
//! stream of that user (Server-Sent Events) hears of it. In-process only; with
//! several instances each instance tells the streams it serves.

use calsync_core::model::UserId;
use serde::Serialize;
use tokio::sync::broadcast;

/// What changed, as a stream tells the page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Change {
    /// Events of these connections changed.
    Events { connection_ids: Vec<i64> },
    /// A connection's status changed (syncing, synced, error, needs reauth, gone).
    Connection { connection_id: i64 },
}

/// Fan-out of changes to the streams of their user.
#[derive(Clone)]
pub struct ChangeFeed {
    sender: broadcast::Sender<(UserId, Change)>,
}

impl Default for ChangeFeed {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(1024).0,
        }
    }
}

impl ChangeFeed {
    /// Tells `user`'s streams about `change`; nobody listening is fine.
    pub fn publish(&self, user: UserId, change: Change) {
        let _ = self.sender.send((user, change));
    }

    /// A receiver of every user's changes; streams filter to their own user.
    pub fn subscribe(&self) -> broadcast::Receiver<(UserId, Change)> {
        self.sender.subscribe()
    }
}
