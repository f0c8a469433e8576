use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A retention such as `30d`, `12h`, `90m`: a positive integer and one unit of
/// `s`, `m`, `h`, `d`. Kept deliberately simpler than Go durations so the XRD
/// pattern and this parser accept exactly the same strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RetentionDuration {
    seconds: u64,
    unit: char,
}

/// The pattern the XRD schema enforces; [`RetentionDuration::from_str`] accepts
/// the same language.
pub const RETENTION_PATTERN: &str = "^[1-9][0-9]{0,5}[smhd]$";

impl RetentionDuration {
    pub const DEFAULT: RetentionDuration = RetentionDuration {
        seconds: 30 * 86_400,
        unit: 'd',
    };

    pub const fn as_secs(self) -> u64 {
        self.seconds
    }

    fn unit_seconds(unit: char) -> Option<u64> {
        match unit {
            's' => Some(1),
            'm' => Some(60),
            'h' => Some(3_600),
            'd' => Some(86_400),
            _ => None,
        }
    }
}

impl Default for RetentionDuration {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {0:?}: want a positive whole number followed by one of s, m, h, d (for example 30d)"
)]
pub struct InvalidDuration(pub String);

impl FromStr for RetentionDuration {
    type Err = InvalidDuration;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || InvalidDuration(s.to_string());
        let unit = s.chars().last().ok_or_else(err)?;
        let per_unit = Self::unit_seconds(unit).ok_or_else(err)?;
        let digits = &s[..s.len() - 1];
        if digits.is_empty()
            || digits.len() > 6
            || digits.starts_with('0')
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(err());
        }
        let count: u64 = digits.parse().map_err(|_| err())?;
        Ok(RetentionDuration {
            seconds: count * per_unit,
            unit,
        })
    }
}

impl fmt::Display for RetentionDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per_unit = Self::unit_seconds(self.unit).unwrap_or(1);
        write!(f, "{}{}", self.seconds / per_unit, self.unit)
    }
}

impl Serialize for RetentionDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RetentionDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for RetentionDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RetentionDuration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "pattern": RETENTION_PATTERN })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_each_unit() {
        for (text, secs) in [
            ("45s", 45),
            ("90m", 5_400),
            ("12h", 43_200),
            ("30d", 2_592_000),
        ] {
            let d: RetentionDuration = text.parse().unwrap();
            assert_eq!(d.as_secs(), secs, "{text}");
            assert_eq!(d.to_string(), text);
        }
    }

    #[test]
    fn rejects_what_the_pattern_rejects() {
        for bad in [
            "", "d", "0d", "030d", "1w", "1.5h", "-1d", "1234567d", "30 d",
        ] {
            assert!(
                bad.parse::<RetentionDuration>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }
}
