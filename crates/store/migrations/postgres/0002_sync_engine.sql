-- The sync engine's lease is its own pair of columns, apart from the
-- schedule: a claim raises lease_token (a generation) and sets lease_until;
-- the round renews lease_until while it works, and every write it makes is
-- conditional on lease_token still being the one it claimed. A lease that
-- ran out (its holder died) can be claimed again, which fences the old one.
ALTER TABLE connections ADD COLUMN lease_token BIGINT NOT NULL DEFAULT 0;
ALTER TABLE connections ADD COLUMN lease_until BIGINT;
-- "Sync now" during a round: one more round right after it.
ALTER TABLE connections ADD COLUMN sync_again BOOLEAN NOT NULL DEFAULT FALSE;
-- The host a CalDAV server or feed lives on, for the per-host limit of
-- rounds at once (NULL for Google and Microsoft).
ALTER TABLE connections ADD COLUMN host TEXT;
-- Why the next sync waits beyond the interval: 'backoff' or 'rate_limited'.
ALTER TABLE connections ADD COLUMN wait_reason TEXT;
CREATE INDEX connections_lease ON connections (lease_until);

-- Removals are held back until a round ends and passes the mass-delete
-- guard: pending_removal marks the events a round would remove, and a
-- calendar whose removals were held says how many and what the user decided.
ALTER TABLE events ADD COLUMN pending_removal BOOLEAN NOT NULL DEFAULT FALSE;
-- Events the user chose to keep when the provider stopped listing them:
-- later full rounds do not count them as removals again.
ALTER TABLE events ADD COLUMN kept BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX events_pending_removal ON events (calendar_id) WHERE pending_removal;
ALTER TABLE calendars ADD COLUMN held_removals BIGINT;
-- 'apply' or 'reject', carried out by the next round.
ALTER TABLE calendars ADD COLUMN removal_decision TEXT;
-- Listings in a row that did not list the calendar; it goes after two.
ALTER TABLE calendars ADD COLUMN missing_listings BIGINT NOT NULL DEFAULT 0;
