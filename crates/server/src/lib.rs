//! calsync-server: the `calsync` binary's library.
//!
//! CLI, configuration, application state and graceful shutdown, the HTTP API
//! and pages, and telemetry. Handlers stay thin: they extract, call a service
//! and map the result; no SQL and no provider calls live in `http`.
//!
//! # Layout
//! - [`cli`]: subcommands; [`config`]: the one typed configuration;
//! - [`demo`]: `calsync demo` and `calsync emulator`;
//! - [`app`]: start-up (data folder, key file, store) and the serve loop;
//! - [`accounts`]: users, passwords, sessions, API tokens;
//! - [`calendars`]: calendar choices, manual sync, disconnect, time zone (API and pages share them);
//! - [`http`]: router, API, pages, auth, CSRF, errors, OpenAPI;
//! - [`providers`]: the configured provider clients; [`connect`]: OAuth connect flows;
//! - [`sync`]: the sync worker (claims due connections, pulls pages, applies them);
//! - [`live`]: the change feed behind the event stream; [`janitor`]: hourly clean-up;
//! - [`quotas`]: per-user limits on sync now, connects and range queries;
//! - [`state`], [`shutdown`], [`telemetry`].

pub mod accounts;
pub mod app;
pub mod calendars;
pub mod cli;
pub mod config;
pub mod connect;
pub mod demo;
pub mod http;
pub mod janitor;
pub mod live;
pub mod providers;
pub mod quotas;
pub mod shutdown;
pub mod state;
pub mod sync;
pub mod telemetry;
