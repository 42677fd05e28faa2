//! calsync-emulator: stateful, protocol-faithful stand-ins for the calendar
//! providers (Google OAuth2 + Calendar API v3, Microsoft identity + Graph) over
//! real HTTP, with a control API for changes, fault injection and a request log.
//!
//! It serves the integration tests and `calsync demo`. It must not depend on
//! any other calsync crate: it is the provider, seen from outside.
