//! Fault injection: random throttling, unavailability, timeouts and malformed bodies, extra
//! latency and failing streams, reproducible with a seed.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::errors::{BedrockError, ErrorKind};

/// Which faults to inject. Rates are fractions of requests, 0 to 1; the three error rates
/// together at most 1.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Fraction answered `ThrottlingException` (429).
    pub throttle_rate: f64,
    /// Fraction answered `ServiceUnavailableException` (503).
    pub unavailable_rate: f64,
    /// Fraction answered `ModelTimeoutException` (408).
    pub timeout_rate: f64,
    /// Fraction answered 200 with a model body that is not valid JSON.
    pub malformed_rate: f64,
    /// Latency added to every model request before it is answered.
    pub added_latency: Duration,
    /// Streams fail with `modelStreamErrorException` after this many chunks.
    pub stream_fail_after: Option<usize>,
    /// Seed for the fault draws; the same seed gives the same faults for the same request order.
    pub seed: Option<u64>,
}

/// Fault settings that make no sense.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultsError {
    /// A rate outside 0 to 1.
    #[error("{name} must be between 0 and 1, got {value}")]
    Rate {
        /// The option.
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// The error rates add up to more than 1.
    #[error("throttle, unavailable and timeout rates add up to {0}, more than 1")]
    Sum(f64),
}

impl Faults {
    /// Checks the rates.
    pub fn validate(&self) -> Result<(), FaultsError> {
        for (name, value) in [
            ("throttle rate", self.throttle_rate),
            ("unavailable rate", self.unavailable_rate),
            ("timeout rate", self.timeout_rate),
            ("malformed rate", self.malformed_rate),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(FaultsError::Rate { name, value });
            }
        }
        let sum = self.throttle_rate + self.unavailable_rate + self.timeout_rate;
        if sum > 1.0 + 1e-9 {
            return Err(FaultsError::Sum(sum));
        }
        Ok(())
    }
}

/// The faults drawn for one request.
pub(crate) struct Draw {
    /// Answer with this error instead.
    pub error: Option<BedrockError>,
    /// Answer with a malformed body instead.
    pub malformed: bool,
}

/// Draws faults per request from a seeded generator.
pub(crate) struct FaultInjector {
    faults: Faults,
    rng: Mutex<StdRng>,
}

impl FaultInjector {
    pub(crate) fn new(faults: Faults) -> Self {
        let rng = faults
            .seed
            .map_or_else(StdRng::from_os_rng, StdRng::seed_from_u64);
        Self {
            faults,
            rng: Mutex::new(rng),
        }
    }

    pub(crate) fn added_latency(&self) -> Duration {
        self.faults.added_latency
    }

    pub(crate) fn stream_fail_after(&self) -> Option<usize> {
        self.faults.stream_fail_after
    }

    /// Draws two numbers per request, always, so a seed replays the same sequence: one picks
    /// the error (throttle, unavailable, timeout bands), the other the malformed body.
    pub(crate) fn draw(&self) -> Draw {
        let (error_roll, malformed_roll): (f64, f64) = {
            let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
            (rng.random(), rng.random())
        };
        let f = &self.faults;
        let error = [
            (f.throttle_rate, ErrorKind::ThrottlingException),
            (f.unavailable_rate, ErrorKind::ServiceUnavailableException),
            (f.timeout_rate, ErrorKind::ModelTimeoutException),
        ]
        .into_iter()
        .scan(0.0, |upper, (rate, kind)| {
            *upper += rate;
            Some((*upper, kind))
        })
        .find(|(upper, _)| error_roll < *upper)
        .map(|(_, kind)| BedrockError::of(kind));
        Draw {
            error,
            malformed: malformed_roll < f.malformed_rate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(injector: &FaultInjector, n: usize) -> Vec<Option<ErrorKind>> {
        (0..n)
            .map(|_| injector.draw().error.map(|e| e.kind))
            .collect()
    }

    #[test]
    fn same_seed_same_faults() {
        let faults = Faults {
            throttle_rate: 0.3,
            unavailable_rate: 0.2,
            timeout_rate: 0.1,
            seed: Some(7),
            ..Faults::default()
        };
        let a = kinds(&FaultInjector::new(faults.clone()), 200);
        let b = kinds(&FaultInjector::new(faults), 200);
        assert_eq!(a, b);
        let throttled = a
            .iter()
            .filter(|k| **k == Some(ErrorKind::ThrottlingException))
            .count();
        assert!((30..90).contains(&throttled), "{throttled}");
        assert!(a.contains(&Some(ErrorKind::ModelTimeoutException)));
        assert!(a.contains(&None));
    }

    #[test]
    fn zero_and_full_rates() {
        let none = FaultInjector::new(Faults::default());
        assert!(kinds(&none, 50).iter().all(Option::is_none));
        let all = FaultInjector::new(Faults {
            unavailable_rate: 1.0,
            malformed_rate: 1.0,
            ..Faults::default()
        });
        let draw = all.draw();
        assert_eq!(
            draw.error.map(|e| e.kind),
            Some(ErrorKind::ServiceUnavailableException)
        );
        assert!(draw.malformed);
    }

    #[test]
    fn bad_rates_are_rejected() {
        let bad = |faults: Faults| faults.validate().is_err();
        assert!(bad(Faults {
            throttle_rate: 1.5,
            ..Faults::default()
        }));
        assert!(bad(Faults {
            malformed_rate: f64::NAN,
            ..Faults::default()
        }));
        assert!(bad(Faults {
            throttle_rate: 0.6,
            timeout_rate: 0.6,
            ..Faults::default()
        }));
        assert!(Faults::default().validate().is_ok());
    }
}
