-- Instants are Unix seconds (UTC); all-day values are 'YYYY-MM-DD' text.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    timezone      TEXT    NOT NULL DEFAULT 'UTC',
    created_at    INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    token_hash   TEXT    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);

CREATE TABLE sessions (
    token_hash   TEXT    PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE oauth_states (
    state_hash    TEXT    PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider      TEXT    NOT NULL,
    pkce_verifier TEXT    NOT NULL,
    expires_at    INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE connections (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id          INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider         TEXT    NOT NULL,
    account_id       TEXT    NOT NULL,
    account_email    TEXT,
    access_token     TEXT,
    refresh_token    TEXT,
    token_expires_at INTEGER,
    scopes           TEXT    NOT NULL DEFAULT '',
    status           TEXT    NOT NULL DEFAULT 'pending',
    last_synced_at   INTEGER,
    last_error       TEXT,
    next_sync_at     INTEGER,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    UNIQUE (user_id, provider, account_id)
);
-- next_sync_at doubles as the lease: a worker claims a due connection by
-- moving it into the future, so several instances never sync it at once.
CREATE INDEX connections_due ON connections (next_sync_at);

CREATE TABLE calendars (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id  INTEGER NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    user_id        INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    external_id    TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    color          TEXT    NOT NULL DEFAULT '#4285f4',
    timezone       TEXT,
    enabled        INTEGER NOT NULL DEFAULT 1,
    is_primary     INTEGER NOT NULL DEFAULT 0,
    access_role    TEXT,
    cursor         TEXT,
    -- Incremented when a full round starts; events it does not see are swept at its end.
    sync_round     INTEGER NOT NULL DEFAULT 0,
    -- Recurring series are expanded up to here; extended as time passes.
    horizon_end    INTEGER,
    -- The longest occurrence, in seconds: how far before a range its reads must look.
    max_span       INTEGER NOT NULL DEFAULT 0,
    last_synced_at INTEGER,
    UNIQUE (connection_id, external_id)
);
CREATE INDEX calendars_user ON calendars (user_id);

CREATE TABLE events (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    calendar_id        INTEGER NOT NULL REFERENCES calendars(id) ON DELETE CASCADE,
    user_id            INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    external_id        TEXT    NOT NULL,
    etag               TEXT,
    status             TEXT    NOT NULL DEFAULT 'confirmed',
    title              TEXT    NOT NULL DEFAULT '',
    description        TEXT,
    location           TEXT,
    all_day            INTEGER NOT NULL DEFAULT 0,
    start_at           INTEGER,
    end_at             INTEGER,
    start_date         TEXT,
    end_date           TEXT,
    timezone           TEXT,
    recurrence         TEXT,
    recurring_event_id TEXT,
    original_start     TEXT,
    html_link          TEXT,
    remote_updated_at  INTEGER,
    sync_round         INTEGER NOT NULL DEFAULT 0,
    UNIQUE (calendar_id, external_id)
);
CREATE INDEX events_user ON events (user_id);
CREATE INDEX events_series ON events (calendar_id, recurring_event_id);

CREATE TABLE occurrences (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    calendar_id INTEGER NOT NULL REFERENCES calendars(id) ON DELETE CASCADE,
    start_at    INTEGER NOT NULL,
    end_at      INTEGER NOT NULL,
    all_day     INTEGER NOT NULL DEFAULT 0,
    start_date  TEXT,
    end_date    TEXT
);
CREATE INDEX occurrences_user_start ON occurrences (user_id, start_at);
CREATE INDEX occurrences_event ON occurrences (event_id);

CREATE TABLE sync_runs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id INTEGER NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    started_at    INTEGER NOT NULL,
    finished_at   INTEGER,
    outcome       TEXT,
    requests      INTEGER NOT NULL DEFAULT 0,
    changes       INTEGER NOT NULL DEFAULT 0,
    error         TEXT
);
CREATE INDEX sync_runs_connection ON sync_runs (connection_id, started_at);
