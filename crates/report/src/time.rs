//! Civil time in UTC for what Lumen writes: DICOM DA/TM, ISO 8601 for the API, and the
//! short form printed on reports. One place for the calendar arithmetic (Howard Hinnant's
//! days-from-civil algorithm), so no crate keeps its own copy.

/// Milliseconds since the Unix epoch, now (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A UTC instant broken into calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Year.
    pub year: i64,
    /// Month, 1 to 12.
    pub month: i64,
    /// Day of the month, 1 to 31.
    pub day: i64,
    /// Hour, 0 to 23.
    pub hour: i64,
    /// Minute.
    pub minute: i64,
    /// Second.
    pub second: i64,
}

impl Civil {
    /// The calendar fields of `ms` milliseconds since the epoch (UTC).
    pub fn from_ms(ms: i64) -> Civil {
        let secs = ms.div_euclid(1000);
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        Civil {
            year: yoe + era * 400 + i64::from(month <= 2),
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
        }
    }

    /// DICOM DA (`YYYYMMDD`).
    pub fn da(&self) -> String {
        format!("{:04}{:02}{:02}", self.year, self.month, self.day)
    }

    /// DICOM TM (`HHMMSS`).
    pub fn tm(&self) -> String {
        format!("{:02}{:02}{:02}", self.hour, self.minute, self.second)
    }

    /// ISO 8601 UTC (`2026-11-27T06:05:09Z`).
    pub fn iso(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// As printed on a report (`2026-11-27 06:05 UTC`).
    pub fn shown(&self) -> String {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            self.year, self.month, self.day, self.hour, self.minute
        )
    }
}

/// ISO 8601 UTC of `ms` milliseconds since the epoch.
pub fn iso(ms: i64) -> String {
    Civil::from_ms(ms).iso()
}

/// RFC 3339 UTC with milliseconds (`2026-11-27T06:05:09.123Z`), as the audit trail records.
pub fn iso_millis(ms: i64) -> String {
    let c = Civil::from_ms(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        ms.rem_euclid(1000)
    )
}

/// Days since the epoch of a civil date (the inverse of [`Civil::from_ms`]'s calendar).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Milliseconds since the epoch of an ISO 8601 date or UTC date-time given by a user:
/// `2026-11-27`, `20261127`, `2026-11-27T06:05`, `2026-11-27T06:05:09Z`,
/// `2026-11-27T06:05:09.123Z`. `None` when it is not one of these.
pub fn parse_iso(s: &str) -> Option<i64> {
    let s = s.trim().trim_end_matches('Z');
    let (date, time) = match s.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let digits: String = date.chars().filter(|c| *c != '-').collect();
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |a: usize, b: usize| digits[a..b].parse::<i64>().ok();
    let (y, m, d) = (num(0, 4)?, num(4, 6)?, num(6, 8)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let mut ms = days_from_civil(y, m, d) * 86_400_000;
    if let Some(t) = time {
        let (hms, frac) = t.split_once('.').unwrap_or((t, ""));
        let parts: Vec<&str> = hms.split(':').collect();
        if parts.len() < 2 || parts.len() > 3 {
            return None;
        }
        let field = |p: &str, max: i64| p.parse::<i64>().ok().filter(|v| (0..=max).contains(v));
        ms += field(parts[0], 23)? * 3_600_000 + field(parts[1], 59)? * 60_000;
        if let Some(sec) = parts.get(2) {
            ms += field(sec, 60)? * 1000;
        }
        if !frac.is_empty() {
            if !frac.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let f: String = frac.chars().chain("000".chars()).take(3).collect();
            ms += f.parse::<i64>().ok()?;
        }
    }
    Some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso(1_795_759_509_000), "2026-11-27T06:05:09Z");
        let c = Civil::from_ms(951_782_400_000); // 2000-02-29, a leap day
        assert_eq!((c.da(), c.tm()), ("20000229".into(), "000000".into()));
        assert_eq!(Civil::from_ms(-1000).iso(), "1969-12-31T23:59:59Z");
        assert_eq!(
            Civil::from_ms(1_795_759_509_000).shown(),
            "2026-11-27 06:05 UTC"
        );
    }

    #[test]
    fn iso_round_trips() {
        for ms in [0, 951_782_400_000, 1_795_759_509_123, -86_400_000] {
            assert_eq!(parse_iso(&iso_millis(ms)), Some(ms), "{ms}");
        }
        assert_eq!(parse_iso("2026-11-27"), Some(1_795_737_600_000));
        assert_eq!(parse_iso("20261127"), parse_iso("2026-11-27"));
        assert_eq!(parse_iso("2026-11-27T06:05"), Some(1_795_759_500_000));
        for bad in [
            "",
            "2026-13-01",
            "yesterday",
            "2026-11-27T25:00",
            "2026-11-27T06:05:09.1x",
        ] {
            assert_eq!(parse_iso(bad), None, "{bad}");
        }
    }
}
