//! calsync-providers: one module per calendar provider behind one trait.
//!
//! Each provider speaks its own wire protocol (OAuth2, Google Calendar v3 JSON,
//! Microsoft Graph JSON, CalDAV XML, ICS feeds) over HTTP with timeouts,
//! retries and backoff, and turns what it reads into `calsync-core` change sets.
//!
//! Providers never touch the database and never decide what to store: they
//! fetch and translate; `core` plans; `store` applies.
