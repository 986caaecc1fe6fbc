//! Decimals as Connect holds them: `BigInteger.toByteArray()` (two's-complement big-endian
//! bytes) from decimal digits and back, and `BigDecimal.toString()` / `toPlainString()` of an
//! unscaled value and a scale, on base-2^32 limbs (no big-number crate).
//!
//! Owns the arithmetic and the decimal text; the schemas are `schema`'s.

use std::fmt::Write as _;

use super::{Schema, Value, VARIABLE_SCALE_DECIMAL};

/// The text of a decimal value: a `Decimal` as Java's `BigDecimal.toString()` (or
/// `toPlainString()` when `plain`), and, when `plain`, a `VariableScaleDecimal` struct too.
/// `None` for anything else.
pub(super) fn decimal_text(schema: Option<&Schema>, value: &Value, plain: bool) -> Option<String> {
    let schema = schema?;
    match value {
        Value::Bytes(b) => schema
            .decimal_scale()
            .map(|scale| big_decimal_string(b, scale, plain)),
        Value::Struct(fields)
            if plain && schema.name.as_deref() == Some(VARIABLE_SCALE_DECIMAL) =>
        {
            match fields.as_slice() {
                [Value::Int32(scale), Value::Bytes(b)] => Some(big_decimal_string(b, *scale, true)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// A magnitude as little-endian base-2^32 limbs, from decimal digits (`[0-9]*`).
fn limbs_from_digits(digits: &str) -> Vec<u32> {
    let mut limbs: Vec<u32> = Vec::new();
    for chunk in digits.as_bytes().chunks(9) {
        let mut mul = 1u64;
        let mut add = 0u64;
        for d in chunk {
            mul *= 10;
            add = add * 10 + u64::from(d - b'0');
        }
        let mut carry = add;
        for limb in limbs.iter_mut() {
            let v = u64::from(*limb) * mul + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            limbs.push(carry as u32);
        }
    }
    limbs
}

/// Decimal digits of a magnitude (little-endian base-2^32 limbs); "0" for zero.
fn digits_from_limbs(mut limbs: Vec<u32>) -> String {
    let mut parts: Vec<u32> = Vec::new();
    while limbs.iter().any(|&l| l != 0) {
        let mut rem = 0u64;
        for limb in limbs.iter_mut().rev() {
            let v = (rem << 32) | u64::from(*limb);
            *limb = (v / 1_000_000_000) as u32;
            rem = v % 1_000_000_000;
        }
        parts.push(rem as u32);
        while limbs.last() == Some(&0) {
            limbs.pop();
        }
    }
    let Some(top) = parts.pop() else {
        return "0".into();
    };
    let mut out = top.to_string();
    for p in parts.iter().rev() {
        let _ = write!(out, "{p:09}");
    }
    out
}

/// Two's-complement negation of big-endian bytes in place: invert, add one (a magnitude's
/// negative, or a negative value's magnitude).
fn negate(bytes: &mut [u8]) {
    let mut carry = true;
    for b in bytes.iter_mut().rev() {
        *b = !*b;
        if carry {
            let (v, overflow) = b.overflowing_add(1);
            *b = v;
            carry = overflow;
        }
    }
}

/// Java's `BigInteger.toByteArray()` of a decimal integer (`digits` without sign, `[0-9]+`): the
/// shortest two's-complement big-endian bytes, at least one.
pub fn twos_complement_from_digits(negative: bool, digits: &str) -> Vec<u8> {
    let limbs = limbs_from_digits(digits);
    let mut magnitude: Vec<u8> = limbs.iter().rev().flat_map(|l| l.to_be_bytes()).collect();
    let first = magnitude.iter().position(|&b| b != 0);
    let Some(first) = first else {
        return vec![0];
    };
    magnitude.drain(..first);
    if !negative {
        if magnitude[0] & 0x80 != 0 {
            magnitude.insert(0, 0);
        }
        return magnitude;
    }
    negate(&mut magnitude);
    if magnitude[0] & 0x80 == 0 {
        magnitude.insert(0, 0xff);
    }
    magnitude
}

/// The sign and decimal digits of two's-complement big-endian bytes (`new BigInteger(bytes)`).
fn digits_from_twos_complement(bytes: &[u8]) -> (bool, String) {
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let mut magnitude = bytes.to_vec();
    if negative {
        negate(&mut magnitude);
    }
    let mut limbs = Vec::with_capacity(magnitude.len() / 4 + 1);
    for chunk in magnitude.rchunks(4) {
        let mut a = [0u8; 4];
        a[4 - chunk.len()..].copy_from_slice(chunk);
        limbs.push(u32::from_be_bytes(a));
    }
    (negative, digits_from_limbs(limbs))
}

/// `new BigDecimal(new BigInteger(unscaled), scale)`'s `toString()` (scientific notation when
/// the scale is negative or the adjusted exponent is below -6, as Java does) or, with `plain`,
/// `toPlainString()`.
pub fn big_decimal_string(unscaled: &[u8], scale: i32, plain: bool) -> String {
    let (negative, coeff) = digits_from_twos_complement(unscaled);
    let mut out = String::new();
    if negative && coeff != "0" {
        out.push('-');
    }
    let len = coeff.len() as i64;
    let scale = i64::from(scale);
    let adjusted = -scale + (len - 1);
    if plain || (scale >= 0 && adjusted >= -6) {
        if scale <= 0 {
            out.push_str(&coeff);
            if scale < 0 {
                out.extend(std::iter::repeat('0').take((-scale) as usize));
            }
        } else if len > scale {
            let point = (len - scale) as usize;
            out.push_str(&coeff[..point]);
            out.push('.');
            out.push_str(&coeff[point..]);
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat('0').take((scale - len) as usize));
            out.push_str(&coeff);
        }
    } else {
        out.push_str(&coeff[..1]);
        if len > 1 {
            out.push('.');
            out.push_str(&coeff[1..]);
        }
        out.push('E');
        if adjusted > 0 {
            out.push('+');
        }
        let _ = write!(out, "{adjusted}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::testing::*;
    use crate::convert::*;
    use bytes::Bytes;

    #[test]
    fn big_integers_are_javas_two_complement_bytes() {
        for (negative, digits, bytes) in [
            (false, "1234", &[0x04, 0xd2][..]),
            (true, "1234", &[0xfb, 0x2e]),
            (false, "0", &[0x00]),
            (true, "0", &[0x00]),
            (false, "000", &[0x00]),
            (false, "128", &[0x00, 0x80]),
            (true, "128", &[0x80]),
            (true, "129", &[0xff, 0x7f]),
            (false, "255", &[0x00, 0xff]),
            (true, "256", &[0xff, 0x00]),
            (
                false,
                "12345678901234567890123456789",
                &[
                    0x27, 0xe4, 0x1b, 0x32, 0x46, 0xbe, 0xc9, 0xb1, 0x6e, 0x39, 0x81, 0x15,
                ],
            ),
        ] {
            let got = twos_complement_from_digits(negative, digits);
            assert_eq!(got, bytes, "{negative} {digits}");
            let (neg, back) = digits_from_twos_complement(&got);
            assert_eq!(
                back,
                digits.trim_start_matches('0').to_string()
                    + if digits.trim_start_matches('0').is_empty() {
                        "0"
                    } else {
                        ""
                    }
            );
            assert_eq!(neg, negative && back != "0");
        }
    }

    #[test]
    fn big_decimal_to_string_is_javas() {
        for (negative, digits, scale, text, plain) in [
            (false, "1234", 2, "12.34", "12.34"),
            (true, "1234", 2, "-12.34", "-12.34"),
            (false, "0", 2, "0.00", "0.00"),
            (false, "0", 10, "0E-10", "0.0000000000"),
            (false, "1", 7, "1E-7", "0.0000001"),
            (false, "1", 6, "0.000001", "0.000001"),
            (true, "12", 8, "-1.2E-7", "-0.00000012"),
            (false, "5", 0, "5", "5"),
            (false, "1", -2, "1E+2", "100"),
            (false, "12345", 3, "12.345", "12.345"),
        ] {
            let bytes = twos_complement_from_digits(negative, digits);
            assert_eq!(big_decimal_string(&bytes, scale, false), text);
            assert_eq!(big_decimal_string(&bytes, scale, true), plain);
        }
    }

    #[test]
    fn decimals_are_bytes_in_json_and_big_decimals_in_text() {
        // numeric(10,2) 12.34: unscaled 1234.
        let data = Data::new(
            decimal(2, Some(10), false),
            Value::Bytes(Bytes::from_static(&[0x04, 0xd2])),
        );
        let json = |schemas_enable| Converter::Json { schemas_enable };
        assert_eq!(
            conv(&json(true), &data).unwrap(),
            r#"{"schema":{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2","connect.decimal.precision":"10"}},"payload":"BNI="}"#
        );
        assert_eq!(conv(&json(false), &data).unwrap(), r#""BNI=""#);
        assert_eq!(conv(&Converter::String, &data).unwrap(), "12.34");
        assert_eq!(conv(&Converter::Raw, &data).unwrap(), "12.34");
        assert_eq!(header_bytes(&data).unwrap(), "12.34");
        let small = Data::new(
            decimal(7, Some(8), true),
            Value::Bytes(Bytes::from_static(&[0x01])),
        );
        assert_eq!(conv(&Converter::String, &small).unwrap(), "1E-7");
        assert_eq!(header_bytes(&small).unwrap(), "1E-7");
        assert_eq!(conv(&Converter::Raw, &small).unwrap(), "0.0000001");
        assert!(Converter::String.check(&decimal(2, None, true)).is_ok());
        // Connect holds a BigDecimal, which the byte array converters refuse.
        for c in [
            Converter::ByteArray,
            Converter::BinaryData {
                class: BINARY_DATA_CONVERTER,
                delegate: Some(Box::new(json(true))),
            },
        ] {
            assert!(c.check(&decimal(2, None, true)).is_err());
            assert!(c.convert(&data).unwrap_err().contains("BigDecimal"));
        }
        // Embedded in a struct (an envelope field): a bare number in headers and text.
        let schema = Schema::new(
            Type::Struct(vec![Field {
                name: "amount".into(),
                schema: decimal(2, Some(10), false),
            }]),
            false,
        );
        let data = Data::new(
            schema,
            Value::Struct(vec![Value::Bytes(Bytes::from_static(&[0xfb, 0x2e]))]),
        );
        assert_eq!(header_bytes(&data).unwrap(), r#"{"amount":-12.34}"#);
        assert_eq!(
            conv(&Converter::String, &data).unwrap(),
            "Struct{amount=-12.34}"
        );
        assert_eq!(
            conv(&json(true), &data).unwrap(),
            r#"{"schema":{"type":"struct","fields":[{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2","connect.decimal.precision":"10"},"field":"amount"}],"optional":false},"payload":{"amount":"+y4="}}"#
        );
    }

    #[test]
    fn variable_scale_decimals_are_structs_with_their_doc() {
        let schema = Schema::variable_scale_decimal(true);
        let data = Data::new(
            schema.clone(),
            Value::Struct(vec![
                Value::Int32(1),
                Value::Bytes(Bytes::from_static(&[0x0f])),
            ]),
        );
        assert_eq!(
            conv(
                &Converter::Json {
                    schemas_enable: true
                },
                &data
            )
            .unwrap(),
            r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"scale"},{"type":"bytes","optional":false,"field":"value"}],"optional":true,"name":"io.debezium.data.VariableScaleDecimal","version":1,"doc":"Variable scaled decimal"},"payload":{"scale":1,"value":"Dw=="}}"#
        );
        assert_eq!(
            header_bytes(&data).unwrap(),
            r#"{"scale":1,"value":"Dw=="}"#
        );
        assert_eq!(conv(&Converter::Raw, &data).unwrap(), "1.5");
        // StringConverter would print the byte array's identity hash: refused.
        assert!(Converter::String.check(&schema).is_err());
    }
}
