//! What model calls cost: prices per 1,000 tokens, per model, and costs kept in whole
//! pico-dollars so that sums over many calls stay exact.
//!
//! A price per 1,000 tokens with at most 9 decimal places is a whole number of
//! pico-dollars (10^-12 USD) per token, so the cost of a call is tokens × price with no
//! rounding, and totals are sums of integers. Costs leave the process as a decimal
//! number of US dollars (`cost_usd`, EMF `CostUSD`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::model::ModelId;

/// Llama 3.2 3B Instruct on demand (mid-2025): 0.00015 USD per 1,000 input tokens.
pub const DEFAULT_INPUT_PER_1K: &str = "0.00015";
/// Llama 3.2 3B Instruct on demand (mid-2025): 0.00015 USD per 1,000 output tokens.
pub const DEFAULT_OUTPUT_PER_1K: &str = "0.00015";

/// Pico-dollars per dollar.
const PICO_PER_USD: u64 = 1_000_000_000_000;
/// Decimal places a price per 1,000 tokens may have (one pico-dollar per token).
const PRICE_DECIMALS: usize = 9;
/// The highest price accepted, in USD per 1,000 tokens (a guard against unit mistakes).
const MAX_USD_PER_1K: u64 = 1_000;

/// An amount of US dollars, in whole pico-dollars (10^-12 USD). Serialized as a decimal
/// number of dollars.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cost(u64);

impl Cost {
    /// No cost.
    pub const ZERO: Self = Self(0);

    /// An amount in pico-dollars.
    pub const fn from_pico_usd(pico: u64) -> Self {
        Self(pico)
    }

    /// The amount in pico-dollars.
    pub const fn pico_usd(self) -> u64 {
        self.0
    }

    /// The amount in dollars as a float (exact for amounts up to 15 significant digits,
    /// which covers every amount below about 1,000 USD).
    pub fn usd(self) -> f64 {
        // Dividing the whole-dollar and fraction parts keeps large amounts precise.
        (self.0 / PICO_PER_USD) as f64 + (self.0 % PICO_PER_USD) as f64 / PICO_PER_USD as f64
    }

    /// The amount nearest to `usd` dollars (negative or non-finite amounts are zero); for
    /// reading back a `cost_usd` this crate wrote.
    pub fn from_usd(usd: f64) -> Self {
        if !usd.is_finite() || usd <= 0.0 {
            return Self::ZERO;
        }
        let whole = usd.trunc();
        let fraction = ((usd - whole) * PICO_PER_USD as f64).round() as u64;
        Self(
            (whole as u64)
                .saturating_mul(PICO_PER_USD)
                .saturating_add(fraction),
        )
    }
}

impl std::ops::Add for Cost {
    type Output = Self;
    fn add(self, other: Self) -> Self {
        Self(self.0.saturating_add(other.0))
    }
}

impl std::ops::AddAssign for Cost {
    fn add_assign(&mut self, other: Self) {
        *self = *self + other;
    }
}

impl std::iter::Sum for Cost {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::ZERO, |a, b| a + b)
    }
}

/// Plain decimal dollars with no trailing zeros, e.g. `0.00045`.
impl fmt::Display for Cost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / PICO_PER_USD;
        let fraction = self.0 % PICO_PER_USD;
        if fraction == 0 {
            return write!(f, "{whole}");
        }
        let digits = format!("{fraction:012}");
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

impl Serialize for Cost {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.usd())
    }
}

/// Reads a `cost_usd` back (see [`Cost::from_usd`]).
impl<'de> Deserialize<'de> for Cost {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self::from_usd(f64::deserialize(deserializer)?))
    }
}

/// The price of one model's tokens, in pico-dollars per token (= nano-dollars per 1,000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price {
    input_pico_per_token: u64,
    output_pico_per_token: u64,
}

impl Default for Price {
    fn default() -> Self {
        let parse = |p| parse_usd_per_1k(p).unwrap_or_default();
        Self {
            input_pico_per_token: parse(DEFAULT_INPUT_PER_1K),
            output_pico_per_token: parse(DEFAULT_OUTPUT_PER_1K),
        }
    }
}

impl Price {
    /// A price from decimal USD per 1,000 input and output tokens (e.g. `"0.00015"`).
    pub fn per_1k(input: &str, output: &str) -> Result<Self, String> {
        Ok(Self {
            input_pico_per_token: parse_usd_per_1k(input).map_err(|e| format!("input {e}"))?,
            output_pico_per_token: parse_usd_per_1k(output).map_err(|e| format!("output {e}"))?,
        })
    }

    /// The cost of a call with these token counts.
    pub fn cost(&self, input_tokens: u64, output_tokens: u64) -> Cost {
        let input = input_tokens.saturating_mul(self.input_pico_per_token);
        let output = output_tokens.saturating_mul(self.output_pico_per_token);
        Cost(input.saturating_add(output))
    }
}

/// The prices of the configured models: one default and overrides by model id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pricing {
    default: Price,
    by_model: Vec<(String, Price)>,
}

impl Pricing {
    /// `default` for every model not in `overrides`.
    pub fn new(default: Price, overrides: Vec<(String, Price)>) -> Self {
        Self {
            default,
            by_model: overrides,
        }
    }

    /// Reads overrides in the form `model-id=input/output,...` (USD per 1,000 tokens,
    /// e.g. `eu.meta.llama3-2-3b-instruct-v1:0=0.00019/0.00019`); empty means none.
    pub fn parse_overrides(list: &str) -> Result<Vec<(String, Price)>, String> {
        let mut overrides: Vec<(String, Price)> = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let shape = || format!("`{entry}` is not model-id=input/output (USD per 1,000 tokens)");
            let (model, prices) = entry.rsplit_once('=').ok_or_else(shape)?;
            let (input, output) = prices.split_once('/').ok_or_else(shape)?;
            let model = model.trim();
            ModelId::parse(model).map_err(|e| format!("`{entry}`: {e}"))?;
            if overrides.iter().any(|(m, _)| m == model) {
                return Err(format!("`{model}` is priced twice"));
            }
            let price = Price::per_1k(input.trim(), output.trim())
                .map_err(|e| format!("`{entry}`: {e}"))?;
            overrides.push((model.to_owned(), price));
        }
        Ok(overrides)
    }

    /// The price of `model_id`'s tokens.
    pub fn price_of(&self, model_id: &str) -> Price {
        self.by_model
            .iter()
            .find(|(m, _)| m == model_id)
            .map_or(self.default, |(_, p)| *p)
    }

    /// The cost of a call to `model_id` with these token counts.
    pub fn cost(&self, model_id: &str, input_tokens: u32, output_tokens: u32) -> Cost {
        self.price_of(model_id)
            .cost(u64::from(input_tokens), u64::from(output_tokens))
    }
}

/// Decimal USD per 1,000 tokens (digits, at most one point, at most 9 decimals, at most
/// 1,000) as pico-dollars per token.
fn parse_usd_per_1k(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "price `{text}` is not a decimal number of USD per 1,000 tokens \
             (like 0.00015, at most {PRICE_DECIMALS} decimals, at most {MAX_USD_PER_1K})"
        )
    };
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty())
        || !digits(whole)
        || !digits(fraction)
        || fraction.len() > PRICE_DECIMALS
        || (text.contains('.') && fraction.is_empty())
    {
        return Err(bad());
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    if whole > MAX_USD_PER_1K {
        return Err(bad());
    }
    let padded = format!("{fraction:0<PRICE_DECIMALS$}");
    let fraction: u64 = padded.parse().map_err(|_| bad())?;
    let pico = whole * 10u64.pow(PRICE_DECIMALS as u32) + fraction;
    if pico > MAX_USD_PER_1K * 10u64.pow(PRICE_DECIMALS as u32) {
        return Err(bad());
    }
    Ok(pico)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_price_is_150_pico_dollars_per_thousandth_of_a_cent() {
        let price = Price::default();
        assert_eq!(price.input_pico_per_token, 150_000);
        assert_eq!(price.output_pico_per_token, 150_000);
        // 1,000 input + 1,000 output tokens: 0.0003 USD.
        let cost = price.cost(1_000, 1_000);
        assert_eq!(cost.pico_usd(), 300_000_000);
        assert_eq!(cost.to_string(), "0.0003");
        assert_eq!(cost.usd(), 0.0003);
    }

    #[test]
    fn prices_parse_exactly_or_not_at_all() {
        assert_eq!(parse_usd_per_1k("0.00015"), Ok(150_000));
        assert_eq!(parse_usd_per_1k(".5"), Ok(500_000_000));
        assert_eq!(parse_usd_per_1k("2"), Ok(2_000_000_000));
        assert_eq!(parse_usd_per_1k("0.000000001"), Ok(1));
        assert_eq!(parse_usd_per_1k("0"), Ok(0));
        for bad in [
            "",
            ".",
            "1.",
            "-0.1",
            "1e-4",
            "0.0000000001",
            "0,00015",
            " 1",
            "abc",
            "1001",
            "99999999999999999999",
        ] {
            assert!(parse_usd_per_1k(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sums_of_many_calls_stay_exact() {
        let price = Price::default();
        let total: Cost = (0..10_000).map(|_| price.cost(1, 0)).sum();
        // 10,000 tokens at 0.00015 per 1,000 is exactly 0.0015; f64 sums of 1.5e-7
        // would drift.
        assert_eq!(total.to_string(), "0.0015");
        assert_eq!(total.usd(), 0.0015);
        assert_eq!(Cost::from_usd(total.usd()), total);
        let back: Cost = serde_json::from_str(&serde_json::to_string(&total).unwrap()).unwrap();
        assert_eq!(back, total);
        assert_eq!(
            Cost::from_pico_usd(2 * PICO_PER_USD + 5).to_string(),
            "2.000000000005"
        );
        assert_eq!(Cost::ZERO.to_string(), "0");
        assert_eq!(Cost::from_usd(-1.0), Cost::ZERO);
    }

    #[test]
    fn fallback_models_have_their_own_price() {
        let overrides = Pricing::parse_overrides(
            " eu.meta.llama3-2-3b-instruct-v1:0=0.00019/0.0002 , \
             arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-2-1b-instruct-v1:0=0.0001/0.0001",
        )
        .unwrap();
        let pricing = Pricing::new(Price::default(), overrides);
        assert_eq!(
            pricing
                .cost("eu.meta.llama3-2-3b-instruct-v1:0", 1_000, 2_000)
                .to_string(),
            "0.00059"
        );
        assert_eq!(
            pricing
                .cost(
                    "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-2-1b-instruct-v1:0",
                    1_000,
                    0
                )
                .to_string(),
            "0.0001"
        );
        assert_eq!(
            pricing
                .cost("us.meta.llama3-2-3b-instruct-v1:0", 1_000, 0)
                .to_string(),
            "0.00015"
        );
        assert_eq!(Pricing::parse_overrides("").unwrap(), vec![]);
    }

    #[test]
    fn bad_overrides_say_what_is_wrong() {
        for (list, says) in [
            ("eu.meta.llama3-2-3b-instruct-v1:0", "model-id=input/output"),
            (
                "eu.meta.llama3-2-3b-instruct-v1:0=0.1",
                "model-id=input/output",
            ),
            ("eu.meta.llama3-2-3b-instruct-v1:0=0.1/x", "output price"),
            ("nonsense=0.1/0.1", "nonsense"),
            ("m.a=1/1,m.a=2/2", "priced twice"),
        ] {
            let err = Pricing::parse_overrides(list).unwrap_err();
            assert!(err.contains(says), "{list}: {err}");
        }
    }
}
