//! Postwerk's accounts and access: who may call the API and sign in, and the
//! protection of those doors.
//!
//! Privacy rule: nothing in this crate logs an address, a password or a secret.
//!
//! - [`apikeys`]: API keys: creation, verification, rotation.
//! - [`users`]: people who sign in: passwords, roles, lockout, sessions.
//! - [`totp`]: second factors (RFC 6238) and recovery codes.
//! - [`auth_failures`]: refused credentials counted and audited.
//! - [`guard`]: brute-force protection per client network.

pub mod apikeys;
pub mod auth_failures;
pub mod guard;
pub mod totp;
pub mod users;
