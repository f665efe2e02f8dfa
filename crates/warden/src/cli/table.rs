//! Plain-text tables for people. Scripts use `--json`.

use serde_json::Value;

/// One cell: strings bare, null as `-`, lists joined, objects as compact JSON.
pub fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.to_string(),
    }
}

/// `field | value` rows of one object, in its key order.
pub fn object_rows(v: &Value) -> Vec<Vec<String>> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| vec![k.clone(), cell(Some(v))])
                .collect()
        })
        .unwrap_or_default()
}

/// Left-aligned columns separated by two spaces, with a header line.
pub fn render(columns: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = columns.iter().map(|c| c.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
        let padded: Vec<String> = cells
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}", w = *w))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(&mut columns.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_aligned_columns() {
        let rows = vec![vec!["github".to_owned(), "true".to_owned()]];
        assert_eq!(
            render(&["slug", "enabled"], &rows),
            "slug    enabled\ngithub  true\n"
        );
    }

    #[test]
    fn cells_are_readable() {
        assert_eq!(cell(None), "-");
        assert_eq!(cell(Some(&json!(["a", "b"]))), "a,b");
        assert_eq!(
            cell(Some(&json!({"except": ["c"]}))),
            "{\"except\":[\"c\"]}"
        );
        assert_eq!(cell(Some(&json!(3))), "3");
    }
}
