//! How the admin subcommands print: tables for people, or the API's JSON.

use serde_json::{json, Value};

use super::table;

/// How results are printed: collected here, written by [`run`](super::run).
pub(super) struct Output {
    pub(super) json: bool,
    pub(super) text: String,
}

impl Output {
    pub(super) fn line(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
    }

    pub(super) fn raw(&mut self, v: &Value) {
        match serde_json::to_string_pretty(v) {
            Ok(s) => self.line(&s),
            Err(_) => self.line(&v.to_string()),
        }
    }

    /// A write's answer: the object written and the new revision.
    pub(super) fn written(&mut self, v: &Value) {
        if self.json {
            return self.raw(v);
        }
        if let Some(item) = v.get("item").filter(|i| i.is_object()) {
            let rows = table::object_rows(item);
            self.text
                .push_str(&table::render(&["field", "value"], &rows));
        }
        match v.get("revision") {
            Some(r) => self.line(&format!("revision {r}")),
            None => self.line("ok"),
        }
    }

    /// The one-time secret of a created key or admin token (in `--json`
    /// it is part of the JSON already printed).
    pub(super) fn secret(&mut self, v: &Value) {
        if self.json {
            return;
        }
        if let Some(secret) = v.get("secret").and_then(Value::as_str) {
            self.line(&format!("secret (shown once, store it now): {secret}"));
        }
    }

    /// A list answer `{"items": [...]}` as a table of `columns`.
    pub(super) fn list(&mut self, v: &Value, columns: &[&str]) {
        if self.json {
            return self.raw(v);
        }
        let items = v
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let rows: Vec<Vec<String>> = items
            .iter()
            .map(|item| columns.iter().map(|c| table::cell(item.get(*c))).collect())
            .collect();
        self.text.push_str(&table::render(columns, &rows));
    }

    /// A scope: `inherit`, or its entries as a table.
    pub(super) fn scope(&mut self, v: &Value) {
        if self.json {
            return self.raw(v);
        }
        let Some(grants) = v.as_object() else {
            return self.line(&table::cell(Some(v)));
        };
        let mut rows: Vec<Vec<String>> = grants
            .get("servers")
            .and_then(Value::as_object)
            .map(|servers| {
                servers
                    .iter()
                    .map(|(slug, filter)| {
                        vec!["server".to_owned(), slug.clone(), table::cell(Some(filter))]
                    })
                    .collect()
            })
            .unwrap_or_default();
        if let Some(toolsets) = grants.get("toolsets").and_then(Value::as_array) {
            rows.extend(
                toolsets
                    .iter()
                    .map(|t| vec!["toolset".to_owned(), table::cell(Some(t)), "-".to_owned()]),
            );
        }
        if rows.is_empty() {
            return self.line("empty (admits nothing)");
        }
        self.text
            .push_str(&table::render(&["entry", "slug", "filter"], &rows));
    }

    pub(super) fn explain(&mut self, v: &Value) {
        if self.json {
            return self.raw(v);
        }
        let allowed = v.get("allowed").and_then(Value::as_bool).unwrap_or(false);
        let verdict = if allowed { "ALLOWED" } else { "DENIED" };
        let reason = table::cell(v.get("reason"));
        self.line(&format!(
            "{verdict} {reason} (revision {})",
            table::cell(v.get("revision"))
        ));
        let trace = v
            .get("trace")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let rows: Vec<Vec<String>> = trace
            .iter()
            .map(|e| {
                ["check", "outcome", "reason"]
                    .iter()
                    .map(|c| table::cell(e.get(*c)))
                    .collect()
            })
            .collect();
        self.text
            .push_str(&table::render(&["check", "outcome", "reason"], &rows));
    }

    pub(super) fn access(&mut self, v: &Value) {
        if self.json {
            return self.raw(v);
        }
        self.line(&format!(
            "revision {}  denial {}",
            table::cell(v.get("revision")),
            table::cell(v.get("principal_denial"))
        ));
        self.list(
            &json!({ "items": v.get("servers").cloned().unwrap_or_default() }),
            &["server", "filter", "tools"],
        );
    }
}
