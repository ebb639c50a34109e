//! Fault injection: random throttling, unavailability, timeouts, stalls, malformed bodies,
//! guardrail interventions, extra latency and failing streams, reproducible with a seed.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::errors::{BedrockError, ErrorKind};

/// Which faults to inject. Rates are fractions of requests, 0 to 1; the throttle,
/// unavailable, timeout and stall rates share one draw and add up to at most 1.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Fraction answered `ThrottlingException` (429).
    pub throttle_rate: f64,
    /// Fraction answered `ServiceUnavailableException` (503).
    pub unavailable_rate: f64,
    /// Fraction answered `ModelTimeoutException` (408).
    pub timeout_rate: f64,
    /// Fraction accepted and then never answered: no status, no headers, no body, until the
    /// client gives up (or the server shuts down).
    pub stall_rate: f64,
    /// Fraction answered 200 with a model body that is not valid JSON.
    pub malformed_rate: f64,
    /// Fraction of streams that fail with `modelStreamErrorException` after their first
    /// chunk.
    pub stream_fail_rate: f64,
    /// Fraction of requests carrying a guardrail (`X-Amzn-Bedrock-GuardrailIdentifier`)
    /// that the guardrail blocks: 200 with its block message and
    /// `amazon-bedrock-guardrailAction: INTERVENED`.
    pub guardrail_intervene_rate: f64,
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
    #[error("throttle, unavailable, timeout and stall rates add up to {0}, more than 1")]
    Sum(f64),
}

impl Faults {
    /// Checks the rates.
    pub fn validate(&self) -> Result<(), FaultsError> {
        for (name, value) in [
            ("throttle rate", self.throttle_rate),
            ("unavailable rate", self.unavailable_rate),
            ("timeout rate", self.timeout_rate),
            ("stall rate", self.stall_rate),
            ("malformed rate", self.malformed_rate),
            ("stream fail rate", self.stream_fail_rate),
            ("guardrail intervene rate", self.guardrail_intervene_rate),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(FaultsError::Rate { name, value });
            }
        }
        let sum = self.throttle_rate + self.unavailable_rate + self.timeout_rate + self.stall_rate;
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
    /// Never answer.
    pub stall: bool,
    /// Answer with a malformed body instead.
    pub malformed: bool,
    /// A stream fails after its first chunk.
    pub stream_fail: bool,
    /// The guardrail blocks the request, if it carries one.
    pub guardrail: bool,
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

    /// Draws four numbers per request, always, so a seed replays the same sequence: one
    /// picks the error (throttle, unavailable, timeout, stall bands), one the malformed
    /// body, one the stream failure, one the guardrail intervention.
    pub(crate) fn draw(&self) -> Draw {
        let [error_roll, malformed_roll, stream_roll, guardrail_roll]: [f64; 4] = {
            let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
            std::array::from_fn(|_| rng.random())
        };
        let f = &self.faults;
        let band = [
            (f.throttle_rate, Some(ErrorKind::ThrottlingException)),
            (
                f.unavailable_rate,
                Some(ErrorKind::ServiceUnavailableException),
            ),
            (f.timeout_rate, Some(ErrorKind::ModelTimeoutException)),
            (f.stall_rate, None),
        ]
        .into_iter()
        .scan(0.0, |upper, (rate, kind)| {
            *upper += rate;
            Some((*upper, kind))
        })
        .find(|(upper, _)| error_roll < *upper)
        .map(|(_, kind)| kind);
        Draw {
            error: band.flatten().map(BedrockError::of),
            stall: matches!(band, Some(None)),
            malformed: malformed_roll < f.malformed_rate,
            stream_fail: stream_roll < f.stream_fail_rate,
            guardrail: guardrail_roll < f.guardrail_intervene_rate,
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
    fn the_fault_storm_mix_is_drawn_at_its_rates() {
        let injector = FaultInjector::new(Faults {
            throttle_rate: 0.30,
            unavailable_rate: 0.05,
            stall_rate: 0.01,
            stream_fail_rate: 0.02,
            seed: Some(11),
            ..Faults::default()
        });
        let n = 20_000;
        let (mut throttled, mut unavailable, mut stalled, mut stream_failed) = (0, 0, 0, 0);
        for _ in 0..n {
            let draw = injector.draw();
            match draw.error.as_ref().map(|e| e.kind) {
                Some(ErrorKind::ThrottlingException) => throttled += 1,
                Some(ErrorKind::ServiceUnavailableException) => unavailable += 1,
                Some(other) => panic!("{other:?} was not asked for"),
                None => {}
            }
            assert!(!(draw.stall && draw.error.is_some()), "one band per draw");
            stalled += usize::from(draw.stall);
            stream_failed += usize::from(draw.stream_fail);
            assert!(!draw.malformed && !draw.guardrail);
        }
        let share = |count: usize| count as f64 / n as f64;
        assert!((0.28..0.32).contains(&share(throttled)), "{throttled}");
        assert!((0.04..0.06).contains(&share(unavailable)), "{unavailable}");
        assert!((0.005..0.015).contains(&share(stalled)), "{stalled}");
        assert!(
            (0.015..0.025).contains(&share(stream_failed)),
            "{stream_failed}"
        );
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
        assert!(bad(Faults {
            throttle_rate: 0.5,
            stall_rate: 0.6,
            ..Faults::default()
        }));
        assert!(bad(Faults {
            stream_fail_rate: -0.1,
            ..Faults::default()
        }));
        assert!(bad(Faults {
            guardrail_intervene_rate: 1.1,
            ..Faults::default()
        }));
        assert!(Faults::default().validate().is_ok());
    }
}
