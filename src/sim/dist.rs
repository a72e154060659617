//! Probability distributions of durations: handle times, patience and answer delays.
//!
//! A scenario writes a [`DistSpec`] (what the operator knows: a mean, a standard deviation); it is
//! checked once into a [`Dist`], which samples durations in seconds.

use rand::Rng;
use rand_distr::{Distribution, Exp, LogNormal};
use serde::{Deserialize, Serialize};

use super::error::SimError;

/// The family of a duration distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum DistKind {
    /// Exponential with mean `mean_secs` (the default: memoryless, what Erlang formulas assume).
    #[default]
    #[serde(rename = "exponential")]
    Exponential,
    /// Log-normal with mean `mean_secs` and either `sd_secs` (standard deviation of the duration)
    /// or `sigma` (standard deviation of its logarithm). Real handle times usually look like this.
    #[serde(rename = "lognormal", alias = "log_normal")]
    LogNormal,
    /// Always `mean_secs`.
    #[serde(rename = "constant")]
    Constant,
    /// Uniform between `min_secs` and `max_secs`.
    #[serde(rename = "uniform")]
    Uniform,
}

impl DistKind {
    fn name(self) -> &'static str {
        match self {
            DistKind::Exponential => "exponential",
            DistKind::LogNormal => "lognormal",
            DistKind::Constant => "constant",
            DistKind::Uniform => "uniform",
        }
    }
}

/// A duration distribution as written in a scenario, for example
/// `{ dist = "lognormal", mean_secs = 300, sd_secs = 200 }`, `{ mean_secs = 120 }` (exponential)
/// or `{ dist = "uniform", min_secs = 0, max_secs = 2 }`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistSpec {
    /// `exponential` (default), `lognormal`, `constant` or `uniform`.
    #[serde(default)]
    pub dist: DistKind,
    /// The mean in seconds (exponential, lognormal; the value itself for constant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_secs: Option<f64>,
    /// Lognormal only: the standard deviation in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sd_secs: Option<f64>,
    /// Lognormal only: the standard deviation of the logarithm (instead of `sd_secs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma: Option<f64>,
    /// Uniform only: the lowest value in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_secs: Option<f64>,
    /// Uniform only: the highest value in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_secs: Option<f64>,
}

impl DistSpec {
    /// Exponential with this mean.
    pub fn exponential(mean_secs: f64) -> Self {
        DistSpec {
            mean_secs: Some(mean_secs),
            ..DistSpec::default()
        }
    }

    /// Always this value.
    pub fn constant(secs: f64) -> Self {
        DistSpec {
            dist: DistKind::Constant,
            mean_secs: Some(secs),
            ..DistSpec::default()
        }
    }

    /// Uniform between the bounds.
    pub fn uniform(min_secs: f64, max_secs: f64) -> Self {
        DistSpec {
            dist: DistKind::Uniform,
            min_secs: Some(min_secs),
            max_secs: Some(max_secs),
            ..DistSpec::default()
        }
    }

    /// Checks the parameters and builds the sampler; `what` names the field in errors.
    pub fn build(&self, what: &str) -> Result<Dist, SimError> {
        let kind = self.dist;
        let bad = |message: String| SimError::invalid(what, message);
        let refuse = |field: &str, given: bool| -> Result<(), SimError> {
            if given {
                Err(bad(format!(
                    "{field} does not apply to a {} distribution",
                    kind.name()
                )))
            } else {
                Ok(())
            }
        };
        let positive = |field: &str, v: Option<f64>| -> Result<f64, SimError> {
            match v {
                Some(x) if x.is_finite() && x > 0.0 => Ok(x),
                Some(x) => Err(bad(format!("{field} must be a positive number, not {x}"))),
                None => Err(bad(format!("a {} distribution needs {field}", kind.name()))),
            }
        };
        match kind {
            DistKind::Exponential => {
                refuse("sd_secs", self.sd_secs.is_some())?;
                refuse("sigma", self.sigma.is_some())?;
                refuse("min_secs", self.min_secs.is_some())?;
                refuse("max_secs", self.max_secs.is_some())?;
                let mean = positive("mean_secs", self.mean_secs)?;
                let exp = Exp::new(1.0 / mean).map_err(|e| bad(e.to_string()))?;
                Ok(Dist::Exponential { mean, exp })
            }
            DistKind::LogNormal => {
                refuse("min_secs", self.min_secs.is_some())?;
                refuse("max_secs", self.max_secs.is_some())?;
                let mean = positive("mean_secs", self.mean_secs)?;
                let sigma = match (self.sd_secs, self.sigma) {
                    (Some(_), Some(_)) => {
                        return Err(bad("give sd_secs or sigma, not both".into()));
                    }
                    (Some(_), None) => {
                        let sd = positive("sd_secs", self.sd_secs)?;
                        (1.0 + (sd / mean).powi(2)).ln().sqrt()
                    }
                    (None, Some(_)) => positive("sigma", self.sigma)?,
                    (None, None) => {
                        return Err(bad("a lognormal distribution needs sd_secs or sigma".into()));
                    }
                };
                let mu = mean.ln() - sigma * sigma / 2.0;
                let log_normal = LogNormal::new(mu, sigma).map_err(|e| bad(e.to_string()))?;
                Ok(Dist::LogNormal { mean, log_normal })
            }
            DistKind::Constant => {
                refuse("sd_secs", self.sd_secs.is_some())?;
                refuse("sigma", self.sigma.is_some())?;
                refuse("min_secs", self.min_secs.is_some())?;
                refuse("max_secs", self.max_secs.is_some())?;
                match self.mean_secs {
                    Some(x) if x.is_finite() && x >= 0.0 => Ok(Dist::Constant(x)),
                    Some(x) => Err(bad(format!("mean_secs must be at least 0, not {x}"))),
                    None => Err(bad("a constant distribution needs mean_secs".into())),
                }
            }
            DistKind::Uniform => {
                refuse("mean_secs", self.mean_secs.is_some())?;
                refuse("sd_secs", self.sd_secs.is_some())?;
                refuse("sigma", self.sigma.is_some())?;
                match (self.min_secs, self.max_secs) {
                    (Some(lo), Some(hi))
                        if lo.is_finite() && hi.is_finite() && 0.0 <= lo && lo <= hi =>
                    {
                        Ok(Dist::Uniform { lo, hi })
                    }
                    (Some(lo), Some(hi)) => Err(bad(format!(
                        "need 0 <= min_secs <= max_secs, got {lo} and {hi}"
                    ))),
                    _ => Err(bad(
                        "a uniform distribution needs min_secs and max_secs".into()
                    )),
                }
            }
        }
    }
}

/// A checked duration distribution, ready to sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dist {
    /// Always this many seconds.
    Constant(f64),
    /// Exponential.
    Exponential {
        /// Mean in seconds.
        mean: f64,
        /// The sampler (rate 1/mean).
        exp: Exp<f64>,
    },
    /// Log-normal.
    LogNormal {
        /// Mean in seconds.
        mean: f64,
        /// The sampler.
        log_normal: LogNormal<f64>,
    },
    /// Uniform on `[lo, hi]` seconds.
    Uniform {
        /// Lowest value.
        lo: f64,
        /// Highest value.
        hi: f64,
    },
}

impl Dist {
    /// Draws a duration in seconds (never negative).
    pub fn sample_secs<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        match self {
            Dist::Constant(x) => *x,
            Dist::Exponential { exp, .. } => exp.sample(rng),
            Dist::LogNormal { log_normal, .. } => log_normal.sample(rng),
            Dist::Uniform { lo, hi } => lo + (hi - lo) * rng.random::<f64>(),
        }
    }

    /// Draws a duration in whole milliseconds (rounded to the nearest).
    pub fn sample_millis<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        let ms = (self.sample_secs(rng) * 1000.0).round();
        if ms.is_finite() && ms > 0.0 {
            // Saturating float-to-int conversion: absurdly long durations stay finite.
            ms as u64
        } else {
            0
        }
    }

    /// The distribution's mean in seconds.
    pub fn mean_secs(&self) -> f64 {
        match self {
            Dist::Constant(x) => *x,
            Dist::Exponential { mean, .. } | Dist::LogNormal { mean, .. } => *mean,
            Dist::Uniform { lo, hi } => (lo + hi) / 2.0,
        }
    }

    /// The largest value it can draw, in seconds (infinite when unbounded).
    pub fn max_secs(&self) -> f64 {
        match self {
            Dist::Constant(x) => *x,
            Dist::Uniform { hi, .. } => *hi,
            Dist::Exponential { .. } | Dist::LogNormal { .. } => f64::INFINITY,
        }
    }
}
