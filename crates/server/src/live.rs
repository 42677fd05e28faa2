//! The change feed: when a user's events or sync status change, every open
//! stream of that user (Server-Sent Events), on every instance, hears of it.
//!
//! Each user with an open stream has a channel of their own (created by the
//! first [`ChangeFeed::subscribe`], dropped once its last receiver is gone), so
//! a stream only ever receives its own user's changes.
//!
//! On SQLite (one instance) [`ChangeFeed::publish`] hands a change to the
//! user's channel at once. On PostgreSQL, once [`ChangeFeed::relay`] runs, a
//! change travels through the database instead: `publish` queues a notice
//! (the user id and the change as compact JSON) for a background task that
//! sends it with `pg_notify('calsync_changes', …)`, and a listener task on
//! every instance (this one included) hands each notice it hears to the local
//! channels. An instance's own changes therefore arrive once, by the same road
//! as everyone else's. A notice is only a wake-up (pages fetch what changed):
//! a change too large for a notice goes as `Events` with no connection ids,
//! which means "something changed", and the same is told to every stream when
//! the listener lost its connection, since notices sent meanwhile are gone.
//! `publish` never waits: the queue is bounded and a notice that does not fit
//! is dropped with a warning.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use calsync_core::model::UserId;
use calsync_store::{ChangeListener, Store};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

/// What changed, as a stream tells the page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Change {
    /// Events of these connections changed.
    Events { connection_ids: Vec<i64> },
    /// A connection's status changed (syncing, synced, error, needs reauth, gone).
    Connection { connection_id: i64 },
}

impl Change {
    /// "Something may have changed": what a stream is told when details are
    /// lost (a notice too large, a listener that was disconnected).
    fn anything() -> Self {
        Self::Events {
            connection_ids: Vec::new(),
        }
    }
}

/// Changes one user's streams may hold before the slowest one lags (and is
/// told to resync).
const PER_USER: usize = 64;
/// Notices waiting to be sent to PostgreSQL; more are dropped.
const OUTBOX: usize = 1024;
/// Largest notice sent as is; PostgreSQL refuses payloads of 8000 bytes or more.
const MAX_NOTICE: usize = 7000;
/// Pauses of the listener after failures: doubling from the first to the last.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_LAST: Duration = Duration::from_secs(30);
/// A listener connection that lived this long resets the pause.
const HEALTHY: Duration = Duration::from_secs(60);
/// How long shutdown waits for queued notices to go out.
const FLUSH: Duration = Duration::from_secs(5);

/// Delivery of changes to the streams of their user. Cheap to clone: clones
/// share the channels and the relay.
#[derive(Clone, Default)]
pub struct ChangeFeed {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The channel of every user with (recently) open streams.
    users: Mutex<HashMap<UserId, broadcast::Sender<Change>>>,
    /// Set once changes travel through PostgreSQL.
    outbox: OnceLock<mpsc::Sender<String>>,
}

impl ChangeFeed {
    /// Tells `user`'s streams about `change`; nobody listening is fine.
    /// Never waits.
    pub fn publish(&self, user: UserId, change: Change) {
        let Some(outbox) = self.inner.outbox.get() else {
            self.deliver(user, change);
            return;
        };
        match outbox.try_send(encode(user, &change)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                tracing::warn!(user = %user, "too many change notices queued; one was dropped");
            }
            Err(TrySendError::Closed(_)) => {
                tracing::debug!("change notices are no longer sent (shutting down)");
            }
        }
    }

    /// A receiver of `user`'s changes only. Channels whose streams are all
    /// gone are forgotten here.
    pub fn subscribe(&self, user: UserId) -> broadcast::Receiver<Change> {
        let mut users = self.users();
        users.retain(|_, sender| sender.receiver_count() > 0);
        users
            .entry(user)
            .or_insert_with(|| broadcast::channel(PER_USER).0)
            .subscribe()
    }

    /// Hands `change` to this instance's streams of `user`.
    fn deliver(&self, user: UserId, change: Change) {
        let mut users = self.users();
        if let Some(sender) = users.get(&user) {
            // Fails only when no receiver is left.
            if sender.send(change).is_err() {
                users.remove(&user);
            }
        }
    }

    /// Tells every stream of this instance that anything may have changed.
    fn tell_everyone(&self) {
        self.users()
            .retain(|_, sender| sender.send(Change::anything()).is_ok());
    }

    fn users(&self) -> MutexGuard<'_, HashMap<UserId, broadcast::Sender<Change>>> {
        // Nothing can be left half-done under this lock: a poisoned map is fine.
        self.inner
            .users
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// On PostgreSQL, starts listening for notices, then routes every later
    /// `publish` through the database (see the module documentation); the
    /// listener stops when `shutdown` turns true. On SQLite nothing changes.
    /// Fails if the first `LISTEN` does.
    pub async fn relay(
        &self,
        store: &Store,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<Relay> {
        anyhow::ensure!(
            self.inner.outbox.get().is_none(),
            "the change feed is relayed already"
        );
        let Some(listener) = store.change_listener().await? else {
            return Ok(Relay { tasks: None });
        };
        let (outbox, queued) = mpsc::channel(OUTBOX);
        let (finish, finishing) = watch::channel(false);
        let listening = tokio::spawn(listen(self.clone(), store.clone(), listener, shutdown));
        let sending = tokio::spawn(send(store.clone(), queued, finishing));
        // Only now: our own notices are heard from here on.
        let _ = self.inner.outbox.set(outbox);
        tracing::info!("live updates travel through PostgreSQL (LISTEN calsync_changes)");
        Ok(Relay {
            tasks: Some(RelayTasks {
                listening,
                sending,
                finish,
            }),
        })
    }

    #[cfg(test)]
    fn channels(&self) -> usize {
        self.users().len()
    }
}

/// The relay's tasks; [`Relay::finish`] them at shutdown.
#[must_use = "finish the relay at shutdown, or queued notices are lost"]
pub struct Relay {
    tasks: Option<RelayTasks>,
}

struct RelayTasks {
    listening: JoinHandle<()>,
    sending: JoinHandle<()>,
    finish: watch::Sender<bool>,
}

impl Relay {
    /// Sends the notices still queued (for a few seconds at most) and stops
    /// listening. Call it after the last `publish` (the worker stopped) and
    /// before the store closes.
    pub async fn finish(self) {
        let Some(tasks) = self.tasks else { return };
        let _ = tasks.finish.send(true);
        let mut sending = tasks.sending;
        if tokio::time::timeout(FLUSH, &mut sending).await.is_err() {
            tracing::warn!("change notices still queued at shutdown were dropped");
            sending.abort();
        }
        // The listener stops at shutdown; make sure it did, so that its
        // connection goes back to the pool before the pool closes.
        tasks.listening.abort();
        let _ = tasks.listening.await;
    }
}

/// What travels in a notice.
#[derive(Serialize)]
struct NoticeOut<'a> {
    user: UserId,
    change: &'a Change,
}

#[derive(Deserialize)]
struct NoticeIn {
    user: UserId,
    change: Change,
}

/// The notice for `change`: compact JSON, coarsened when too large.
fn encode(user: UserId, change: &Change) -> String {
    match serde_json::to_string(&NoticeOut { user, change }) {
        Ok(json) if json.len() <= MAX_NOTICE => json,
        _ => format!(r#"{{"user":{user},"change":{{"kind":"events","connection_ids":[]}}}}"#),
    }
}

fn decode(payload: &str) -> Option<(UserId, Change)> {
    serde_json::from_str::<NoticeIn>(payload)
        .ok()
        .map(|n| (n.user, n.change))
}

/// Sends queued notices in order until told to finish, then the rest.
async fn send(
    store: Store,
    mut queued: mpsc::Receiver<String>,
    mut finishing: watch::Receiver<bool>,
) {
    loop {
        let payload = tokio::select! {
            biased;
            payload = queued.recv() => payload,
            _ = finishing.wait_for(|finish| *finish) => break,
        };
        let Some(payload) = payload else { return };
        notify(&store, &payload).await;
    }
    queued.close();
    while let Some(payload) = queued.recv().await {
        notify(&store, &payload).await;
    }
}

async fn notify(store: &Store, payload: &str) {
    if let Err(err) = store.notify_change(payload).await {
        // The streams miss this one; the page catches up at its next change.
        tracing::warn!(error = %err, "could not send a change notice");
    }
}

/// Hands every notice heard to the local streams until `shutdown`; after a
/// lost connection, pauses (doubling), reconnects and tells every stream to
/// catch up.
async fn listen(
    feed: ChangeFeed,
    store: Store,
    listener: ChangeListener,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut listener = Some(listener);
    let mut connected = Instant::now();
    let mut pause = RETRY_FIRST;
    loop {
        let Some(active) = listener.as_mut() else {
            let attempt = tokio::select! {
                _ = shutdown.wait_for(|stopping| *stopping) => return,
                attempt = store.change_listener() => attempt,
            };
            match attempt {
                Ok(Some(fresh)) => {
                    tracing::info!("listening for changes again; every stream catches up");
                    listener = Some(fresh);
                    connected = Instant::now();
                    feed.tell_everyone();
                }
                Ok(None) => return,
                Err(err) => {
                    tracing::warn!(error = %err, retry_in_ms = pause.as_millis(), "cannot listen for changes");
                    if wait(&mut shutdown, &mut pause).await {
                        return;
                    }
                }
            }
            continue;
        };
        let next = tokio::select! {
            _ = shutdown.wait_for(|stopping| *stopping) => return,
            next = active.next() => next,
        };
        match next {
            Ok(Some(payload)) => match decode(&payload) {
                Some((user, change)) => feed.deliver(user, change),
                None => tracing::warn!(
                    bytes = payload.len(),
                    "ignored a change notice that is not calsync's"
                ),
            },
            Ok(None) => {
                // Reconnected already, but notices sent meanwhile are lost.
                tracing::warn!("the change listener lost its connection and reconnected; every stream catches up");
                feed.tell_everyone();
                if connected.elapsed() > HEALTHY {
                    pause = RETRY_FIRST;
                }
                connected = Instant::now();
                if wait(&mut shutdown, &mut pause).await {
                    return;
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, retry_in_ms = pause.as_millis(), "the change listener failed");
                // A fresh listener next time: this one's connection may be broken.
                listener = None;
                if connected.elapsed() > HEALTHY {
                    pause = RETRY_FIRST;
                }
                if wait(&mut shutdown, &mut pause).await {
                    return;
                }
            }
        }
    }
}

/// Sleeps `pause` (then doubles it, up to the last); true when shutdown came first.
async fn wait(shutdown: &mut watch::Receiver<bool>, pause: &mut Duration) -> bool {
    let stop = tokio::select! {
        _ = shutdown.wait_for(|stopping| *stopping) => true,
        () = tokio::time::sleep(*pause) => false,
    };
    *pause = (*pause * 2).min(RETRY_LAST);
    stop
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tokio::sync::broadcast::error::TryRecvError;

    use super::*;

    const ALICE: UserId = UserId(1);
    const BOB: UserId = UserId(2);

    fn events(ids: &[i64]) -> Change {
        Change::Events {
            connection_ids: ids.to_vec(),
        }
    }

    #[test]
    fn a_stream_hears_only_its_own_users_changes() {
        let feed = ChangeFeed::default();
        let mut alice = feed.subscribe(ALICE);
        let mut alice_too = feed.subscribe(ALICE);
        let mut bob = feed.subscribe(BOB);
        feed.publish(ALICE, events(&[7]));
        feed.publish(UserId(3), events(&[9]));
        assert_eq!(alice.try_recv().unwrap(), events(&[7]));
        assert_eq!(alice_too.try_recv().unwrap(), events(&[7]));
        assert_eq!(alice.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(bob.try_recv(), Err(TryRecvError::Empty));
        feed.publish(BOB, Change::Connection { connection_id: 4 });
        assert_eq!(
            bob.try_recv().unwrap(),
            Change::Connection { connection_id: 4 }
        );
        assert_eq!(alice.try_recv(), Err(TryRecvError::Empty));
    }

    #[test]
    fn channels_go_with_their_last_stream() {
        let feed = ChangeFeed::default();
        // Nobody listening: nothing is kept.
        feed.publish(ALICE, events(&[1]));
        assert_eq!(feed.channels(), 0);

        let alice = feed.subscribe(ALICE);
        let alice_too = feed.subscribe(ALICE);
        let bob = feed.subscribe(BOB);
        assert_eq!(feed.channels(), 2);
        drop(alice);
        feed.publish(ALICE, events(&[1]));
        assert_eq!(feed.channels(), 2, "one of Alice's streams is still open");
        drop(alice_too);
        feed.publish(ALICE, events(&[1]));
        assert_eq!(feed.channels(), 1, "forgotten at the next publish");

        // A user who never hears of a change again is forgotten at the next subscribe.
        drop(bob);
        let _carol = feed.subscribe(UserId(3));
        assert_eq!(feed.channels(), 1);

        // Or when every stream is told to catch up.
        drop(_carol);
        feed.tell_everyone();
        assert_eq!(feed.channels(), 0);
    }

    #[test]
    fn a_slow_stream_lags_alone() {
        let feed = ChangeFeed::default();
        let mut alice = feed.subscribe(ALICE);
        let mut bob = feed.subscribe(BOB);
        for id in 0..(PER_USER as i64 + 1) {
            feed.publish(ALICE, events(&[id]));
        }
        feed.publish(BOB, events(&[1]));
        assert!(matches!(alice.try_recv(), Err(TryRecvError::Lagged(_))));
        assert_eq!(bob.try_recv().unwrap(), events(&[1]));
    }

    #[test]
    fn notices_are_compact_json_and_never_too_large() {
        let small = encode(ALICE, &events(&[3, 4]));
        assert_eq!(
            small,
            r#"{"user":1,"change":{"kind":"events","connection_ids":[3,4]}}"#
        );
        assert_eq!(decode(&small), Some((ALICE, events(&[3, 4]))));
        let status = encode(BOB, &Change::Connection { connection_id: 5 });
        assert_eq!(
            decode(&status),
            Some((BOB, Change::Connection { connection_id: 5 }))
        );

        let many: Vec<i64> = (1_000_000_000..1_000_002_000).collect();
        let coarse = encode(ALICE, &events(&many));
        assert!(coarse.len() < 100, "{coarse}");
        assert_eq!(decode(&coarse), Some((ALICE, Change::anything())));

        assert_eq!(decode("hello"), None);
        assert_eq!(decode(r#"{"user":1,"change":{"kind":"other"}}"#), None);
    }

    /// Two feeds on one PostgreSQL database, as two instances: each hears the
    /// other's changes and its own, once; a dropped listener connection is
    /// followed by a catch-up and normal service.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_postgres_changes_cross_instances_once() {
        use calsync_store::testing::{fetch_text, fresh_store};
        use calsync_store::BackendKind;

        let store = fresh_store(BackendKind::Postgres)
            .await
            .expect("this test needs PostgreSQL at CALSYNC_TEST_POSTGRES_URL");
        let (_stop, stopping) = watch::channel(false);
        let (a, b) = (ChangeFeed::default(), ChangeFeed::default());
        let relay_a = a.relay(&store, stopping.clone()).await.unwrap();
        let relay_b = b.relay(&store, stopping.clone()).await.unwrap();
        let mut on_a = a.subscribe(ALICE);
        let mut on_b = b.subscribe(ALICE);
        let mut bob_on_b = b.subscribe(BOB);

        a.publish(ALICE, events(&[1]));
        for rx in [&mut on_a, &mut on_b] {
            let got = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
            assert_eq!(got.unwrap().unwrap(), events(&[1]));
        }
        // Not delivered twice on the publishing instance, nor to Bob.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(on_a.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(bob_on_b.try_recv(), Err(TryRecvError::Empty));

        // Both listeners' connections die: the streams are told to catch up.
        let killed = fetch_text(
            &store,
            "SELECT count(pg_terminate_backend(pid))::text FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'LISTEN%'",
        )
        .await;
        assert_eq!(killed.as_deref(), Some("2"), "both listeners' connections");
        for rx in [&mut on_b, &mut bob_on_b] {
            let got = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await;
            assert_eq!(got.unwrap().unwrap(), Change::anything());
        }
        let got = tokio::time::timeout(Duration::from_secs(20), on_a.recv()).await;
        assert_eq!(got.unwrap().unwrap(), Change::anything());
        // Told after the reconnect: B hears later changes again.
        b.publish(BOB, Change::Connection { connection_id: 2 });
        let got = tokio::time::timeout(Duration::from_secs(10), bob_on_b.recv()).await;
        assert_eq!(
            got.unwrap().unwrap(),
            Change::Connection { connection_id: 2 }
        );

        relay_a.finish().await;
        relay_b.finish().await;
        store.close().await;
    }
}
