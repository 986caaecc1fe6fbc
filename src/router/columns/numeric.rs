//! `numeric` and `money` text as Debezium reads it: sign and digits, scaled to a column's scale
//! (refusing digits beyond it, or rounding half up for money), or stripped of trailing zeros for
//! a `VariableScaleDecimal`. NaN and infinities are refused (Debezium's precise mode stops on them).
//!
//! Owns the decimal text only; the Connect bytes are `crate::convert`'s, the schemas [`super::Kind`]'s.

/// A decimal number's text: sign, integer digits, fraction digits.
pub(super) struct DecimalText {
    negative: bool,
    int: String,
    frac: String,
}

impl DecimalText {
    /// Sign and unscaled digits at `scale` fraction digits: padded with zeros, and with more
    /// digits either rounded half up (`round`, as `BigDecimal.setScale(s, HALF_UP)`) or refused.
    pub(super) fn with_scale(self, scale: i32, round: bool) -> Result<(bool, String), String> {
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
    pub(super) fn stripped(self) -> (bool, String, String) {
        let frac = self.frac.trim_end_matches('0').to_string();
        (self.negative, self.int, frac)
    }
}

/// A numeric's text (`-12.340`). NaN and infinities are refused as Debezium's precise decimal
/// mode refuses them.
pub(super) fn parse_numeric(text: &str) -> Result<DecimalText, String> {
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
pub(super) fn parse_money(text: &str) -> Result<DecimalText, String> {
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

#[cfg(test)]
mod tests {
    use crate::convert::{DECIMAL, VARIABLE_SCALE_DECIMAL};
    use crate::router::columns::tests::text;
    use crate::router::columns::*;

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
}
