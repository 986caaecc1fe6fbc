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
//!
//! This file maps a column type to its [`Kind`], schema and values; the text of decimals is read
//! in `numeric`, that of dates and times in `time`.

mod numeric;
mod time;

use bytes::Bytes;

use crate::convert::{twos_complement_from_digits, Schema, Type, Value};
use crate::source::pgoutput::TupleValue;
use numeric::{parse_money, parse_numeric};
use time::{
    interval_micros, parse_date, parse_time_of_day, parse_timestamp, zoned_time, zoned_timestamp,
};

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

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn text(s: &str) -> TupleValue {
        TupleValue::Text(Bytes::copy_from_slice(s.as_bytes()))
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
