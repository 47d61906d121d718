//! A rate in settings: "N per period".

use std::{fmt, num::NonZeroU32, str::FromStr, time::Duration};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// "N per period", written `30/min`, `5/s`, `100/h` or `1000/day` in config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub count: NonZeroU32,
    pub period: Duration,
}

impl Rate {
    pub const fn per_minute(count: u32) -> Self {
        Self::new(count, 60)
    }

    pub const fn per_hour(count: u32) -> Self {
        Self::new(count, 3600)
    }

    pub const fn per_day(count: u32) -> Self {
        Self::new(count, 86_400)
    }

    const fn new(count: u32, period_secs: u64) -> Self {
        let count = match NonZeroU32::new(count) {
            Some(n) => n,
            None => panic!("a rate needs a count above zero"),
        };
        Self {
            count,
            period: Duration::from_secs(period_secs),
        }
    }

    /// The time one attempt takes to win back, in microseconds: `count` at
    /// once, refilling evenly over `period`.
    pub fn interval_micros(self) -> u64 {
        (self.period / self.count.get()).as_micros().max(1) as u64
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (count, unit) = s
            .split_once('/')
            .ok_or_else(|| format!("rate {s:?} is not of the form N/unit"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| format!("rate {s:?} has no positive count"))?;
        let count = NonZeroU32::new(count).ok_or_else(|| format!("rate {s:?} is zero"))?;
        let secs = match unit.trim() {
            "s" | "sec" | "second" => 1,
            "m" | "min" | "minute" => 60,
            "h" | "hour" => 3600,
            "d" | "day" => 86_400,
            other => return Err(format!("rate unit {other:?} is not s, min, h or day")),
        };
        Ok(Self {
            count,
            period: Duration::from_secs(secs),
        })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.period.as_secs() {
            1 => "s",
            60 => "min",
            3600 => "h",
            86_400 => "day",
            other => return write!(f, "{}/{}s", self.count, other),
        };
        write!(f, "{}/{unit}", self.count)
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}
