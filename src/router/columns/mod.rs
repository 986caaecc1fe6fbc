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
//! | `numeric(p,s)` | BYTES `org.apache.kafka.connect.data.Decimal` v1, parameters `scale`=s, `connect.decimal.precision`=p | two's-complement big-endian unscaled value |
//! | `numeric` | STRUCT `io.debezium.data.VariableScaleDecimal` v1 {scale INT32, value BYTES} | trailing zeros stripped |
//! | `money` | BYTES `org.apache.kafka.connect.data.Decimal` v1, parameter `scale`=2 | the amount, scale 2 |
//! | `time(0..3)` | INT32 `io.debezium.time.Time` v1 | milliseconds of the day |
//! | `time`, `time(4..6)` | INT64 `io.debezium.time.MicroTime` v1 | microseconds of the day |
//! | `timetz` | STRING `io.debezium.time.ZonedTime` v1 | UTC, `HH:mm:ss[.f]Z` (Java's ISO_OFFSET_TIME) |
//! | `interval` | INT64 `io.debezium.time.MicroDuration` v1 | microseconds, a month = 365.25/12 days |
//! | anything else | STRING | the text Postgres prints (Debezium types some of these differently: see docs/configuration.md) |
//!
//! Debezium's `decimal.handling.mode=precise` cannot represent a numeric `NaN` or `±Infinity`:
//! its task stops. outboxd refuses such a row (a poison event, see `[errors]`).
//!
//! Values arrive in pgoutput's text format (the binary format is read for the types an outbox
//! id, key, route or payload commonly has).

use bytes::Bytes;

use crate::convert::{twos_complement_from_digits, Schema, Type, Value};
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
    pub const MONEY: u32 = 790;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const INTERVAL: u32 = 1186;
    pub const TIMETZ: u32 = 1266;
    pub const NUMERIC: u32 = 1700;
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
    /// `numeric(precision, scale)`: a Connect `Decimal` (the type modifier's precision and scale,
    /// read as the JDBC driver Debezium uses reads them).
    Numeric {
        precision: i32,
        scale: i32,
    },
    /// `numeric` without type modifier: Debezium's `VariableScaleDecimal`.
    VariableNumeric,
    /// `money`: a `Decimal` of scale 2 (Debezium's `money.fraction.digits` default).
    Money,
    /// `time(p)`: `millis` for precision 0 to 3 (`io.debezium.time.Time`), else `MicroTime`.
    Time {
        millis: bool,
    },
    /// `timetz`: `io.debezium.time.ZonedTime`.
    Timetz,
    /// `interval`: `io.debezium.time.MicroDuration`.
    Interval,
    /// Any other type: its text as a STRING.
    Other,
}

/// Debezium's `money.fraction.digits` default: the scale of a money Decimal.
const MONEY_SCALE: i32 = 2;

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
            // pgjdbc's TypeInfoCache: precision ((typmod - 4) >> 16) & 0xffff, scale
            // (typmod - 4) & 0xffff, both 0 without modifier; Debezium takes precision 0 and
            // scale 0 as a variable-scale numeric.
            oid::NUMERIC if type_modifier < 0 => Kind::VariableNumeric,
            oid::NUMERIC => Kind::Numeric {
                precision: ((type_modifier - 4) >> 16) & 0xffff,
                scale: (type_modifier - 4) & 0xffff,
            },
            oid::MONEY => Kind::Money,
            // Debezium reads the precision as the scale pgjdbc reports: the modifier, 6 without.
            oid::TIME => Kind::Time {
                millis: (0..=3).contains(&type_modifier),
            },
            oid::TIMETZ => Kind::Timetz,
            oid::INTERVAL => Kind::Interval,
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
            Kind::Numeric { precision, scale } => Schema::decimal(scale, Some(precision), optional),
            Kind::Money => Schema::decimal(MONEY_SCALE, None, optional),
            Kind::VariableNumeric => Schema::variable_scale_decimal(optional),
            Kind::Time { millis: true } => s(Type::Int32).named("io.debezium.time.Time", Some(1)),
            Kind::Time { millis: false } => {
                s(Type::Int64).named("io.debezium.time.MicroTime", Some(1))
            }
            Kind::Timetz => s(Type::String).named("io.debezium.time.ZonedTime", Some(1)),
            Kind::Interval => s(Type::Int64).named("io.debezium.time.MicroDuration", Some(1)),
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
            Kind::Numeric { scale, .. } => {
                let (negative, digits) = parse_numeric(text)?.with_scale(scale, false)?;
                Value::Bytes(Bytes::from(twos_complement_from_digits(negative, &digits)))
            }
            Kind::VariableNumeric => {
                let (negative, int, frac) = parse_numeric(text)?.stripped();
                let scale = i32::try_from(frac.len()).map_err(|_| number("numeric"))?;
                let digits = format!("{int}{frac}");
                Value::Struct(vec![
                    Value::Int32(scale),
                    Value::Bytes(Bytes::from(twos_complement_from_digits(negative, &digits))),
                ])
            }
            Kind::Money => {
                let (negative, digits) = parse_money(text)?.with_scale(MONEY_SCALE, true)?;
                Value::Bytes(Bytes::from(twos_complement_from_digits(negative, &digits)))
            }
            Kind::Time { millis } => {
                let (micros, rest) = parse_time_of_day(text, text)?;
                if !rest.is_empty() {
                    return Err(format!(
                        "{text:?} is not a time of day in Postgres' output format"
                    ));
                }
                if millis {
                    Value::Int32((micros / 1000) as i32)
                } else {
                    Value::Int64(micros)
                }
            }
            Kind::Timetz => Value::String(zoned_time(text)?),
            Kind::Interval => Value::Int64(interval_micros(text)?),
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

/// A decimal number's text: sign, integer digits, fraction digits.
struct DecimalText {
    negative: bool,
    int: String,
    frac: String,
}

impl DecimalText {
    /// Sign and unscaled digits at `scale` fraction digits: padded with zeros, and with more
    /// digits either rounded half up (`round`, as `BigDecimal.setScale(s, HALF_UP)`) or refused.
    fn with_scale(self, scale: i32, round: bool) -> Result<(bool, String), String> {
        let scale = usize::try_from(scale).map_err(|_| format!("negative scale {scale}"))?;
        let mut frac = self.frac;
        let mut digits = self.int;
        if frac.len() <= scale {
            frac.extend(std::iter::repeat('0').take(scale - frac.len()));
            digits.push_str(&frac);
            return Ok((self.negative, digits));
        }
        let (keep, rest) = frac.split_at(scale);
        if !round && rest.bytes().any(|b| b != b'0') {
            return Err(format!(
                "{}.{frac} has more fraction digits than the column's scale {scale}",
                digits
            ));
        }
        let up = round && rest.as_bytes()[0] >= b'5';
        digits.push_str(keep);
        if up {
            // Add one to the magnitude (half up rounds away from zero).
            let mut bytes = digits.into_bytes();
            let mut i = bytes.len();
            loop {
                if i == 0 {
                    bytes.insert(0, b'1');
                    break;
                }
                i -= 1;
                if bytes[i] == b'9' {
                    bytes[i] = b'0';
                } else {
                    bytes[i] += 1;
                    break;
                }
            }
            digits = String::from_utf8(bytes).unwrap_or_default();
        }
        Ok((self.negative, digits))
    }

    /// Sign, integer digits and fraction digits with trailing zeros stripped
    /// (`BigDecimal.stripTrailingZeros()`, a negative scale set back to 0).
    fn stripped(self) -> (bool, String, String) {
        let frac = self.frac.trim_end_matches('0').to_string();
        (self.negative, self.int, frac)
    }
}

/// A numeric's text (`-12.340`). NaN and infinities are refused as Debezium's precise decimal
/// mode refuses them.
fn parse_numeric(text: &str) -> Result<DecimalText, String> {
    if matches!(text, "NaN" | "Infinity" | "-Infinity") {
        return Err(format!(
            "the numeric value {text} cannot be represented as a Connect Decimal (Debezium's decimal.handling.mode=precise stops its task on it)"
        ));
    }
    parse_decimal(text).ok_or_else(|| format!("{text:?} is not a valid numeric"))
}

/// `[-]digits[.digits]`.
fn parse_decimal(text: &str) -> Option<DecimalText> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() && frac.is_empty() || !digits(int) || !digits(frac) || body.ends_with('.') {
        return None;
    }
    Some(DecimalText {
        negative,
        int: if int.is_empty() {
            "0".into()
        } else {
            int.into()
        },
        frac: frac.into(),
    })
}

/// A money value as Debezium reads it (`PostgresMoney`): `-` or parentheses for negative, the
/// first character dropped when it is not a digit or `.` (the currency symbol), `,` removed.
fn parse_money(text: &str) -> Result<DecimalText, String> {
    let bad = || {
        format!(
            "{text:?} is not a money amount outboxd can read (like Debezium, it reads lc_monetary's C/English format, e.g. $1,234.56)"
        )
    };
    let negative = text.starts_with('(') || text.starts_with('-');
    let mut value: &str = text.strip_prefix('-').unwrap_or(text);
    if let Some(inner) = value.strip_prefix('(').and_then(|v| v.strip_suffix(')')) {
        value = inner;
    }
    if let Some(c) = value.chars().next() {
        if !c.is_ascii_digit() && c != '.' {
            value = &value[c.len_utf8()..];
        }
    }
    let value = value.replace(',', "");
    if value.starts_with('-') {
        return Err(bad());
    }
    let mut parsed = parse_decimal(&value).ok_or_else(bad)?;
    parsed.negative = negative;
    Ok(parsed)
}

/// `HH:MM:SS[.ffffff]` at the start of `text` (hour 24 only as `24:00:00`): microseconds of the
/// day and the rest of the text. `whole` names the value in errors.
fn parse_time_of_day<'a>(text: &'a str, whole: &str) -> Result<(i64, &'a str), String> {
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
fn zoned_time(text: &str) -> Result<String, String> {
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
fn interval_micros(text: &str) -> Result<i64, String> {
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
    use crate::convert::{DECIMAL, VARIABLE_SCALE_DECIMAL};

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

    fn numeric_typmod(precision: i32, scale: i32) -> i32 {
        ((precision << 16) | scale) + 4
    }

    #[test]
    fn numeric_is_a_decimal_with_the_columns_scale() {
        let k = Kind::of(oid::NUMERIC, numeric_typmod(10, 2));
        assert_eq!(
            k,
            Kind::Numeric {
                precision: 10,
                scale: 2
            }
        );
        let schema = k.schema(false);
        assert_eq!(schema.name.as_deref(), Some(DECIMAL));
        assert_eq!(
            schema.parameters,
            [
                ("scale".to_string(), "2".to_string()),
                ("connect.decimal.precision".to_string(), "10".to_string())
            ]
        );
        assert_eq!(schema.decimal_scale(), Some(2));
        let bytes = |v: &[u8]| Value::Bytes(Bytes::copy_from_slice(v));
        assert_eq!(k.decode(&text("12.34")).unwrap(), bytes(&[0x04, 0xd2]));
        assert_eq!(k.decode(&text("-12.34")).unwrap(), bytes(&[0xfb, 0x2e]));
        assert_eq!(k.decode(&text("0.00")).unwrap(), bytes(&[0]));
        assert_eq!(k.decode(&text("1.28")).unwrap(), bytes(&[0x00, 0x80]));
        // Fewer digits than the scale are padded (a default's text), more are refused.
        assert_eq!(k.decode(&text("12.3")).unwrap(), bytes(&[0x04, 0xce]));
        assert!(k.decode(&text("12.345")).is_err());
        // numeric(5) is numeric(5,0): a Decimal of scale 0, not a variable scale.
        let int = Kind::of(oid::NUMERIC, numeric_typmod(5, 0));
        assert_eq!(
            int.schema(true).parameters,
            [
                ("scale".to_string(), "0".to_string()),
                ("connect.decimal.precision".to_string(), "5".to_string())
            ]
        );
        assert_eq!(int.decode(&text("-129")).unwrap(), bytes(&[0xff, 0x7f]));
        for special in ["NaN", "Infinity", "-Infinity"] {
            let err = k.decode(&text(special)).unwrap_err();
            assert!(err.contains("decimal.handling.mode"), "{err}");
            assert!(Kind::VariableNumeric.decode(&text(special)).is_err());
        }
        for junk in ["", "-", "1.", ".", "1e5", "1,5", " 1"] {
            assert!(k.decode(&text(junk)).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn numeric_without_modifier_is_a_variable_scale_decimal() {
        let k = Kind::of(oid::NUMERIC, -1);
        assert_eq!(k, Kind::VariableNumeric);
        let schema = k.schema(true);
        assert_eq!(schema.name.as_deref(), Some(VARIABLE_SCALE_DECIMAL));
        assert_eq!(schema.doc.as_deref(), Some("Variable scaled decimal"));
        assert_eq!(
            schema
                .fields()
                .iter()
                .map(|f| (f.name.as_str(), f.schema.kind.clone(), f.schema.optional))
                .collect::<Vec<_>>(),
            [("scale", Type::Int32, false), ("value", Type::Bytes, false)]
        );
        let vsd = |scale: i32, v: &[u8]| {
            Value::Struct(vec![
                Value::Int32(scale),
                Value::Bytes(Bytes::copy_from_slice(v)),
            ])
        };
        // Trailing zeros stripped (BigDecimal.stripTrailingZeros, scale at least 0).
        assert_eq!(k.decode(&text("1.50")).unwrap(), vsd(1, &[0x0f]));
        assert_eq!(k.decode(&text("100")).unwrap(), vsd(0, &[0x64]));
        assert_eq!(k.decode(&text("0.000")).unwrap(), vsd(0, &[0]));
        assert_eq!(k.decode(&text("-0.0025")).unwrap(), vsd(4, &[0xe7]));
    }

    #[test]
    fn money_is_a_decimal_of_scale_2() {
        let k = Kind::of(oid::MONEY, -1);
        let schema = k.schema(false);
        assert_eq!(schema.name.as_deref(), Some(DECIMAL));
        assert_eq!(schema.parameters, [("scale".to_string(), "2".to_string())]);
        let bytes = |v: &[u8]| Value::Bytes(Bytes::copy_from_slice(v));
        // 123456 = 0x01e240
        assert_eq!(
            k.decode(&text("$1,234.56")).unwrap(),
            bytes(&[0x01, 0xe2, 0x40])
        );
        assert_eq!(
            k.decode(&text("-$1,234.56")).unwrap(),
            bytes(&[0xfe, 0x1d, 0xc0])
        );
        assert_eq!(
            k.decode(&text("($1,234.56)")).unwrap(),
            bytes(&[0xfe, 0x1d, 0xc0])
        );
        assert_eq!(k.decode(&text("$0.00")).unwrap(), bytes(&[0]));
        // setScale(2, HALF_UP) on a value with more digits (lc_monetary with 3).
        assert_eq!(k.decode(&text("$0.125")).unwrap(), bytes(&[13]));
        assert!(k.decode(&text("1.234,56 €")).is_err());
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
