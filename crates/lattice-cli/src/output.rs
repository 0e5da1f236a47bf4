//! Human tables and machine-readable JSON.

use serde::Serialize;

use crate::args::{GlobalArgs, Output};

/// Prints rows under `headers` as aligned columns.
pub fn table(headers: &[&str], rows: impl IntoIterator<Item = Vec<String>>) {
    let rows: Vec<Vec<String>> = rows.into_iter().collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(headers.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Prints `value` as pretty JSON.
pub fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Reports a completed action: a sentence for people, `{"success":true,...}` for machines.
pub fn done(global: &GlobalArgs, message: &str) {
    match global.output {
        Output::Table => println!("{message}"),
        Output::Json => println!(
            "{}",
            serde_json::json!({"success": true, "message": message})
        ),
    }
}

/// `k=v,k=v` of the labels a user set (the `hostcore.*` ones are the host's own).
pub fn user_labels(labels: &std::collections::BTreeMap<String, String>) -> String {
    labels
        .iter()
        .filter(|(k, _)| !k.starts_with(lattice_proto::ctl::RESERVED_LABEL_PREFIX))
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}
