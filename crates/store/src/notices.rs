//! Change notices between instances sharing one PostgreSQL database: `NOTIFY`
//! on one channel, `LISTEN` on it. A notice is a short opaque string (the
//! server decides what it says); it is only a wake-up, never data, because
//! anyone connected to the database can send one and a notice sent while a
//! listener was reconnecting is lost. On SQLite there is nothing to share:
//! sending does nothing and there is no listener.

use sqlx::postgres::PgListener;

use crate::{Backend, Result, Store};

/// The PostgreSQL channel the notices travel on.
const CHANGE_CHANNEL: &str = "calsync_changes";

/// A connection that `LISTEN`s on [`CHANGE_CHANNEL`].
pub struct ChangeListener {
    listener: PgListener,
}

impl std::fmt::Debug for ChangeListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeListener").finish_non_exhaustive()
    }
}

impl ChangeListener {
    /// The next notice's payload. `Ok(None)` means the connection was lost
    /// and has been re-established (listening again): notices sent in between
    /// are gone. An error (the database unreachable, the pool closed) leaves
    /// the listener unusable until the next call reconnects; callers wait
    /// before trying again.
    pub async fn next(&mut self) -> Result<Option<String>> {
        let notice = self.listener.try_recv().await?;
        Ok(notice.map(|n| n.payload().to_owned()))
    }
}

impl Store {
    /// Sends `payload` to every listener (all instances, this one included).
    /// PostgreSQL refuses payloads of 8000 bytes or more. Does nothing on
    /// SQLite.
    pub async fn notify_change(&self, payload: &str) -> Result<()> {
        if let Backend::Postgres(pool) = &self.backend {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANGE_CHANNEL)
                .bind(payload)
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// A connection listening for change notices (it holds one connection of
    /// the pool); `None` on SQLite.
    pub async fn change_listener(&self) -> Result<Option<ChangeListener>> {
        let Backend::Postgres(pool) = &self.backend else {
            return Ok(None);
        };
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(CHANGE_CHANNEL).await?;
        Ok(Some(ChangeListener { listener }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use crate::testing::fresh_store;
    use crate::BackendKind;

    #[tokio::test]
    async fn a_notice_reaches_every_listener_once() {
        let store = fresh_store(BackendKind::Postgres)
            .await
            .expect("this test needs PostgreSQL at CALSYNC_TEST_POSTGRES_URL");
        let mut first = store.change_listener().await.unwrap().unwrap();
        let mut second = store.change_listener().await.unwrap().unwrap();
        store.notify_change("one").await.unwrap();
        store.notify_change(&"x".repeat(7000)).await.unwrap();
        for listener in [&mut first, &mut second] {
            let one = tokio::time::timeout(Duration::from_secs(10), listener.next()).await;
            assert_eq!(one.unwrap().unwrap().as_deref(), Some("one"));
            let long = tokio::time::timeout(Duration::from_secs(10), listener.next()).await;
            assert_eq!(long.unwrap().unwrap().map(|p| p.len()), Some(7000));
        }
        assert!(
            tokio::time::timeout(Duration::from_millis(200), first.next())
                .await
                .is_err(),
            "nothing more"
        );
    }

    #[tokio::test]
    async fn sqlite_has_no_listener_and_notices_go_nowhere() {
        let store = fresh_store(BackendKind::Sqlite).await.unwrap();
        assert!(store.change_listener().await.unwrap().is_none());
        store.notify_change("ignored").await.unwrap();
    }
}
