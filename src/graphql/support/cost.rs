//! What a request costs before it runs, so the per-request limit (`GRAPHQL_MAX_COMPLEXITY`)
//! bounds work rather than fields. A field costs 1 plus what is selected under it; a page
//! and a report cost by what they may touch:
//!
//! - a page of `first` rows: `2 + ceil(first x selection / 10)`, the selection under it
//!   being counted once per row, a tenth each (rows of one page are read together);
//! - a report over `from..to`: `10 + 2 x months x (1 + group-by keys) + selection`, months
//!   being the span's days over 31, rounded up (a report reads every entry of its span, and
//!   each grouping key multiplies the groups it builds).

use chrono::NaiveDate;

/// Rows a page may return at most, as pagination allows.
const MAX_ROWS: i32 = 100;

/// A page of `first` rows, each with a selection of `child` cost.
pub fn page(first: i32, child: usize) -> usize {
    let rows = first.clamp(0, MAX_ROWS) as usize;
    2 + (rows * child).div_ceil(10)
}

/// A report from `from` to `to` (both included) grouped by `keys` keys, with a selection of
/// `child` cost. A span that ends before it starts costs as one day: it is refused as it runs.
pub fn report(from: NaiveDate, to: NaiveDate, keys: usize, child: usize) -> usize {
    let days = usize::try_from((to - from).num_days() + 1).unwrap_or(1).max(1);
    10 + 2 * days.div_ceil(31) * (1 + keys) + child
}

#[cfg(test)]
mod tests {
    use super::{page, report};
    use chrono::NaiveDate;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn pages_cost_by_rows_and_selection() {
        assert_eq!(page(0, 12), 2);
        assert_eq!(page(20, 12), 2 + 24);
        assert_eq!(page(100, 12), 2 + 120);
        assert_eq!(
            page(1_000_000, 12),
            page(100, 12),
            "past the page limit it is refused anyway"
        );
        assert_eq!(page(-5, 12), 2);
    }

    #[test]
    fn reports_cost_by_span_and_grouping() {
        // A month, no grouping.
        assert_eq!(report(day("2026-11-01"), day("2026-11-30"), 0, 3), 10 + 2 + 3);
        // Five years by client, user and day: 1,796 days, 58 months, x 4.
        assert_eq!(
            report(day("2022-01-01"), day("2026-12-01"), 3, 3),
            10 + 2 * 58 * 4 + 3
        );
        assert_eq!(report(day("2026-12-01"), day("2026-01-01"), 1, 0), 10 + 2 * 2);
    }
}
