//! Money: exact decimals, one rounding rule everywhere (reports, entries, invoices).

use rust_decimal::{Decimal, RoundingStrategy};

/// Rounds half away from zero to `minor_units` decimals, as PostgreSQL's
/// `round(numeric, n)` does, so amounts computed in SQL and here agree.
pub fn round(amount: Decimal, minor_units: u32) -> Decimal {
    amount.round_dp_with_strategy(minor_units, RoundingStrategy::MidpointAwayFromZero)
}

/// `amount` as shown: rounded, with exactly `minor_units` decimals (38000.00, not 38000).
pub fn shown(amount: Decimal, minor_units: u32) -> Decimal {
    let mut shown = round(amount, minor_units);
    shown.rescale(minor_units);
    shown
}

/// The amount of `minutes` at an hourly `rate`, rounded once.
pub fn time_amount(minutes: i64, rate: Decimal, minor_units: u32) -> Decimal {
    round(Decimal::from(minutes) * rate / Decimal::from(60), minor_units)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_round_away_from_zero_once() {
        assert_eq!(round(Decimal::new(125, 3), 2), Decimal::new(13, 2));
        assert_eq!(round(Decimal::new(-125, 3), 2), Decimal::new(-13, 2));
        assert_eq!(round(Decimal::new(124, 3), 2), Decimal::new(12, 2));
        // 7 minutes at 333.33 an hour: 38.8885 -> 38.89.
        assert_eq!(time_amount(7, Decimal::new(33333, 2), 2), Decimal::new(3889, 2));
        assert_eq!(time_amount(90, Decimal::from(1000), 0), Decimal::from(1500));
        assert_eq!(shown(Decimal::from(38000), 2).to_string(), "38000.00");
        assert_eq!(shown(Decimal::new(12345, 4), 2).to_string(), "1.23");
    }
}
