//! Shifting DA and DT values by whole days (the Retain Longitudinal Temporal Information
//! with Modified Dates option): intervals between a patient's dates are kept, times of day
//! are unchanged.

/// Days since 1970-01-01 of a civil date (proleptic Gregorian; H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn digits(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Shifts the date at the start of `value` (YYYYMMDD, YYYYMM or YYYY, as DA and the start
/// of DT allow) by `days`, keeping the rest; `None` when it is not such a date.
/// A date given to the month or year is shifted from its middle and keeps its precision.
pub(crate) fn shift(value: &str, days: i64) -> Option<String> {
    let v = value.trim();
    if v.is_empty() {
        return Some(String::new());
    }
    let digits_len = v.bytes().take_while(|b| b.is_ascii_digit()).count();
    let (len, rest) = match digits_len {
        4 | 6 => (digits_len, &v[digits_len..]),
        n if n >= 8 => (8, &v[8..]),
        _ => return None,
    };
    // What may follow: nothing in DA; a time and an offset from UTC in DT.
    let rest_ok = if len < 8 {
        rest.is_empty() || rest.starts_with(['+', '-'])
    } else {
        rest.bytes()
            .all(|b| b.is_ascii_digit() || b"+-.".contains(&b))
    };
    if !rest_ok {
        return None;
    }
    let y = digits(&v[..4])?;
    let m = if len >= 6 { digits(&v[4..6])? } else { 7 };
    let d = if len >= 8 { digits(&v[6..8])? } else { 15 };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let (y2, m2, d2) = civil_from_days(days_from_civil(y, m, d) + days);
    if !(0..=9999).contains(&y2) {
        return None;
    }
    let date = match len {
        4 => format!("{y2:04}"),
        6 => format!("{y2:04}{m2:02}"),
        _ => format!("{y2:04}{m2:02}{d2:02}"),
    };
    Some(date + rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts() {
        assert_eq!(shift("20000301", -1).as_deref(), Some("20000229"));
        assert_eq!(shift("20240101", -366).as_deref(), Some("20221231"));
        assert_eq!(
            shift("20240101120000.5+0800", -1).as_deref(),
            Some("20231231120000.5+0800")
        );
        assert_eq!(shift("2024", -400).as_deref(), Some("2023"));
        assert_eq!(shift("202403", -31).as_deref(), Some("202402"));
        assert_eq!(shift("", -3).as_deref(), Some(""));
        assert_eq!(shift("2024.01.01", -3), None);
        assert_eq!(shift("20241301", -3), None);
        for z in [-800_000, -1, 0, 1, 19_000, 2_900_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }
}
