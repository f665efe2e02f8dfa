//! Percentiles and plain-text tables.

use std::time::Instant;

use serde::Serialize;

/// Nearest-rank percentiles of a set of samples, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub min_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Percentiles {
    /// Summarises `samples_ms` (any order). Empty input gives all zeros.
    pub fn of(samples_ms: &[f64]) -> Percentiles {
        let mut sorted: Vec<f64> = samples_ms
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        if n == 0 {
            return Percentiles {
                count: 0,
                min_ms: 0.0,
                p50_ms: 0.0,
                p90_ms: 0.0,
                p99_ms: 0.0,
                max_ms: 0.0,
                mean_ms: 0.0,
            };
        }
        let pick = |q: f64| {
            let rank = (q * n as f64).ceil() as usize;
            sorted[rank.clamp(1, n) - 1]
        };
        Percentiles {
            count: n,
            min_ms: sorted[0],
            p50_ms: pick(0.50),
            p90_ms: pick(0.90),
            p99_ms: pick(0.99),
            max_ms: sorted[n - 1],
            mean_ms: sorted.iter().sum::<f64>() / n as f64,
        }
    }

    /// The cells `n, p50, p90, p99, max` of a table row.
    pub fn cells(&self) -> Vec<String> {
        vec![
            self.count.to_string(),
            ms(self.p50_ms),
            ms(self.p90_ms),
            ms(self.p99_ms),
            ms(self.max_ms),
        ]
    }
}

/// `later - earlier` in milliseconds, negative if `later` is earlier.
pub fn signed_ms(later: Instant, earlier: Instant) -> f64 {
    match later.checked_duration_since(earlier) {
        Some(d) => d.as_secs_f64() * 1000.0,
        None => -(earlier.duration_since(later).as_secs_f64() * 1000.0),
    }
}

/// Milliseconds with a precision that suits the magnitude.
pub fn ms(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// A plain-text table: the first `text_columns` columns left-aligned, the
/// (numeric) others right-aligned.
pub fn table(header: &[&str], text_columns: usize, rows: &[Vec<String>]) -> String {
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            if i < text_columns {
                out.push_str(&format!("{cell:<width$}", width = widths[i]));
            } else {
                out.push_str(&format!("{cell:>width$}", width = widths[i]));
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (columns.saturating_sub(1))));
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let p = Percentiles::of(&samples);
        assert_eq!(
            (p.p50_ms, p.p90_ms, p.p99_ms, p.max_ms),
            (50.0, 90.0, 99.0, 100.0)
        );
        assert_eq!((p.count, p.min_ms), (100, 1.0));
        assert!((p.mean_ms - 50.5).abs() < 1e-9);
    }

    #[test]
    fn small_and_empty_sets() {
        let one = Percentiles::of(&[3.5]);
        assert_eq!((one.p50_ms, one.p99_ms, one.max_ms), (3.5, 3.5, 3.5));
        let none = Percentiles::of(&[]);
        assert_eq!(none.count, 0);
        assert_eq!(none.p99_ms, 0.0);
        let negative = Percentiles::of(&[-1.0, 2.0, f64::NAN]);
        assert_eq!((negative.count, negative.min_ms), (2, -1.0));
    }

    #[test]
    fn tables_align() {
        let text = table(
            &["name", "n"],
            1,
            &[
                vec!["a".into(), "1".into()],
                vec!["longer".into(), "200".into()],
            ],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "name      n");
        assert_eq!(lines[2], "a         1");
        assert_eq!(lines[3], "longer  200");
    }

    #[test]
    fn signed_milliseconds() {
        let t = Instant::now();
        let later = t + std::time::Duration::from_micros(1500);
        assert!((signed_ms(later, t) - 1.5).abs() < 1e-9);
        assert!((signed_ms(t, later) + 1.5).abs() < 1e-9);
    }

    #[test]
    fn milliseconds_format_by_magnitude() {
        assert_eq!(ms(0.123), "0.12");
        assert_eq!(ms(12.345), "12.3");
        assert_eq!(ms(123.4), "123");
    }
}
