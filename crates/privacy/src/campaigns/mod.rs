//! Campaigns: templates written once and rendered for each recipient, and broadcasts
//! that send one to lists and segments.
//!
//! - [`render`]: the template language (minijinja, sandboxed, HTML escaped by default)
//!   and the errors that name a part, line and column.
//! - [`templates`]: templates with versions, sealed in the store.
//! - [`text`]: the plain-text part made from the HTML one when a template has none.
//! - [`broadcasts`]: broadcasts, their spec, states and counts.
//! - [`audience`]: the people a broadcast reaches, walked in blind-index order.

pub mod audience;
pub mod broadcasts;
pub mod render;
pub mod templates;
pub mod text;
