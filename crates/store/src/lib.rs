//! calsync-store: persistence.
