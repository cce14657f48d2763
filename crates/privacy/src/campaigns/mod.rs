//! Campaigns: templates written once and rendered for each recipient.
//!
//! - [`render`]: the template language (minijinja, sandboxed, HTML escaped by default)
//!   and the errors that name a part, line and column.
//! - [`templates`]: templates with versions, sealed in the store.
//! - [`text`]: the plain-text part made from the HTML one when a template has none.

pub mod render;
pub mod templates;
pub mod text;
