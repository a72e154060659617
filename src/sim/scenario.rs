//! The scenario file: what a supervisor writes to ask "what if" of the simulator.
//!
//! A scenario is TOML. Its queues and agents have exactly the shape of `config/guichet.toml`
//! ([`QueueConfig`], [`AgentConfig`]), so that an operator simulates the configuration they run;
//! the rest says who works when, what arrives and how long things take. See [`Scenario`] for
//! every field.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::dist::DistSpec;
use super::error::SimError;
use crate::config::Config;
use crate::core::{AgentConfig, AgentId, Channel, QueueConfig, QueueId, Requirement};

/// A simulation scenario.
///
/// ```toml
/// name = "Monday morning"
/// start = "08:00"            # simulated clock at the start ("HH:MM" or "HH:MM:SS")
/// end = "13:00"              # arrivals stop here; the run then drains what is open
/// warm_up_secs = 0           # statistics of interactions created before start + warm-up are dropped
/// replications = 10          # independent runs (seeds seed, seed+1, ...)
/// seed = 1
/// answer_delay = { dist = "uniform", min_secs = 0, max_secs = 2 }   # the default
/// # config = "../guichet.toml"   # take queues and agents from a configuration file too
///
/// [[queues]]                 # exactly a queue of config/guichet.toml
/// id = "tax"
/// channels = ["voice", "email"]
/// requirements = [{ skill = "tax", min_level = 2 }]
/// sla_target_secs = { voice = 120, email = 86400, sms = 14400, chat = 120 }
///
/// [[agents]]                 # exactly an agent of config/guichet.toml: a template here
/// id = "tax-agent"
/// skills = { tax = 3 }
///
/// [[staff]]                  # who works when: 6 clones tax-agent-1..6 from 08:00 to 12:00
/// agent = "tax-agent"
/// count = 6
/// start = "08:00"
/// end = "12:00"
///
/// [[arrivals]]               # one Poisson stream per queue and channel
/// queue = "tax"
/// channel = "voice"
/// periods = [{ from = "08:00", per_hour = 60 }, { from = "09:30", per_hour = 120 }]
/// handle = { dist = "lognormal", mean_secs = 300, sd_secs = 180 }
/// patience = { mean_secs = 240 }  # exponential; absent = the caller never hangs up
///
/// [staffing]                 # for --staff-for: which agent to clone
/// template = "tax-agent"
/// ```
///
/// Rules worth knowing:
/// - an agent with no `[[staff]]` entry works the whole horizon as one person; `count = 0`
///   leaves it out. Clones of a template are named `ID-1`, `ID-2`, ... (just `ID` when there is
///   only one) and are reported together under the template's id;
/// - at its shift's end an agent stops taking new work (paused `end_of_shift`), finishes what it
///   holds, then logs out. Shifts reaching `end` are kept until everything open is resolved;
/// - arrivals stop at `end`; the run goes on until every interaction is answered, abandoned or
///   cannot be served by anyone still logged in (reported as `unserved`);
/// - an overflow to `voicemail` or `message` counts the interaction as `deflected` (the contact
///   leaves the line); `callback` keeps it in line, as the router does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A display name for reports.
    #[serde(default)]
    pub name: String,
    /// A Guichet configuration file whose queues and agents the scenario uses, relative to the
    /// scenario file. Queues and agents written in the scenario replace those of the same id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<PathBuf>,
    /// Simulated time of day at the start (default `00:00`).
    #[serde(default)]
    pub start: ClockTime,
    /// Simulated time at which arrivals stop (after `start`; hours may go past 24).
    pub end: ClockTime,
    /// Seconds after `start` during which statistics are discarded (the system fills up).
    #[serde(default)]
    pub warm_up_secs: u64,
    /// Independent replications (default 10); `--replications` overrides.
    #[serde(default = "default_replications")]
    pub replications: u32,
    /// Seed of the first replication (replication `i` uses `seed + i`); `--seed` overrides.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// How long an agent takes to accept an offer (default uniform 0 to 2 seconds). An offer
    /// not accepted within the queue's `offer_timeout_secs` times out, as in production.
    #[serde(default = "default_answer_delay")]
    pub answer_delay: DistSpec,
    /// Queues, in the `config/guichet.toml` format.
    #[serde(default)]
    pub queues: Vec<QueueConfig>,
    /// Agent templates, in the `config/guichet.toml` format.
    #[serde(default)]
    pub agents: Vec<AgentConfig>,
    /// Who works when.
    #[serde(default)]
    pub staff: Vec<Staff>,
    /// What arrives.
    #[serde(default)]
    pub arrivals: Vec<Arrival>,
    /// What the staffing helper (`--staff-for`) varies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staffing: Option<Staffing>,
}

fn default_replications() -> u32 {
    10
}

fn default_seed() -> u64 {
    1
}

fn default_answer_delay() -> DistSpec {
    DistSpec::uniform(0.0, 2.0)
}

/// Agents cloned from one template, working one shift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Staff {
    /// The template: an agent id of `[[agents]]` (or of the configuration file).
    pub agent: AgentId,
    /// How many people work this shift (default 1).
    #[serde(default = "default_count")]
    pub count: u32,
    /// When they log in (default: the scenario's `start`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<ClockTime>,
    /// When they stop taking work (default: the scenario's `end`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<ClockTime>,
}

fn default_count() -> u32 {
    1
}

/// One Poisson arrival stream: interactions of one channel into one queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arrival {
    /// The queue interactions are created in.
    pub queue: QueueId,
    /// Their channel (the queue must take it).
    pub channel: Channel,
    /// A constant rate, per hour, over the whole horizon. Give this or `periods`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_hour: Option<f64>,
    /// A piecewise-constant rate: each period's rate holds from its `from` until the next
    /// period's (the last until `end`); before the first period the rate is zero.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub periods: Vec<Period>,
    /// Handle time: from acceptance to completion (wrap-up comes on top, from the queue).
    pub handle: DistSpec,
    /// How long the contact waits before leaving (from creation to acceptance); absent means
    /// infinite patience. `{ mean_secs = 120 }` is exponential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patience: Option<DistSpec>,
    /// Skills required on top of the queue's (as an IVR choice would add).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requirements: Vec<Requirement>,
    /// Priority (the queue's default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
}

/// A period of constant arrival rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Period {
    /// When the rate starts to apply.
    pub from: ClockTime,
    /// Arrivals per hour.
    pub per_hour: f64,
}

/// What the staffing helper varies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Staffing {
    /// The agent cloned: its `[[staff]]` entries are replaced by the number of clones tried.
    pub template: AgentId,
    /// When the clones log in (default: the scenario's `start`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<ClockTime>,
    /// When the clones stop taking work (default: the scenario's `end`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<ClockTime>,
    /// The fewest clones tried (default 1).
    #[serde(default = "default_min_agents")]
    pub min_agents: u32,
    /// The most clones tried before giving up (default 1000).
    #[serde(default = "default_max_agents")]
    pub max_agents: u32,
}

fn default_min_agents() -> u32 {
    1
}

fn default_max_agents() -> u32 {
    1000
}

/// A simulated time of day, written `"HH:MM"` or `"HH:MM:SS"` (hours may exceed 23 to run past
/// midnight) or as a number of seconds since midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ClockTime(pub u64);

impl ClockTime {
    /// The time `h:m:s`.
    pub const fn hms(h: u64, m: u64, s: u64) -> Self {
        ClockTime(h * 3600 + m * 60 + s)
    }

    /// Seconds since midnight.
    pub const fn secs(self) -> u64 {
        self.0
    }

    /// Milliseconds since midnight: the simulated router's clock.
    pub const fn millis(self) -> u64 {
        self.0 * 1000
    }

    fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("invalid time {text:?}: expected \"HH:MM\" or \"HH:MM:SS\"");
        let parts: Vec<&str> = text.trim().split(':').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(bad());
        }
        let mut nums = [0u64; 3];
        for (i, p) in parts.iter().enumerate() {
            if p.is_empty() || p.len() > 4 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            nums[i] = p.parse().map_err(|_| bad())?;
        }
        if nums[1] > 59 || nums[2] > 59 {
            return Err(bad());
        }
        Ok(ClockTime::hms(nums[0], nums[1], nums[2]))
    }
}

impl fmt::Display for ClockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, m, s) = (self.0 / 3600, self.0 / 60 % 60, self.0 % 60);
        if s == 0 {
            write!(f, "{h:02}:{m:02}")
        } else {
            write!(f, "{h:02}:{m:02}:{s:02}")
        }
    }
}

impl std::str::FromStr for ClockTime {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ClockTime::parse(s)
    }
}

impl Serialize for ClockTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ClockTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ClockTime;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a time \"HH:MM\" or \"HH:MM:SS\", or seconds since midnight")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ClockTime, E> {
                ClockTime::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ClockTime, E> {
                Ok(ClockTime(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ClockTime, E> {
                u64::try_from(v)
                    .map(ClockTime)
                    .map_err(|_| E::custom("a time cannot be negative"))
            }
        }
        d.deserialize_any(V)
    }
}

impl Scenario {
    /// Parses scenario TOML; `path` labels errors and anchors a relative `config` path. The
    /// configuration file, if any, is read and merged (see [`Scenario::resolve`]).
    pub fn from_toml(text: &str, path: &Path) -> Result<Scenario, SimError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| {
            let (line, column) = crate::config::error_position(text, &e);
            SimError::Parse {
                path: path.to_owned(),
                line,
                column,
                message: e.message().to_owned(),
            }
        })?;
        scenario.resolve(path.parent().unwrap_or(Path::new(".")))
    }

    /// Reads and parses a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Io {
            path: path.to_owned(),
            source,
        })?;
        Scenario::from_toml(&text, path)
    }

    /// Merges the configuration file named by `config` (relative to `dir`) into the scenario:
    /// its queues and agents come first, and those the scenario defines with the same id replace
    /// them. Afterwards `config` is `None`.
    pub fn resolve(mut self, dir: &Path) -> Result<Scenario, SimError> {
        let Some(rel) = self.config.take() else {
            return Ok(self);
        };
        let path = dir.join(rel);
        let base = Config::load(&path)?;
        let mut queues: Vec<QueueConfig> = base
            .queues
            .into_iter()
            .filter(|q| !self.queues.iter().any(|s| s.id == q.id))
            .collect();
        queues.append(&mut self.queues);
        let mut agents: Vec<AgentConfig> = base
            .agents
            .into_iter()
            .filter(|a| !self.agents.iter().any(|s| s.id == a.id))
            .collect();
        agents.append(&mut self.agents);
        self.queues = queues;
        self.agents = agents;
        Ok(self)
    }

    /// The queue with this id.
    pub fn queue(&self, id: &QueueId) -> Option<&QueueConfig> {
        self.queues.iter().find(|q| q.id == *id)
    }

    /// The agent template with this id.
    pub fn agent(&self, id: &AgentId) -> Option<&AgentConfig> {
        self.agents.iter().find(|a| a.id == *id)
    }

    /// This scenario with `count` clones of `template` working the given shift (the scenario's
    /// horizon by default) instead of the template's `[[staff]]` entries: what the staffing
    /// search varies.
    pub fn with_staff(
        &self,
        template: &AgentId,
        count: u32,
        start: Option<ClockTime>,
        end: Option<ClockTime>,
    ) -> Scenario {
        let mut s = self.clone();
        s.staff.retain(|st| st.agent != *template);
        s.staff.push(Staff {
            agent: template.clone(),
            count,
            start,
            end,
        });
        s
    }
}
