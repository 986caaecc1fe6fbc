//! Dates and times in Postgres' ISO output as Debezium types them: `date` as days,
//! `timestamp` as milli- or microseconds (read as UTC), `timestamptz` as a `ZonedTimestamp` text,
//! `time` as milli- or microseconds of the day, `timetz` as a `ZonedTime` text, `interval` as a
//! `MicroDuration` (pgjdbc's fields, a month of 365.25/12 days), on a proleptic Gregorian calendar.
//!
//! Owns the text formats and the calendar arithmetic; which column gets which is [`super::Kind`]'s.

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// `HH:MM:SS[.ffffff]` at the start of `text` (hour 24 only as `24:00:00`): microseconds of the
/// day and the rest of the text. `whole` names the value in errors.
pub(super) fn parse_time_of_day<'a>(text: &'a str, whole: &str) -> Result<(i64, &'a str), String> {
    let bad = || format!("{whole:?} is not a time of day in Postgres' output format");
    let num = |s: Option<&str>| -> Result<i64, String> {
        match s {
            Some(s) if s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse().map_err(|_| bad())
            }
            _ => Err(bad()),
        }
    };
    let hour = num(text.get(0..2))?;
    let minute = num(text.get(3..5))?;
    let second = num(text.get(6..8))?;
    if text.as_bytes().get(2) != Some(&b':') || text.as_bytes().get(5) != Some(&b':') {
        return Err(bad());
    }
    let mut rest = &text[8..];
    let mut micros = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 6 {
            return Err(bad());
        }
        micros = frac[..n].parse::<i64>().map_err(|_| bad())? * 10i64.pow(6 - n as u32);
        rest = &frac[n..];
    }
    if minute > 59
        || second > 59
        || hour > 24
        || hour == 24 && (minute, second, micros) != (0, 0, 0)
    {
        return Err(bad());
    }
    Ok((
        ((hour * 60 + minute) * 60 + second) * 1_000_000 + micros,
        rest,
    ))
}

/// A `timetz` as Debezium's `ZonedTime`: the time at UTC in Java's `ISO_OFFSET_TIME`
/// (`HH:mm:ss`, the fraction's digits only as far as needed, `Z`).
pub(super) fn zoned_time(text: &str) -> Result<String, String> {
    let bad = || format!("{text:?} is not a time with time zone in Postgres' output format");
    let (micros, rest) = parse_time_of_day(text, text)?;
    if micros == MICROS_PER_DAY {
        return Err(format!(
            "the time with time zone {text} (end of day) is not a time of day outboxd can write as Debezium's ZonedTime"
        ));
    }
    let sign = match rest.as_bytes().first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err(bad()),
    };
    let parts: Vec<&str> = rest[1..].split(':').collect();
    if parts.len() > 3 {
        return Err(bad());
    }
    let mut offset = 0i64;
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        offset += p.parse::<i64>().map_err(|_| bad())? * [3600, 60, 1][i];
    }
    let utc = (micros - sign * offset * 1_000_000).rem_euclid(MICROS_PER_DAY);
    let secs = utc / 1_000_000;
    let mut out = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    let fraction = utc % 1_000_000;
    if fraction != 0 {
        out.push('.');
        out.push_str(format!("{fraction:06}").trim_end_matches('0'));
    }
    out.push('Z');
    Ok(out)
}

/// An `interval` in Postgres' default output style (`1 year 2 mons -3 days +04:05:06.789`) as
/// Debezium's `MicroDuration`: pgjdbc's `PGInterval` fields, then
/// `MicroDuration.durationMicros` with a month of 365.25 / 12 days, in the same floating-point
/// steps, cut to a long as Java casts.
pub(super) fn interval_micros(text: &str) -> Result<i64, String> {
    let bad = || {
        format!(
            "{text:?} is not an interval in Postgres' default output style; outboxd reads IntervalStyle postgres: ALTER ROLE <outboxd's user> SET IntervalStyle = 'postgres'"
        )
    };
    if text.starts_with('@') || text.starts_with('P') {
        return Err(bad());
    }
    let int = |s: &str| s.parse::<i32>().map_err(|_| bad());
    let (mut years, mut months, mut days, mut hours, mut minutes) = (0i32, 0i32, 0i32, 0i32, 0i32);
    let mut seconds = 0f64;
    let lowered = text.replace('+', " ").to_lowercase();
    let mut value: Option<&str> = None;
    for token in lowered.split_whitespace() {
        if let Some(v) = value.take() {
            match token {
                t if t.starts_with("year") => years = int(v)?,
                t if t.starts_with("mon") => months = int(v)?,
                t if t.starts_with("day") => days = int(v)?,
                _ => return Err(bad()),
            }
        } else if let Some(end_hours) = token.find(':') {
            let negative = token.starts_with('-');
            let start = usize::from(negative);
            hours = int(token.get(start..end_hours).ok_or_else(bad)?)?;
            minutes = int(token.get(end_hours + 1..end_hours + 3).ok_or_else(bad)?)?;
            if let Some(end_minutes) = token[end_hours + 1..].find(':') {
                seconds = token[end_hours + 2 + end_minutes..]
                    .parse::<f64>()
                    .map_err(|_| bad())?;
            }
            if negative {
                hours = -hours;
                minutes = -minutes;
                seconds = -seconds;
            }
        } else {
            value = Some(token);
        }
    }
    if value.is_some() || !seconds.is_finite() {
        return Err(bad());
    }
    // PGInterval.setSeconds / getSeconds: whole seconds and microseconds.
    let scaled = seconds * 1e6;
    let floor = scaled.floor();
    let total = if scaled - floor >= 0.5 {
        floor + 1.0
    } else {
        floor
    } as i64;
    let seconds = (total / 1_000_000) as f64 + (total % 1_000_000) as f64 / 1e6;
    // MicroDuration.durationMicros(years, months, days, hours, minutes, seconds, 0, 365.25 / 12)
    let days_per_month = 365.25 / 12.0;
    let number_of_days =
        f64::from(years.wrapping_mul(12).wrapping_add(months)) * days_per_month + f64::from(days);
    let number_of_seconds =
        ((number_of_days * 24.0 + f64::from(hours)) * 60.0 + f64::from(minutes)) * 60.0 + seconds;
    Ok((number_of_seconds * 1e6 + 0.0) as i64)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (astronomical year numbering).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number from [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn not_iso(text: &str) -> String {
    format!(
        "{text:?} is not a date/time in Postgres' ISO output style; outboxd reads DateStyle ISO (the default): ALTER ROLE <outboxd's user> SET DateStyle = 'ISO, MDY'"
    )
}

/// `YYYY-MM-DD` (year of 4 or more digits), optionally followed by ` BC`: (astronomical year,
/// month, day) and the rest of the text.
fn parse_date_prefix(text: &str) -> Result<((i64, u32, u32), &str), String> {
    let bad = || not_iso(text);
    let (year, rest) = text.split_once('-').ok_or_else(bad)?;
    if year.len() < 4 || !year.bytes().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let (month, rest) = rest.split_at_checked(2).ok_or_else(bad)?;
    let rest = rest.strip_prefix('-').ok_or_else(bad)?;
    let (day, rest) = rest.split_at_checked(2).ok_or_else(bad)?;
    let num = |s: &str| -> Result<u32, String> {
        if s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let year: i64 = year.parse().map_err(|_| bad())?;
    Ok(((year, num(month)?, num(day)?), rest))
}

/// A `date` in Postgres' ISO text: days since 1970-01-01.
pub(super) fn parse_date(text: &str) -> Result<i32, String> {
    if text == "infinity" || text == "-infinity" {
        return Err(format!("the date {text} cannot be represented"));
    }
    let (body, bc) = match text.strip_suffix(" BC") {
        Some(b) => (b, true),
        None => (text, false),
    };
    let ((year, month, day), rest) = parse_date_prefix(body)?;
    if !rest.is_empty() {
        return Err(not_iso(text));
    }
    let year = if bc { 1 - year } else { year };
    i32::try_from(days_from_civil(year, month, day)).map_err(|_| not_iso(text))
}

/// A `timestamp` (read as UTC) or `timestamptz` in Postgres' ISO text
/// (`2026-11-21 10:00:00.123456+02`, offsets `+HH`, `+HH:MM`, `+HH:MM:SS`, ` BC` suffix):
/// microseconds since the epoch.
pub fn parse_timestamp(text: &str, with_offset: bool) -> Result<i64, String> {
    if text == "infinity" || text == "-infinity" {
        return Err(format!("the timestamp {text} cannot be represented"));
    }
    let bad = || not_iso(text);
    let (body, bc) = match text.strip_suffix(" BC") {
        Some(b) => (b, true),
        None => (text, false),
    };
    let ((year, month, day), rest) = parse_date_prefix(body)?;
    let rest = rest.strip_prefix(' ').ok_or_else(bad)?;
    let digits2 = |s: &str| -> Result<i64, String> {
        if s.len() == 2 && s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let hour = digits2(rest.get(0..2).ok_or_else(bad)?)?;
    let minute = digits2(rest.get(3..5).ok_or_else(bad)?)?;
    let second = digits2(rest.get(6..8).ok_or_else(bad)?)?;
    if rest.as_bytes().get(2) != Some(&b':') || rest.as_bytes().get(5) != Some(&b':') {
        return Err(bad());
    }
    let mut rest = &rest[8..];
    let mut micros_frac = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 6 {
            return Err(bad());
        }
        let digits = &frac[..n];
        micros_frac = digits.parse::<i64>().map_err(|_| bad())? * 10i64.pow(6 - n as u32);
        rest = &frac[n..];
    }
    let mut offset_secs = 0i64;
    if with_offset {
        let sign = match rest.as_bytes().first() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err(bad()),
        };
        let parts: Vec<&str> = rest[1..].split(':').collect();
        if parts.is_empty() || parts.len() > 3 {
            return Err(bad());
        }
        let mut secs = 0;
        for (i, p) in parts.iter().enumerate() {
            secs += digits2(p)? * [3600, 60, 1][i];
        }
        offset_secs = sign * secs;
    } else if !rest.is_empty() {
        return Err(bad());
    }
    let year = if bc { 1 - year } else { year };
    let days = days_from_civil(year, month, day);
    days.checked_mul(MICROS_PER_DAY)
        .and_then(|d| d.checked_add(((hour * 60 + minute) * 60 + second - offset_secs) * 1_000_000))
        .and_then(|d| d.checked_add(micros_frac))
        .ok_or_else(bad)
}

/// Debezium's `ZonedTimestamp` text of an instant: UTC, `Z`, `fraction` digits of the second
/// (`None`: Java's `ISO_OFFSET_DATE_TIME`, which prints only the digits needed).
pub fn zoned_timestamp(epoch_micros: i64, fraction: Option<u8>) -> String {
    let days = epoch_micros.div_euclid(MICROS_PER_DAY);
    let of_day = epoch_micros.rem_euclid(MICROS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let secs = of_day / 1_000_000;
    let micros = of_day % 1_000_000;
    // Java's ISO_LOCAL_DATE: at least 4 digits, '+' above 9999, '-' before year 0.
    let year = if y > 9999 {
        format!("+{y}")
    } else if y < 0 {
        format!("-{:04}", -y)
    } else {
        format!("{y:04}")
    };
    let mut out = format!(
        "{year}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    let nanos = format!("{:09}", micros * 1000);
    match fraction {
        Some(n) => {
            out.push('.');
            out.push_str(&nanos[..usize::from(n)]);
        }
        None if micros != 0 => {
            out.push('.');
            out.push_str(nanos.trim_end_matches('0'));
        }
        None => {}
    }
    out.push('Z');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::columns::tests::text;
    use crate::router::columns::*;

    #[test]
    fn timestamptz_is_debeziums_zoned_timestamp() {
        let k = Kind::of(oid::TIMESTAMPTZ, -1);
        assert_eq!(
            k.decode(&text("2026-11-21 10:00:01+02")).unwrap(),
            Value::String("2026-11-21T08:00:01.000000Z".into())
        );
        assert_eq!(
            k.decode(&text("2026-11-21 10:00:00.123456+00")).unwrap(),
            Value::String("2026-11-21T10:00:00.123456Z".into())
        );
        assert_eq!(
            Kind::of(oid::TIMESTAMPTZ, 3)
                .decode(&text("2026-11-21 10:00:00.12+05:30"))
                .unwrap(),
            Value::String("2026-11-21T04:30:00.120Z".into())
        );
        assert_eq!(
            Kind::of(oid::TIMESTAMPTZ, 0)
                .decode(&text("2026-11-21 10:00:00-01:02:03"))
                .unwrap(),
            Value::String("2026-11-21T11:02:03Z".into())
        );
        assert_eq!(
            k.event_timestamp_ms(&text("2026-11-21 10:00:01+02"))
                .unwrap(),
            Some(1_795_248_001_000)
        );
        assert!(k
            .decode(&text("Sat Nov 21 10:00:01 2026 CET"))
            .unwrap_err()
            .contains("DateStyle"));
    }

    #[test]
    fn timestamp_is_micros_or_millis_read_as_utc() {
        let k = Kind::of(oid::TIMESTAMP, -1);
        assert_eq!(
            k.decode(&text("2026-11-21 10:00:00.123456")).unwrap(),
            Value::Int64(1_795_255_200_123_456)
        );
        assert_eq!(
            k.event_timestamp_ms(&text("2026-11-21 10:00:00.123456"))
                .unwrap(),
            Some(1_795_255_200_123)
        );
        assert_eq!(
            k.schema(true).name.as_deref(),
            Some("io.debezium.time.MicroTimestamp")
        );
        let ms = Kind::of(oid::TIMESTAMP, 3);
        assert_eq!(
            ms.decode(&text("1969-12-31 23:59:59.999")).unwrap(),
            Value::Int64(-1)
        );
        assert_eq!(
            ms.schema(true).name.as_deref(),
            Some("io.debezium.time.Timestamp")
        );
        assert_eq!(
            k.decode(&text("0001-01-01 00:00:00 BC")).unwrap(),
            Value::Int64(-62_167_219_200_000_000)
        );
        assert_eq!(k.event_timestamp_ms(&TupleValue::Null).unwrap(), None);
        assert_eq!(
            Kind::Int8
                .event_timestamp_ms(&text("1795255200123"))
                .unwrap(),
            Some(1_795_255_200_123)
        );
    }

    #[test]
    fn zoned_timestamp_years() {
        assert_eq!(zoned_timestamp(0, Some(6)), "1970-01-01T00:00:00.000000Z");
        assert_eq!(zoned_timestamp(-1, None), "1969-12-31T23:59:59.999999Z");
        assert_eq!(
            zoned_timestamp(
                parse_timestamp("10000-01-01 00:00:00+00", true).unwrap(),
                None
            ),
            "+10000-01-01T00:00:00Z"
        );
    }

    #[test]
    fn time_is_millis_or_micros_of_the_day() {
        let micro = Kind::of(oid::TIME, -1);
        assert_eq!(
            micro.schema(false),
            Schema::new(Type::Int64, false).named("io.debezium.time.MicroTime", Some(1))
        );
        assert_eq!(
            micro.decode(&text("10:15:30.123456")).unwrap(),
            Value::Int64(36_930_123_456)
        );
        assert_eq!(
            micro.decode(&text("24:00:00")).unwrap(),
            Value::Int64(86_400_000_000)
        );
        assert_eq!(Kind::of(oid::TIME, 6), micro);
        let milli = Kind::of(oid::TIME, 3);
        assert_eq!(
            milli.schema(true),
            Schema::new(Type::Int32, true).named("io.debezium.time.Time", Some(1))
        );
        assert_eq!(
            milli.decode(&text("10:15:30.123")).unwrap(),
            Value::Int32(36_930_123)
        );
        assert_eq!(Kind::of(oid::TIME, 0), milli);
        for junk in [
            "10:15",
            "25:00:00",
            "10:60:00",
            "24:00:01",
            "10:15:30.1234567",
            "10:15:30x",
        ] {
            let r = micro.decode(&text(junk));
            assert!(r.is_err(), "{junk}: {r:?}");
        }
    }

    #[test]
    fn timetz_is_a_zoned_time_at_utc() {
        let k = Kind::of(oid::TIMETZ, -1);
        assert_eq!(
            k.schema(false),
            Schema::new(Type::String, false).named("io.debezium.time.ZonedTime", Some(1))
        );
        for (pg, zoned) in [
            ("10:00:01.123456+02", "08:00:01.123456Z"),
            ("10:00:01+00", "10:00:01Z"),
            ("10:00:00.12-01", "11:00:00.12Z"),
            ("01:00:00+05:30", "19:30:00Z"),
            ("23:30:00-01:00:15", "00:30:15Z"),
            ("00:00:00+00", "00:00:00Z"),
        ] {
            assert_eq!(
                k.decode(&text(pg)).unwrap(),
                Value::String(zoned.into()),
                "{pg}"
            );
        }
        assert!(k.decode(&text("24:00:00+00")).is_err());
        assert!(k.decode(&text("10:00:00")).is_err());
        assert!(k.decode(&text("10:00:00+2")).is_err());
    }

    #[test]
    fn interval_is_debeziums_micro_duration() {
        let k = Kind::of(oid::INTERVAL, -1);
        assert_eq!(
            k.schema(false),
            Schema::new(Type::Int64, false).named("io.debezium.time.MicroDuration", Some(1))
        );
        // Expected values: Java's double arithmetic of MicroDuration.durationMicros.
        for (pg, micros) in [
            ("1 year 2 mons 3 days 04:05:06.789", 37_091_106_789_000),
            ("-3 days -04:05:06.5", -273_906_500_000),
            ("1 mon", 2_629_800_000_000),
            ("00:00:00.000001", 1),
            ("-1 years -2 mons", -36_817_200_000_000),
            ("00:00:00", 0),
            ("1 day +02:00:00", 93_600_000_000),
            ("100:00:00", 360_000_000_000),
        ] {
            assert_eq!(k.decode(&text(pg)).unwrap(), Value::Int64(micros), "{pg}");
        }
        for other_style in ["@ 1 year", "P1Y2M", "1-2", "1 2:03:04", "3 days 4 hours"] {
            let err = k.decode(&text(other_style)).unwrap_err();
            assert!(err.contains("IntervalStyle"), "{other_style}: {err}");
        }
    }
}
