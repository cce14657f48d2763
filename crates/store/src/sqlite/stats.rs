//! SQLite: the stats area ([`crate::StatsStore`]): every operation is one statement
//! written once (the area's `shared` list), and statistics are added by the writes that
//! record events (`add_stats`).

use super::SqliteStore;
use crate::StatsStore;

impl StatsStore for SqliteStore {}
