//! Calendar arithmetic for timestamps in logs and HTTP dates, without a date crate
//! (Howard Hinnant's days-from-civil algorithms), and the HTTP date format itself
//! (IMF-fixdate, for `Last-Modified` and `If-Modified-Since`).

/// Howard Hinnant's days_from_civil: days since 1970-01-01 in the proleptic Gregorian calendar.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of `days_from_civil`: (year, month 1-12, day 1-31).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`. (Day 0, 1970-01-01, was a Thursday.)
pub fn http_date(secs: i64) -> String {
    let (days, day_secs) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let weekday = WEEKDAYS.get(days.rem_euclid(7) as usize).unwrap_or(&"Thu");
    let month_name = MONTHS
        .get(month.saturating_sub(1) as usize)
        .unwrap_or(&"Jan");
    format!(
        "{weekday}, {day:02} {month_name} {year:04} {:02}:{:02}:{:02} GMT",
        day_secs / 3600,
        day_secs % 3600 / 60,
        day_secs % 60,
    )
}

/// Seconds since the epoch for an IMF-fixdate; the weekday is not checked.
pub fn parse_http_date(s: &str) -> Option<i64> {
    let fields: Vec<&str> = s.split_ascii_whitespace().collect();
    let &[_weekday, day, month, year, time, "GMT"] = fields.as_slice() else {
        return None;
    };
    let month = MONTHS.iter().position(|m| *m == month)? as u32 + 1;
    let (day, year) = (number(day, 2)? as u32, number(year, 4)?);
    let clock: Vec<&str> = time.split(':').collect();
    let &[h, m, sec] = clock.as_slice() else {
        return None;
    };
    let (h, m, sec) = (number(h, 2)?, number(m, 2)?, number(sec, 2)?);
    let days = days_from_civil(year, month, day);
    // The round trip rejects out-of-range days such as 31 Feb.
    let valid = civil_from_days(days) == (year, month, day) && h < 24 && m < 60 && sec < 61;
    valid.then_some(days * 86_400 + h * 3600 + m * 60 + sec)
}

/// Exactly `len` ASCII digits (no sign, no spaces), as IMF-fixdate writes its numbers.
fn number(s: &str, len: usize) -> Option<i64> {
    let digits = s.len() == len && s.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| s.parse().ok()).flatten()
}
