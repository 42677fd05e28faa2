//! calsync-server: the `calsync` binary's library.
//!
//! CLI, configuration, application state and graceful shutdown, the HTTP API
//! and pages, the sync worker and telemetry. Handlers stay thin: they extract,
//! call a service and map the result; no SQL and no provider calls live in `http`.

pub mod cli;
