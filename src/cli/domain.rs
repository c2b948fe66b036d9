//! The values a numeric flag may take: a [`Domain`] is a range with its ends included or not,
//! never NaN or an infinity, that checks a value and says itself in words for `--help` and
//! for the error ("--lr NaN: must be a finite number above 0"). [`Number`] is what a flag of
//! a range can hold: counts, seeds and rates.

use std::str::FromStr;

/// A number type a flag can hold: counts, seeds and rates. `finite` is false for NaN and the
/// infinities (always true for integers).
pub trait Number: FromStr + std::fmt::Display + PartialOrd + Copy {
    /// Not NaN and not infinite.
    fn finite(&self) -> bool;
}

impl Number for usize {
    fn finite(&self) -> bool {
        true
    }
}

impl Number for u64 {
    fn finite(&self) -> bool {
        true
    }
}

impl Number for f32 {
    fn finite(&self) -> bool {
        self.is_finite()
    }
}

impl Number for f64 {
    fn finite(&self) -> bool {
        self.is_finite()
    }
}

/// The values a numeric flag allows: a lower and an upper end, each included or not, and
/// always a finite number. Read with [`Flags::arg_in`](super::Flags::arg_in).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Domain<T> {
    /// The lower end and whether it is allowed itself.
    pub low: Option<(T, bool)>,
    /// The upper end and whether it is allowed itself.
    pub high: Option<(T, bool)>,
}

impl<T: Number> Domain<T> {
    /// `low` or more (a count: `at_least(1)`).
    pub fn at_least(low: T) -> Domain<T> {
        Domain {
            low: Some((low, true)),
            high: None,
        }
    }

    /// More than `low` (a rate: `above(0.0)`).
    pub fn above(low: T) -> Domain<T> {
        Domain {
            low: Some((low, false)),
            high: None,
        }
    }

    /// From `low` to `high`, both included.
    pub fn between(low: T, high: T) -> Domain<T> {
        Domain {
            low: Some((low, true)),
            high: Some((high, true)),
        }
    }

    /// From `low` (included) to below `high` (a probability that must leave something: dropout).
    pub fn below(low: T, high: T) -> Domain<T> {
        Domain {
            low: Some((low, true)),
            high: Some((high, false)),
        }
    }

    /// Strictly between `low` and `high` (a rate that must mask something and leave something).
    pub fn inside(low: T, high: T) -> Domain<T> {
        Domain {
            low: Some((low, false)),
            high: Some((high, false)),
        }
    }

    /// From above `low` to `high` included.
    pub fn above_to(low: T, high: T) -> Domain<T> {
        Domain {
            low: Some((low, false)),
            high: Some((high, true)),
        }
    }

    /// Any finite number.
    pub fn any() -> Domain<T> {
        Domain { low: None, high: None }
    }

    /// Whether `x` lies in the domain (NaN never does).
    pub fn contains(&self, x: T) -> bool {
        let low_ok = match self.low {
            None => true,
            Some((l, true)) => x >= l,
            Some((l, false)) => x > l,
        };
        let high_ok = match self.high {
            None => true,
            Some((h, true)) => x <= h,
            Some((h, false)) => x < h,
        };
        x.finite() && low_ok && high_ok
    }

    /// The domain in words: "at least 1", "a finite number above 0", "a finite number at
    /// least 0 and below 1".
    pub fn describe(&self) -> String {
        let floats = T::from_str("0.5").is_ok();
        let low = self.low.map(|(v, inclusive)| match inclusive {
            true => format!("at least {v}"),
            false => format!("above {v}"),
        });
        let high = self.high.map(|(v, inclusive)| match inclusive {
            true => format!("at most {v}"),
            false => format!("below {v}"),
        });
        let ends: Vec<String> = low.into_iter().chain(high).collect();
        match (floats, ends.is_empty()) {
            (_, true) => "a finite number".to_string(),
            (true, false) => format!("a finite number {}", ends.join(" and ")),
            (false, false) => ends.join(" and "),
        }
    }

    /// `x`, or an error `--name x: must be ...` naming the flag and the domain.
    pub fn check(&self, name: &str, x: T) -> Result<T, String> {
        if self.contains(x) {
            Ok(x)
        } else {
            Err(format!("--{name} {x}: must be {}", self.describe()))
        }
    }
}

impl Domain<u64> {
    /// Every seed, 0 to 2^64 - 1: `--help` states it, and a value that is no such number
    /// ("-1", "2^64", a word) is refused with it.
    pub fn seeds() -> Domain<u64> {
        Domain::between(0, u64::MAX)
    }
}
