//! Counting and estimating: what one replication counts, and how replications become an
//! estimate with a 95 % confidence interval (Student t over independent replications).

use serde::{Deserialize, Serialize};

use crate::core::Counts;

/// What one replication counted for one queue and channel (interactions created after the
/// warm-up only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RowCounts {
    /// Created, answered, abandoned, cancelled (deflected), within the row's threshold: from
    /// the core's outcome fold.
    pub(crate) outcome: Counts,
    pub(crate) unserved: u64,
    /// Not offered to an agent the instant it was created (it had to wait in line).
    pub(crate) queued: u64,
    /// Answered, per agent group.
    pub(crate) answered_by: Vec<u64>,
}

/// What one replication counted for one agent group, inside the measured window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GroupCounts {
    pub(crate) agents: u64,
    pub(crate) logged_ms: u64,
    pub(crate) busy_ms: u64,
}

/// What one replication counted for one agent (a clone of a template), inside the measured
/// window: what the per-agent spread of the report is made of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AgentCounts {
    /// Interactions answered (created after the warm-up).
    pub(crate) answered: u64,
    pub(crate) logged_ms: u64,
    pub(crate) busy_ms: u64,
}

/// Everything one replication counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RepCounts {
    pub(crate) rows: Vec<RowCounts>,
    pub(crate) groups: Vec<GroupCounts>,
    /// Per agent, in the model's agent order (filled by the engine; empty otherwise).
    pub(crate) agents: Vec<AgentCounts>,
    /// Interactions created, warm-up included.
    pub(crate) interactions: u64,
}

impl RepCounts {
    pub(crate) fn new(rows: usize, groups: usize) -> Self {
        RepCounts {
            rows: vec![
                RowCounts {
                    answered_by: vec![0; groups],
                    ..RowCounts::default()
                };
                rows
            ],
            groups: vec![GroupCounts::default(); groups],
            agents: Vec::new(),
            interactions: 0,
        }
    }
}

/// A mean over replications with its 95 % confidence half-width.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The mean of the replications' values.
    pub mean: f64,
    /// Half-width of the 95 % confidence interval, `t(0.975, n-1) * s / sqrt(n)`; absent with
    /// fewer than two values.
    pub half_width: Option<f64>,
    /// How many replications had a value (a rate over zero interactions has none).
    pub n: u32,
}

impl Estimate {
    /// Zero, from no replication (a count that never happened).
    pub const ZERO: Estimate = Estimate {
        mean: 0.0,
        half_width: None,
        n: 0,
    };

    /// The estimate from one value per replication; `None` when there is no value.
    pub fn from_samples(values: &[f64]) -> Option<Estimate> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let half_width = (n >= 2).then(|| {
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            student_t_975((n - 1) as u32) * (var / n as f64).sqrt()
        });
        Some(Estimate {
            mean,
            half_width,
            n: n as u32,
        })
    }

    /// The lower end of the confidence interval (the mean when there is no interval).
    pub fn lower(&self) -> f64 {
        self.mean - self.half_width.unwrap_or(0.0)
    }

    /// The upper end of the confidence interval (the mean when there is no interval).
    pub fn upper(&self) -> f64 {
        self.mean + self.half_width.unwrap_or(0.0)
    }
}

/// The 0.975 quantile of Student's t distribution with `df` degrees of freedom: the factor of a
/// two-sided 95 % confidence interval. Exact to 4 decimals from a table up to 30 degrees of
/// freedom, then the Cornish-Fisher expansion around the normal quantile (error below 1e-4).
/// `df = 0` gives infinity.
pub fn student_t_975(df: u32) -> f64 {
    const TABLE: [f64; 30] = [
        12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010,
        2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739,
        2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => TABLE[df as usize - 1],
        _ => {
            let z: f64 = 1.959_963_984_540_054;
            let v = f64::from(df);
            let (z3, z5, z7, z9) = (z.powi(3), z.powi(5), z.powi(7), z.powi(9));
            z + (z3 + z) / (4.0 * v)
                + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * v * v)
                + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * v.powi(3))
                + (79.0 * z9 + 776.0 * z7 + 1482.0 * z5 - 1920.0 * z3 - 945.0 * z)
                    / (92160.0 * v.powi(4))
        }
    }
}

pub(crate) use crate::core::ratio;
