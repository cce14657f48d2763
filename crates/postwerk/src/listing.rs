//! The output of the `list` commands, the same for all of them: a table for people — a
//! header line of upper-case column names, then one line per row, fields separated by
//! tabs — or, with `--json`, one JSON array with an object per row, keyed by the
//! lower-case column names.

use serde_json::{Map, Value};

/// Rows of a list command, printed as a table or as JSON.
pub struct Listing {
    columns: &'static [&'static str],
    rows: Vec<Map<String, Value>>,
}

impl Listing {
    /// An empty listing with these columns (lower-case, as the JSON keys).
    pub fn new(columns: &'static [&'static str]) -> Self {
        Listing {
            columns,
            rows: Vec::new(),
        }
    }

    /// Adds a row: one value per column, in column order.
    pub fn row(&mut self, values: impl IntoIterator<Item = Value>) {
        let row: Map<String, Value> = self
            .columns
            .iter()
            .map(|c| c.to_string())
            .zip(values)
            .collect();
        debug_assert_eq!(row.len(), self.columns.len(), "one value per column");
        self.rows.push(row);
    }

    /// Prints the listing: JSON, or the table.
    pub fn print(&self, json: bool) {
        if json {
            let rows = self.rows.iter().cloned().map(Value::Object).collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&Value::Array(rows)).expect("JSON serialises")
            );
            return;
        }
        for line in self.table() {
            println!("{line}");
        }
    }

    /// The table's lines, header first.
    fn table(&self) -> Vec<String> {
        let header = self.columns.join("\t").to_ascii_uppercase();
        let lines = self.rows.iter().map(|row| {
            let cells: Vec<String> = self.columns.iter().map(|c| cell(&row[*c])).collect();
            cells.join("\t")
        });
        std::iter::once(header).chain(lines).collect()
    }
}

/// A value as a table cell: strings as they are, lists comma-separated, nothing as `-`.
fn cell(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        Value::Array(items) if items.is_empty() => "-".into(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_and_json_show_the_same_rows() {
        let mut l = Listing::new(&["id", "scopes", "parent", "limit"]);
        l.row([
            json!("key_1"),
            json!(["read", "send"]),
            Value::Null,
            json!(5),
        ]);
        l.row([json!("key_2"), json!([]), json!("acme"), Value::Null]);
        assert_eq!(
            l.table(),
            [
                "ID\tSCOPES\tPARENT\tLIMIT",
                "key_1\tread,send\t-\t5",
                "key_2\t-\tacme\t-"
            ]
        );
        assert_eq!(l.rows[0]["scopes"], json!(["read", "send"]));
        assert_eq!(l.rows[1]["parent"], json!("acme"));
    }
}
