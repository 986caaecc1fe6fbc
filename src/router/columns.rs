//! Postgres column values as Debezium's Postgres connector types them (its defaults:
//! `time.precision.mode=adaptive`, `binary.handling.mode=bytes`).
//!
//! | Postgres | Connect schema | value |
//! |---|---|---|
//! | `text`, `varchar`, `bpchar`, `name`, `"char"` | STRING | the text |
//! | `json`, `jsonb` | STRING `io.debezium.data.Json` v1 | the text (jsonb as Postgres prints it) |
//! | `xml` | STRING `io.debezium.data.Xml` v1 | the text |
//! | `uuid` | STRING `io.debezium.data.Uuid` v1 | the canonical text |
//! | `bytea` | BYTES | the bytes |
//! | `bool` | BOOLEAN | |
//! | `int2`, `int4`, `int8` | INT16, INT32, INT64 | |
//! | `float4`, `float8` | FLOAT32, FLOAT64 | |
//! | `date` | INT32 `io.debezium.time.Date` v1 | days since 1970-01-01 |
//! | `timestamp(0..3)` | INT64 `io.debezium.time.Timestamp` v1 | milliseconds since the epoch, read as UTC |
//! | `timestamp`, `timestamp(4..6)` | INT64 `io.debezium.time.MicroTimestamp` v1 | microseconds since the epoch, read as UTC |
//! | `timestamptz(p)` | STRING `io.debezium.time.ZonedTimestamp` v1 | UTC, ISO-8601, `p` fraction digits (6 without `p`) |
//! | anything else | STRING | the text Postgres prints (Debezium types some of these differently: see docs/configuration.md) |
//!
//! Values arrive in pgoutput's text format (the binary format is read for the types an outbox
//! id, key, route or payload commonly has).

use bytes::Bytes;

use crate::convert::{Schema, Type, Value};
use crate::source::pgoutput::TupleValue;

/// Postgres type OIDs (`pg_type.oid`, stable for built-in types).
pub mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const CHAR: u32 = 18;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const JSON: u32 = 114;
    pub const XML: u32 = 142;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
}

/// How a column's values are typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Json {
        jsonb: bool,
    },
    Xml,
    Uuid,
    Bytea,
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Date,
    /// `millis`: precision 0 to 3 (`io.debezium.time.Timestamp`), else microseconds.
    Timestamp {
        millis: bool,
    },
    /// `fraction`: the digits of the fraction of a second; `None` prints as few as needed.
    Timestamptz {
        fraction: Option<u8>,
    },
    /// Any other type: its text as a STRING.
    Other,
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

impl Kind {
    /// The kind of a column of type `type_oid` with type modifier `type_modifier` (-1: none).
    pub fn of(type_oid: u32, type_modifier: i32) -> Kind {
        match type_oid {
            oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME | oid::CHAR => Kind::Text,
            oid::JSON => Kind::Json { jsonb: false },
            oid::JSONB => Kind::Json { jsonb: true },
            oid::XML => Kind::Xml,
            oid::UUID => Kind::Uuid,
            oid::BYTEA => Kind::Bytea,
            oid::BOOL => Kind::Bool,
            oid::INT2 => Kind::Int2,
            oid::INT4 => Kind::Int4,
            oid::INT8 => Kind::Int8,
            oid::FLOAT4 => Kind::Float4,
            oid::FLOAT8 => Kind::Float8,
            oid::DATE => Kind::Date,
            oid::TIMESTAMP => Kind::Timestamp {
                millis: (0..=3).contains(&type_modifier),
            },
            oid::TIMESTAMPTZ => Kind::Timestamptz {
                fraction: match type_modifier {
                    m if m < 0 => Some(6),
                    0 => None,
                    m => Some(m.min(9) as u8),
                },
            },
            _ => Kind::Other,
        }
    }

    /// The Connect schema Debezium gives such a column.
    pub fn schema(self, optional: bool) -> Schema {
        let s = |t: Type| Schema::new(t, optional);
        match self {
            Kind::Text | Kind::Other => s(Type::String),
            Kind::Json { .. } => s(Type::String).named("io.debezium.data.Json", Some(1)),
            Kind::Xml => s(Type::String).named("io.debezium.data.Xml", Some(1)),
            Kind::Uuid => s(Type::String).named("io.debezium.data.Uuid", Some(1)),
            Kind::Bytea => s(Type::Bytes),
            Kind::Bool => s(Type::Boolean),
            Kind::Int2 => s(Type::Int16),
            Kind::Int4 => s(Type::Int32),
            Kind::Int8 => s(Type::Int64),
            Kind::Float4 => s(Type::Float32),
            Kind::Float8 => s(Type::Float64),
            Kind::Date => s(Type::Int32).named("io.debezium.time.Date", Some(1)),
            Kind::Timestamp { millis: true } => {
                s(Type::Int64).named("io.debezium.time.Timestamp", Some(1))
            }
            Kind::Timestamp { millis: false } => {
                s(Type::Int64).named("io.debezium.time.MicroTimestamp", Some(1))
            }
            Kind::Timestamptz { .. } => {
                s(Type::String).named("io.debezium.time.ZonedTimestamp", Some(1))
            }
        }
    }

    /// Whether values are integers (usable as a partition or schema version).
    pub fn is_integer(self) -> bool {
        matches!(self, Kind::Int2 | Kind::Int4 | Kind::Int8)
    }

    /// Whether the column can give the record timestamp (`table.field.event.timestamp`).
    pub fn is_timestamp_source(self) -> bool {
        matches!(
            self,
            Kind::Timestamp { .. } | Kind::Timestamptz { .. } | Kind::Int8
        )
    }

    /// The value of one cell; `Value::Null` for SQL NULL.
    pub fn decode(self, cell: &TupleValue) -> Result<Value, String> {
        match cell {
            TupleValue::Null => Ok(Value::Null),
            TupleValue::UnchangedToast => Err("unchanged TOAST value in an insert".into()),
            TupleValue::Text(b) => self.decode_text(b),
            TupleValue::Binary(b) => self.decode_binary(b),
        }
    }

    fn decode_text(self, b: &Bytes) -> Result<Value, String> {
        if self == Kind::Bytea {
            return decode_bytea_hex(b).map(Value::Bytes);
        }
        let text =
            std::str::from_utf8(b).map_err(|_| "the value is not valid UTF-8".to_string())?;
        let number = |what: &str| format!("{text:?} is not a valid {what}");
        Ok(match self {
            Kind::Text | Kind::Other | Kind::Json { .. } | Kind::Xml | Kind::Uuid => {
                Value::String(text.to_string())
            }
            Kind::Bytea => unreachable!("handled above"),
            Kind::Bool => match text {
                "t" => Value::Boolean(true),
                "f" => Value::Boolean(false),
                _ => return Err(number("boolean")),
            },
            Kind::Int2 => Value::Int16(text.parse().map_err(|_| number("int2"))?),
            Kind::Int4 => Value::Int32(text.parse().map_err(|_| number("int4"))?),
            Kind::Int8 => Value::Int64(text.parse().map_err(|_| number("int8"))?),
            Kind::Float4 => Value::Float32(parse_float(text).map_err(|_| number("float4"))? as f32),
            Kind::Float8 => Value::Float64(parse_float(text).map_err(|_| number("float8"))?),
            Kind::Date => Value::Int32(parse_date(text)?),
            Kind::Timestamp { millis } => {
                let micros = parse_timestamp(text, false)?;
                Value::Int64(if millis {
                    micros.div_euclid(1000)
                } else {
                    micros
                })
            }
            Kind::Timestamptz { fraction } => {
                if text == "infinity" || text == "-infinity" {
                    // Debezium passes Postgres' infinities on as these strings.
                    Value::String(text.to_string())
                } else {
                    Value::String(zoned_timestamp(parse_timestamp(text, true)?, fraction))
                }
            }
        })
    }

    fn decode_binary(self, b: &Bytes) -> Result<Value, String> {
        let utf8 = |b: &[u8]| {
            String::from_utf8(b.to_vec()).map_err(|_| "the value is not valid UTF-8".to_string())
        };
        let int = |n: usize| -> Result<i64, String> {
            if b.len() != n {
                return Err(format!("binary integer of {} bytes, expected {n}", b.len()));
            }
            let mut a = [0u8; 8];
            a[8 - n..].copy_from_slice(b);
            let shift = 64 - 8 * n as u32;
            Ok((i64::from_be_bytes(a) << shift) >> shift)
        };
        Ok(match self {
            Kind::Text | Kind::Xml | Kind::Json { jsonb: false } => Value::String(utf8(b)?),
            Kind::Json { jsonb: true } => match b.first() {
                Some(1) => Value::String(utf8(&b[1..])?),
                other => return Err(format!("binary jsonb with unknown version byte {other:?}")),
            },
            Kind::Uuid => {
                if b.len() != 16 {
                    return Err(format!("binary uuid of {} bytes", b.len()));
                }
                let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
                Value::String(format!(
                    "{}-{}-{}-{}-{}",
                    &h[0..8],
                    &h[8..12],
                    &h[12..16],
                    &h[16..20],
                    &h[20..32]
                ))
            }
            Kind::Bytea => Value::Bytes(b.clone()),
            Kind::Bool => Value::Boolean(int(1)? != 0),
            Kind::Int2 => Value::Int16(int(2)? as i16),
            Kind::Int4 => Value::Int32(int(4)? as i32),
            Kind::Int8 => Value::Int64(int(8)?),
            _ => {
                return Err(
                    "values of this type are only read in pgoutput's text format".to_string(),
                )
            }
        })
    }

    /// The record timestamp (ms since the epoch) a `table.field.event.timestamp` cell gives;
    /// `None` for NULL. `timestamp` is read as UTC; microseconds are cut to milliseconds the way
    /// Debezium does (Java integer division).
    pub fn event_timestamp_ms(self, cell: &TupleValue) -> Result<Option<i64>, String> {
        let text = match cell {
            TupleValue::Null => return Ok(None),
            TupleValue::Text(b) => {
                std::str::from_utf8(b).map_err(|_| "the value is not valid UTF-8".to_string())?
            }
            _ => return self.decode(cell).map(|_| None),
        };
        match self {
            Kind::Timestamp { .. } => Ok(Some(parse_timestamp(text, false)? / 1000)),
            Kind::Timestamptz { .. } => Ok(Some(parse_timestamp(text, true)? / 1000)),
            Kind::Int8 => text
                .parse()
                .map(Some)
                .map_err(|_| format!("{text:?} is not a valid int8")),
            _ => Err("not a timestamp, timestamptz or bigint column".into()),
        }
    }
}

/// Postgres' float text (`1.5`, `1e+20`, `NaN`, `Infinity`, `-Infinity`).
fn parse_float(text: &str) -> Result<f64, std::num::ParseFloatError> {
    match text {
        "NaN" => Ok(f64::NAN),
        "Infinity" => Ok(f64::INFINITY),
        "-Infinity" => Ok(f64::NEG_INFINITY),
        t => t.parse(),
    }
}

/// Decodes bytea's text output in hex format (`\x0102ff`, `bytea_output = hex`, the default).
pub fn decode_bytea_hex(text: &[u8]) -> Result<Bytes, String> {
    let hex = text.strip_prefix(b"\\x").ok_or_else(|| {
        "bytea value is not in hex format; set bytea_output = 'hex' (the default)".to_string()
    })?;
    if hex.len() % 2 != 0 {
        return Err("bytea hex text has an odd number of digits".into());
    }
    let digit = |c: u8| -> Result<u8, String> {
        (c as char)
            .to_digit(16)
            .map(|d| d as u8)
            .ok_or_else(|| format!("bytea hex text has the non-hex character {:?}", c as char))
    };
    hex.chunks_exact(2)
        .map(|pair| Ok((digit(pair[0])? << 4) | digit(pair[1])?))
        .collect::<Result<Vec<u8>, String>>()
        .map(Bytes::from)
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
fn parse_date(text: &str) -> Result<i32, String> {
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

    fn text(s: &str) -> TupleValue {
        TupleValue::Text(Bytes::copy_from_slice(s.as_bytes()))
    }

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
    fn scalar_types() {
        assert_eq!(
            Kind::of(oid::DATE, -1).decode(&text("2026-11-21")).unwrap(),
            Value::Int32(20778)
        );
        assert_eq!(Kind::Bool.decode(&text("t")).unwrap(), Value::Boolean(true));
        assert_eq!(Kind::Int2.decode(&text("-7")).unwrap(), Value::Int16(-7));
        assert_eq!(
            Kind::Float8.decode(&text("-Infinity")).unwrap(),
            Value::Float64(f64::NEG_INFINITY)
        );
        assert_eq!(
            Kind::Float4.decode(&text("1.5")).unwrap(),
            Value::Float32(1.5)
        );
        assert!(Kind::Int4.decode(&text("x")).is_err());
        assert_eq!(Kind::Int4.decode(&TupleValue::Null).unwrap(), Value::Null);
        assert_eq!(
            Kind::of(oid::UUID, -1).schema(false),
            Schema::new(Type::String, false).named("io.debezium.data.Uuid", Some(1))
        );
    }

    #[test]
    fn bytea_and_binary_mode() {
        assert_eq!(
            Kind::Bytea.decode(&text(r"\x000000002a0102ff00")).unwrap(),
            Value::Bytes(Bytes::from_static(&[0, 0, 0, 0, 0x2a, 1, 2, 0xff, 0]))
        );
        assert!(Kind::Bytea.decode(&text(r"\x0")).is_err());
        assert!(Kind::Bytea.decode(&text(r"\xzz")).is_err());
        assert!(Kind::Bytea.decode(&text("abc")).is_err());
        let uuid = TupleValue::Binary(Bytes::from_static(&[
            0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x41, 0x11, 0x81, 0x11, 0x11, 0x11, 0x11, 0x11,
            0x11, 0x11,
        ]));
        assert_eq!(
            Kind::Uuid.decode(&uuid).unwrap(),
            Value::String("11111111-1111-4111-8111-111111111111".into())
        );
        let neg = TupleValue::Binary(Bytes::copy_from_slice(&(-42i32).to_be_bytes()));
        assert_eq!(Kind::Int4.decode(&neg).unwrap(), Value::Int32(-42));
        let jsonb = TupleValue::Binary(Bytes::from_static(b"\x01{\"a\": 1}"));
        assert_eq!(
            Kind::Json { jsonb: true }.decode(&jsonb).unwrap(),
            Value::String("{\"a\": 1}".into())
        );
    }
}
