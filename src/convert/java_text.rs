//! Java's text of numbers and bytes, as Connect and Jackson print them: `Double.toString` and
//! `Float.toString` (JDK 19+ shortest digits, `1.0E7`), and `java.util.Base64`.
//!
//! Owns these formats only; they depend on nothing else in the crate.

use std::fmt::Write as _;

/// Standard base64 with padding (`java.util.Base64.getEncoder()`, Jackson's binary nodes).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Java's `Double.toString` (JDK 19+: the shortest decimal that rounds to the value, at least two
/// digits when a two-digit decimal is closer): `1.0`, `0.001`, `1.0E7`, `1.2E-5`, `NaN`.
pub fn java_double(x: f64) -> String {
    java_floating(x)
}

/// Java's `Float.toString`, like [`java_double`] for 32-bit floats.
pub fn java_float(x: f32) -> String {
    java_floating(x)
}

/// [`java_double`] and [`java_float`]: the special values from the value widened to `f64`
/// (exact), the digits from `T` itself (the shortest decimal that rounds to a `T`).
fn java_floating<T>(x: T) -> String
where
    T: Copy + PartialEq + Into<f64> + std::fmt::LowerExp + std::str::FromStr,
{
    let wide: f64 = x.into();
    if wide.is_nan() {
        return "NaN".into();
    }
    if wide.is_infinite() {
        return if wide > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if wide == 0.0 {
        return if wide.is_sign_negative() {
            "-0.0"
        } else {
            "0.0"
        }
        .into();
    }
    let mut sci = format!("{x:e}");
    if !sci.contains('.') {
        let two = format!("{x:.1e}");
        if two.parse::<T>().ok() == Some(x) {
            sci = two;
        }
    }
    java_from_sci(&sci)
}

/// Lays out Rust's `{:e}` digits (`-1.25e-7`) the way Java does: plain for 10^-3 <= |x| < 10^7,
/// otherwise `d.dddE±n`; always at least one fraction digit.
pub(super) fn java_from_sci(sci: &str) -> String {
    let (neg, rest) = match sci.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, sci),
    };
    let (mantissa, exp) = rest.split_once('e').unwrap_or((rest, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if (-3..7).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.extend(std::iter::repeat('0').take(int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat('0').take((-exp - 1) as usize));
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        out.push('.');
        out.push_str(if digits.len() > 1 { &digits[1..] } else { "0" });
        let _ = write!(out, "E{exp}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::convert::*;

    #[test]
    fn java_number_formats() {
        for (x, s) in [
            (1.0, "1.0"),
            (100.0, "100.0"),
            (1.5, "1.5"),
            (0.001, "0.001"),
            (0.0001, "1.0E-4"),
            (1e7, "1.0E7"),
            (9_999_999.0, "9999999.0"),
            (123_456.789, "123456.789"),
            (1.2345e-5, "1.2345E-5"),
            (-2.5e20, "-2.5E20"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::MIN_POSITIVE * f64::EPSILON, "4.9E-324"),
            (1e23, "1.0E23"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(java_double(x), s, "{x:e}");
        }
        assert_eq!(java_float(1.1f32), "1.1");
        assert_eq!(java_float(1e10f32), "1.0E10");
        let mut out = String::new();
        write_json(&mut out, None, &Value::Float64(f64::INFINITY)).unwrap();
        assert_eq!(out, "\"Infinity\"");
    }
}
